/**
 * Re-owning a layer's files when it moves from one ID mapping to another
 * (a layer created over a parent with other mappings, on a driver that
 * cannot shift IDs at mount time), exactly as containers/storage 1.43's
 * ChownPathByMaps does, so that both produce the same owners:
 *
 * - each owner is mapped to the container with the old mapping (an owner
 *   it does not cover is an error, unless it is 0:0, which stays), then to
 *   the host with the new one, where IDs it does not cover become the
 *   overflow ID 65534 (see {@linkcode toHostOverflow});
 * - the top directory keeps its owner;
 * - set-ID bits and file capabilities, which chown(2) clears, are restored;
 * - a second name of a hard-linked file is linked again to the first one,
 *   so that an overlay mount, which copies each name up separately,
 *   keeps them one file.
 *
 * @example
 * ```ts ignore
 * await chownPathByMaps(mergedDir, parentMappings, layerMappings);
 * ```
 * @module
 */

import {
  chmod,
  lchown,
  lgetxattr,
  link,
  lsetxattr,
  lstatNs,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  unlink,
} from "../ffi/fs.ts";
import { listDir } from "../ffi/dirent.ts";
import { SyscallError } from "../ffi/errors.ts";
import { ErrUnmappedID } from "../lib/errors.ts";
import { type IDMappings, type IDPair, toContainer, toHostOverflow } from "../lib/idmap.ts";

const CAPABILITY = "security.capability";

/**
 * Re-owns everything below `root` from the host IDs of mapping `from` to
 * those of mapping `to`; an absent or empty mapping skips its step.
 * @throws {ErrUnmappedID} when an owner other than 0:0 is outside `from`.
 */
export function chownPathByMaps(
  root: string,
  from: IDMappings | undefined,
  to: IDMappings | undefined,
): Promise<void> {
  const present = (m?: IDMappings) => m && (m.uidMap.length > 0 || m.gidMap.length > 0);
  const toCont = present(from) ? from : undefined;
  const toHost = present(to) ? to : undefined;
  const firstName = new Map<string, string>();
  const visit = (path: string): void => {
    const st = lstatNs(path);
    const inode = `${st.dev}:${st.ino}`;
    const first = firstName.get(inode);
    if (first !== undefined) {
      unlink(path);
      link(first, path);
      return;
    }
    firstName.set(inode, path);
    let owner: IDPair = { uid: st.uid, gid: st.gid };
    if (toCont) owner = containerOwner(path, owner, toCont);
    if (toHost) owner = toHostOverflow(owner, toHost);
    if (owner.uid !== st.uid || owner.gid !== st.gid) {
      const cap = capability(path);
      lchown(path, owner.uid, owner.gid);
      const type = st.mode & S_IFMT;
      if (type !== S_IFLNK && (st.mode & 0o6000) !== 0) chmod(path, st.mode & 0o7777);
      if (cap !== null) lsetxattr(path, CAPABILITY, cap);
    }
    if ((st.mode & S_IFMT) === S_IFDIR) visitChildren(path);
  };
  const visitChildren = (dir: string) => {
    for (const e of listDir(dir)) visit(`${dir}/${e.name}`);
  };
  visitChildren(root);
  return Promise.resolve();
}

/** The container owner of host owner `pair`; 0:0 stays 0:0 when the mapping lacks 0. */
function containerOwner(path: string, pair: IDPair, m: IDMappings): IDPair {
  try {
    return { uid: toContainer(pair.uid, m.uidMap), gid: toContainer(pair.gid, m.gidMap) };
  } catch (e) {
    if (!(e instanceof ErrUnmappedID)) throw e;
    // a parent layer that should have had mapped IDs but has root's
    if (pair.uid === 0 && pair.gid === 0) return pair;
    throw new ErrUnmappedID(e.id, {
      detail:
        `owner ${pair.uid}:${pair.gid} of ${path}: host ID has no container ID in the mapping`,
      cause: e,
    });
  }
}

function capability(path: string): Uint8Array | null {
  try {
    return lgetxattr(path, CAPABILITY);
  } catch (e) {
    if (e instanceof SyscallError && (e.code === "EOPNOTSUPP" || e.code === "EOVERFLOW")) {
      return null;
    }
    throw e;
  }
}

/**
 * Full directory copy for the vfs driver: every file keeps its type, mode,
 * ownership, extended attributes and nanosecond times, hard links stay
 * hard links, and regular files are reflinked when the file system can
 * (so a copy costs no data blocks on btrfs/xfs) and copied otherwise.
 *
 * @example
 * ```ts ignore
 * await copyTree("/g/vfs/dir/parent", "/g/vfs/dir/child");
 * ```
 * @module
 */

import { join } from "node:path";
import {
  cloneFile,
  lchown,
  lgetxattr,
  llistxattr,
  lsetxattr,
  lstatNs,
  mknod,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type StatNs,
  symlink,
  utimensat,
} from "../../ffi/fs.ts";

/** Copies all extended attributes of `src` onto `dst`. */
function copyXattrs(src: string, dst: string): void {
  for (const name of llistxattr(src)) {
    const value = lgetxattr(src, name);
    if (value !== null) lsetxattr(dst, name, value);
  }
}

/** State shared across one copy: hard-link targets and whether reflinks work here. */
interface CopyState {
  links: Map<string, string>;
  reflink: boolean;
  dirs: { path: string; st: StatNs }[];
}

async function copyEntry(src: string, dst: string, st: StatNs, state: CopyState): Promise<void> {
  const type = st.mode & S_IFMT;
  if (type !== S_IFDIR && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = state.links.get(key);
    if (first !== undefined) {
      await Deno.link(first, dst);
      return;
    }
    state.links.set(key, dst);
  }
  switch (type) {
    case S_IFDIR:
      await Deno.mkdir(dst).catch((e) => {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      });
      break;
    case S_IFREG:
      if (!(state.reflink && cloneFile(src, dst))) {
        state.reflink = false;
        await Deno.copyFile(src, dst);
      }
      break;
    case S_IFLNK:
      symlink(await Deno.readLink(src), dst);
      break;
    default: // devices, fifos, sockets
      mknod(dst, st.mode, st.rdev);
  }
  // chown first: it clears set-id bits that chmod then restores.
  lchown(dst, st.uid, st.gid);
  copyXattrs(src, dst);
  if (type !== S_IFLNK) await Deno.chmod(dst, st.mode & 0o7777);
  if (type === S_IFDIR) {
    state.dirs.push({ path: dst, st });
    for await (const e of Deno.readDir(src)) {
      const s = join(src, e.name);
      await copyEntry(s, join(dst, e.name), lstatNs(s), state);
    }
  } else {
    utimensat(dst, st.atime, st.mtime, true);
  }
}

/**
 * Copies the tree at `src` into `dst` (which may already exist as an empty
 * directory; its metadata is replaced by that of `src`).
 */
export async function copyTree(src: string, dst: string): Promise<void> {
  const state: CopyState = { links: new Map(), reflink: true, dirs: [] };
  await copyEntry(src, dst, lstatNs(src), state);
  // Directory times last: creating children changed them.
  for (let i = state.dirs.length - 1; i >= 0; i--) {
    const { path, st } = state.dirs[i];
    utimensat(path, st.atime, st.mtime, true);
  }
}

/**
 * Writes a list of changes as a layer tarball, with the headers that
 * containers/storage's ExportChanges writes: entries sorted by path, a
 * deletion as an empty AUFS whiteout file `dir/.wh.name` (mode 0, no owner
 * names, the current time), everything else from lstat — full st_mode
 * (type bits included), owner mapped host→container, user and group names
 * looked up for the host IDs, mtime truncated to the second, no atime or
 * ctime, `security.capability` and `user.*` xattrs as SCHILY.xattr
 * records, a hard link to an inode already written as a link entry.
 *
 * With `whiteoutFormat: "overlay"` the tree itself holds overlay
 * whiteouts: a 0/0 character device becomes `.wh.name` and an opaque
 * directory is followed by a `.wh..wh..opq` entry.
 *
 * @example
 * ```ts ignore
 * import { changesDirs } from "./changes.ts";
 * import { exportChanges } from "./export.ts";
 * const changes = await changesDirs("/layers/b", "/layers/a");
 * await exportChanges("/layers/b", changes).pipeTo((await Deno.create("diff.tar")).writable);
 * ```
 * @module
 */

import { type Change, ChangeKind } from "../../drivers/driver.ts";
import { type IDMappings, isIdentity, toContainer } from "../idmap.ts";
import { lgetxattr, llistxattr, lstatNs, type StatNs } from "../../ffi/fs.ts";
import { emptyHeader, type TarHeader, TypeFlag } from "./tar_header.ts";
import { type TarWriteEntry, writeTar } from "./tar_writer.ts";
import {
  isOpaqueValue,
  isOverlayWhiteout,
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_OPAQUE,
  whiteoutName,
} from "./whiteout.ts";

/** Options of {@linkcode exportChanges}. */
export interface ExportOptions {
  /** ID mappings of the layer: file owners are host IDs, mapped back to container IDs. */
  mappings?: IDMappings;
  /** How deletions are stored in `dir` (default "aufs": whiteout files, exported as they are). */
  whiteoutFormat?: "aufs" | "overlay";
}

const S_IFMT = 0o170000;
const TYPES: Record<number, string> = {
  0o100000: TypeFlag.Reg,
  0o040000: TypeFlag.Dir,
  0o120000: TypeFlag.Symlink,
  0o020000: TypeFlag.Char,
  0o060000: TypeFlag.Block,
  0o010000: TypeFlag.Fifo,
};

/**
 * A tar stream of `changes` (paths like "/etc/passwd") read from `dir`.
 * Files that vanish or cannot be read while exporting are skipped, as the
 * reference does for a tree that may change under it.
 */
export function exportChanges(
  dir: string,
  changes: Change[],
  opts: ExportOptions = {},
): ReadableStream<Uint8Array> {
  return writeTar(entries(dir, changes, opts));
}

async function* entries(
  dir: string,
  changes: Change[],
  opts: ExportOptions,
): AsyncGenerator<TarWriteEntry> {
  const sorted = [...changes].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const names = new NameLookup();
  const seen = new Map<bigint, string>();
  const mappings = opts.mappings && !isIdentity(opts.mappings) ? opts.mappings : undefined;
  for (const change of sorted) {
    if (change.kind === ChangeKind.Delete) {
      yield { header: whiteoutHeader(whiteoutName(change.path.slice(1)), nowSeconds()) };
      continue;
    }
    const rel = change.path.slice(1);
    const abs = `${dir}/${rel}`;
    let st: StatNs;
    try {
      st = lstatNs(abs);
    } catch {
      continue;
    }
    const typeflag = TYPES[st.mode & S_IFMT];
    if (typeflag === undefined) continue; // sockets are not archived
    if (opts.whiteoutFormat === "overlay" && isOverlayWhiteout(st)) {
      yield { header: whiteoutHeader(whiteoutName(rel), { sec: st.mtime.sec, nsec: 0 }, st) };
      continue;
    }
    let h: TarHeader;
    try {
      h = header(abs, rel, st, typeflag, names, mappings);
    } catch {
      continue; // e.g. an owner outside the mapping: the reference skips such files too
    }
    if (typeflag !== TypeFlag.Dir && st.nlink > 1) {
      const first = seen.get(st.ino);
      if (first !== undefined) {
        h.typeflag = TypeFlag.Link;
        h.linkname = first;
        h.size = 0;
      } else {
        seen.set(st.ino, h.name);
      }
    }
    if (h.typeflag === TypeFlag.Reg && h.size > 0) {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(abs);
      } catch {
        continue;
      }
      yield { header: h, body: sized(file, h.size) };
    } else {
      yield { header: h };
    }
    if (opts.whiteoutFormat === "overlay" && typeflag === TypeFlag.Dir) {
      if (isOpaqueValue(lgetxattr(abs, OVERLAY_OPAQUE_XATTR))) {
        const opq = {
          ...whiteoutHeader(`${rel}/${WHITEOUT_OPAQUE}`, h.mtime),
          uid: h.uid,
          gid: h.gid,
        };
        yield { header: { ...opq, mode: h.mode & 0o777, uname: h.uname, gname: h.gname } };
      }
    }
  }
}

function nowSeconds(): { sec: number; nsec: number } {
  return { sec: Math.round(Date.now() / 1000), nsec: 0 };
}

function whiteoutHeader(
  name: string,
  mtime: { sec: number; nsec: number },
  st?: StatNs,
): TarHeader {
  const h = emptyHeader(name, TypeFlag.Reg);
  h.mtime = mtime;
  if (st) {
    h.uid = st.uid;
    h.gid = st.gid;
  }
  return h;
}

/** The header containers/storage's FileInfoHeader builds for a file. */
function header(
  abs: string,
  rel: string,
  st: StatNs,
  typeflag: string,
  names: NameLookup,
  mappings: IDMappings | undefined,
): TarHeader {
  const h = emptyHeader(typeflag === TypeFlag.Dir ? `${rel}/` : rel, typeflag);
  h.mode = st.mode;
  h.uname = names.user(st.uid);
  h.gname = names.group(st.gid);
  h.uid = mappings ? toContainer(st.uid, mappings.uidMap) : st.uid;
  h.gid = mappings ? toContainer(st.gid, mappings.gidMap) : st.gid;
  h.mtime = { sec: st.mtime.sec, nsec: 0 };
  if (typeflag === TypeFlag.Reg) h.size = st.size;
  if (typeflag === TypeFlag.Symlink) h.linkname = Deno.readLinkSync(abs);
  if (typeflag === TypeFlag.Char || typeflag === TypeFlag.Block) {
    h.devmajor = st.rdevMajor;
    h.devminor = st.rdevMinor;
  }
  h.xattrs = xattrs(abs);
  return h;
}

function xattrs(abs: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  try {
    const cap = lgetxattr(abs, "security.capability");
    if (cap !== null) out["security.capability"] = cap;
    for (const key of llistxattr(abs)) {
      if (!key.startsWith("user.")) continue;
      const v = lgetxattr(abs, key);
      if (v !== null) out[key] = v;
    }
  } catch (e) {
    if ((e as { errno?: number }).errno !== 95 /* EOPNOTSUPP */) throw e;
  }
  return out;
}

/** Exactly `size` bytes of a file (it may have grown or shrunk since lstat). */
async function* sized(file: Deno.FsFile, size: number): AsyncGenerator<Uint8Array> {
  try {
    let left = size;
    const buf = new Uint8Array(Math.min(size, 1 << 20));
    while (left > 0) {
      const n = await file.read(buf.subarray(0, Math.min(left, buf.length)));
      if (n === null) break;
      left -= n;
      yield buf.slice(0, n);
    }
    if (left > 0) yield new Uint8Array(left);
  } finally {
    file.close();
  }
}

/** User and group names of host IDs from /etc/passwd and /etc/group, as Go's os/user finds them. */
class NameLookup {
  #users?: Map<number, string>;
  #groups?: Map<number, string>;

  user(id: number): string {
    this.#users ??= readIDFile("/etc/passwd");
    return this.#users.get(id) ?? "";
  }

  group(id: number): string {
    this.#groups ??= readIDFile("/etc/group");
    return this.#groups.get(id) ?? "";
  }
}

function readIDFile(path: string): Map<number, string> {
  const map = new Map<number, string>();
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return map;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || line.startsWith("#")) continue;
    const id = Number(f[2]);
    if (Number.isInteger(id) && !map.has(id)) map.set(id, f[0]);
  }
  return map;
}

/**
 * Writes layer tarballs with the headers containers/storage's pkg/archive
 * writes. {@linkcode exportChanges} (ExportChanges, the naive differ)
 * sorts a change list by path and writes a deletion as an empty AUFS
 * whiteout file `dir/.wh.name` (mode 0, no owner names, the current time);
 * {@linkcode exportTree} (TarWithOptions) walks a whole directory. Either
 * way a file's header comes from lstat — full st_mode (type bits
 * included), owner mapped host→container (whiteouts excepted), user and
 * group names looked up for the host IDs, mtime truncated to the second,
 * no atime or ctime, `security.capability` and `user.*` xattrs as
 * SCHILY.xattr records — and a hard link to an inode already written is a
 * link entry.
 *
 * With `whiteoutFormat: "overlay"` the walked tree holds overlay
 * whiteouts: a 0/0 character device becomes `.wh.name` (mode 0, its owner
 * and mtime kept) and an opaque directory that hides something below is
 * followed by a `.wh..wh..opq` entry with mtime 0.
 *
 * @example
 * ```ts ignore
 * import { changesDirs } from "./changes.ts";
 * import { exportChanges, exportTree } from "./export.ts";
 * const changes = await changesDirs("/layers/b", "/layers/a");
 * await exportChanges("/layers/b", changes).pipeTo((await Deno.create("diff.tar")).writable);
 * await exportTree("/layers/a").pipeTo((await Deno.create("base.tar")).writable);
 * ```
 * @module
 */

import { type Change, ChangeKind } from "./change.ts";
import { type IDMappings, isIdentity, toContainer } from "../idmap.ts";
import {
  isDir,
  lgetxattr,
  llistxattr,
  lstatNs,
  readlink,
  S_IFMT,
  type StatNs,
} from "../../ffi/fs.ts";
import { listDir } from "../../ffi/dirent.ts";
import { compareOsStrings } from "../os_string.ts";
import { type FileStream, openFileStream } from "./file_stream.ts";
import { emptyHeader, type TarHeader, TypeFlag } from "./tar_header.ts";
import { type TarWriteEntry, writeTar } from "./tar_writer.ts";
import { opaqueHidesLower } from "./changes.ts";
import {
  isOpaqueValue,
  isOverlayWhiteout,
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_OPAQUE,
  WHITEOUT_PREFIX,
  whiteoutName,
} from "./whiteout.ts";

/** Options of {@linkcode exportChanges}. */
export interface ExportOptions {
  /** ID mappings of the layer: file owners are host IDs, mapped back to container IDs. */
  mappings?: IDMappings;
}

/** Options of {@linkcode exportTree}. */
export interface ExportTreeOptions extends ExportOptions {
  /**
   * How deletions are stored in the tree (default "aufs": whiteout files,
   * exported as they are; "overlay": 0/0 character devices and opaque xattrs).
   */
  whiteoutFormat?: "aufs" | "overlay";
  /**
   * Overlay only: the layer's lower directories. An opaque directory gets
   * a `.wh..wh..opq` entry only when it hides something one of them has.
   */
  lowerDirs?: string[];
}

const TYPES: Record<number, string> = {
  0o100000: TypeFlag.Reg,
  0o040000: TypeFlag.Dir,
  0o120000: TypeFlag.Symlink,
  0o020000: TypeFlag.Char,
  0o060000: TypeFlag.Block,
  0o010000: TypeFlag.Fifo,
};

/**
 * A tar stream of `changes` (paths like "/etc/passwd") read from `dir`,
 * sorted by path as ExportChanges does. Files that vanish or cannot be
 * read while exporting are skipped, as the reference does for a tree that
 * may change under it.
 */
export function exportChanges(
  dir: string,
  changes: Change[],
  opts: ExportOptions = {},
): ReadableStream<Uint8Array> {
  return writeTar(changeEntries(dir, changes, new Appender(dir, opts)));
}

/**
 * A tar stream of everything under `dir` (not `dir` itself), in the order
 * of TarWithOptions' walk: each directory's names in byte order, a
 * directory before its contents — so `a/x` comes before `a.b`. This is
 * what the reference exports for a layer without a parent and for an
 * overlay layer's native diff.
 */
export function exportTree(dir: string, opts: ExportTreeOptions = {}): ReadableStream<Uint8Array> {
  return writeTar(walk(new Appender(dir, opts), ""));
}

async function* changeEntries(
  dir: string,
  changes: Change[],
  ap: Appender,
): AsyncGenerator<TarWriteEntry> {
  const sorted = [...changes].sort((a, b) => compareOsStrings(a.path, b.path));
  for (const change of sorted) {
    if (change.kind === ChangeKind.Delete) {
      const h = emptyHeader(whiteoutName(change.path.slice(1)), TypeFlag.Reg);
      h.mtime = { sec: Math.round(Date.now() / 1000), nsec: 0 };
      yield { header: h };
      continue;
    }
    yield* ap.add(`${dir}${change.path}`, change.path.slice(1));
  }
}

async function* walk(ap: Appender, rel: string): AsyncGenerator<TarWriteEntry> {
  let names: string[];
  try {
    names = listDir(ap.dir + (rel === "" ? "" : `/${rel}`)).map((e) => e.name);
  } catch {
    return; // unreadable or gone: the reference logs and goes on
  }
  for (const name of names.sort(compareOsStrings)) {
    const child = rel === "" ? name : `${rel}/${name}`;
    yield* ap.add(`${ap.dir}/${child}`, child);
    let dir = false;
    try {
      dir = isDir(lstatNs(`${ap.dir}/${child}`));
    } catch {
      // vanished
    }
    if (dir) yield* walk(ap, child);
  }
}

/** containers/storage's tarAppender: one file's entries, hard links tracked across files. */
class Appender {
  readonly #names = new NameLookup();
  readonly #seen = new Map<bigint, string>();
  readonly #mappings?: IDMappings;
  readonly #overlay: boolean;
  readonly #lowerDirs: string[];

  constructor(readonly dir: string, opts: ExportTreeOptions) {
    this.#mappings = opts.mappings && !isIdentity(opts.mappings) ? opts.mappings : undefined;
    this.#overlay = opts.whiteoutFormat === "overlay";
    this.#lowerDirs = opts.lowerDirs ?? [];
  }

  /** The entries of the file at `abs`, named `rel` in the archive (none if it cannot be read). */
  async *add(abs: string, rel: string): AsyncGenerator<TarWriteEntry> {
    let st: StatNs;
    try {
      st = lstatNs(abs);
    } catch {
      return;
    }
    const typeflag = TYPES[st.mode & S_IFMT];
    if (typeflag === undefined) return; // sockets are not archived
    let h: TarHeader;
    try {
      h = header(abs, rel, st, typeflag, this.#names);
    } catch {
      return;
    }
    if (typeflag !== TypeFlag.Dir && st.nlink > 1) {
      // keyed before whiteout conversion: a second link to a whiteout device keeps this linkname
      const first = this.#seen.get(st.ino);
      if (first !== undefined) {
        h.typeflag = TypeFlag.Link;
        h.linkname = first;
        h.size = 0;
      } else {
        this.#seen.set(st.ino, h.name);
      }
    }
    const whiteoutDevice = isOverlayWhiteout(st);
    // whiteouts were made by the kernel or the untar with host owners: not mapped
    if (this.#mappings && !whiteoutDevice && !basename(rel).startsWith(WHITEOUT_PREFIX)) {
      try {
        h.uid = toContainer(st.uid, this.#mappings.uidMap);
        h.gid = toContainer(st.gid, this.#mappings.gidMap);
      } catch {
        return; // an owner outside the mapping: the reference skips such files too
      }
    }
    let opaque: TarHeader | undefined;
    if (this.#overlay && whiteoutDevice) {
      // the typeflag becomes a plain file again, a link name stays
      h.name = whiteoutName(rel);
      h.mode = 0;
      h.typeflag = TypeFlag.Reg;
      h.size = 0;
    } else if (this.#overlay && typeflag === TypeFlag.Dir) {
      if (
        isOpaqueValue(lgetxattr(abs, OVERLAY_OPAQUE_XATTR)) &&
        opaqueHidesLower(this.#lowerDirs, `/${rel}`)
      ) {
        // no mtime: the reference leaves it zero
        opaque = emptyHeader(`${rel}/${WHITEOUT_OPAQUE}`, TypeFlag.Reg);
        opaque.mode = h.mode & 0o777;
        opaque.uid = h.uid;
        opaque.gid = h.gid;
        opaque.uname = h.uname;
        opaque.gname = h.gname;
      }
    }
    if (h.typeflag === TypeFlag.Reg && h.size > 0) {
      let file: FileStream;
      try {
        file = openFileStream(abs);
      } catch {
        return;
      }
      yield { header: h, body: sized(file, h.size) };
    } else {
      yield { header: h };
    }
    if (opaque) yield { header: opaque };
  }
}

function basename(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

/** The header containers/storage's FileInfoHeader builds for a file (owner still the host's). */
function header(
  abs: string,
  rel: string,
  st: StatNs,
  typeflag: string,
  names: NameLookup,
): TarHeader {
  const h = emptyHeader(typeflag === TypeFlag.Dir ? `${rel}/` : rel, typeflag);
  h.mode = st.mode;
  h.uname = names.user(st.uid);
  h.gname = names.group(st.gid);
  h.uid = st.uid;
  h.gid = st.gid;
  h.mtime = { sec: st.mtime.sec, nsec: 0 };
  if (typeflag === TypeFlag.Reg) h.size = st.size;
  if (typeflag === TypeFlag.Symlink) h.linkname = readlink(abs);
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
function* sized(file: FileStream, size: number): Generator<Uint8Array> {
  try {
    let left = size;
    const buf = new Uint8Array(Math.min(size, 1 << 20));
    while (left > 0) {
      const n = file.readInto(buf.subarray(0, Math.min(left, buf.length)));
      if (n === null) break;
      left -= n;
      yield buf.slice(0, n);
    }
    if (left > 0) yield new Uint8Array(left);
  } finally {
    file.release();
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

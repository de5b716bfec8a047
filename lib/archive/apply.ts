/**
 * Applies (untars) a layer tar stream onto a directory, the way
 * containers/storage's UnpackLayer (AUFS whiteouts: deletions are carried
 * out) or its overlay unpacker (whiteouts become 0/0 character devices and
 * opaque xattrs) does, or as its plain Unpack does ("keep": whiteout files
 * extracted as they are): hard links, symlinks, devices, FIFOs, xattrs, modes
 * with setuid/setgid/sticky, ownership mapped container→host, the
 * force-mask variant, and nanosecond times, directories' times set after
 * their contents. File bodies stream to disk chunk by chunk; GNU sparse
 * files are written with holes (their data regions only, then the size).
 *
 * Every path is confined to the target (see safe_path.ts) as if the target
 * were the root directory, which it is for the reference's chrooted apply:
 * `..` in names, hard link targets and whiteouts stops at the target, and
 * symlinks, planted earlier in the same tarball or already in the tree, are
 * followed inside it.
 *
 * @example
 * ```ts ignore
 * import { applyTar } from "./apply.ts";
 * const f = await Deno.open("layer.tar");
 * const { size } = await applyTar(f.readable, "/tmp/rootfs", { whiteoutFormat: "aufs" });
 * ```
 * @module
 */

import { ErrBadArchive, ErrUnmappedID } from "../errors.ts";
import { type IDMappings, toHost } from "../idmap.ts";
import {
  lchown,
  lsetxattr,
  makedev,
  mknod,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  symlink,
  utimensat,
} from "../../ffi/fs.ts";
import { readTar } from "./tar_reader.ts";
import { type SparseRegion, type TarHeader, type TarTime, TypeFlag } from "./tar_header.ts";
import { cleanEntryName, SafeRoot } from "./safe_path.ts";
import {
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_META_PREFIX,
  WHITEOUT_OPAQUE,
  whiteoutTarget,
} from "./whiteout.ts";
import { geteuid } from "../../ffi/process.ts";

/** Options of {@linkcode applyTar}. */
export interface ApplyOptions {
  /**
   * "aufs": carry whiteouts out (remove paths), as UnpackLayer does;
   * "overlay": record them as overlay whiteouts; "keep": extract `.wh.*`
   * entries as the plain files they are, as Unpack does in AUFS format
   * (the overlay driver with a mount program, which reads them itself).
   */
  whiteoutFormat: "aufs" | "overlay" | "keep";
  /** IDs in the tar are container IDs, mapped to host IDs through these. */
  mappings?: IDMappings;
  /** Continue when lchown fails (rootless). */
  ignoreChownErrors?: boolean;
  /**
   * Permission bits forced on every entry (containers/storage force_mask):
   * non-directories other than links become regular files, and the real
   * owner and mode are kept in the `user.containers.override_stat` xattr.
   */
  forceMask?: number;
  /** Do not change ownership at all. */
  noLchown?: boolean;
}

/** Result of {@linkcode applyTar}. */
export interface ApplyResult {
  /** Sum of the entries' sizes, as containers/storage's ApplyDiff reports it. */
  size: number;
}

/** The xattr in which force-mask mode keeps the real owner and mode. */
export const OVERRIDE_STAT_XATTR = "user.containers.override_stat";

const ENOTSUP = 95;
const EPERM = 1;

/**
 * Untars `tar` (uncompressed) into `target`, which must exist. On failure
 * the target may hold a partial result; the caller removes it.
 * @throws {ErrBadArchive} for malformed or escaping entries, naming the entry.
 */
export async function applyTar(
  tar: ReadableStream<Uint8Array>,
  target: string,
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const root = new SafeRoot(target);
  const overlay = opts.whiteoutFormat === "overlay";
  const keep = opts.whiteoutFormat === "keep";
  const unpacked = new Set<string>();
  const dirs: { parts: string[]; atime?: TarTime; mtime: TarTime }[] = [];
  let size = 0;

  for await (const { header: h, body } of readTar(tar)) {
    size += h.size;
    if (h.typeflag === TypeFlag.XGlobalHeader) continue;
    const name = h.name;
    const parts = cleanEntryName(name);
    if (parts.length === 0) {
      if (h.typeflag !== TypeFlag.Dir) {
        throw new ErrBadArchive(name, { detail: "the target's root can only be a directory" });
      }
      if (overlay || keep) continue; // Unpack skips the root entry
      applyMetadata(root.root, h, h.typeflag, ids(h, opts), opts);
      dirs.push({ parts, atime: h.atime, mtime: h.mtime });
      continue;
    }
    const base = parts[parts.length - 1];
    if (
      !keep && parts[0].startsWith(WHITEOUT_META_PREFIX) &&
      !(parts.length === 1 && base === WHITEOUT_OPAQUE)
    ) {
      continue; // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs), never extracted
    }
    const parent = root.resolveParent(parts.slice(0, -1), name, true);

    if (!keep && base === WHITEOUT_OPAQUE) {
      if (overlay) {
        setXattr(root.abs(parent), OVERLAY_OPAQUE_XATTR, new Uint8Array([0x79]), name);
      } else {
        clearNotUnpacked(root, parent, unpacked);
      }
      continue;
    }
    const deleted = keep ? null : whiteoutTarget(base);
    if (deleted !== null) {
      if (deleted === "") throw new ErrBadArchive(name, { detail: "whiteout names no valid file" });
      const victim = [...parent, deleted];
      removePath(root, victim);
      if (overlay) {
        const abs = root.abs(victim);
        mknod(abs, S_IFCHR, 0);
        const { uid, gid } = ids(h, opts);
        chown(abs, uid, gid, opts);
      }
      continue;
    }

    const path = [...parent, base];
    const abs = root.abs(path);
    const isDir = h.typeflag === TypeFlag.Dir;
    let existing: Deno.FileInfo | undefined;
    try {
      existing = Deno.lstatSync(abs);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (existing && !(existing.isDirectory && isDir)) removePath(root, path, existing);

    const owner = ids(h, opts);
    const type = createEntry(root, abs, h, opts, name);
    if (type === TypeFlag.Reg) await writeBody(abs, body, h);
    applyMetadata(abs, h, type, owner, opts);
    if (isDir) {
      root.markDir(path);
      dirs.push({ parts: path, atime: h.atime, mtime: h.mtime });
    }
    unpacked.add(path.join("/"));
  }

  for (const d of dirs) {
    const atime = clampTime(d.atime ?? { sec: 0, nsec: 0 });
    utimensat(root.abs(d.parts), atime, clampTime(d.mtime), true);
  }
  return { size };
}

/** The entry's owner mapped to host IDs. */
function ids(h: TarHeader, opts: ApplyOptions): { uid: number; gid: number } {
  if (!opts.mappings) return { uid: h.uid, gid: h.gid };
  const map = (id: number, m: typeof opts.mappings.uidMap, what: string) => {
    try {
      return toHost(id, m);
    } catch (e) {
      if (!(e instanceof ErrUnmappedID)) throw e;
      throw new ErrUnmappedID(String(id), {
        detail: `${what} of ${h.name} has no host ID in the mapping`,
        cause: e,
      });
    }
  };
  return {
    uid: map(h.uid, opts.mappings.uidMap, "UID"),
    gid: map(h.gid, opts.mappings.gidMap, "GID"),
  };
}

/**
 * Creates the filesystem object of an entry (not its metadata) and returns
 * the type actually created (force-mask turns devices into regular files).
 */
function createEntry(
  root: SafeRoot,
  abs: string,
  h: TarHeader,
  opts: ApplyOptions,
  name: string,
): string {
  let type = h.typeflag;
  if (type === TypeFlag.RegA || type === TypeFlag.Cont) type = TypeFlag.Reg;
  const forced = opts.forceMask !== undefined;
  if (forced && type !== TypeFlag.Dir && type !== TypeFlag.Symlink && type !== TypeFlag.Link) {
    type = TypeFlag.Reg;
  }
  const perm = forced ? opts.forceMask! : h.mode & 0o7777;
  switch (type) {
    case TypeFlag.Dir:
      try {
        Deno.mkdirSync(abs, { mode: perm & 0o777 });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      break;
    case TypeFlag.Reg:
      break; // written by writeBody
    case TypeFlag.Char:
    case TypeFlag.Block:
    case TypeFlag.Fifo: {
      const kind = type === TypeFlag.Char ? S_IFCHR : type === TypeFlag.Block ? S_IFBLK : S_IFIFO;
      mknod(
        abs,
        kind | (h.mode & 0o7777),
        type === TypeFlag.Fifo ? 0 : makedev(h.devmajor, h.devminor),
      );
      break;
    }
    case TypeFlag.Link: {
      const tparts = cleanEntryName(h.linkname);
      if (tparts.length === 0) {
        throw new ErrBadArchive(name, { detail: "hard link to the root directory" });
      }
      const tparent = root.resolveParent(tparts.slice(0, -1), name, false);
      const tabs = root.abs([...tparent, tparts[tparts.length - 1]]);
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(tabs);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        throw new ErrBadArchive(name, {
          detail: `hard link target ${JSON.stringify(h.linkname)} does not exist`,
        });
      }
      if (st.isDirectory) {
        throw new ErrBadArchive(name, {
          detail: `hard link target ${JSON.stringify(h.linkname)} is a directory`,
        });
      }
      Deno.linkSync(tabs, abs);
      break;
    }
    case TypeFlag.Symlink:
      symlink(h.linkname, abs);
      break;
    default:
      throw new ErrBadArchive(name, {
        detail: `unhandled tar entry type ${JSON.stringify(h.typeflag)}`,
      });
  }
  return type;
}

/** Streams a regular file's body into a new file (O_EXCL: never through a planted symlink). */
async function writeBody(
  abs: string,
  body: AsyncIterable<Uint8Array>,
  h: TarHeader,
): Promise<void> {
  const f = Deno.openSync(abs, { write: true, createNew: true, mode: 0o600 });
  try {
    if (h.sparse) await writeSparse(f, body, h.sparse, h.size);
    else for await (const chunk of body) writeAll(f, chunk);
  } finally {
    f.close();
  }
}

function writeAll(f: Deno.FsFile, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += f.writeSync(b.subarray(off));
}

/**
 * Writes a sparse file's data regions where they belong and leaves the rest
 * as holes (the reader has checked that the body fills the regions exactly).
 */
async function writeSparse(
  f: Deno.FsFile,
  body: AsyncIterable<Uint8Array>,
  regions: SparseRegion[],
  size: number,
): Promise<void> {
  let r = 0;
  let done = 0; // bytes of regions[r] written
  for await (const chunk of body) {
    for (let off = 0; off < chunk.length;) {
      if (done === regions[r].length) {
        r++;
        done = 0;
      }
      if (done === 0) f.seekSync(regions[r].offset, Deno.SeekMode.Start);
      const take = Math.min(chunk.length - off, regions[r].length - done);
      writeAll(f, chunk.subarray(off, off + take));
      off += take;
      done += take;
    }
  }
  f.truncateSync(size);
}

/** Ownership, xattrs, mode (after chown, which clears setuid) and times of one entry. */
function applyMetadata(
  abs: string,
  h: TarHeader,
  type: string,
  owner: { uid: number; gid: number },
  opts: ApplyOptions,
): void {
  if (!opts.noLchown) chown(abs, owner.uid, owner.gid, opts);
  for (const [key, value] of Object.entries(h.xattrs)) setXattr(abs, key, value, h.name);
  const forced = opts.forceMask !== undefined;
  // A hard link's header sets the shared inode's owner (above), mode and
  // times, as the reference does — unless that inode is a symlink.
  const linkToSymlink = type === TypeFlag.Link && Deno.lstatSync(abs).isSymlink;
  if (type !== TypeFlag.Symlink && !linkToSymlink) {
    Deno.chmodSync(abs, forced ? opts.forceMask! : h.mode & 0o7777);
  }
  if (forced && (type === TypeFlag.Reg || type === TypeFlag.Dir)) {
    const value = `${owner.uid}:${owner.gid}:0${(h.mode & 0o7777).toString(8)}`;
    lsetxattr(abs, OVERRIDE_STAT_XATTR, new TextEncoder().encode(value));
  }
  if (type === TypeFlag.Dir || linkToSymlink) return;
  const later = h.atime &&
    (h.atime.sec > h.mtime.sec || (h.atime.sec === h.mtime.sec && h.atime.nsec >= h.mtime.nsec));
  const atime = later ? h.atime! : h.mtime;
  if (type === TypeFlag.Symlink) utimensat(abs, atime, h.mtime, true);
  else utimensat(abs, clampTime(atime), clampTime(h.mtime), true);
}

/** Times before the epoch become the epoch, as containers/storage's Chtimes does. */
function clampTime(t: TarTime): TarTime {
  return t.sec < 0 ? { sec: 0, nsec: 0 } : t;
}

function chown(abs: string, uid: number, gid: number, opts: ApplyOptions): void {
  try {
    lchown(abs, uid, gid);
  } catch (e) {
    if (!opts.ignoreChownErrors) throw e;
  }
}

/** Sets an xattr, skipping file systems without xattr support like containers/storage does. */
function setXattr(abs: string, key: string, value: Uint8Array, entry: string): void {
  try {
    lsetxattr(abs, key, value);
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === ENOTSUP || (errno === EPERM && geteuid() !== 0)) return;
    throw new ErrBadArchive(entry, {
      detail: `cannot set xattr ${key}: ${(e as Error).message}`,
      cause: e,
    });
  }
}

/** Removes a path (recursively, never following symlinks) and forgets cached dirs under it. */
function removePath(root: SafeRoot, parts: string[], st?: Deno.FileInfo): void {
  const abs = root.abs(parts);
  try {
    st ??= Deno.lstatSync(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  Deno.removeSync(abs, { recursive: st.isDirectory });
  if (st.isDirectory) root.forget(parts);
}

/** AUFS opaque directory: removes whatever in `dir` this layer did not create. */
function clearNotUnpacked(root: SafeRoot, dir: string[], unpacked: Set<string>): void {
  for (const e of [...Deno.readDirSync(root.abs(dir))]) {
    const child = [...dir, e.name];
    if (!unpacked.has(child.join("/"))) removePath(root, child);
    else if (e.isDirectory) clearNotUnpacked(root, child, unpacked);
  }
}

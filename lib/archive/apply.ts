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
  chmod,
  isDir as isDirStat,
  lchown,
  link,
  lsetxattr,
  lstatIfExists,
  lstatNs,
  makedev,
  mkdir,
  mknod,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  type StatNs,
  symlink,
  utimensat,
} from "../../ffi/fs.ts";
import { isDirEntry, listDir, removeAll } from "../../ffi/dirent.ts";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import { RawFile } from "../../ffi/file.ts";
import { cstr, O_CREAT, O_EXCL, O_WRONLY } from "../../ffi/libc.ts";
import { openFileStream } from "./file_stream.ts";
import { readTar } from "./tar_reader.ts";
import {
  cleanPath,
  type SparseRegion,
  type TarHeader,
  type TarTime,
  TypeFlag,
} from "./tar_header.ts";
import { cleanEntryName, SafeRoot } from "./safe_path.ts";
import { UsageTally } from "./usage_tally.ts";
import { FreshFiles, type FreshPlan } from "./fresh_files.ts";
import { WriteBehind } from "./write_behind.ts";
import { adjoins, extend } from "./ring.ts";
import {
  OVERLAY_OPAQUE_XATTR,
  WHITEOUT_LINK_DIR,
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
  /**
   * Report the tree's disk usage in {@linkcode ApplyResult.usage}, added
   * up while applying (see usage_tally.ts) when the target starts empty.
   */
  measureUsage?: boolean;
}

/** Result of {@linkcode applyTar}. */
export interface ApplyResult {
  /** Sum of the entries' sizes, as containers/storage's ApplyDiff reports it. */
  size: number;
  /**
   * With `measureUsage`: the target's size as the overlay driver reports it
   * (its non-directories, each inode once), when it could be added up;
   * otherwise undefined and the caller measures the tree.
   */
  usage?: number;
}

/** The xattr in which force-mask mode keeps the real owner and mode. */
export const OVERRIDE_STAT_XATTR = "user.containers.override_stat";

const ENOTSUP = 95;
const EPERM = 1;

/**
 * Untars `tar` (uncompressed) into `target`, which must exist. On failure
 * the target may hold a partial result; the caller removes it (nothing
 * writes there once the call has settled). Large files are written behind
 * (see write_behind.ts): a chunk of `tar` must stay unchanged until eight
 * more have been read, as a stream's chunks do (a ring of reused buffers
 * needs more slots than that), and chunks that adjoin in one buffer (a
 * ByteRing's pieces, see ring.ts) until 1.25 MiB more have been read.
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
  const aufs = opts.whiteoutFormat === "aufs";
  const unpacked = new Set<string>();
  const dirs: { parts: string[]; atime?: TarTime; mtime: TarTime }[] = [];
  let size = 0;
  const empty = listDir(target).length === 0;
  const tally = opts.measureUsage && empty ? new UsageTally() : undefined;
  const fresh = empty && opts.forceMask === undefined ? FreshFiles.forTarget(target) : undefined;
  /** Something in the target was removed: neither the tally nor the fresh files hold. */
  const removed = () => {
    tally?.stop();
    fresh?.stop();
  };

  const aufsLinks = new AufsLinkSources(root, unpacked);
  const behind = new WriteBehind();
  try {
    for await (const { header: h, body } of readTar(tar)) {
      size += h.size;
      const name = h.name;
      const parts = cleanEntryName(name);
      // 1.43 makes the parent of every entry first, also of those it then skips.
      const parent = parts.length === 0 ? [] : root.resolveParent(parts.slice(0, -1), name, true);
      // A global header is metadata for the whole archive: 1.43 also takes its name as a path to
      // replace or a whiteout to carry out, which only destroys what the layer made (see README).
      if (h.typeflag === TypeFlag.XGlobalHeader) continue;
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
      const clean = cleanPath(name);
      if (aufs && clean.startsWith(WHITEOUT_META_PREFIX) && clean !== WHITEOUT_OPAQUE) {
        // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs) is not extracted, as by UnpackLayer;
        // files in .wh..wh.plnk are kept aside as sources of hard links to them.
        if (clean.startsWith(WHITEOUT_LINK_DIR) && h.typeflag === TypeFlag.Reg) {
          tally?.stop();
          await aufsLinks.save(base, h, body);
        }
        continue;
      }

      if (!keep && base === WHITEOUT_OPAQUE) {
        if (overlay) {
          const dir = root.abs(parent);
          setXattr(
            () => lsetxattr(dir, OVERLAY_OPAQUE_XATTR, new Uint8Array([0x79])),
            OVERLAY_OPAQUE_XATTR,
            name,
          );
        } else {
          removed();
          clearNotUnpacked(root, parent, unpacked);
        }
        continue;
      }
      const deleted = keep ? null : whiteoutTarget(base);
      if (deleted !== null) {
        if (deleted === "") {
          throw new ErrBadArchive(name, { detail: "whiteout names no valid file" });
        }
        const victim = [...parent, deleted];
        removePath(root, victim, removed);
        if (overlay) {
          const abs = root.abs(victim);
          mknod(abs, S_IFCHR, 0);
          const { uid, gid } = ids(h, opts);
          chown(() => lchown(abs, uid, gid), opts);
        }
        continue;
      }

      const path = [...parent, base];
      const abs = root.abs(path);
      const isDir = h.typeflag === TypeFlag.Dir;
      if (!REPLACED_ON_CREATE.has(h.typeflag)) {
        const existing = lstatIfExists(abs);
        if (existing && !(isDirStat(existing) && isDir)) removePath(root, path, removed);
      }
      // only an AUFS opaque directory asks what was unpacked
      if (aufs) unpacked.add(path.join("/"));

      // A hard link's header sets its inode's metadata, after its target's own.
      if (h.typeflag === TypeFlag.Link) await behind.flush();
      const source = aufs && h.typeflag === TypeFlag.Link
        ? aufsLinks.source(h.linkname, name)
        : undefined;
      if (source) {
        // UnpackLayer writes the kept file's content here, with that file's header.
        const copy = { ...source.header, sparse: undefined };
        const content = openFileStream(source.abs);
        let file: RawFile;
        try {
          ({ file } = await writeBody(abs, content, copy));
        } finally {
          content.release();
        }
        try {
          applyMetadata(abs, copy, TypeFlag.Reg, ids(copy, opts), opts, file);
        } finally {
          file.close();
        }
        continue;
      }
      const owner = ids(h, opts);
      const { type, made } = createEntry(root, path, h, opts, name, { tally, removed });
      const parentKey = fresh ? parent.join("/") : "";
      // what a new file, directory or symlink already got from its creation (fresh_files.ts)
      const plan = made && FRESH_TYPES.has(type) ? fresh?.plan(parentKey, h, owner) : undefined;
      if (type === TypeFlag.Reg) {
        const big = h.size >= WRITE_BEHIND_MIN ? behind : undefined;
        const { file, writes } = await writeBody(abs, body, h, {
          removeExisting: () => removePath(root, path, removed),
          behind: big,
          mode: plan?.createMode,
        });
        tally?.add(h.size);
        const finish = () => {
          try {
            applyMetadata(abs, h, type, owner, opts, file, plan);
          } finally {
            file.close();
          }
        };
        if (writes.length) big!.after(writes, finish, () => file.close());
        else finish();
      } else {
        applyMetadata(abs, h, type, owner, opts, undefined, plan);
      }
      if (isDir) {
        root.markDir(path);
        fresh?.dirApplied(path.join("/"), parentKey, h);
        dirs.push({ parts: path, atime: h.atime, mtime: h.mtime });
      }
    }
    await behind.flush();
  } finally {
    await behind.settle();
    aufsLinks.remove();
  }

  for (const d of dirs) {
    const atime = clampTime(d.atime ?? { sec: 0, nsec: 0 });
    utimensat(root.abs(d.parts), atime, clampTime(d.mtime), true);
  }
  return { size, usage: tally?.total() };
}

/**
 * Files of AUFS's hard-link directory (`.wh..wh.plnk/<name>`), which
 * UnpackLayer keeps aside by base name in a temporary directory (inside the
 * target, as 1.43's is inside its chroot) and copies wherever a hard link
 * names them, since the directory itself is never extracted.
 */
class AufsLinkSources {
  #dir: string[] | undefined;
  readonly #headers = new Map<string, TarHeader>();

  /**
   * @param root The apply's target.
   * @param unpacked The apply's unpacked paths, which an opaque root leaves alone.
   */
  constructor(readonly root: SafeRoot, readonly unpacked: Set<string>) {}

  /** Keeps the body of `.wh..wh.plnk/<base>` (a later one of the same name replaces it). */
  async save(base: string, h: TarHeader, body: AsyncIterable<Uint8Array>): Promise<void> {
    if (!this.#dir) {
      const dir = Deno.makeTempDirSync({ dir: this.root.root, prefix: ".storage-plnk" });
      this.#dir = [dir.slice(dir.lastIndexOf("/") + 1)];
      this.unpacked.add(this.#dir[0]);
    }
    removePath(this.root, [...this.#dir, base]);
    (await writeBody(this.root.abs([...this.#dir, base]), body, h)).file.close();
    this.#headers.set(base, h);
  }

  /**
   * The kept file a hard link to `linkname` copies, or undefined when the
   * link is an ordinary one (its cleaned target is not in `.wh..wh.plnk`).
   * @throws {ErrBadArchive} naming `entry` when no such file was kept.
   */
  source(linkname: string, entry: string): { header: TarHeader; abs: string } | undefined {
    if (!cleanPath(linkname).startsWith(WHITEOUT_LINK_DIR)) return undefined;
    const base = linkname.replace(/\/+$/, "").split("/").pop()!; // Go's filepath.Base
    const header = this.#headers.get(base);
    if (!header) throw new ErrBadArchive(entry, { detail: "invalid aufs hardlink" });
    return { header, abs: this.root.abs([...this.#dir!, base]) };
  }

  /** Removes the temporary directory. */
  remove(): void {
    if (this.#dir) removePath(this.root, this.#dir);
  }
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

/** The entry types an apply creates (the reader has made pre-POSIX files "0" or "5"). */
const CREATED = new Set<string>([
  TypeFlag.Reg,
  TypeFlag.Link,
  TypeFlag.Symlink,
  TypeFlag.Char,
  TypeFlag.Block,
  TypeFlag.Dir,
  TypeFlag.Fifo,
]);

/**
 * Creates the filesystem object of an entry (not its metadata) and returns
 * the type actually created (force-mask turns devices into regular files),
 * and whether the entry is new (false only for a directory that was there
 * and is kept; a regular file is made new by writeBody).
 */
function createEntry(
  root: SafeRoot,
  path: string[],
  h: TarHeader,
  opts: ApplyOptions,
  name: string,
  { tally, removed }: { tally: UsageTally | undefined; removed: () => void },
): { type: string; made: boolean } {
  const abs = root.abs(path);
  let type = h.typeflag;
  if (!CREATED.has(type)) {
    // As 1.43's createTarFile: contiguous files ("7") and any other type are refused.
    throw new ErrBadArchive(name, {
      detail: `unhandled tar header type ${type.charCodeAt(0)}`,
    });
  }
  const forced = opts.forceMask !== undefined;
  if (forced && type !== TypeFlag.Dir && type !== TypeFlag.Symlink && type !== TypeFlag.Link) {
    type = TypeFlag.Reg;
  }
  const perm = forced ? opts.forceMask! : h.mode & 0o7777;
  switch (type) {
    case TypeFlag.Dir: {
      const made = replacing(abs, () => (mkdir(abs, perm & 0o777), true), (st) => {
        if (isDirStat(st)) return false; // a directory stays, with what is in it
        removePath(root, path, removed);
        return true;
      });
      return { type, made: made === true };
    }
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
      const st = lstatIfExists(tabs);
      if (st === null) {
        throw new ErrBadArchive(name, {
          detail: `hard link target ${JSON.stringify(h.linkname)} does not exist`,
        });
      }
      if (isDirStat(st)) {
        throw new ErrBadArchive(name, {
          detail: `hard link target ${JSON.stringify(h.linkname)} is a directory`,
        });
      }
      link(tabs, abs);
      break;
    }
    case TypeFlag.Symlink:
      replacing(abs, () => symlink(h.linkname, abs), () => {
        removePath(root, path, removed);
        return true;
      });
      tally?.add(cstr(h.linkname).length - 1);
      break;
  }
  return { type, made: true };
}

/**
 * Entry types created without an lstat first: what is in the way is found
 * by the EEXIST of the creation and removed then. In a new layer nothing
 * ever is, and an lstat per entry (with the error object of its ENOENT)
 * was a tenth of the apply. Links and devices keep the lstat first (a hard
 * link may name the path it replaces).
 */
const REPLACED_ON_CREATE = new Set<string>([TypeFlag.Reg, TypeFlag.Dir, TypeFlag.Symlink]);

/**
 * Runs `create`; on EEXIST calls `inTheWay` with what is there, and runs
 * `create` again when it says so (after removing it). Returns what the
 * last `create` returned, undefined when the existing object was kept.
 */
function replacing<T>(
  abs: string,
  create: () => T,
  inTheWay: (st: StatNs) => boolean,
): T | undefined {
  try {
    return create();
  } catch (e) {
    if (!(e instanceof SyscallError && e.errno === Errno.EEXIST)) throw e;
  }
  const st = lstatIfExists(abs);
  if (st && !inTheWay(st)) return undefined;
  return create();
}

/** What fresh_files.ts knows the creation of: regular files (their open), directories, symlinks. */
const FRESH_TYPES = new Set<string>([TypeFlag.Reg, TypeFlag.Dir, TypeFlag.Symlink]);

/** Files this big are written behind the apply (see write_behind.ts). */
const WRITE_BEHIND_MIN = 64 << 10;
/** Largest write of adjoining pieces: with four in flight, 1.25 MiB of a ring in use. */
const WRITE_SPAN = 256 << 10;

/** Options of {@linkcode writeBody}. */
interface WriteBodyOptions {
  /** Clears the path of what is in the way (EEXIST) before one more try. */
  removeExisting?: () => void;
  /** Writes large bodies behind the apply. */
  behind?: WriteBehind;
  /** The mode to create the file with (0600: the caller sets the real one after). */
  mode?: number;
}

/**
 * Streams a regular file's body into a new file (O_EXCL: never through a
 * planted symlink) and returns it open, for its metadata to be set through
 * the descriptor, with the writes still in flight when `behind` is given;
 * the caller closes it once they are done.
 */
async function writeBody(
  abs: string,
  body: AsyncIterable<Uint8Array>,
  h: TarHeader,
  { removeExisting, behind, mode = 0o600 }: WriteBodyOptions = {},
): Promise<{ file: RawFile; writes: Promise<void>[] }> {
  const open = () => RawFile.open(abs, O_WRONLY | O_CREAT | O_EXCL, mode);
  const f = removeExisting
    ? replacing(abs, open, () => {
      removeExisting();
      return true;
    })!
    : open();
  const writes: Promise<void>[] = [];
  try {
    if (h.sparse) await writeSparse(f, body, h.sparse, h.size);
    else if (!behind) { for await (const chunk of body) f.writeAll(chunk); }
    else {
      // Pieces that adjoin in one buffer (the inflate ring's) go as one write.
      let at = 0;
      let span: Uint8Array | undefined;
      for await (const chunk of body) {
        if (span && adjoins(span, chunk) && span.length + chunk.length <= WRITE_SPAN) {
          span = extend(span, chunk.length);
          continue;
        }
        if (span) {
          await behind.write(f, span, at, writes);
          at += span.length;
        }
        span = chunk;
      }
      if (span) await behind.write(f, span, at, writes);
    }
  } catch (e) {
    // no write may land in whatever file gets this descriptor number next
    await Promise.allSettled(writes);
    f.close();
    throw e;
  }
  return { file: f, writes };
}

/**
 * Writes a sparse file's data regions where they belong and leaves the rest
 * as holes (the reader has checked that the body fills the regions exactly).
 */
async function writeSparse(
  f: RawFile,
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
      const take = Math.min(chunk.length - off, regions[r].length - done);
      f.pwriteAll(chunk.subarray(off, off + take), regions[r].offset + done);
      off += take;
      done += take;
    }
  }
  f.truncate(size);
}

/**
 * Ownership, xattrs, mode (after chown, which clears setuid) and times of
 * one entry; through `file`, a regular file still open, when given (no
 * path lookups), without the chown or chmod that its open made needless
 * (`fresh`, see fresh_files.ts).
 */
function applyMetadata(
  abs: string,
  h: TarHeader,
  type: string,
  owner: { uid: number; gid: number },
  opts: ApplyOptions,
  file?: RawFile,
  fresh?: FreshPlan,
): void {
  if (!opts.noLchown && !fresh?.skipChown) {
    chown(() => file ? file.chown(owner.uid, owner.gid) : lchown(abs, owner.uid, owner.gid), opts);
  }
  for (const [key, value] of Object.entries(h.xattrs)) {
    setXattr(() => file ? file.setXattr(key, value) : lsetxattr(abs, key, value), key, h.name);
  }
  const forced = opts.forceMask !== undefined;
  // A hard link's header sets the shared inode's owner (above), mode and
  // times, as the reference does — unless that inode is a symlink, or the
  // link names its target with a trailing slash (`name/`, `name/.`): 1.43
  // sets them only when `os.Lstat(hdr.Linkname)` of the raw name works,
  // and for a non-directory that fails with ENOTDIR.
  const keepModeTimes = type === TypeFlag.Link &&
    ((lstatNs(abs).mode & S_IFMT) === S_IFLNK || /(^|\/)\.?$/.test(h.linkname));
  if (type !== TypeFlag.Symlink && !keepModeTimes && !fresh?.skipChmod) {
    const mode = forced ? opts.forceMask! : h.mode & 0o7777;
    if (file) file.chmod(mode);
    else chmod(abs, mode);
  }
  if (forced && (type === TypeFlag.Reg || type === TypeFlag.Dir)) {
    const value = new TextEncoder().encode(
      `${owner.uid}:${owner.gid}:0${(h.mode & 0o7777).toString(8)}`,
    );
    if (file) file.setXattr(OVERRIDE_STAT_XATTR, value);
    else lsetxattr(abs, OVERRIDE_STAT_XATTR, value);
  }
  if (type === TypeFlag.Dir || keepModeTimes) return;
  const later = h.atime &&
    (h.atime.sec > h.mtime.sec || (h.atime.sec === h.mtime.sec && h.atime.nsec >= h.mtime.nsec));
  const atime = later ? h.atime! : h.mtime;
  if (type === TypeFlag.Symlink) utimensat(abs, wrapTime(atime), wrapTime(h.mtime), true);
  else if (file) file.setTimes(clampTime(atime), clampTime(h.mtime));
  else utimensat(abs, clampTime(atime), clampTime(h.mtime), true);
}

/** The last time Go's os.Chtimes can set: `time.Unix(0, 1<<63-1)`, 2262-04-11T23:47:16.854775807Z. */
const MAX_TIME: TarTime = { sec: 9223372036, nsec: 854775807 };

/**
 * Times before the epoch or after {@linkcode MAX_TIME} become the epoch, as
 * containers/storage's `system.Chtimes` does (atime and mtime each on its own).
 */
function clampTime(t: TarTime): TarTime {
  const after = t.sec > MAX_TIME.sec || (t.sec === MAX_TIME.sec && t.nsec > MAX_TIME.nsec);
  return t.sec < 0 || after ? { sec: 0, nsec: 0 } : t;
}

/**
 * A symlink's time as 1.43 sets it (`LUtimesNano` of
 * `NsecToTimespec(t.UnixNano())`): int64 nanoseconds, which wrap around
 * outside 1677-09-21..2262-04-11 (the kernel then caps the result to what
 * the file system holds).
 */
function wrapTime(t: TarTime): TarTime {
  const ns = BigInt.asIntN(64, BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec));
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec--;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

/** Runs a chown, whose failure `ignoreChownErrors` lets pass. */
function chown(change: () => void, opts: ApplyOptions): void {
  try {
    change();
  } catch (e) {
    if (!opts.ignoreChownErrors) throw e;
  }
}

/** Runs `set` of xattr `key`, skipping file systems without xattr support like containers/storage does. */
function setXattr(set: () => void, key: string, entry: string): void {
  try {
    set();
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (errno === ENOTSUP || (errno === EPERM && geteuid() !== 0)) return;
    throw new ErrBadArchive(entry, {
      detail: `cannot set xattr ${key}: ${(e as Error).message}`,
      cause: e,
    });
  }
}

/**
 * Removes a path (recursively, never following symlinks) and forgets cached
 * dirs under it; calls `removed` when there was something to remove.
 */
function removePath(root: SafeRoot, parts: string[], removed?: () => void): void {
  if (removeAll(root.abs(parts))) removed?.();
  root.forget(parts);
}

/** AUFS opaque directory: removes whatever in `dir` this layer did not create. */
function clearNotUnpacked(root: SafeRoot, dir: string[], unpacked: Set<string>): void {
  for (const e of listDir(root.abs(dir))) {
    const child = [...dir, e.name];
    if (!unpacked.has(child.join("/"))) removePath(root, child);
    else if (isDirEntry(root.abs(child), e.type)) clearNotUnpacked(root, child, unpacked);
  }
}

/**
 * Raw directory entries through getdents64(2), with the `d_type` the
 * filesystem reports. Deno's readDir hides a missing type (it falls back to
 * lstat on DT_UNKNOWN), so whether a filesystem fills in d_type — which
 * overlayfs needs — can only be seen from here. It also turns names that
 * are not UTF-8 into U+FFFD, so walks of layer contents list directories
 * here, where names are decoded losslessly (lib/os_string.ts).
 *
 * @example
 * ```ts ignore
 * import { DT_DIR, readDirTypes } from "./dirent.ts";
 * for (const e of readDirTypes("/tmp")) if (e.type === DT_DIR) console.log(e.name);
 * ```
 * @module
 */

import { decodeOsString } from "../lib/os_string.ts";
import { check, cpath, cstr, errno, libc, O_CLOEXEC, O_DIRECTORY, O_RDONLY } from "./libc.ts";
import { Errno, SyscallError } from "./errors.ts";
import { lstatNs, S_IFDIR, S_IFMT } from "./fs.ts";

/** The filesystem did not say what the entry is. */
export const DT_UNKNOWN = 0;
/** FIFO. */
export const DT_FIFO = 1;
/** Character device. */
export const DT_CHR = 2;
/** Directory. */
export const DT_DIR = 4;
/** Block device. */
export const DT_BLK = 6;
/** Regular file. */
export const DT_REG = 8;
/** Symbolic link. */
export const DT_LNK = 10;
/** Unix socket. */
export const DT_SOCK = 12;

/** One `struct linux_dirent64`. */
export interface DirEntry {
  /** Entry name (its bytes decoded losslessly, see lib/os_string.ts). */
  name: string;
  /** Inode number (0: a deleted entry some filesystems still return). */
  ino: bigint;
  /** One of the DT_* constants. */
  type: number;
}

/** Parses the linux_dirent64 records in the first `len` bytes of `buf`. */
function parseRecords(buf: Uint8Array<ArrayBuffer>, len: number, out: DirEntry[]): void {
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  for (let off = 0; off < len;) {
    const reclen = v.getUint16(off + 16, true);
    const nameStart = off + 19;
    let nameEnd = nameStart;
    while (nameEnd < off + reclen && buf[nameEnd] !== 0) nameEnd++;
    out.push({
      ino: v.getBigUint64(off, true),
      type: v.getUint8(off + 18),
      name: decodeOsString(buf.subarray(nameStart, nameEnd)),
    });
    off += reclen;
  }
}

const buffer = new Uint8Array(32 * 1024);

/**
 * Every entry of a directory as the kernel returns it, "." and ".."
 * included, in directory order.
 * @throws {SyscallError} when the directory cannot be opened or read.
 */
export function readDirTypes(path: string): DirEntry[] {
  const fd = check(libc().open(cpath(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), "open", path);
  try {
    // One buffer for every call: records are parsed before the next read.
    const buf = buffer;
    const out: DirEntry[] = [];
    for (;;) {
      const n = check(libc().getdents64(fd, buf, BigInt(buf.length)), "getdents64", path);
      if (n === 0) return out;
      parseRecords(buf, n, out);
    }
  } finally {
    libc().close(fd);
  }
}

/** The entries of a directory other than "." and "..", in directory order. */
export function listDir(path: string): DirEntry[] {
  return readDirTypes(path).filter((e) => e.name !== "." && e.name !== "..");
}

/**
 * Whether the entry at `path`, of directory-entry type `type`, is a
 * directory (a DT_UNKNOWN entry is looked at).
 */
export function isDirEntry(path: string, type: number): boolean {
  if (type !== DT_UNKNOWN) return type === DT_DIR;
  return (lstatNs(path).mode & S_IFMT) === S_IFDIR;
}

/**
 * Removes `path` and, if it is a directory, everything below it, never
 * following symlinks; a missing `path` is not an error. Returns whether
 * there was anything to remove.
 */
export function removeAll(path: string): boolean {
  const l = libc();
  const p = cstr(path);
  if (l.unlink(p) === 0) return true;
  const e = errno();
  if (e === Errno.ENOENT) return false;
  if (e !== Errno.EISDIR) throw new SyscallError("unlink", e, path);
  for (const entry of listDir(path)) removeAll(`${path}/${entry.name}`);
  check(l.rmdir(p), "rmdir", path);
  return true;
}

/**
 * Whether the entries of `dir` carry their type: false as soon as one
 * (other than "." and "..", which some filesystems always type) reports
 * DT_UNKNOWN. An empty directory gets a temporary file so there is an
 * entry to look at, as containers/storage does.
 */
export function supportsDType(dir: string): boolean {
  const entries = () => listDir(dir).filter((e) => e.ino !== 0n);
  let found = entries();
  let dummy: string | undefined;
  if (found.length === 0) {
    dummy = Deno.makeTempFileSync({ dir, prefix: "fsutils-dummy" });
    found = entries();
  }
  try {
    return found.every((e) => e.type !== DT_UNKNOWN);
  } finally {
    if (dummy) Deno.removeSync(dummy);
  }
}

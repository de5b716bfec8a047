/**
 * File-system calls Deno does not offer: device nodes, lchown, xattrs on
 * symlinks, nanosecond timestamps (also on symlinks), statx, statfs magic,
 * the page size and FICLONE reflinks; and the plain calls (mkdir, link,
 * chmod, unlink, readlink, recursive removal) for layer contents, whose
 * names may be bytes that are not UTF-8 (see lib/os_string.ts), which
 * Deno's path APIs cannot name. Every path here is passed as its bytes.
 *
 * @example
 * ```ts
 * import { lgetxattr, lsetxattr, lstatNs, mknod, S_IFCHR } from "./fs.ts";
 * mknod("/tmp/wh", S_IFCHR | 0o000, 0); // an overlay whiteout
 * lsetxattr("/tmp/dir", "trusted.overlay.opaque", new TextEncoder().encode("y"));
 * console.log(lgetxattr("/tmp/dir", "trusted.overlay.opaque"), lstatNs("/tmp/wh").rdevMajor);
 * ```
 * @module
 */

import { decodeOsString } from "../lib/os_string.ts";
import { Errno, SyscallError } from "./errors.ts";
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  check,
  cpath,
  cstr,
  errno,
  libc,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
} from "./libc.ts";

/** File type bits of `mode`: character device. */
export const S_IFCHR = 0o020000;
/** File type bits of `mode`: block device. */
export const S_IFBLK = 0o060000;
/** File type bits of `mode`: FIFO. */
export const S_IFIFO = 0o010000;
/** File type bits of `mode`: regular file. */
export const S_IFREG = 0o100000;
/** File type bits of `mode`: directory. */
export const S_IFDIR = 0o040000;
/** File type bits of `mode`: symbolic link. */
export const S_IFLNK = 0o120000;
/** File type bits of `mode`: socket. */
export const S_IFSOCK = 0o140000;
/** Mask of the file type bits of `mode`. */
export const S_IFMT = 0o170000;

/** A point in time as seconds and nanoseconds since the epoch. */
export interface Timespec {
  /** Whole seconds. */
  sec: number;
  /** Nanoseconds, 0 ≤ nsec < 1e9. */
  nsec: number;
}

/** The result of {@linkcode lstatNs} / {@linkcode statNs}. */
export interface StatNs {
  /** File type and permission bits (st_mode). */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** Number of hard links. */
  nlink: number;
  /** Inode number. */
  ino: bigint;
  /** Device of the file system holding the file (glibc makedev encoding). */
  dev: bigint;
  /** Device number of a device node (glibc makedev encoding). */
  rdev: bigint;
  /** Major number of a device node. */
  rdevMajor: number;
  /** Minor number of a device node. */
  rdevMinor: number;
  /** Last access. */
  atime: Timespec;
  /** Last modification. */
  mtime: Timespec;
  /** Last status change. */
  ctime: Timespec;
}

/** glibc's dev_t encoding of a major/minor pair (same as Go's unix.Mkdev). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0), mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) |
    ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/**
 * Creates a device node, FIFO or socket. `mode` holds the type bits
 * ({@linkcode S_IFCHR}, {@linkcode S_IFIFO}, …) and the permissions.
 */
export function mknod(path: string, mode: number, dev: number | bigint): void {
  check(libc().mknod(cpath(path), mode, BigInt(dev)), "mknod", path);
}

/** Changes the owner of `path` without following a final symlink; -1 leaves an ID unchanged. */
export function lchown(path: string, uid: number, gid: number): void {
  check(libc().lchown(cpath(path), uid >>> 0, gid >>> 0), "lchown", path);
}

/** Sets extended attribute `name` on `path` itself (not a symlink's target). */
export function lsetxattr(path: string, name: string, value: Uint8Array, flags = 0): void {
  const buf = new Uint8Array(value);
  check(
    libc().lsetxattr(cstr(path), cstr(name), buf, BigInt(buf.length), flags),
    "lsetxattr",
    path,
  );
}

/** Reads extended attribute `name` of `path` itself; null when it is not set (ENODATA). */
export function lgetxattr(path: string, name: string): Uint8Array | null {
  const p = cstr(path), n = cstr(name);
  // The value may grow between the size probe and the read: retry on ERANGE.
  for (;;) {
    const size = libc().lgetxattr(p, n, null, 0n);
    if (size < 0) {
      const e = errno();
      if (e === 61 /* ENODATA */) return null;
      throw new SyscallError("lgetxattr", e, path);
    }
    const buf = new Uint8Array(Number(size));
    const got = libc().lgetxattr(p, n, buf, BigInt(buf.length));
    if (got >= 0) return buf.subarray(0, Number(got));
    const e = errno();
    if (e === 61) return null;
    if (e !== 34 /* ERANGE */) throw new SyscallError("lgetxattr", e, path);
  }
}

/** Names of the extended attributes of `path` itself. */
export function llistxattr(path: string): string[] {
  const p = cstr(path);
  for (;;) {
    const size = check(libc().llistxattr(p, null, 0n), "llistxattr", path);
    if (size === 0) return [];
    const buf = new Uint8Array(size);
    const got = libc().llistxattr(p, buf, BigInt(buf.length));
    if (got < 0) {
      const e = errno();
      if (e === 34 /* ERANGE */) continue;
      throw new SyscallError("llistxattr", e, path);
    }
    const names: string[] = [];
    for (let i = 0, end; i < got; i = end + 1) {
      end = buf.indexOf(0, i);
      if (end < 0) end = Number(got);
      if (end > i) names.push(decodeOsString(buf.subarray(i, end)));
    }
    return names;
  }
}

/** Removes extended attribute `name` of `path` itself. */
export function lremovexattr(path: string, name: string): void {
  check(libc().lremovexattr(cstr(path), cstr(name)), "lremovexattr", path);
}

/**
 * Sets access and modification times with nanosecond precision; with
 * `nofollow` a symlink's own times are set.
 */
export function utimensat(path: string, atime: Timespec, mtime: Timespec, nofollow: boolean): void {
  const times = new BigInt64Array([
    BigInt(atime.sec),
    BigInt(atime.nsec),
    BigInt(mtime.sec),
    BigInt(mtime.nsec),
  ]);
  const r = libc().utimensat(
    AT_FDCWD,
    cpath(path),
    new Uint8Array(times.buffer),
    nofollow ? AT_SYMLINK_NOFOLLOW : 0,
  );
  check(r, "utimensat", path);
}

const STATX_BASIC_STATS = 0x7ff;

function statxPath(path: string, flags: number): StatNs {
  const buf = new Uint8Array(256);
  check(libc().statx(AT_FDCWD, cpath(path), flags, STATX_BASIC_STATS, buf), "statx", path);
  const v = new DataView(buf.buffer);
  const ts = (off: number): Timespec => ({
    sec: Number(v.getBigInt64(off, true)),
    nsec: v.getUint32(off + 8, true),
  });
  const rdevMajor = v.getUint32(128, true), rdevMinor = v.getUint32(132, true);
  return {
    nlink: v.getUint32(16, true),
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    mode: v.getUint16(28, true),
    ino: v.getBigUint64(32, true),
    size: Number(v.getBigUint64(40, true)),
    atime: ts(64),
    ctime: ts(96),
    mtime: ts(112),
    rdevMajor,
    rdevMinor,
    rdev: makedev(rdevMajor, rdevMinor),
    dev: makedev(v.getUint32(136, true), v.getUint32(140, true)),
  };
}

/** statx of `path` itself (a symlink is not followed), with nanosecond times. */
export function lstatNs(path: string): StatNs {
  return statxPath(path, AT_SYMLINK_NOFOLLOW);
}

/**
 * {@linkcode lstatNs}, or null when nothing is at `path` (ENOENT, or
 * ENOTDIR: a parent is not a directory).
 */
export function lstatIfExists(path: string): StatNs | null {
  try {
    return lstatNs(path);
  } catch (e) {
    if (e instanceof SyscallError && (e.errno === Errno.ENOENT || e.errno === Errno.ENOTDIR)) {
      return null;
    }
    throw e;
  }
}

/** Whether a stat result is a directory. */
export function isDir(st: { mode: number }): boolean {
  return (st.mode & S_IFMT) === S_IFDIR;
}

/** statx of `path`, following symlinks, with nanosecond times. */
export function statNs(path: string): StatNs {
  return statxPath(path, 0);
}

/** The result of {@linkcode statfs}. */
export interface StatFs {
  /** File system magic (f_type), e.g. 0x9fa0 for proc, 0x01021994 for tmpfs. */
  type: number;
  /** Block size. */
  bsize: number;
  /** Total blocks. */
  blocks: number;
  /** Free blocks. */
  bfree: number;
}

/** statfs(2) of the file system holding `path`. */
export function statfs(path: string): StatFs {
  const buf = new Uint8Array(128);
  check(libc().statfs(cstr(path), buf), "statfs", path);
  const v = new DataView(buf.buffer);
  return {
    type: Number(v.getBigInt64(0, true)),
    bsize: Number(v.getBigInt64(8, true)),
    blocks: Number(v.getBigUint64(16, true)),
    bfree: Number(v.getBigUint64(24, true)),
  };
}

/** Creates directory `path` with `mode` (less the umask). */
export function mkdir(path: string, mode: number): void {
  check(libc().mkdir(cpath(path), mode), "mkdir", path);
}

/** Sets the permission bits of `path` (following a symlink). */
export function chmod(path: string, mode: number): void {
  check(libc().chmod(cpath(path), mode), "chmod", path);
}

/** Makes `path` a new name (hard link) of the file at `existing`. */
export function link(existing: string, path: string): void {
  check(libc().link(cstr(existing), cstr(path)), "link", path);
}

/** Removes the name `path` (not a directory). */
export function unlink(path: string): void {
  check(libc().unlink(cpath(path)), "unlink", path);
}

/** The target of symlink `path`, its bytes decoded losslessly. */
export function readlink(path: string): string {
  const p = cstr(path);
  for (let size = 256;; size *= 4) {
    const buf = new Uint8Array(size);
    const n = check(libc().readlink(p, buf, BigInt(size)), "readlink", path);
    if (n < size) return decodeOsString(buf.subarray(0, n));
  }
}

/**
 * Creates a symbolic link at `path` pointing to `target`. Through libc
 * because Deno.symlink demands unscoped --allow-read/--allow-write, and
 * layers hold symlinks to anywhere (they are only followed inside a mount).
 */
export function symlink(target: string, path: string): void {
  check(libc().symlink(cstr(target), cpath(path)), "symlink", path);
}

/** The memory page size. */
export function getpagesize(): number {
  return libc().getpagesize();
}

const FICLONE = 0x40049409n;
/** Errnos meaning "this file system (pair) cannot reflink". */
const NO_REFLINK = new Set([18, /* EXDEV */ 22, /* EINVAL */ 25, /* ENOTTY */ 95 /* EOPNOTSUPP */]);

/**
 * Makes `dstPath` a reflink copy of `srcPath` (FICLONE), sharing data blocks.
 * Returns false when the file system cannot reflink; then a `dstPath` this
 * call created is removed again, so the caller can fall back to copying.
 */
export function cloneFile(srcPath: string, dstPath: string): boolean {
  const l = libc();
  const src = check(l.open(cstr(srcPath), O_RDONLY | O_CLOEXEC, 0), "open", srcPath);
  try {
    const mode = lstatNs(srcPath).mode & 0o7777;
    const dst = cstr(dstPath);
    let created = true;
    let fd = l.open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno() === 17 /* EEXIST */) {
      created = false;
      fd = l.open(dst, O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
    }
    check(fd, "open", dstPath);
    const r = l.ioctl(fd, FICLONE, src);
    const e = r < 0 ? errno() : 0;
    l.close(fd);
    if (r === 0) return true;
    if (created) unlink(dstPath);
    if (NO_REFLINK.has(e)) return false;
    throw new SyscallError("ioctl(FICLONE)", e, dstPath);
  } finally {
    l.close(src);
  }
}

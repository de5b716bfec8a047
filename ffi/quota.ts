/**
 * Project quotas, the XFS way: a directory gets a project ID (and the
 * PROJINHERIT flag, so everything created below it inherits the ID)
 * through the FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR ioctls, and the
 * project's block and inode hard limits are set with quotactl(Q_XSETQLIM)
 * on the block device of the filesystem.
 *
 * Kernels without quota support for the filesystem answer quotactl with
 * ENOSYS (or ENOTSUP / ESRCH when quotas are off); callers see the
 * {@linkcode SyscallError} and decide.
 *
 * @example
 * ```ts ignore
 * import { getProjectQuota, setProjectID, setProjectQuota } from "./quota.ts";
 * setProjectID("/mnt/xfs/layer", 100001);
 * setProjectQuota("/mnt/xfs/backingFsBlockDev", 100001, { size: 10 << 20, inodes: 0 });
 * console.log(getProjectQuota("/mnt/xfs/backingFsBlockDev", 100001).blockHardLimit);
 * ```
 * @module
 */

import { check, cstr, libc, O_CLOEXEC, O_DIRECTORY, O_RDONLY } from "./libc.ts";

/** `_IOR('X', 31, struct fsxattr)`: read a file's extended attributes (flags, project ID). */
export const FS_IOC_FSGETXATTR = 0x801c581f;
/** `_IOW('X', 32, struct fsxattr)`: write them. */
export const FS_IOC_FSSETXATTR = 0x401c5820;
/** New entries below a directory with this flag get the directory's project ID. */
export const FS_XFLAG_PROJINHERIT = 0x200;

const PRJQUOTA = 2;
const FS_PROJ_QUOTA = 2;
const FS_DQUOT_VERSION = 1;
const FS_DQ_ISOFT = 1 << 0;
const FS_DQ_IHARD = 1 << 1;
const FS_DQ_BSOFT = 1 << 2;
const FS_DQ_BHARD = 1 << 3;
/** `QCMD(Q_XSETQLIM, PRJQUOTA)`: set a project's limits. */
export const Q_XSETPQLIM = (0x5804 << 8) | PRJQUOTA;
/** `QCMD(Q_XGETQUOTA, PRJQUOTA)`: read a project's limits and usage. */
export const Q_XGETPQUOTA = (0x5803 << 8) | PRJQUOTA;

/** sizeof(struct fsxattr). */
const FSXATTR_SIZE = 28;
/** sizeof(struct fs_disk_quota). */
const DISK_QUOTA_SIZE = 112;
/** Quota blocks are "basic blocks" of 512 bytes, whatever the filesystem's block size. */
const BB_SIZE = 512;

/** The fields of `struct fsxattr` that matter here. */
export interface FsXattr {
  /** FS_XFLAG_* bits. */
  xflags: number;
  /** The project ID. */
  projid: number;
}

/** Limits to set on a project; 0 leaves that limit alone (none set: usage is only tracked). */
export interface ProjectLimits {
  /** Block hard (and soft) limit in bytes; rounded down to 512-byte blocks. */
  size: number;
  /** Inode hard (and soft) limit. */
  inodes: number;
}

/** A project's limits and usage as quotactl(Q_XGETQUOTA) reports them. */
export interface ProjectQuota {
  /** Block hard limit in bytes (0: none). */
  blockHardLimit: number;
  /** Inode hard limit (0: none). */
  inodeHardLimit: number;
  /** Bytes in use. */
  bytesUsed: number;
  /** Inodes in use. */
  inodesUsed: number;
}

function withDirFd<T>(path: string, fn: (fd: number) => T): T {
  const fd = check(libc().open(cstr(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), "open", path);
  try {
    return fn(fd);
  } finally {
    libc().close(fd);
  }
}

function getXattr(fd: number, path: string): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(FSXATTR_SIZE);
  check(libc().ioctl_ptr(fd, BigInt(FS_IOC_FSGETXATTR), buf), "ioctl(FS_IOC_FSGETXATTR)", path);
  return buf;
}

/** Reads the flags and project ID of a directory. */
export function getFsXattr(path: string): FsXattr {
  return withDirFd(path, (fd) => {
    const v = new DataView(getXattr(fd, path).buffer);
    return { xflags: v.getUint32(0, true), projid: v.getUint32(12, true) };
  });
}

/** The project ID of a directory (0 when it has none). */
export function getProjectID(path: string): number {
  return getFsXattr(path).projid;
}

/**
 * Gives a directory `projid` and the PROJINHERIT flag, keeping its other
 * attributes (read, modify, write back).
 */
export function setProjectID(path: string, projid: number): void {
  withDirFd(path, (fd) => {
    const buf = getXattr(fd, path);
    const v = new DataView(buf.buffer);
    v.setUint32(0, v.getUint32(0, true) | FS_XFLAG_PROJINHERIT, true);
    v.setUint32(12, projid >>> 0, true);
    check(libc().ioctl_ptr(fd, BigInt(FS_IOC_FSSETXATTR), buf), "ioctl(FS_IOC_FSSETXATTR)", path);
  });
}

/**
 * Sets the hard and soft limits of project `projid` on the filesystem of
 * `blockDev` (a block device node of that filesystem).
 */
export function setProjectQuota(blockDev: string, projid: number, limits: ProjectLimits): void {
  const buf = new Uint8Array(DISK_QUOTA_SIZE);
  const v = new DataView(buf.buffer);
  let mask = 0;
  if (limits.size > 0) {
    mask |= FS_DQ_BHARD | FS_DQ_BSOFT;
    const blocks = BigInt(Math.floor(limits.size / BB_SIZE));
    v.setBigUint64(8, blocks, true);
    v.setBigUint64(16, blocks, true);
  }
  if (limits.inodes > 0) {
    mask |= FS_DQ_IHARD | FS_DQ_ISOFT;
    v.setBigUint64(24, BigInt(limits.inodes), true);
    v.setBigUint64(32, BigInt(limits.inodes), true);
  }
  v.setInt8(0, FS_DQUOT_VERSION);
  v.setInt8(1, FS_PROJ_QUOTA);
  v.setUint16(2, mask, true);
  v.setUint32(4, projid >>> 0, true);
  check(libc().quotactl(Q_XSETPQLIM, cstr(blockDev), projid | 0, buf), "quotactl", blockDev);
}

/** Reads the limits and usage of project `projid` on the filesystem of `blockDev`. */
export function getProjectQuota(blockDev: string, projid: number): ProjectQuota {
  const buf = new Uint8Array(DISK_QUOTA_SIZE);
  check(libc().quotactl(Q_XGETPQUOTA, cstr(blockDev), projid | 0, buf), "quotactl", blockDev);
  const v = new DataView(buf.buffer);
  const n = (off: number) => Number(v.getBigUint64(off, true));
  return {
    blockHardLimit: n(8) * BB_SIZE,
    inodeHardLimit: n(24),
    bytesUsed: n(40) * BB_SIZE,
    inodesUsed: n(48),
  };
}

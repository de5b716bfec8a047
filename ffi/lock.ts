/**
 * Raw file descriptors and fcntl "open file description" (OFD) record locks
 * for lock files. OFD locks conflict with the classic POSIX fcntl locks that
 * containers/storage (and podman) take, and they belong to the open file,
 * not the process, so closing another descriptor of the same file does not
 * drop them. Two locks taken through the *same* descriptor never conflict:
 * in-process exclusion is the caller's job (lib/lockfile.ts).
 *
 * A waiting lock (F_OFD_SETLKW) runs as a non-blocking FFI call on a worker
 * thread, so the event loop keeps running while it sleeps. That thread's
 * errno is out of reach; when the wait fails (EINTR, …) the non-waiting
 * F_OFD_SETLK is retried on this thread, which either takes the lock or
 * reports the real errno.
 *
 * @example
 * ```ts
 * import { closeFd, lockFd, O_CREAT, O_RDWR, openFd, unlockFd } from "./lock.ts";
 * const fd = openFd("/tmp/x.lock", O_RDWR | O_CREAT, 0o644);
 * await lockFd(fd, "write", true);
 * unlockFd(fd);
 * closeFd(fd);
 * ```
 * @module
 */

import { SyscallError } from "./errors.ts";
import { check, cstr, errno, libc, O_CLOEXEC } from "./libc.ts";

export { O_CLOEXEC, O_CREAT, O_RDONLY, O_RDWR } from "./libc.ts";

const F_OFD_GETLK = 36, F_OFD_SETLK = 37, F_OFD_SETLKW = 38;
const F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
const EINTR = 4, EAGAIN = 11, EACCES = 13;

/** Kind of a record lock. */
export type LockType = "read" | "write";

/** Best-effort path of an open descriptor, for error messages. */
function fdPath(fd: number): string {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return `fd ${fd}`;
  }
}

/** A `struct flock` (x86_64, 32 bytes) covering the whole file. */
function flock(type: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(32);
  const v = new DataView(buf.buffer);
  v.setInt16(0, type, true); // l_type
  v.setInt16(2, 0, true); // l_whence = SEEK_SET; l_start = l_len = 0: whole file
  return buf; // l_pid must stay 0 for OFD locks
}

/** Opens `path` (O_CLOEXEC is always added) and returns the raw descriptor. */
export function openFd(path: string, flags: number, mode: number): number {
  return check(libc().open(cstr(path), flags | O_CLOEXEC, mode), "open", path);
}

/** Closes a descriptor from {@linkcode openFd}, releasing its OFD locks. */
export function closeFd(fd: number): void {
  if (libc().close(fd) < 0) throw new SyscallError("close", errno(), fdPath(fd));
}

/** Reads up to `buf.length` bytes at `offset`; returns the count read (0 at EOF). */
export function preadFd(fd: number, buf: Uint8Array, offset: number): number {
  const tmp = new Uint8Array(buf.length);
  const n = libc().pread(fd, tmp, BigInt(tmp.length), BigInt(offset));
  if (n < 0) throw new SyscallError("pread", errno(), fdPath(fd));
  buf.set(tmp.subarray(0, Number(n)));
  return Number(n);
}

/** Writes `buf` at `offset`; returns the count written. */
export function pwriteFd(fd: number, buf: Uint8Array, offset: number): number {
  const tmp = new Uint8Array(buf);
  const n = libc().pwrite(fd, tmp, BigInt(tmp.length), BigInt(offset));
  if (n < 0) throw new SyscallError("pwrite", errno(), fdPath(fd));
  return Number(n);
}

/**
 * Takes a whole-file OFD lock on `fd`. Without `wait`, resolves false when
 * another holder conflicts; with `wait`, sleeps (off the event-loop thread)
 * until the lock is granted and resolves true.
 */
export async function lockFd(fd: number, type: LockType, wait: boolean): Promise<boolean> {
  const lk = flock(type === "write" ? F_WRLCK : F_RDLCK);
  for (;;) {
    if (libc().fcntl(fd, F_OFD_SETLK, lk) === 0) return true;
    const e = errno();
    if (e !== EAGAIN && e !== EACCES && e !== EINTR) {
      throw new SyscallError("fcntl(F_OFD_SETLK)", e, fdPath(fd));
    }
    if (!wait) return false;
    if (await libc().fcntl_wait(fd, F_OFD_SETLKW, lk) === 0) return true;
    // The wait failed with an errno we cannot read: pause, then re-diagnose above.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Releases the OFD lock held through `fd`. */
export function unlockFd(fd: number): void {
  if (libc().fcntl(fd, F_OFD_SETLK, flock(F_UNLCK)) !== 0) {
    throw new SyscallError("fcntl(F_OFD_SETLK)", errno(), fdPath(fd));
  }
}

/**
 * The first lock (by any process or open file) that would block taking a
 * `type` lock through `fd`, or null if none would. `pid` is -1 for an OFD
 * lock, the holder's PID for a classic POSIX lock.
 */
export function getLock(fd: number, type: LockType): { type: LockType; pid: number } | null {
  const lk = flock(type === "write" ? F_WRLCK : F_RDLCK);
  if (libc().fcntl(fd, F_OFD_GETLK, lk) !== 0) {
    throw new SyscallError("fcntl(F_OFD_GETLK)", errno(), fdPath(fd));
  }
  const v = new DataView(lk.buffer);
  const t = v.getInt16(0, true);
  if (t === F_UNLCK) return null;
  return { type: t === F_WRLCK ? "write" : "read", pid: v.getInt32(24, true) };
}

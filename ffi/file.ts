/**
 * Files opened by path bytes: layer contents are created and read through
 * libc because their names may not be UTF-8 (see lib/os_string.ts), which
 * `Deno.open` cannot name. Reads and writes are synchronous, as Deno's
 * `readSync`/`writeSync` are: local file I/O, one syscall per call.
 *
 * @example
 * ```ts ignore
 * import { O_CREAT, O_EXCL, O_WRONLY } from "./libc.ts";
 * import { RawFile } from "./file.ts";
 * const f = RawFile.open("/tmp/x", O_WRONLY | O_CREAT | O_EXCL, 0o600);
 * f.writeAll(new TextEncoder().encode("hello\n"));
 * f.close();
 * ```
 * @module
 */

import { Errno, SyscallError } from "./errors.ts";
import { check, cpath, cstr, errno, libc, O_CLOEXEC } from "./libc.ts";
import type { Timespec } from "./fs.ts";

/** Errnos of copy_file_range meaning "not between these files": copy by reading and writing. */
const NO_COPY_RANGE = new Set<number>([Errno.EXDEV, Errno.EINVAL, Errno.ENOSYS, Errno.EOPNOTSUPP]);

/** openat2(2)'s syscall number (x86_64). */
const SYS_OPENAT2 = 437n;
/** openat2's RESOLVE_IN_ROOT: resolve as if the directory were the root (chroot semantics). */
const RESOLVE_IN_ROOT = 0x10n;
/** `struct open_how`: flags, mode, resolve. */
const openHow = new BigUint64Array(3);
const openHowBytes = new Uint8Array(openHow.buffer);
/** The flags `openHow` holds. */
let openHowFlags = -1;
/** Set once openat2 turned out missing (ENOSYS) or filtered (a seccomp EPERM). */
let noOpenat2 = false;

/** An open file descriptor; close it with {@linkcode RawFile.close}. */
export class RawFile {
  #fd: number;

  private constructor(fd: number, readonly path: string) {
    this.#fd = fd;
  }

  /** open(2) of `path` with `flags` (O_CLOEXEC is added) and `mode` for a created file. */
  static open(path: string, flags: number, mode = 0): RawFile {
    return new RawFile(
      check(libc().open(cpath(path), flags | O_CLOEXEC, mode), "open", path),
      path,
    );
  }

  /**
   * openat2(2) of `rel` inside `dir` with RESOLVE_IN_ROOT: the kernel
   * resolves it as a chroot at `dir` would (absolute symlinks and `..`
   * stay inside), in one call. Undefined when the kernel has no openat2 (or
   * a seccomp filter refuses it): the caller resolves the path itself.
   * @param display The path for error messages.
   * @throws {SyscallError} when the open fails.
   */
  static openInRoot(
    dir: RawFile,
    rel: string,
    flags: number,
    display: string,
  ): RawFile | undefined {
    if (noOpenat2) return undefined;
    if (flags !== openHowFlags) {
      openHowFlags = flags;
      openHow[0] = BigInt(flags | O_CLOEXEC);
      openHow[2] = RESOLVE_IN_ROOT;
    }
    const fd = libc().openat2(SYS_OPENAT2, dir.#fd, cpath(rel), openHowBytes, 24n);
    if (fd >= 0) return new RawFile(Number(fd), display);
    const e = errno();
    if (e === Errno.ENOSYS || e === Errno.EPERM) {
      noOpenat2 = true;
      return undefined;
    }
    throw new SyscallError("openat2", e, display);
  }

  /** Reads into `buf`: the number of bytes read, 0 at end of file. */
  read(buf: Uint8Array): number {
    for (;;) {
      const n = libc().read(this.#fd, buf, BigInt(buf.length));
      if (n >= 0) return Number(n);
      const e = errno();
      if (e !== Errno.EINTR) throw new SyscallError("read", e, this.path);
    }
  }

  /** Writes all of `buf` at the current offset. */
  writeAll(buf: Uint8Array): void {
    for (let off = 0; off < buf.length;) {
      const part = buf.subarray(off);
      off += check(libc().write(this.#fd, part, BigInt(part.length)), "write", this.path);
    }
  }

  /** Writes all of `buf` at file offset `at`, leaving the current offset alone. */
  pwriteAll(buf: Uint8Array, at: number): void {
    for (let off = 0; off < buf.length;) {
      const part = buf.subarray(off);
      const n = libc().pwrite(this.#fd, part, BigInt(part.length), BigInt(at + off));
      off += check(n, "pwrite", this.path);
    }
  }

  /** fchown(2): the owner of the open file; -1 leaves an ID unchanged. */
  chown(uid: number, gid: number): void {
    check(libc().fchown(this.#fd, uid >>> 0, gid >>> 0), "fchown", this.path);
  }

  /** fchmod(2): the permission bits (and setuid, setgid, sticky) of the open file. */
  chmod(mode: number): void {
    check(libc().fchmod(this.#fd, mode), "fchmod", this.path);
  }

  /** futimens(2): access and modification times, with nanoseconds. */
  setTimes(atime: Timespec, mtime: Timespec): void {
    const times = new BigInt64Array([
      BigInt(atime.sec),
      BigInt(atime.nsec),
      BigInt(mtime.sec),
      BigInt(mtime.nsec),
    ]);
    check(libc().futimens(this.#fd, new Uint8Array(times.buffer)), "futimens", this.path);
  }

  /** fsetxattr(2): sets extended attribute `name` of the open file. */
  setXattr(name: string, value: Uint8Array): void {
    const buf = new Uint8Array(value);
    check(
      libc().fsetxattr(this.#fd, cstr(name), buf, BigInt(buf.length), 0),
      "fsetxattr",
      this.path,
    );
  }

  /**
   * Writes all of `buf` at offset `at` on a thread of Deno's pool. `buf`
   * must stay unchanged until the promise settles. The rest after a short
   * or failed write is written here (errno is the pool thread's, so a
   * failure is only reported by this retry, with its own errno).
   */
  async pwriteBehind(buf: Uint8Array, at: number): Promise<void> {
    const p = Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>);
    const n = Number(await libc().pwrite_async(this.#fd, p, BigInt(buf.length), BigInt(at)));
    if (n !== buf.length) this.pwriteAll(buf.subarray(Math.max(n, 0)), at + Math.max(n, 0));
  }

  /** Sets the file's size (a hole, if it grows). */
  truncate(size: number): void {
    check(libc().ftruncate(this.#fd, BigInt(size)), "ftruncate", this.path);
  }

  /**
   * Copies the rest of this file into `dst` in the kernel (copy_file_range);
   * false when the file systems cannot, before anything was copied.
   */
  copyTo(dst: RawFile): boolean {
    for (let first = true;; first = false) {
      const n = libc().copy_file_range(this.#fd, null, dst.#fd, null, 1n << 30n, 0);
      if (n === 0n) return true;
      if (n > 0) continue;
      const e = errno();
      if (first && NO_COPY_RANGE.has(e)) return false;
      if (e !== Errno.EINTR) throw new SyscallError("copy_file_range", e, dst.path);
    }
  }

  /** Closes the descriptor (idempotent). */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }
}

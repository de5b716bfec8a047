/**
 * The one place that opens libc (`Deno.dlopen("libc.so.6")`). The library is
 * opened lazily on first use, so importing modules that merely *may* call
 * libc works without `--allow-ffi`; the first real call without it throws
 * {@linkcode ErrPermission} naming the flag.
 *
 * Errno is read through `__errno_location()` right after the failing call on
 * the same (JS) thread. Non-blocking symbols run on a worker thread whose
 * errno we cannot see, so their callers re-diagnose failures with a
 * synchronous call (see ffi/lock.ts).
 *
 * @example
 * ```ts
 * import { cstr, libc, check } from "./libc.ts";
 * check(libc().umount2(cstr("/mnt"), 0), "umount2", "/mnt");
 * ```
 * @module
 */

import { ErrPermission } from "../lib/errors.ts";
import { encodeOsString } from "../lib/os_string.ts";
import { SyscallError } from "./errors.ts";

/** The libc functions we bind, with their C signatures in Deno FFI terms. */
export const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // Same function, run on a worker thread: F_OFD_SETLKW may sleep for a long time.
  fcntl_wait: {
    name: "fcntl",
    parameters: ["i32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // The same, on a thread of Deno's pool (a pointer: a "buffer" argument there costs a copy).
  pwrite_async: {
    name: "pwrite",
    parameters: ["i32", "pointer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  copy_file_range: {
    parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"],
    result: "isize",
  },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  link: { parameters: ["buffer", "buffer"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  rmdir: { parameters: ["buffer"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  symlink: { parameters: ["buffer", "buffer"], result: "i32" },
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  fsetxattr: { parameters: ["i32", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  lremovexattr: { parameters: ["buffer", "buffer"], result: "i32" },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  statfs: { parameters: ["buffer", "buffer"], result: "i32" },
  getpagesize: { parameters: [], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  getegid: { parameters: [], result: "u32" },
  ioctl: { parameters: ["i32", "u64", "i32"], result: "i32" },
  // Same function for requests whose argument points at a struct (FS_IOC_FS[GS]ETXATTR).
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  quotactl: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // syscall(2) is variadic; a fixed seven-i64 signature reaches every syscall that has no
  // libc wrapper (open_tree, mount_setattr, move_mount); pointers go in as their addresses.
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  // openat2(dirfd, path, how, size) through syscall(2), the buffers passed as such.
  openat2: {
    name: "syscall",
    // the number must fill its register; the kernel reads the descriptor as an int
    parameters: ["i64", "i32", "buffer", "buffer", "usize"],
    result: "i64",
  },
} as const;

/** The typed symbol table of libc. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * libc's symbols, each bound on its first use: binding the whole table
 * costs about a millisecond a symbol, which a small command (one that takes
 * a lock and reads a file) would pay for dozens it never calls.
 */
export function libc(): Libc {
  // A proxy, not a getter per symbol: defining all the getters up front took about a millisecond.
  lib ??= new Proxy({} as Record<string, unknown>, {
    get(bound, name) {
      if (typeof name !== "string" || !Object.hasOwn(SYMBOLS, name)) return undefined;
      return bound[name] ??= bind(name as keyof typeof SYMBOLS);
    },
  }) as Libc;
  return lib;
}

/** Binds one symbol of libc; without --allow-ffi this throws {@linkcode ErrPermission}. */
function bind<K extends keyof typeof SYMBOLS>(name: K): Libc[K] {
  try {
    const one = { [name]: SYMBOLS[name] } as Pick<typeof SYMBOLS, K>;
    return Deno.dlopen("libc.so.6", one).symbols[name] as Libc[K];
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new ErrPermission("ffi", {
        detail: "run with --allow-ffi (or -A) to call libc",
        cause: e,
      });
    }
    throw e;
  }
}

/** The calling thread's errno; call it right after the failing libc call. */
export function errno(): number {
  if (!errnoView) {
    const p = libc().__errno_location();
    if (p === null) throw new Error("__errno_location returned NULL");
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32();
}

/**
 * Throws a {@linkcode SyscallError} with the current errno when `result` is
 * negative; returns `result` as a number otherwise.
 */
export function check(result: number | bigint, syscall: string, path?: string): number {
  if (result < 0) throw new SyscallError(syscall, errno(), path);
  return Number(result);
}

/**
 * A NUL-terminated copy of `s` for passing as `const char *`. Strings from
 * file names may hold bytes that are not UTF-8 (see lib/os_string.ts):
 * they are passed as those bytes.
 */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.isWellFormed()) return encoder.encode(s + "\0"); // one copy: the common case
  const bytes = encodeOsString(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** {@linkcode cpath}'s buffer: PATH_MAX bytes, the longest path the kernel takes. */
const scratch = new Uint8Array(4096);

/**
 * Like {@linkcode cstr}, into one reused buffer: valid only until the next
 * call, for a syscall with one path argument made at once. An import or a
 * diff makes tens of thousands of such calls; an ASCII path copied by hand
 * saves the string concatenation, the encoder call and the buffer each
 * (~2 µs per call on our VMs).
 */
export function cpath(s: string): Uint8Array<ArrayBuffer> {
  if (s.length >= scratch.length) return cstr(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return cstr(s);
    scratch[i] = c;
  }
  scratch[s.length] = 0;
  return scratch;
}

const encoder = new TextEncoder();

/** `AT_FDCWD`: resolve relative paths against the working directory. */
export const AT_FDCWD: number = -100;
/** open(2) flags (x86_64 Linux values). */
export const O_RDONLY = 0;
/** open(2): write only. */
export const O_WRONLY = 0o1;
/** open(2): read and write. */
export const O_RDWR = 0o2;
/** open(2): create if missing. */
export const O_CREAT = 0o100;
/** open(2): fail if it exists. */
export const O_EXCL = 0o200;
/** open(2): truncate. */
export const O_TRUNC = 0o1000;
/** open(2): fail unless a directory. */
export const O_DIRECTORY = 0o200000;
/** open(2): close on exec. */
export const O_CLOEXEC = 0o2000000;
/** open(2): fail (ELOOP) if the last component is a symlink. */
export const O_NOFOLLOW = 0o400000;
/** open(2): a descriptor that only names a place (for *at calls). */
export const O_PATH = 0o10000000;

/** `AT_SYMLINK_NOFOLLOW`: act on a symlink itself, not its target. */
export const AT_SYMLINK_NOFOLLOW = 0x100;

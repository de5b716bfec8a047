/**
 * mount(2) / umount2(2) and a mountinfo-based mountpoint check.
 *
 * @example
 * ```ts
 * import { mount, unmount, isMountpoint } from "./mount.ts";
 * mount("tmpfs", "/mnt/x", "tmpfs", 0, "size=1m");
 * console.log(await isMountpoint("/mnt/x")); // true
 * unmount("/mnt/x");
 * ```
 * @module
 */

import { check, cstr, libc, O_CLOEXEC, O_RDONLY } from "./libc.ts";

/** Mount read-only. */
export const MS_RDONLY = 0x1;
/** Ignore set-user-ID and set-group-ID bits. */
export const MS_NOSUID = 0x2;
/** Do not interpret device files. */
export const MS_NODEV = 0x4;
/** Do not allow programs to be executed. */
export const MS_NOEXEC = 0x8;
/** Change the flags of an existing mount. */
export const MS_REMOUNT = 0x20;
/** Bind-mount a directory or file. */
export const MS_BIND = 0x1000;
/** Apply to the whole subtree (with MS_BIND or propagation flags). */
export const MS_REC = 0x4000;
/** Propagation: private. */
export const MS_PRIVATE = 0x40000;
/** Propagation: slave. */
export const MS_SLAVE = 0x80000;
/** Propagation: shared. */
export const MS_SHARED = 0x100000;
/** umount2: force unmount even if busy (network filesystems). */
export const MNT_FORCE = 0x1;
/** umount2: lazy unmount — detach now, clean up when no longer busy. */
export const MNT_DETACH = 0x2;

/**
 * Mounts `source` on `target`. `data` is the filesystem-specific option
 * string (e.g. overlay's `lowerdir=…,upperdir=…,workdir=…`).
 * @throws {SyscallError} with the target as path.
 */
export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data?: string,
): void {
  check(
    libc().mount(
      cstr(source),
      cstr(target),
      cstr(fstype),
      BigInt(flags),
      data === undefined ? null : cstr(data),
    ),
    "mount",
    target,
  );
}

/**
 * Unmounts `target` (umount2). `flags` may be {@linkcode MNT_DETACH} or
 * {@linkcode MNT_FORCE}.
 * @throws {SyscallError} e.g. EINVAL when `target` is not a mountpoint.
 */
export function unmount(target: string, flags = 0): void {
  check(libc().umount2(cstr(target), flags), "umount2", target);
}

/** Undoes the octal escapes (`\040` for space, …) of /proc/self/mountinfo fields. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Reads /proc/self/mountinfo through libc: Deno refuses /proc/self reads
 * without --allow-all, and the store must run with narrow permissions.
 */
function readMountInfo(): string {
  const path = "/proc/self/mountinfo";
  const fd = check(libc().open(cstr(path), O_RDONLY | O_CLOEXEC, 0), "open", path);
  const dec = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  try {
    for (;;) {
      const n = Number(check(libc().read(fd, buf, BigInt(buf.length)), "read", path));
      if (n === 0) break;
      text += dec.decode(buf.subarray(0, n), { stream: true });
    }
  } finally {
    libc().close(fd);
  }
  return text + dec.decode();
}

/** Mount points of this process's mount namespace, in mountinfo order. */
export function mountPoints(): string[] {
  return readMountInfo().split("\n").map((line) => line.split(" ")[4])
    .filter((field): field is string => field !== undefined).map(unescapeMountField);
}

/**
 * True when `path` (after resolving symlinks) is the mount point of a mount
 * in this process's mount namespace.
 */
export async function isMountpoint(path: string): Promise<boolean> {
  const real = await Deno.realPath(path);
  return mountPoints().includes(real);
}

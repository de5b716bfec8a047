/**
 * Facts about the calling process that come from libc rather than from
 * Deno, so that they need `--allow-ffi` (which the store needs anyway)
 * instead of an extra `--allow-sys`.
 *
 * @example
 * ```ts
 * import { geteuid } from "./process.ts";
 * console.log(geteuid() === 0 ? "root" : "rootless");
 * ```
 * @module
 */

import { libc } from "./libc.ts";

/** The effective user ID of this process (root is 0): what decides rootless defaults. */
export function geteuid(): number {
  return libc().geteuid();
}

/** The effective group ID of this process: the group of the files it creates (outside setgid directories). */
export function getegid(): number {
  return libc().getegid();
}

/**
 * The file mode creation mask, read from `/proc/self/status` (umask(2) can
 * only read it by setting it, which would race with other threads creating
 * files); undefined when the kernel does not say.
 */
export function currentUmask(): number | undefined {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? parseInt(m[1], 8) : undefined;
  } catch {
    return undefined;
  }
}

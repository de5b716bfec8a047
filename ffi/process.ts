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

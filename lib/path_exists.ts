/**
 * Whether a path exists, for the places where absence is an answer rather
 * than an error (optional config files, optional layer directories).
 *
 * @example
 * ```ts
 * import { pathExists } from "./path_exists.ts";
 * console.log(await pathExists("/etc/containers/storage.conf"));
 * ```
 * @module
 */

/** True when `path` exists (following symlinks); other failures than absence are thrown. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
    throw e;
  }
}

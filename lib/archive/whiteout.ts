/**
 * Whiteouts: how a layer says "this path was deleted". In a layer tarball
 * (AUFS format) `dir/.wh.name` deletes `dir/name` and `dir/.wh..wh..opq`
 * hides everything lower layers had in `dir`. On an overlay upper
 * directory the same facts are a 0/0 character device named `name` and the
 * `trusted.overlay.opaque=y` xattr on `dir`.
 *
 * @example
 * ```ts
 * import { whiteoutName, whiteoutTarget } from "./whiteout.ts";
 * console.log(whiteoutName("etc/passwd"), whiteoutTarget(".wh.passwd")); // etc/.wh.passwd passwd
 * ```
 * @module
 */

/** Prefix of an AUFS whiteout file name. */
export const WHITEOUT_PREFIX = ".wh.";
/** Prefix of AUFS metadata names (not deletions). */
export const WHITEOUT_META_PREFIX = ".wh..wh.";
/** Name of the AUFS opaque-directory marker. */
export const WHITEOUT_OPAQUE = ".wh..wh..opq";
/** AUFS directory of hard-link sources, never extracted. */
export const WHITEOUT_LINK_DIR = ".wh..wh.plnk";
/** The overlay xattr that marks a directory opaque. */
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";

/**
 * The name a whiteout file deletes, or null when `base` is not a whiteout.
 * Returns "" for names that cannot be whiteout targets (".", "..", empty),
 * which callers reject.
 */
export function whiteoutTarget(base: string): string | null {
  if (!base.startsWith(WHITEOUT_PREFIX) || base === WHITEOUT_OPAQUE) return null;
  const target = base.slice(WHITEOUT_PREFIX.length);
  return target === "." || target === ".." ? "" : target;
}

/** The AUFS whiteout path for a deleted path ("a/b" → "a/.wh.b"). */
export function whiteoutName(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0
    ? WHITEOUT_PREFIX + path
    : `${path.slice(0, i + 1)}${WHITEOUT_PREFIX}${path.slice(i + 1)}`;
}

/** True for an overlay whiteout: a character device with device number 0/0. */
export function isOverlayWhiteout(
  st: { mode: number; rdevMajor: number; rdevMinor: number },
): boolean {
  return (st.mode & 0o170000) === 0o020000 && st.rdevMajor === 0 && st.rdevMinor === 0;
}

/** True when an xattr value marks an overlay directory opaque ("y"). */
export function isOpaqueValue(v: Uint8Array | null): boolean {
  return v !== null && v.length === 1 && v[0] === 0x79;
}

/**
 * Path confinement for applying untrusted layer tarballs: every name from a
 * tar header is cleaned to a path relative to the target directory, and
 * every parent directory is resolved the way the kernel would inside a
 * chroot at the target — symlinks are followed, but absolute targets start
 * again at the target and `..` stops at it, in names and link targets as
 * in symlinks. Nothing resolved here can point
 * outside the target, whatever symlinks the tarball or the existing tree
 * holds.
 *
 * @example
 * ```ts
 * import { cleanEntryName, SafeRoot } from "./safe_path.ts";
 * const root = new SafeRoot("/tmp/layer");
 * const parts = cleanEntryName("./usr/bin/sh");
 * const parent = root.resolveParent(parts.slice(0, -1), "usr/bin/sh", true);
 * console.log(root.abs([...parent, "sh"]));
 * ```
 * @module
 */

import { ErrBadArchive } from "../errors.ts";
import { chmod, isDir, lstatIfExists, mkdir, readlink, S_IFLNK, S_IFMT } from "../../ffi/fs.ts";

/** The setgid bit of a mode. */
const S_ISGID = 0o2000;

/** Linux's limit of symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

/**
 * Cleans a name from a tar header into path components relative to the
 * target ([] is the target itself), as the reference's apply sees it: it
 * runs chrooted at the target and joins Go's cleaned name to "/", so
 * absolute names are relative to the target and `..` never climbs above
 * it (`../x` and `a/../../x` are `x`).
 */
export function cleanEntryName(name: string): string[] {
  const out: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return out;
}

/**
 * The target directory of an apply, with a cache of directories already
 * known to be real (non-symlink) directories inside it, so that resolving
 * thousands of entries costs one lstat per new directory, not per entry.
 */
export class SafeRoot {
  /** Absolute path of the target directory. */
  readonly root: string;
  #realDirs = new Set<string>();

  /** @param root The target directory (must exist). */
  constructor(root: string) {
    this.root = root.replace(/\/+$/, "") || "/";
  }

  /** The absolute path of resolved components. */
  abs(parts: string[]): string {
    return parts.length === 0 ? this.root : `${this.root}/${parts.join("/")}`;
  }

  /**
   * Resolves directory components inside the root, following symlinks with
   * chroot semantics. Missing directories are created (mode 0755) when
   * `create` is set and no symlink has been followed on the way; a missing
   * directory behind a symlink is an error, as it is for the reference,
   * whose unpacker runs chrooted and cannot create through the link.
   * @returns the resolved components (each a real directory).
   * @throws {ErrBadArchive} naming `entry` on a non-directory parent, a
   * missing parent, or a symlink loop.
   */
  resolveParent(parts: string[], entry: string, create: boolean): string[] {
    const key = parts.join("/");
    if (this.#realDirs.has(key)) return parts;
    let resolved: string[] = [];
    const queue = [...parts];
    let links = 0;
    let followed = false;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        resolved.pop();
        continue;
      }
      const next = [...resolved, c];
      const nextKey = next.join("/");
      if (this.#realDirs.has(nextKey)) {
        resolved = next;
        continue;
      }
      const p = this.abs(next);
      const st = lstatIfExists(p);
      if (st === null) {
        if (!create || followed) {
          throw new ErrBadArchive(entry, { detail: `parent directory /${nextKey} does not exist` });
        }
        mkdir(p, 0o755);
        // 0755 whatever the umask, keeping the setgid bit the kernel gives a directory made in a
        // setgid one (1.43's MkdirAll, under a umask of 022, leaves it, and the parent's group).
        const made = lstatIfExists(p)?.mode ?? 0;
        const want = 0o755 | (made & S_ISGID);
        if ((made & 0o7777) !== want) chmod(p, want);
        this.#realDirs.add(nextKey);
        resolved = next;
        continue;
      }
      if ((st.mode & S_IFMT) === S_IFLNK) {
        if (++links > MAX_SYMLINKS) {
          throw new ErrBadArchive(entry, {
            detail: `too many levels of symbolic links at /${nextKey}`,
          });
        }
        const target = readlink(p);
        if (target.startsWith("/")) resolved = [];
        queue.unshift(...target.split("/"));
        followed = true;
        continue;
      }
      if (!isDir(st)) {
        throw new ErrBadArchive(entry, { detail: `parent /${nextKey} is not a directory` });
      }
      this.#realDirs.add(nextKey);
      resolved = next;
    }
    if (links === 0) this.#realDirs.add(key);
    return resolved;
  }

  /**
   * Where the file of entry `name` (as a tar header or tar-split names it)
   * is in the applied tree: the name cleaned and its parents resolved as
   * the apply resolved them, so that `file/`, `./a//b` and `../c` open what
   * was created as `file`, `a/b` and `c`, and a symlinked parent is
   * followed inside the target only.
   * @throws {ErrBadArchive} when a parent is missing or not a directory.
   */
  entryPath(name: string): string {
    const parts = cleanEntryName(name);
    if (parts.length === 0) return this.root;
    return this.abs([...this.resolveParent(parts.slice(0, -1), name, false), parts.at(-1)!]);
  }

  /** Records that `parts` is now a real directory (created by the apply). */
  markDir(parts: string[]): void {
    this.#realDirs.add(parts.join("/"));
  }

  /** Forgets cached directories at or below `parts` (they were removed or replaced). */
  forget(parts: string[]): void {
    const key = parts.join("/");
    if (key === "") {
      this.#realDirs.clear();
      return;
    }
    // A cached directory's parents are cached too: nothing below an uncached path is.
    if (!this.#realDirs.has(key)) return;
    const prefix = key + "/";
    for (const d of this.#realDirs) {
      if (d === key || d.startsWith(prefix)) this.#realDirs.delete(d);
    }
  }
}

/**
 * Which of an apply's new files, directories and symlinks need no chown or
 * chmod after their creation. What the apply creates is owned by the
 * process's effective IDs and has the mode it was created with, less the
 * umask — unless its directory is setgid (the group is then the
 * directory's) or has a default ACL (the mode then comes from the ACL). On
 * a Debian rootfs 99% of the files are root's with mode 0644 or 0755; each
 * chown or chmod skipped is a syscall (and an inode update) less, some
 * 12,000 per layer, and syscalls are dear on our VMs (~1 µs to enter alone).
 *
 * Only directories whose header this apply applied, without setgid or
 * xattrs, in a plain parent count as plain (an implicit parent might
 * inherit setgid, a header's xattrs might be a default ACL), so the target
 * must start empty; the first removal stops the whole thing (a removed
 * directory may come back some other way).
 *
 * @example
 * ```ts ignore
 * import { FreshFiles } from "./fresh_files.ts";
 * const fresh = FreshFiles.forTarget("/layers/new/diff");
 * const plan = fresh?.plan("usr/bin", header, { uid: 0, gid: 0 });
 * ```
 * @module
 */

import { currentUmask, getegid, geteuid } from "../../ffi/process.ts";
import { lgetxattr, lstatNs } from "../../ffi/fs.ts";
import type { TarHeader } from "./tar_header.ts";

const S_ISGID = 0o2000;
/** setuid, setgid, sticky: bits only chmod sets (and chown clears). */
const SPECIAL_BITS = 0o7000;
const ACL_DEFAULT = "system.posix_acl_default";

/** How to create a file, and which metadata calls its creation made needless. */
export interface FreshPlan {
  /** The mode to create it with. */
  createMode: number;
  /** It is created with its owner: no chown. */
  skipChown: boolean;
  /** It is created with its mode: no chmod. */
  skipChmod: boolean;
}

/** What a new file gets from its open, per parent directory; see the module doc. */
export class FreshFiles {
  /** Directories (resolved, joined by "/") whose new files get the creator's group and mode. */
  readonly #plain = new Set<string>([""]);
  /** Directories that were once not plain: they stay so (xattrs and setgid stick). */
  readonly #tainted = new Set<string>();
  #stopped = false;

  private constructor(
    readonly creator: { uid: number; gid: number },
    readonly umask: number,
  ) {}

  /**
   * For an empty `target` that is neither setgid nor given a default ACL;
   * undefined otherwise, or when the umask cannot be read.
   */
  static forTarget(target: string): FreshFiles | undefined {
    const umask = currentUmask();
    if (umask === undefined) return undefined;
    if (lstatNs(target).mode & S_ISGID) return undefined;
    if (lgetxattr(target, ACL_DEFAULT) !== null) return undefined;
    return new FreshFiles({ uid: geteuid(), gid: getegid() }, umask);
  }

  /** Something was removed: no file counts as fresh from here on. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * A directory's header was applied at `key`, in `parent`. It is plain
   * when its parent is (what it could inherit, setgid or a default ACL,
   * comes from a directory that is not) and its header sets neither.
   */
  dirApplied(key: string, parent: string, h: TarHeader): void {
    if (
      this.#tainted.has(key) || !this.#plain.has(parent) || h.mode & S_ISGID ||
      Object.keys(h.xattrs).length > 0
    ) {
      this.#plain.delete(key);
      this.#tainted.add(key);
    } else this.#plain.add(key);
  }

  /**
   * How to create the file of `h` in directory `parent` for `owner`
   * (`createMode` is for a regular file's open; a directory is made with
   * its permission bits, which are the same when `skipChmod`).
   */
  plan(parent: string, h: TarHeader, owner: { uid: number; gid: number }): FreshPlan | undefined {
    if (this.#stopped || !this.#plain.has(parent)) return undefined;
    const perm = h.mode & 0o777;
    const skipChmod = (h.mode & SPECIAL_BITS) === 0 && (perm & this.umask) === 0;
    const skipChown = owner.uid === this.creator.uid && owner.gid === this.creator.gid;
    if (!skipChmod && !skipChown) return undefined;
    return { createMode: skipChmod ? perm : 0o600, skipChown, skipChmod };
  }
}

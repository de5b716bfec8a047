/**
 * The disk usage of a tree an apply makes, added up as it makes it: what
 * the overlay driver reports as a new layer's size (the sizes of its
 * non-directories, each inode once, as containers/storage's
 * `directory.Size`), without walking and lstat-ing the whole tree after
 * the apply (a tenth of a rootfs import).
 *
 * The sum is exact only for a tree that started empty and from which the
 * apply removed nothing (a whiteout or a later entry replacing an earlier
 * one): the apply stops the tally then, and the caller walks the tree
 * instead.
 *
 * @example
 * ```ts
 * import { UsageTally } from "./usage_tally.ts";
 * const t = new UsageTally();
 * t.add(1024); // etc/passwd
 * t.add(4); // a symlink: the length of its target
 * console.log(t.total()); // 1028
 * ```
 * @module
 */

/** Sizes of the non-directories an apply creates. */
export class UsageTally {
  #sum = 0;
  #valid = true;

  /**
   * A new inode of `size` bytes (a file, symlink, device, FIFO or
   * whiteout). A hard link adds nothing: its target exists, so, in a tree
   * that started empty and lost nothing, the apply made and counted it.
   */
  add(size: number): void {
    this.#sum += size;
  }

  /** Stops the tally (the apply removed something). */
  stop(): void {
    this.#valid = false;
  }

  /** The usage in bytes, or undefined when the tally stopped. */
  total(): number | undefined {
    return this.#valid ? this.#sum : undefined;
  }
}

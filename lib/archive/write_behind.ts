/**
 * Large file bodies written behind an apply: each chunk of a big file goes
 * to a thread of Deno's pool as a non-blocking pwrite, so copying its bytes
 * into the page cache (half the kernel time of a rootfs import) runs on the
 * other core while the apply parses and creates the next entries. A file's
 * metadata (owner, mode, xattrs, times — all through its descriptor) is set
 * and the file closed once its writes are done.
 *
 * At most {@linkcode WriteBehind.limit} writes are in flight: their bytes
 * must stay unchanged until written, and the apply's input is a ring of
 * reused buffers (see ring.ts) that comes round sixteen reads (or 2 MiB)
 * later.
 *
 * @example
 * ```ts ignore
 * import { WriteBehind } from "./write_behind.ts";
 * const behind = new WriteBehind();
 * const writes: Promise<void>[] = [];
 * await behind.write(file, chunk, 0, writes);
 * behind.after(writes, () => file.close(), () => file.close());
 * await behind.flush();
 * ```
 * @module
 */

import type { RawFile } from "../../ffi/file.ts";

/** Chunk writes in flight and the files waiting for theirs. */
export class WriteBehind {
  readonly #chunks: Promise<void>[] = [];
  readonly #files: Promise<void>[] = [];

  /** @param limit Chunks in flight at most. */
  constructor(readonly limit = 4) {}

  /**
   * Starts writing `chunk` at offset `at` of `file`, once fewer than
   * `limit` chunks are in flight, and adds that write to `writes`.
   */
  async write(
    file: RawFile,
    chunk: Uint8Array,
    at: number,
    writes: Promise<void>[],
  ): Promise<void> {
    while (this.#chunks.length >= this.limit) {
      await this.#chunks.shift()!.catch(() => {}); // its file's finish reports a failure
    }
    const p = file.pwriteBehind(chunk, at);
    p.catch(() => {});
    this.#chunks.push(p);
    writes.push(p);
  }

  /**
   * Runs `finish` once `writes` are done; `close` instead when one failed,
   * whose error {@linkcode flush} then throws.
   */
  after(writes: Promise<void>[], finish: () => void, close: () => void): void {
    const p = Promise.all(writes).then(finish, (e) => {
      close();
      throw e;
    });
    p.catch(() => {});
    this.#files.push(p);
  }

  /** Waits for every write and finish so far; throws the first failure. */
  async flush(): Promise<void> {
    await Promise.all(this.#files.splice(0));
  }

  /** Waits for everything in flight, failures or not (the apply has failed already). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#chunks.splice(0), ...this.#files.splice(0)]);
  }
}

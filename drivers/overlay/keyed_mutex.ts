/**
 * A per-key async mutex: operations on one layer run one after another,
 * operations on different layers run freely.
 *
 * @example
 * ```ts
 * import { KeyedMutex } from "./keyed_mutex.ts";
 * const locks = new KeyedMutex();
 * await locks.run("layer-id", async () => {});
 * ```
 * @module
 */

/** Serializes async operations per key inside this process. */
export class KeyedMutex {
  #tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier `run` with the same key has finished. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

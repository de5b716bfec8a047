/**
 * Random object IDs and an index that resolves unambiguous ID prefixes,
 * the way containers/storage names layers, images and containers.
 *
 * @example
 * ```ts
 * import { generateID, TruncIndex } from "./ids.ts";
 * const id = generateID();
 * const index = new TruncIndex([id]);
 * console.log(index.get(id.slice(0, 6)) === id); // true
 * ```
 * @module
 */

import { ErrAmbiguousPrefix, ErrInvalidID } from "./errors.ts";

const HEX = "0123456789abcdef";
const VALID_ID = /^[0-9a-f]{64}$/;
const ALL_DIGITS = /^[0-9]+$/;

/**
 * Returns a new random ID: 64 lowercase hex characters from 32 random bytes.
 *
 * Like Go's stringid, an ID whose 12-character short form is all digits is
 * drawn again, because tools that print short IDs would otherwise show
 * something that looks like (and may be parsed as) a number.
 */
export function generateID(): string {
  const bytes = new Uint8Array(32);
  for (;;) {
    crypto.getRandomValues(bytes);
    let id = "";
    for (const b of bytes) id += HEX[b >> 4] + HEX[b & 15];
    if (!ALL_DIGITS.test(id.slice(0, 12))) return id;
  }
}

/** True when `s` is a full ID: exactly 64 lowercase hex characters. */
export function isValidID(s: string): boolean {
  return VALID_ID.test(s);
}

/**
 * Set of IDs that resolves prefixes to the one ID they name.
 *
 * `get` returns the ID a prefix names, `undefined` when it names none (the
 * caller knows which "unknown" error fits: layer, image or container), and
 * throws {@linkcode ErrAmbiguousPrefix} when it names several; it never
 * guesses. An exact match of a whole ID always wins.
 *
 * Lookups binary-search a sorted array of the IDs. Once sorted, single
 * additions and deletions keep it sorted in place; the initial load (and
 * any run of changes made before the first lookup) costs one sort.
 */
export class TruncIndex {
  #ids = new Set<string>();
  #sorted: string[] = [];
  #dirty = false;

  /** Creates an index holding `ids`. */
  constructor(ids: Iterable<string> = []) {
    this.#dirty = true;
    for (const id of ids) this.add(id);
  }

  /** Number of IDs in the index. */
  get size(): number {
    return this.#ids.size;
  }

  /**
   * Adds an ID; adding one already present does nothing.
   * @throws {ErrInvalidID} if the ID is empty or contains whitespace.
   */
  add(id: string): void {
    if (id === "" || /\s/.test(id)) throw new ErrInvalidID(id);
    if (this.#ids.has(id)) return;
    this.#ids.add(id);
    if (!this.#dirty) this.#sorted.splice(this.#lowerBound(id), 0, id);
  }

  /** Removes an ID; returns false if it was not present. */
  delete(id: string): boolean {
    if (!this.#ids.delete(id)) return false;
    if (!this.#dirty) this.#sorted.splice(this.#lowerBound(id), 1);
    return true;
  }

  /** True when `id` is in the index as a whole ID. */
  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /**
   * Resolves a prefix to the single ID it names, or `undefined` when it
   * names none (an empty prefix names none).
   * @throws {ErrAmbiguousPrefix} if more than one ID starts with `prefix`.
   */
  get(prefix: string): string | undefined {
    if (prefix === "") return undefined;
    if (this.#ids.has(prefix)) return prefix;
    const sorted = this.#sortedIDs();
    const lo = this.#lowerBound(prefix);
    const first = sorted[lo];
    if (first === undefined || !first.startsWith(prefix)) return undefined;
    const next = sorted[lo + 1];
    if (next !== undefined && next.startsWith(prefix)) throw new ErrAmbiguousPrefix(prefix);
    return first;
  }

  /** Iterates over the IDs in sorted order. */
  *[Symbol.iterator](): IterableIterator<string> {
    yield* [...this.#sortedIDs()];
  }

  /** Index of the first sorted ID not less than `key`. */
  #lowerBound(key: string): number {
    const sorted = this.#sortedIDs();
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #sortedIDs(): string[] {
    if (this.#dirty) {
      this.#sorted = [...this.#ids].sort();
      this.#dirty = false;
    }
    return this.#sorted;
  }
}

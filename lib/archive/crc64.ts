/**
 * CRC-64 with the ISO polynomial, as Go's `hash/crc64` computes it with
 * `crc64.MakeTable(crc64.ISO)`: tar-split stores this checksum of every file
 * body. The sum is the 8 bytes big-endian, as Go's `Sum` appends them.
 *
 * JavaScript has no fast 64-bit integers, so the state is two 32-bit
 * halves; slicing-by-8 tables process eight bytes, read as two 32-bit words,
 * per step. With ISA-L (ffi/isal.ts) the sum is computed there instead,
 * with carry-less multiplication, some fifteen times as fast; the result is
 * the same.
 *
 * @example
 * ```ts
 * import { Crc64 } from "./crc64.ts";
 * const sum = new Crc64().update(new TextEncoder().encode("hello\n")).digest();
 * console.log(sum.length); // 8
 * ```
 * @module
 */

import { isalCrc64 } from "../../ffi/isal.ts";

/**
 * The eight slicing tables, 256 entries each, every entry as its low and high
 * 32-bit halves side by side (one cache line serves both).
 */
const T = new Uint32Array(2 * 8 * 256);

(() => {
  // The ISO polynomial, reversed: 0xD800000000000000.
  const POLY_HI = 0xd8000000;
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const odd = lo & 1;
      lo = ((lo >>> 1) | (hi << 31)) >>> 0;
      hi = hi >>> 1;
      if (odd) hi = (hi ^ POLY_HI) >>> 0;
    }
    T[2 * i] = lo;
    T[2 * i + 1] = hi;
  }
  for (let i = 0; i < 256; i++) {
    let lo = T[2 * i];
    let hi = T[2 * i + 1];
    for (let j = 1; j < 8; j++) {
      const idx = 2 * (lo & 0xff);
      lo = (((lo >>> 8) | (hi << 24)) ^ T[idx]) >>> 0;
      hi = ((hi >>> 8) ^ T[idx + 1]) >>> 0;
      T[2 * (j * 256 + i)] = lo;
      T[2 * (j * 256 + i) + 1] = hi;
    }
  }
})();

/** Whether an Int32Array view reads bytes little-endian, as the 8-byte step needs. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const NO_WORDS = new Int32Array(0);

/** Incremental CRC-64/ISO. */
export class Crc64 {
  #lo = 0;
  #hi = 0;
  readonly #native = isalCrc64();

  /** Adds bytes to the checksum. */
  update(p: Uint8Array): this {
    if (this.#native) {
      if (p.length === 0) return this;
      const crc = this.#native((BigInt(this.#hi) << 32n) | BigInt(this.#lo), p);
      this.#lo = Number(crc & 0xffffffffn);
      this.#hi = Number(crc >> 32n);
      return this;
    }
    let lo = ~this.#lo;
    let hi = ~this.#hi;
    const n = p.length;
    let i = 0;
    // Byte by byte up to 4-byte alignment, so the bulk can be read as 32-bit words.
    const head = LITTLE_ENDIAN ? Math.min(n, -p.byteOffset & 3) : n;
    for (; i < head; i++) {
      const idx = 2 * ((lo ^ p[i]) & 0xff);
      lo = ((lo >>> 8) | (hi << 24)) ^ T[idx];
      hi = (hi >>> 8) ^ T[idx + 1];
    }
    // A slice too short to reach alignment has no words (and an unaligned Int32Array throws).
    const words = (n - i) >>> 3;
    const w = words ? new Int32Array(p.buffer, p.byteOffset + i, words * 2) : NO_WORDS;
    for (let k = 0; k < w.length; k += 2) {
      lo ^= w[k];
      hi ^= w[k + 1];
      const a = 2 * (7 * 256 + (lo & 0xff));
      const b = 2 * (6 * 256 + ((lo >>> 8) & 0xff));
      const c = 2 * (5 * 256 + ((lo >>> 16) & 0xff));
      const d = 2 * (4 * 256 + (lo >>> 24));
      const e = 2 * (3 * 256 + (hi & 0xff));
      const f = 2 * (2 * 256 + ((hi >>> 8) & 0xff));
      const g = 2 * (256 + ((hi >>> 16) & 0xff));
      const h = 2 * (hi >>> 24);
      lo = T[a] ^ T[b] ^ T[c] ^ T[d] ^ T[e] ^ T[f] ^ T[g] ^ T[h];
      hi = T[a + 1] ^ T[b + 1] ^ T[c + 1] ^ T[d + 1] ^ T[e + 1] ^ T[f + 1] ^ T[g + 1] ^ T[h + 1];
    }
    for (i += w.length * 4; i < n; i++) {
      const idx = 2 * ((lo ^ p[i]) & 0xff);
      lo = ((lo >>> 8) | (hi << 24)) ^ T[idx];
      hi = (hi >>> 8) ^ T[idx + 1];
    }
    this.#lo = ~lo >>> 0;
    this.#hi = ~hi >>> 0;
    return this;
  }

  /** The checksum so far, 8 bytes big-endian. */
  digest(): Uint8Array {
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setUint32(0, this.#hi);
    v.setUint32(4, this.#lo);
    return out;
  }

  /** Starts over. */
  reset(): void {
    this.#lo = this.#hi = 0;
  }
}

/** CRC-64/ISO of `bytes`, 8 bytes big-endian. */
export function crc64(bytes: Uint8Array): Uint8Array {
  return new Crc64().update(bytes).digest();
}

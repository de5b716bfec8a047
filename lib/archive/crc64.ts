/**
 * CRC-64 with the ISO polynomial, as Go's `hash/crc64` computes it with
 * `crc64.MakeTable(crc64.ISO)`: tar-split stores this checksum of every file
 * body. The sum is the 8 bytes big-endian, as Go's `Sum` appends them.
 *
 * JavaScript has no fast 64-bit integers, so the state is two 32-bit
 * halves; slicing-by-8 tables process eight bytes per step.
 *
 * @example
 * ```ts
 * import { Crc64 } from "./crc64.ts";
 * const sum = new Crc64().update(new TextEncoder().encode("hello\n")).digest();
 * console.log(sum.length); // 8
 * ```
 * @module
 */

/** Low and high 32-bit halves of the eight slicing tables, 256 entries each. */
const TLO = new Uint32Array(8 * 256);
const THI = new Uint32Array(8 * 256);

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
    TLO[i] = lo;
    THI[i] = hi;
  }
  for (let i = 0; i < 256; i++) {
    let lo = TLO[i];
    let hi = THI[i];
    for (let j = 1; j < 8; j++) {
      const idx = lo & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ TLO[idx]) >>> 0;
      hi = ((hi >>> 8) ^ THI[idx]) >>> 0;
      TLO[j * 256 + i] = lo;
      THI[j * 256 + i] = hi;
    }
  }
})();

/** Incremental CRC-64/ISO. */
export class Crc64 {
  #lo = 0;
  #hi = 0;

  /** Adds bytes to the checksum. */
  update(p: Uint8Array): this {
    let lo = ~this.#lo >>> 0;
    let hi = ~this.#hi >>> 0;
    const n = p.length;
    let i = 0;
    const end8 = n - (n & 7);
    for (; i < end8; i += 8) {
      lo ^= p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24);
      hi ^= p[i + 4] | (p[i + 5] << 8) | (p[i + 6] << 16) | (p[i + 7] << 24);
      const a = 7 * 256 + (lo & 0xff);
      const b = 6 * 256 + ((lo >>> 8) & 0xff);
      const c = 5 * 256 + ((lo >>> 16) & 0xff);
      const d = 4 * 256 + (lo >>> 24);
      const e = 3 * 256 + (hi & 0xff);
      const f = 2 * 256 + ((hi >>> 8) & 0xff);
      const g = 256 + ((hi >>> 16) & 0xff);
      const h = hi >>> 24;
      lo = TLO[a] ^ TLO[b] ^ TLO[c] ^ TLO[d] ^ TLO[e] ^ TLO[f] ^ TLO[g] ^ TLO[h];
      hi = THI[a] ^ THI[b] ^ THI[c] ^ THI[d] ^ THI[e] ^ THI[f] ^ THI[g] ^ THI[h];
    }
    for (; i < n; i++) {
      const idx = (lo ^ p[i]) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ TLO[idx];
      hi = (hi >>> 8) ^ THI[idx];
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

/**
 * A byte buffer that JSON lines are written into piece by piece — ASCII
 * text, decimal numbers, base64 of bytes, UTF-8 of strings — and taken in
 * batches. tar-split's lines are mostly base64 of header blocks (a rootfs
 * layer's are ~10 MB): built as strings they were a fifth of what the
 * import's main thread allocated, and the young garbage that made V8 grow
 * its heap; written straight into one reused buffer they allocate nothing.
 *
 * @example
 * ```ts
 * import { LineBuffer } from "./line_buffer.ts";
 * const b = new LineBuffer();
 * b.ascii('{"payload":"');
 * b.base64(new Uint8Array([1, 2, 3]));
 * b.ascii('","position":');
 * b.decimal(7);
 * b.ascii("}\n");
 * console.log(new TextDecoder().decode(b.take())); // {"payload":"AQID","position":7}
 * ```
 * @module
 */

const ALPHABET = new TextEncoder().encode(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
);
const PAD = 0x3d; // "="
const utf8 = new TextEncoder();

/** A growable byte buffer for text built piece by piece. */
export class LineBuffer {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(64 << 10);
  #len = 0;

  /** Bytes written since the last {@linkcode take}. */
  get length(): number {
    return this.#len;
  }

  /** Appends `s`, which must be ASCII (one byte per character). */
  ascii(s: string): void {
    this.#room(s.length);
    for (let i = 0; i < s.length; i++) this.#buf[this.#len + i] = s.charCodeAt(i);
    this.#len += s.length;
  }

  /** Appends `s` as UTF-8 (a lone surrogate becomes U+FFFD, as TextEncoder makes it). */
  utf8(s: string): void {
    this.#room(s.length * 3);
    this.#len += utf8.encodeInto(s, this.#buf.subarray(this.#len)).written;
  }

  /** Appends a non-negative integer in decimal. */
  decimal(n: number): void {
    this.ascii(String(n));
  }

  /** Appends the standard base64 (with padding) of `b`. */
  base64(b: Uint8Array): void {
    this.#room(Math.ceil(b.length / 3) * 4);
    const out = this.#buf;
    let o = this.#len;
    const whole = b.length - (b.length % 3);
    for (let i = 0; i < whole; i += 3) {
      const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
      out[o++] = ALPHABET[n >>> 18];
      out[o++] = ALPHABET[(n >>> 12) & 63];
      out[o++] = ALPHABET[(n >>> 6) & 63];
      out[o++] = ALPHABET[n & 63];
    }
    const rest = b.length - whole;
    if (rest > 0) {
      const n = (b[whole] << 16) | (rest === 2 ? b[whole + 1] << 8 : 0);
      out[o++] = ALPHABET[n >>> 18];
      out[o++] = ALPHABET[(n >>> 12) & 63];
      out[o++] = rest === 2 ? ALPHABET[(n >>> 6) & 63] : PAD;
      out[o++] = PAD;
    }
    this.#len = o;
  }

  /**
   * The bytes written so far, and a fresh start. The view shares the
   * buffer: it is valid until the next write.
   */
  take(): Uint8Array<ArrayBuffer> {
    const v = this.#buf.subarray(0, this.#len);
    this.#len = 0;
    return v;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const grown = new Uint8Array(cap);
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }
}

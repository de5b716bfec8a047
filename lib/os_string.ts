/**
 * File names as the kernel has them: bytes, not necessarily UTF-8. Layer
 * tarballs carry such names (and link targets and xattr names), and the
 * reference keeps them byte for byte, so we must too.
 *
 * Names stay JavaScript strings, decoded losslessly: valid UTF-8 decodes
 * as usual, and each byte that is not part of a valid sequence becomes the
 * lone surrogate U+DC80–U+DCFF (Python's "surrogateescape"). Valid UTF-8
 * never decodes to a lone surrogate, so the mapping is one to one, and
 * {@linkcode encodeOsString} gives back the original bytes. Such strings
 * (`!s.isWellFormed()`) must reach the kernel through the FFI shim
 * (ffi/libc.ts `cstr`), never through Deno's path APIs, which would turn
 * them into U+FFFD.
 *
 * @example
 * ```ts
 * import { decodeOsString, encodeOsString } from "./os_string.ts";
 * const s = decodeOsString(new Uint8Array([0xff, 0xfe, 0x2e, 0x62]));
 * console.log(s.isWellFormed(), encodeOsString(s)); // false Uint8Array [255, 254, 46, 98]
 * ```
 * @module
 */

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Longest ASCII run made into a string in one call (the call's arguments sit on the stack). */
const ASCII_DIRECT = 4096;

/**
 * `b` as a string when it is short ASCII (nearly every file name and PAX
 * value), made without a decoder call; undefined otherwise. A tar parse
 * made tens of thousands of decoder calls.
 */
export function asciiString(b: Uint8Array): string | undefined {
  if (b.length > ASCII_DIRECT) return undefined;
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80) return undefined;
  return String.fromCharCode.apply(null, b as unknown as number[]);
}

/** Length of the valid UTF-8 sequence starting at `b[i]` (a byte ≥ 0x80), or 0. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  let n: number, lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0; // no overlong forms
    if (c === 0xed) hi = 0x9f; // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    if (c === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return 0;
  if (i + n > b.length || b[i + 1] < lo || b[i + 1] > hi) return 0;
  for (let k = 2; k < n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  return n;
}

/** Decodes bytes losslessly (see the module doc). */
export function decodeOsString(b: Uint8Array): string {
  const ascii = asciiString(b);
  if (ascii !== undefined) return ascii;
  try {
    return strict.decode(b);
  } catch {
    // Not UTF-8: rare, so a slow path is fine.
  }
  let out = "";
  for (let i = 0; i < b.length;) {
    if (b[i] < 0x80) {
      out += String.fromCharCode(b[i++]);
      continue;
    }
    const n = sequenceLength(b, i);
    if (n === 0) out += String.fromCharCode(0xdc00 + b[i++]);
    else {
      out += strict.decode(b.subarray(i, i + n));
      i += n;
    }
  }
  return out;
}

/** The bytes of a string from {@linkcode decodeOsString} (plain UTF-8 for any other string). */
export function encodeOsString(s: string): Uint8Array {
  if (s.isWellFormed()) return encoder.encode(s);
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xdc80 && c <= 0xdcff) out.push(c - 0xdc00);
    else out.push(...encoder.encode(ch));
  }
  return new Uint8Array(out);
}

/**
 * Orders names as Go orders strings: by their bytes. Code unit order agrees
 * with it except where surrogates (characters above U+FFFF, or escaped
 * bytes) differ, which are compared by their bytes.
 */
export function compareOsStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x === y) continue;
    if ((x & 0xf800) !== 0xd800 && (y & 0xf800) !== 0xd800) return x - y;
    const p = encodeOsString(a), q = encodeOsString(b);
    const m = Math.min(p.length, q.length);
    for (let k = 0; k < m; k++) if (p[k] !== q[k]) return p[k] - q[k];
    return p.length - q.length;
  }
  return a.length - b.length;
}

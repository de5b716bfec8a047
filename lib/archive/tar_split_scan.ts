/**
 * A scanner for tar-split lines in the exact shape Go's encoding/json writes
 * them (`{"type":2,"payload":"…","position":N}`, file entries with `name` or
 * `name_raw` and `size`), reading the line's bytes directly: payloads are
 * decoded from base64 bytes into their arrays with no JSON text or string
 * built for them. A line in any other shape (whitespace, escapes, other keys)
 * is left to `JSON.parse` by the caller, so what a line means never depends
 * on which path read it.
 *
 * @example
 * ```ts
 * import { scanTarSplitLine } from "./tar_split_scan.ts";
 * const line = new TextEncoder().encode('{"type":2,"payload":"AAE=","position":0}');
 * console.log(scanTarSplitLine(line)); // { type: 2, name: undefined, size: 0, payload: Uint8Array(2) [0, 1], position: 0 }
 * ```
 * @module
 */

import { asciiString, decodeOsString } from "../os_string.ts";

/** What a tar-split line holds (see `TarSplitEntry` of tar_split.ts, which has the same fields). */
export interface ScannedEntry {
  /** 1 = file, 2 = segment. */
  type: number;
  /** File name (from `name_raw`, decoded losslessly, when that is what the line has). */
  name?: string;
  /** Body size of a file entry (0 when absent). */
  size: number;
  /** Decoded payload; null when absent or null. */
  payload: Uint8Array | null;
  /** Position as recorded (0 when absent). */
  position: number;
}

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c, OPEN = 0x7b, CLOSE = 0x7d;
const EQUALS = 0x3d;

/** Value of each base64 character, -1 for every other byte. */
const BASE64 = new Int8Array(256).fill(-1);
for (
  const [i, c] of [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"].entries()
) {
  BASE64[c.charCodeAt(0)] = i;
}

/**
 * Standard padded base64 in `b[from, to)` decoded straight from the bytes
 * (a text decoder call and a string per payload were a tenth of a diff);
 * undefined when it is not exactly that (the caller's slow path then
 * decides), as for whitespace or an escape. Bits a padded group leaves
 * unused are ignored, as Go's decoder ignores them.
 */
function decodeBase64(b: Uint8Array, from: number, to: number): Uint8Array | undefined {
  const n = to - from;
  if (n % 4 !== 0) return undefined;
  const pad = n && b[to - 1] === EQUALS ? (b[to - 2] === EQUALS ? 2 : 1) : 0;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  for (let i = from; i < to; i += 4) {
    const last = i + 4 === to;
    const c0 = BASE64[b[i]], c1 = BASE64[b[i + 1]];
    const c2 = last && pad === 2 ? 0 : BASE64[b[i + 2]];
    const c3 = last && pad > 0 ? 0 : BASE64[b[i + 3]];
    if ((c0 | c1 | c2 | c3) < 0) return undefined;
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    out[o++] = v >> 16;
    if (o < out.length) out[o++] = (v >> 8) & 0xff;
    if (o < out.length) out[o++] = v & 0xff;
  }
  return out;
}

/** Names are UTF-8 in the shape scanned here (non-UTF-8 names come as `name_raw`). */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Index of the closing quote of a string starting after `i`, or -1 if it has escapes or no end. */
function stringEnd(b: Uint8Array, i: number): number {
  for (; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) return i;
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** Whether `b` at `i` holds the ASCII `word`. */
function at(b: Uint8Array, i: number, word: string): boolean {
  if (i + word.length > b.length) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * The entry of one line (no newline) in Go's compact shape; undefined for
 * any other line, which the caller parses as JSON.
 */
export function scanTarSplitLine(b: Uint8Array): ScannedEntry | undefined {
  if (b[0] !== OPEN) return undefined;
  const e: ScannedEntry = { type: NaN, name: undefined, size: 0, payload: null, position: 0 };
  let raw = false; // name_raw wins over name, whichever comes first
  let i = 1;
  for (;;) {
    if (b[i] !== QUOTE) return undefined;
    const keyEnd = stringEnd(b, i + 1);
    if (keyEnd < 0 || b[keyEnd + 1] !== COLON) return undefined;
    const key = keyEnd - i - 1;
    const v = keyEnd + 2;
    let next: number;
    if (b[v] === QUOTE) {
      // Base64 has no escapes to look for: its end is found natively, its bytes checked when decoded.
      const b64 = key !== 4;
      const end = b64 ? b.indexOf(QUOTE, v + 1) : stringEnd(b, v + 1);
      if (end < 0) return undefined;
      if (key === 4 && at(b, i + 1, "name")) {
        if (!raw) {
          const name = b.subarray(v + 1, end);
          e.name = asciiString(name) ?? utf8.decode(name);
        }
      } else if (key === 7 && at(b, i + 1, "payload")) {
        const p = decodeBase64(b, v + 1, end);
        if (!p) return undefined;
        e.payload = p;
      } else if (key === 8 && at(b, i + 1, "name_raw")) {
        const p = decodeBase64(b, v + 1, end);
        if (!p) return undefined;
        e.name = decodeOsString(p);
        raw = true;
      } else return undefined;
      next = end + 1;
    } else if (at(b, v, "null")) {
      if (key !== 7 || !at(b, i + 1, "payload")) return undefined;
      e.payload = null;
      next = v + 4;
    } else {
      // A non-negative integer small enough to be exact.
      let n = 0;
      let j = v;
      for (; j < b.length && b[j] >= 0x30 && b[j] <= 0x39 && j - v < 15; j++) {
        n = n * 10 + b[j] - 0x30;
      }
      if (j === v || (b[v] === 0x30 && j > v + 1)) return undefined;
      if (key === 4 && at(b, i + 1, "type")) e.type = n;
      else if (key === 4 && at(b, i + 1, "size")) e.size = n;
      else if (key === 8 && at(b, i + 1, "position")) e.position = n;
      else return undefined;
      next = j;
    }
    if (b[next] === COMMA) {
      i = next + 1;
      continue;
    }
    return b[next] === CLOSE && next + 1 === b.length ? e : undefined;
  }
}

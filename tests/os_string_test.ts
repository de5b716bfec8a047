/**
 * The lossless decoding of file names: any bytes round-trip, UTF-8 decodes
 * as usual, and names order as their bytes do.
 */
import assert from "node:assert/strict";
import { compareOsStrings, decodeOsString, encodeOsString } from "../lib/os_string.ts";

/** Deterministic bytes biased towards the edges of UTF-8 (mulberry32). */
function randomNames(count: number, seed: number): Uint8Array[] {
  let s = seed;
  const rand = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const edges = [
    0x2f,
    0x41,
    0x7f,
    0x80,
    0xbf,
    0xc0,
    0xc2,
    0xdf,
    0xe0,
    0xed,
    0xef,
    0xf0,
    0xf4,
    0xff,
  ];
  const utf8 = new TextEncoder().encode("é€😀\u{10ffff}");
  return Array.from({ length: count }, () => {
    const b: number[] = [];
    for (let n = Math.floor(rand() * 12); n > 0; n--) {
      const r = rand();
      if (r < 0.4) b.push(edges[Math.floor(rand() * edges.length)]);
      else if (r < 0.6) b.push(...utf8.subarray(0, Math.floor(rand() * utf8.length)));
      else b.push(Math.floor(rand() * 256));
    }
    return new Uint8Array(b);
  });
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

Deno.test("os strings: any bytes round-trip; UTF-8 decodes as UTF-8, other bytes do not", () => {
  for (const b of randomNames(20000, 7)) {
    const s = decodeOsString(b);
    assert.deepEqual(encodeOsString(s), b);
    let utf8 = true;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      utf8 = false;
    }
    assert.equal(s.isWellFormed(), utf8, `${b}`);
  }
  assert.equal(decodeOsString(new Uint8Array([0xff, 0xfe, 0x2e])), "\udcff\udcfe.");
  // An encoded surrogate is not UTF-8: each of its bytes is escaped.
  assert.equal(decodeOsString(new Uint8Array([0xed, 0xa0, 0x80])), "\udced\udca0\udc80");
});

Deno.test("os strings: names order as their bytes, as Go's strings do", () => {
  const names = randomNames(3000, 11);
  const byBytes = [...names].sort(compareBytes);
  const byStrings = names.map(decodeOsString).sort(compareOsStrings).map(encodeOsString);
  assert.deepEqual(byStrings, byBytes);
});

/**
 * lib/sha256.ts against node:crypto on every length around the block and
 * padding boundaries, on a multi-block input, and on known test vectors.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../lib/sha256.ts";
import { sha256Digest } from "../lib/records/record_store.ts";

const reference = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("sha256: FIPS 180-4 vectors", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.equal(
    sha256Hex(enc("")),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    sha256Hex(enc("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    sha256Hex(enc("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256: same as node:crypto for lengths 0–300, a view into a larger buffer, and 1 MiB", () => {
  const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  for (let n = 0; n <= 300; n++) {
    assert.equal(sha256Hex(bytes.subarray(0, n)), reference(bytes.subarray(0, n)), `length ${n}`);
  }
  const view = bytes.subarray(7, 7 + 1000);
  assert.equal(sha256Hex(view), reference(view));
  assert.equal(sha256Hex(bytes), reference(bytes));
});

Deno.test("sha256Digest: the store's digest of big data, small and large (above 1 MiB)", () => {
  for (const n of [0, 3, (1 << 20) - 1, 1 << 20, (3 << 20) + 5]) {
    const b = new Uint8Array(n).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
    assert.equal(sha256Digest(b), `sha256:${reference(b)}`, `${n} bytes`);
  }
});

/**
 * ByteRing hands out adjoining pieces of one buffer (which the import
 * gathers into spans for one hash or write call each), wraps, and leaves a
 * piece untouched for the ring's turn; `adjoins` and `extend` tell and join
 * such pieces and nothing else.
 */

import assert from "node:assert/strict";
import { adjoins, ByteRing, extend } from "../lib/archive/ring.ts";

Deno.test("ring: pieces adjoin until the ring wraps, and each is at most `size`", () => {
  const ring = new ByteRing({ count: 4, size: 100 });
  const a = ring.room();
  assert.equal(a.length, 100);
  a.fill(1, 0, 30);
  ring.advance(30);
  const b = ring.room();
  assert.equal(b.length, 100);
  assert.ok(adjoins(a.subarray(0, 30), b), "the next room starts where the piece ended");
  const ab = extend(a.subarray(0, 30), 100);
  assert.equal(ab.length, 130);
  assert.equal(ab.byteOffset, a.byteOffset);
  ring.advance(100);
  ring.advance(100);
  ring.advance(100); // 330 of 400 taken
  const tail = ring.room();
  assert.equal(tail.length, 70, "the last room ends with the buffer");
  ring.advance(70);
  const wrapped = ring.room();
  assert.equal(wrapped.byteOffset, a.byteOffset, "then the ring starts over");
  assert.ok(!adjoins(tail, wrapped), "a wrapped piece does not adjoin the last");
  assert.equal(a[0], 1, "the first piece was untouched for the ring's turn");
});

Deno.test("ring: pieces of different buffers, or with a gap, do not adjoin", () => {
  const x = new Uint8Array(10);
  const y = new Uint8Array(10);
  assert.ok(!adjoins(x.subarray(0, 5), y.subarray(0, 5)));
  assert.ok(!adjoins(x.subarray(0, 5), x.subarray(6, 8)));
  assert.ok(!adjoins(x.subarray(5, 8), x.subarray(0, 5)), "order matters");
  assert.ok(adjoins(x.subarray(0, 5), x.subarray(5, 8)));
});

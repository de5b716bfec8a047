import assert from "node:assert/strict";
import { generateID, isValidID, TruncIndex } from "../lib/ids.ts";
import { ErrAmbiguousPrefix, ErrInvalidID } from "../lib/errors.ts";

Deno.test("generateID gives 64 lowercase hex chars whose short form is not all digits", () => {
  for (let i = 0; i < 2000; i++) {
    const id = generateID();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.ok(!/^[0-9]{12}$/.test(id.slice(0, 12)), id);
    assert.ok(isValidID(id));
  }
});

Deno.test("generateID is unique over many draws", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10000; i++) seen.add(generateID());
  assert.equal(seen.size, 10000);
});

Deno.test("isValidID rejects short, upper-case and non-hex IDs", () => {
  assert.ok(isValidID("a".repeat(64)));
  assert.ok(!isValidID("a".repeat(63)));
  assert.ok(!isValidID("a".repeat(65)));
  assert.ok(!isValidID("A".repeat(64)));
  assert.ok(!isValidID("g".repeat(64)));
  assert.ok(!isValidID(""));
});

const A = "abc1" + "0".repeat(60);
const B = "abc2" + "0".repeat(60);
const C = "def0" + "1".repeat(60);

Deno.test("TruncIndex resolves a unique prefix and a full ID", () => {
  const idx = new TruncIndex([A, B, C]);
  assert.equal(idx.get("d"), C);
  assert.equal(idx.get("abc1"), A);
  assert.equal(idx.get(B), B);
  assert.equal(idx.size, 3);
  assert.deepEqual([...idx], [A, B, C]);
});

Deno.test("TruncIndex throws ErrAmbiguousPrefix naming the prefix", () => {
  const idx = new TruncIndex([A, B, C]);
  assert.throws(() => idx.get("abc"), (e) => e instanceof ErrAmbiguousPrefix && e.id === "abc");
  assert.throws(() => idx.get("a"), ErrAmbiguousPrefix);
});

Deno.test("TruncIndex returns undefined for an unknown or empty prefix", () => {
  const idx = new TruncIndex([A, B]);
  assert.equal(idx.get("ff"), undefined);
  assert.equal(idx.get("abc3"), undefined);
  assert.equal(idx.get("zzz"), undefined);
  assert.equal(idx.get(""), undefined);
  assert.equal(new TruncIndex().get("a"), undefined);
});

Deno.test("TruncIndex: an exact match wins over longer IDs sharing it as a prefix", () => {
  const idx = new TruncIndex(["abc", "abcdef"]);
  assert.equal(idx.get("abc"), "abc");
  assert.equal(idx.get("abcd"), "abcdef");
  assert.throws(() => idx.get("ab"), ErrAmbiguousPrefix);
});

Deno.test("TruncIndex delete makes a prefix unambiguous, then unknown", () => {
  const idx = new TruncIndex([A, B]);
  assert.throws(() => idx.get("abc"), ErrAmbiguousPrefix);
  assert.equal(idx.delete(B), true);
  assert.equal(idx.delete(B), false);
  assert.equal(idx.get("abc"), A);
  idx.delete(A);
  assert.equal(idx.get("abc"), undefined);
  assert.equal(idx.has(A), false);
});

Deno.test("TruncIndex add is idempotent and rejects empty or spaced IDs", () => {
  const idx = new TruncIndex();
  idx.add(A);
  idx.add(A);
  assert.equal(idx.size, 1);
  assert.equal(idx.get("a"), A);
  assert.throws(() => idx.add(""), ErrInvalidID);
  assert.throws(() => idx.add("ab cd"), ErrInvalidID);
});

Deno.test("TruncIndex handles thousands of IDs with interleaved changes quickly", () => {
  const ids = Array.from({ length: 20000 }, () => generateID());
  const t0 = performance.now();
  const idx = new TruncIndex(ids);
  for (const id of ids.slice(0, 2000)) assert.equal(idx.get(id.slice(0, 16)), id);
  for (let i = 0; i < 200; i++) {
    const extra = generateID();
    idx.add(extra);
    assert.equal(idx.get(extra.slice(0, 20)), extra);
    idx.delete(extra);
  }
  assert.ok(performance.now() - t0 < 5000, "index too slow");
});

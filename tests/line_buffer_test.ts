/**
 * LineBuffer (lib/archive/line_buffer.ts): base64 as Uint8Array#toBase64
 * writes it for every length and byte, UTF-8 as TextEncoder writes it,
 * growth past the first buffer, and take() starting over.
 */
import assert from "node:assert/strict";
import { LineBuffer } from "../lib/archive/line_buffer.ts";
import { randomBytes } from "./helpers.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const toBase64 = (b: Uint8Array) => (b as Uint8Array & { toBase64(): string }).toBase64();

Deno.test("line buffer: base64 of every length 0-600 and of random bytes equals toBase64", () => {
  const b = new LineBuffer();
  for (let n = 0; n <= 600; n++) {
    const bytes = n % 2 ? randomBytes(n) : new Uint8Array(n).map((_, i) => 255 - (i % 256));
    b.base64(bytes);
    assert.equal(text(b.take()), toBase64(bytes), `length ${n}`);
  }
});

Deno.test("line buffer: ASCII, decimals and UTF-8 pieces make one line; it grows past 64 KiB", () => {
  const b = new LineBuffer();
  b.ascii('{"name":');
  b.utf8('"é/ü/日本/\u{1F600}"');
  b.ascii(',"position":');
  b.decimal(1234567890123);
  b.ascii("}\n");
  assert.equal(text(b.take()), '{"name":"é/ü/日本/\u{1F600}","position":1234567890123}\n');
  assert.equal(b.length, 0);
  const big = randomBytes(200_000);
  b.ascii("x");
  b.base64(big);
  b.utf8("ü".repeat(50_000));
  assert.equal(text(b.take()), "x" + toBase64(big) + "ü".repeat(50_000));
});

import assert from "node:assert/strict";
import { readTarSplit } from "../lib/archive/tar_split.ts";
import { scanTarSplitLine } from "../lib/archive/tar_split_scan.ts";
import { decodeOsString } from "../lib/os_string.ts";
import { ErrBadArchive } from "../lib/errors.ts";

const enc = new TextEncoder();
const b64 = (b: Uint8Array) => (b as Uint8Array & { toBase64(): string }).toBase64();
const unb64 = (s: string) =>
  (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(s);

/** What a line means when parsed as JSON (the meaning the scanner must keep). */
function viaJson(line: string) {
  const e = JSON.parse(line);
  return {
    type: Number(e.type),
    name: typeof e.name_raw === "string" ? decodeOsString(unb64(e.name_raw)) : e.name,
    size: Number(e.size ?? 0),
    payload: typeof e.payload === "string" ? unb64(e.payload) : null,
    position: Number(e.position ?? 0),
  };
}

async function readAll(text: Uint8Array<ArrayBuffer>, chunk: number) {
  const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(gz).arrayBuffer());
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.slice(i, i + chunk));
  const out = [];
  for await (const e of readTarSplit(ReadableStream.from(parts))) out.push(e);
  return out;
}

const payloads = [0, 1, 2, 3, 4, 5, 511, 512, 1025].map((n) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff)
);

/** Lines in Go's compact shape (scanned) and in other shapes (parsed as JSON). */
const lines = [
  ...payloads.map((p, i) => `{"type":2,"payload":"${b64(p)}","position":${i}}`),
  `{"type":1,"name":"./etc/passwd","size":1234,"payload":"AAECAwQFBgc=","position":7}`,
  `{"type":1,"name":"./dir/","payload":null,"position":8}`,
  `{"type":1,"name":"./héllo wörld ✓","size":1,"payload":"AAAAAAAAAAA=","position":9}`,
  `{"type":1,"name_raw":"${
    b64(new Uint8Array([0x2e, 0x2f, 0xff, 0xfe]))
  }","payload":null,"position":10}`,
  `{"type":1,"name_raw":"${
    b64(enc.encode("./raw"))
  }","name":"./ignored","payload":null,"position":11}`,
  `{"type":1,"name":"./ignored","name_raw":"${
    b64(enc.encode("./raw2"))
  }","payload":null,"position":11}`,
  // Not the compact shape: escapes, whitespace, other keys, unusual numbers.
  `{"type":1,"name":"./a\\u003cb\\"c\\\\d\\n","payload":null,"position":12}`,
  `{"type":2, "payload":"AAE=","position":13}`,
  ` {"type":2,"payload":"AAE=","position":14}\r`,
  `{"type":2,"payload":"AA\\u003d\\u003d","position":15}`,
  `{"type":2,"payload":"AA","position":16}`,
  `{"type":2,"payload":"AAE=","position":17,"extra":[1,2]}`,
  `{"type":2,"payload":"AAE=","position":1.5e3}`,
  `{"type":2,"payload":"AAE=","position":-3}`,
  `{"type":2,"payload":"AAE=","position":0123}`.replace("0123", "123"),
  `{"type":1,"name":"./big","size":12345678901234567,"payload":null,"position":18}`,
  `{"payload":"AAE=","position":19}`,
];

Deno.test("tar-split scan: a line means the same scanned as parsed as JSON, whatever its chunking", async () => {
  const text = enc.encode(lines.join("\n") + "\n\n   \n");
  const want = lines.map(viaJson);
  for (const chunk of [1, 7, 64, 1 << 20]) {
    assert.deepEqual(await readAll(text, chunk), want);
  }
  // No newline after the last line; a byte order mark before the first.
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(lines.join("\n"))]);
  assert.deepEqual(await readAll(bom, 5), want);
});

Deno.test("tar-split scan: Go's compact lines take the fast path, others do not", () => {
  for (const l of lines.slice(0, 15)) assert.ok(scanTarSplitLine(enc.encode(l)), l);
  for (const l of lines.slice(15)) {
    // Only lines whose meaning the scanner cannot read exactly are left to JSON.parse.
    const fast = scanTarSplitLine(enc.encode(l));
    if (fast) assert.deepEqual(fast, viaJson(l), l);
  }
  for (
    const l of [
      `{"type":2,"payload":"A@E=","position":0}`,
      `{"type":2,"payload":"AAE=","position":0}x`,
      `{"type":2,"payload":"AAE=","position":}`,
      `{"type":2,"payload":"AAE=","position":00}`,
      `{"type":2,"payload":"AAE=",}`,
      `{"type":2,"payload":"AAE=`,
      `{"type":"2","payload":null}`,
    ]
  ) assert.equal(scanTarSplitLine(enc.encode(l)), undefined, l);
});

Deno.test("tar-split scan: a malformed line is ErrBadArchive naming the line", async () => {
  await assert.rejects(
    readAll(enc.encode(`{"type":2,"payload":"AAE=","position":0}\n{"type":2,"payl\n`), 3),
    (e) => e instanceof ErrBadArchive && /malformed tar-split line .*payl/.test(String(e)),
  );
});

Deno.test("tar-split scan: payloads decode as the native base64 decoder does, or fall back", () => {
  const native = (s: string) =>
    (Uint8Array as unknown as { fromBase64(s: string): Uint8Array })
      .fromBase64(s);
  const line = (p: string) => new TextEncoder().encode(`{"type":2,"payload":"${p}","position":0}`);
  for (let n = 0; n < 300; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) % 256);
    const b64 = (bytes as Uint8Array & { toBase64(): string }).toBase64();
    assert.deepEqual(scanTarSplitLine(line(b64))?.payload, bytes, `length ${n}`);
  }
  // unused bits set in the last group: ignored, as by Go's decoder and the native one
  assert.deepEqual(scanTarSplitLine(line("QR=="))?.payload, native("QR=="));
  // not exactly padded base64: the scan leaves the line to JSON.parse
  for (const odd of ["QQ", "Q Q=", "QQ=\\u003d", "Q*==", "QQ=A"]) {
    assert.equal(scanTarSplitLine(line(odd)), undefined, odd);
  }
  const long = "n".repeat(70_000);
  const named = new TextEncoder().encode(`{"type":1,"name":"${long}","payload":null,"position":1}`);
  assert.equal(scanTarSplitLine(named)?.name, long);
});

import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import {
  Compression,
  compressStream,
  decompressStream,
  detectCompression,
} from "../lib/archive/compression.ts";
import { DigestStream, digestStream } from "../lib/archive/digest.ts";
import { run } from "./helpers.ts";
import { collect, concat, sha256, streamOf } from "./archive_fixture.ts";

const data = new TextEncoder().encode("layer bytes ".repeat(50_000));

async function tool(cmd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped" }).spawn();
  const w = child.stdin.getWriter();
  await w.write(input);
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, `${cmd} failed`);
  return out.stdout;
}

Deno.test("compression: detects each magic, and plain data as uncompressed", () => {
  const b = (...x: number[]) => new Uint8Array(x);
  assert.equal(detectCompression(b(0x1f, 0x8b, 0x08, 0)), Compression.Gzip);
  assert.equal(detectCompression(b(0x42, 0x5a, 0x68, 0x39)), Compression.Bzip2);
  assert.equal(detectCompression(b(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)), Compression.Xz);
  assert.equal(detectCompression(b(0x28, 0xb5, 0x2f, 0xfd)), Compression.Zstd);
  assert.equal(detectCompression(b(0xfd, 0x37, 0x7a)), Compression.Uncompressed, "short xz magic");
  assert.equal(detectCompression(b(0x1f, 0x8b, 0x09)), Compression.Uncompressed);
  assert.equal(detectCompression(b()), Compression.Uncompressed);
});

Deno.test("compression: decompresses output of gzip, bzip2, xz and zstd tools, in tiny chunks too", async () => {
  const cases: [Compression, string, string[]][] = [
    [Compression.Gzip, "gzip", ["-c"]],
    [Compression.Bzip2, "bzip2", ["-c"]],
    [Compression.Xz, "xz", ["-c"]],
    [Compression.Zstd, "zstd", ["-q", "-c"]],
  ];
  for (const [c, cmd, args] of cases) {
    const packed = await tool(cmd, args, data);
    for (const chunk of [packed.length, 1]) {
      const r = await decompressStream(streamOf(packed, chunk));
      assert.equal(r.compression, c, cmd);
      assert.deepEqual(await collect(r.stream), data, `${cmd} chunk ${chunk}`);
    }
  }
  const plain = await decompressStream(streamOf(data, 3));
  assert.equal(plain.compression, Compression.Uncompressed);
  assert.deepEqual(await collect(plain.stream), data);
  const empty = await decompressStream(streamOf(new Uint8Array(0)));
  assert.deepEqual(await collect(empty.stream), new Uint8Array(0));
});

Deno.test("compression: multi-member gzip (pigz, concatenation) decompresses fully", async () => {
  const gz = concat([await tool("gzip", ["-c"], data), await tool("gzip", ["-c"], data)]);
  const r = await decompressStream(streamOf(gz));
  assert.deepEqual(await collect(r.stream), concat([data, data]));
});

Deno.test("compression: gzip and zstd compression round-trip and are readable by the tools", async () => {
  for (const [c, cmd] of [[Compression.Gzip, "gzip"], [Compression.Zstd, "zstd"]] as const) {
    const packed = await collect(compressStream(streamOf(data, 10_000), c, 3));
    assert.ok(packed.length < data.length / 10);
    assert.equal(detectCompression(packed), c);
    assert.deepEqual(await tool(cmd, ["-d", "-c"], packed), data, cmd);
  }
});

Deno.test("compression: garbage after a valid magic is a clear error for every format", async () => {
  const junk = new TextEncoder().encode("this is not compressed data at all, really not");
  const magics: [string, number[]][] = [
    ["gzip", [0x1f, 0x8b, 0x08]],
    ["bzip2", [0x42, 0x5a, 0x68]],
    ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ];
  for (const [name, magic] of magics) {
    const r = await decompressStream(streamOf(concat([new Uint8Array(magic), junk])));
    await assert.rejects(collect(r.stream), (e: unknown) => {
      assert.ok(e instanceof ErrBadArchive, `${name}: ${e}`);
      assert.match(e.message, new RegExp(`invalid ${name} data`));
      return true;
    });
  }
  // A truncated gzip stream is an error too, not a short layer.
  const gz = await tool("gzip", ["-c"], data);
  const r = await decompressStream(streamOf(gz.subarray(0, gz.length - 20)));
  await assert.rejects(collect(r.stream), /invalid gzip data/);
});

Deno.test("digest: sha256 and size of what passes through", async () => {
  const d = new DigestStream();
  const out = await collect(streamOf(data, 777).pipeThrough(d));
  assert.deepEqual(out, data);
  assert.deepEqual(await d.result, { digest: "sha256:" + await sha256(data), size: data.length });
  assert.equal(d.size, data.length);
  const r = await run("sha256sum", [], { stdin: data });
  assert.equal((await digestStream(streamOf(data))).digest, "sha256:" + r.stdout.split(" ")[0]);
});

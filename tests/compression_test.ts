import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import {
  Compression,
  compressionName,
  compressStream,
  decompressStream,
  detectCompression,
} from "../lib/archive/compression.ts";
import { DigestStream, digestStream } from "../lib/archive/digest.ts";
import { randomBytes, run } from "./helpers.ts";
import { collect, concat, sha256, streamOf } from "./archive_fixture.ts";

const data = new TextEncoder().encode("layer bytes ".repeat(50_000));

async function tool(cmd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped" }).spawn();
  // written while the output is read: a large input would fill both pipes
  const [out] = await Promise.all([child.output(), streamOf(input).pipeTo(child.stdin)]);
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
  await assert.rejects(collect(r.stream), /truncated gzip data: unexpected EOF$/);
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

/** [format, tool, its compress args] of every format we decode. */
const TOOLS: [Compression, string, string[]][] = [
  [Compression.Gzip, "gzip", ["-c"]],
  [Compression.Bzip2, "bzip2", ["-c"]],
  [Compression.Xz, "xz", ["-c"]],
  [Compression.Zstd, "zstd", ["-q", "-c"]],
];

/** Data that compresses well (one input chunk fills the decoders' output buffers) and some that does not. */
function mixedData(): Uint8Array {
  return concat([data, randomBytes(300_000), data]);
}

/** Children of this process that have not been reaped or are still running. */
function children(): string[] {
  const out: string[] = [];
  for (const t of Deno.readDirSync(`/proc/${Deno.pid}/task`)) {
    const list = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${t.name}/children`).trim();
    if (list) out.push(...list.split(" "));
  }
  return out;
}

/** Decodes `bytes` in chunks of `chunk`; the error, or undefined when it succeeded. */
async function decodeError(bytes: Uint8Array, chunk = 65_536): Promise<unknown> {
  try {
    const r = await decompressStream(streamOf(bytes, chunk));
    await collect(r.stream);
    return undefined;
  } catch (e) {
    return e;
  }
}

Deno.test("compression: a flipped byte in any format is an ErrBadArchive, never an uncaught error", async () => {
  const plain = mixedData();
  for (const [c, cmd, args] of TOOLS) {
    const packed = await tool(cmd, args, plain);
    // inside the compressed data, and in the trailing check value
    for (const at of [Math.floor(packed.length / 2), packed.length - 2]) {
      const bad = packed.slice();
      bad[at] ^= 0xff;
      for (const chunk of [65_536, 4096]) {
        const e = await decodeError(bad, chunk);
        assert.ok(e instanceof ErrBadArchive, `${cmd} flipped at ${at}, chunk ${chunk}: ${e}`);
        assert.doesNotMatch(e.message, /\n/, `${cmd}: one line`);
        assert.match(e.message, new RegExp(`${compressionName(c)} data`));
      }
    }
  }
  assert.deepEqual(children(), [], "every xz/bzip2 child reaped");
});

Deno.test("compression: a stream cut short in any format ends in 'unexpected EOF'", async () => {
  const plain = mixedData();
  for (const [c, cmd, args] of TOOLS) {
    const packed = await tool(cmd, args, plain);
    for (
      const keep of [10, 88, Math.floor(packed.length / 2), packed.length - 4, packed.length - 1]
    ) {
      const e = await decodeError(packed.subarray(0, keep));
      assert.ok(e instanceof ErrBadArchive, `${cmd} cut to ${keep}: ${e}`);
      assert.match(
        e.message,
        new RegExp(`: truncated ${compressionName(c)} data: unexpected EOF$`),
        `${cmd} cut to ${keep}`,
      );
    }
  }
  assert.deepEqual(children(), [], "every xz/bzip2 child reaped");
});

Deno.test("compression: bytes after the last stream are refused as Go refuses them (xz's zero padding excepted)", async () => {
  const junk = new TextEncoder().encode("this is trailing garbage\n");
  for (const [c, cmd, args] of TOOLS) {
    const packed = await tool(cmd, args, data);
    for (const [what, tail] of [["junk", junk], ["zeros", new Uint8Array(1024)]] as const) {
      const e = await decodeError(concat([packed, tail]));
      if (c === Compression.Xz && what === "zeros") {
        // xz's stream padding: both `xz -d` and Go's reader accept it
        assert.equal(e, undefined, `${cmd} + ${what}`);
        continue;
      }
      assert.ok(e instanceof ErrBadArchive, `${cmd} + ${what}: ${e}`);
      assert.match(e.message, new RegExp(`invalid ${compressionName(c)} data`));
    }
    // and concatenated streams are one stream, as Go reads them
    const r = await decompressStream(streamOf(concat([packed, packed]), 1000));
    assert.deepEqual(await collect(r.stream), concat([data, data]), `${cmd} twice`);
  }
  assert.deepEqual(children(), [], "every xz/bzip2 child reaped");
});

Deno.test("compression: cancelling a spawned decompressor's output kills and reaps it", async () => {
  const plain = mixedData();
  for (const [c, cmd, args] of TOOLS) {
    if (c !== Compression.Xz && c !== Compression.Bzip2) continue;
    const packed = await tool(cmd, args, concat([plain, plain, plain]));
    const r = await decompressStream(streamOf(packed, 1000));
    const reader = r.stream.getReader();
    assert.equal((await reader.read()).done, false);
    await reader.cancel(new Error("consumer gave up"));
    assert.deepEqual(children(), [], `${cmd} reaped`);
  }
});

Deno.test("compression: zstd of many frames, skippable frames, without checksum or size, in 3-byte chunks", async () => {
  const plain = mixedData();
  const frames = [
    await tool("zstd", ["-q", "-c", "--no-check"], plain),
    await tool("zstd", ["-q", "-c", "-19", "--long"], data),
    await tool("zstd", ["-q", "-c"], new Uint8Array(0)),
  ];
  // a skippable frame (magic 0x184D2A5?, LE size, payload), as zstd's seekable format writes
  const skippable = new Uint8Array([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const packed = concat([frames[0], skippable, frames[1], frames[2], frames[0]]);
  const expected = await tool("zstd", ["-q", "-d", "-c"], packed);
  assert.deepEqual(expected, concat([plain, data, plain]));
  for (const chunk of [3, 777, packed.length]) {
    const r = await decompressStream(streamOf(packed, chunk));
    assert.deepEqual(await collect(r.stream), expected, `chunk ${chunk}`);
  }
  // cut inside the skippable frame, or just after the magic of the next one
  const at = frames[0].length + 5;
  assert.match(String(await decodeError(packed.subarray(0, at))), /truncated zstd data/);
  assert.match(
    String(await decodeError(packed.subarray(0, frames[0].length + 4))),
    /truncated zstd data/,
  );
});

Deno.test("compression: a failure to read the input is passed on as it is, for every format", async () => {
  const plain = mixedData();
  const uncompressed: [Compression, string, string[]] = [Compression.Uncompressed, "cat", []];
  for (const [c, cmd, args] of [...TOOLS, uncompressed]) {
    const packed = await tool(cmd, args, plain);
    const failure = new Error("connection reset by peer");
    let sent = 0;
    const input = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (sent > packed.length / 2) return ctl.error(failure);
        ctl.enqueue(packed.slice(sent, sent + 4096));
        sent += 4096;
      },
    });
    const r = await decompressStream(input);
    assert.equal(r.compression, c);
    await assert.rejects(collect(r.stream), (e) => e === failure, cmd);
  }
  assert.deepEqual(children(), [], "every xz/bzip2 child reaped");
});

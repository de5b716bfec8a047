/**
 * The native fast paths (ISA-L inflate and CRC-64, libcrypto SHA-256) and
 * their fallbacks (node:zlib, the JavaScript CRC, node:crypto) give the same
 * bytes: decoded layers, digests, checksums, and a whole layer import (its
 * tar-split and digests) with `DENOSTORE_NATIVE=0` and without. Where a
 * library is installed, its path is checked to be the one taken.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Crc64 } from "../lib/archive/crc64.ts";
import { decompressStream } from "../lib/archive/compression.ts";
import { sha256 } from "../lib/archive/digest.ts";
import { isalCrc64, isalDeflate, isalInflate } from "../ffi/isal.ts";
import { GzipWriter } from "../lib/archive/gzip_writer.ts";
import { gunzipSync } from "node:zlib";
import { libcryptoSha256 } from "../ffi/libcrypto.ts";
import { zstdDecoder } from "../ffi/zstd.ts";
import { generate } from "../bench/generate.ts";
import { Store } from "../mod.ts";
import { randomBytes, removeTree, tempDir } from "./helpers.ts";
import { storeOpts } from "./store_helpers.ts";
import { streamOf } from "./tar_fixtures.ts";

/** Runs `fn` with native libraries turned off (DENOSTORE_NATIVE=0), then restores the setting. */
async function withFallback<T>(fn: () => Promise<T> | T): Promise<T> {
  const old = Deno.env.get("DENOSTORE_NATIVE");
  Deno.env.set("DENOSTORE_NATIVE", "0");
  try {
    return await fn();
  } finally {
    if (old === undefined) Deno.env.delete("DENOSTORE_NATIVE");
    else Deno.env.set("DENOSTORE_NATIVE", old);
  }
}

function installed(lib: string): boolean {
  for (
    const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"]
  ) {
    try {
      Deno.statSync(`${dir}/${lib}`);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Text-like data that compresses, and noise that does not. */
function sample(): Uint8Array {
  const text = new TextEncoder().encode("usr/share/doc/package/copyright\n".repeat(40_000));
  const out = new Uint8Array(text.length * 2 + 700_000);
  out.set(text);
  out.set(randomBytes(700_000), text.length);
  out.set(text, text.length + 700_000);
  return out;
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("gzip", { args: ["-c"], stdin: "piped", stdout: "piped" }).spawn();
  const out = child.output(); // read while writing: the pipe would fill
  const w = child.stdin.getWriter();
  await w.write(data);
  await w.close();
  return (await out).stdout;
}

async function decode(bytes: Uint8Array, chunk: number): Promise<Uint8Array> {
  const { stream } = await decompressStream(streamOf(bytes, chunk));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("native: the libraries are used where they are installed, and not with DENOSTORE_NATIVE=0", async () => {
  assert.equal(isalInflate() !== undefined, installed("libisal.so.2"), "ISA-L used iff installed");
  assert.equal(isalDeflate() !== undefined, installed("libisal.so.2"), "its deflate likewise");
  assert.equal(zstdDecoder() !== undefined, installed("libzstd.so.1"), "libzstd likewise");
  assert.equal(libcryptoSha256() !== undefined, installed("libcrypto.so.3"), "libcrypto likewise");
  await withFallback(() => {
    assert.equal(isalInflate(), undefined);
    assert.equal(isalDeflate(), undefined);
    assert.equal(zstdDecoder(), undefined);
    assert.equal(isalCrc64(), undefined);
    assert.equal(libcryptoSha256(), undefined);
  });
});

Deno.test("native: gzip decoded by ISA-L and by node:zlib is the same, multi-member and in odd chunks", async () => {
  const data = sample();
  const one = await gzip(data);
  const two = new Uint8Array(one.length * 2);
  two.set(one);
  two.set(one, one.length);
  for (
    const [what, packed, want] of [["one member", one, data], ["two members", two, null]] as const
  ) {
    for (const chunk of [1, 7, 4096, 1 << 20]) {
      if (chunk < 4096) {
        // tiny chunks over a prefix only (each is a round trip): a cut stream fails the same way
        const cut = packed.subarray(0, 3000);
        const a = await decode(cut, chunk).catch((e) => e.message);
        const b = await withFallback(() => decode(cut, chunk).catch((e) => e.message));
        assert.deepEqual(a, b, `${what}: cut, chunks of ${chunk}`);
        assert.match(a, /truncated gzip data: unexpected EOF$/);
        continue;
      }
      const native = await decode(packed, chunk);
      const fallback = await withFallback(() => decode(packed, chunk));
      assert.deepEqual(native, fallback, `${what}, chunks of ${chunk}`);
      if (want) assert.deepEqual(native, want);
      else assert.equal(native.length, data.length * 2);
    }
  }
});

async function zstd(data: Uint8Array, ...args: string[]): Promise<Uint8Array> {
  const child = new Deno.Command("zstd", {
    args: ["-q", "-c", ...args],
    stdin: "piped",
    stdout: "piped",
  })
    .spawn();
  const out = child.output();
  const w = child.stdin.getWriter();
  await w.write(data);
  await w.close();
  return (await out).stdout;
}

Deno.test("native: zstd decoded by libzstd and by node:zlib is the same, frames, skippable frames, cuts and flips alike", async () => {
  const data = sample();
  const one = await zstd(data);
  const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 7, 7]);
  const many = new Uint8Array([
    ...one,
    ...skippable,
    ...await zstd(data.subarray(0, 1000), "--no-check"),
    ...await zstd(new Uint8Array(0)),
  ]);
  const flipped = one.slice();
  flipped[Math.floor(one.length / 2)] ^= 0x55;
  const garbage = new Uint8Array([...one, 1, 2, 3, 4, 5]);
  const outcome = (bytes: Uint8Array, chunk: number) =>
    decode(bytes, chunk).then((b) => b, (e) => `${e.constructor.name}: ${e.message}`);
  for (
    const [what, bytes] of [
      ["one frame", one],
      ["frames and a skippable one", many],
      ["cut inside a block", one.subarray(0, 5000)],
      ["cut before the checksum", one.subarray(0, one.length - 2)],
      ["a flipped byte", flipped],
      ["bytes after the last frame", garbage],
    ] as const
  ) {
    for (const chunk of [4096, 1 << 20]) {
      const native = await outcome(bytes, chunk);
      const fallback = await withFallback(() => outcome(bytes, chunk));
      assert.deepEqual(native, fallback, `${what}, chunks of ${chunk}`);
    }
  }
  assert.deepEqual(await decode(one, 65_536), data);
});

Deno.test("native: gzip written by ISA-L and by CompressionStream reads back as what was written, in any chunking", async () => {
  const data = sample();
  const write = async (chunk: number) => {
    const out: Uint8Array<ArrayBuffer>[] = [];
    const gz = new GzipWriter(
      new WritableStream<Uint8Array<ArrayBuffer>>({ write: (c) => void out.push(c) }),
    );
    // the writer may reuse nothing of ours after a write settles: overwrite to prove it
    const buf = new Uint8Array(chunk);
    for (let i = 0; i < data.length; i += chunk) {
      const part = data.subarray(i, i + chunk);
      buf.set(part);
      await gz.write(buf.subarray(0, part.length));
      buf.fill(0xaa);
    }
    await gz.close();
    return new Uint8Array(await new Blob(out).arrayBuffer());
  };
  for (const chunk of [1000, 65_536, data.length]) {
    const native = await write(chunk);
    const fallback = await withFallback(() => write(chunk));
    assert.deepEqual(new Uint8Array(gunzipSync(native)), data, `native, chunks of ${chunk}`);
    assert.deepEqual(new Uint8Array(gunzipSync(fallback)), data, `fallback, chunks of ${chunk}`);
    assert.deepEqual(await decode(native, 4096), data, "our own decoder reads it");
  }
  const empty = new GzipWriter(new WritableStream());
  await empty.close();
  const aborted: unknown[] = [];
  const gz = new GzipWriter(new WritableStream({ abort: (r) => void aborted.push(r) }));
  await gz.write(new Uint8Array(10));
  await gz.abort("cut");
  assert.deepEqual(aborted, ["cut"], "abort reaches the sink");
});

Deno.test("native: SHA-256 of libcrypto and node:crypto agree, in any chunking", async () => {
  const data = sample();
  const want = createHash("sha256").update(data).digest("hex");
  for (const chunk of [1, 63, 64, 65, 100_000, data.length]) {
    const part = chunk === 1 ? data.subarray(0, 3000) : data;
    const expect = chunk === 1 ? createHash("sha256").update(part).digest("hex") : want;
    const hex = () => {
      const h = sha256();
      for (let i = 0; i < part.length; i += chunk) h.update(part.subarray(i, i + chunk));
      return h.hex();
    };
    assert.equal(await hex(), expect, `native, chunks of ${chunk}`);
    assert.equal(await withFallback(hex), expect, `fallback, chunks of ${chunk}`);
  }
  const empty = sha256();
  assert.equal(empty.hex(), createHash("sha256").digest("hex"));
  assert.throws(() => empty.update(new Uint8Array(1)), "a finished digest refuses more input");
});

Deno.test("native: CRC-64/ISO of ISA-L and of the JavaScript tables agree", async () => {
  const data = sample();
  for (const chunk of [1, 3, 8, 4096, data.length]) {
    const part = chunk < 8 ? data.subarray(0, 10_000) : data;
    const sum = () => {
      const c = new Crc64();
      for (let i = 0; i < part.length; i += chunk) c.update(part.subarray(i + 0, i + chunk));
      return c.digest();
    };
    assert.deepEqual(sum(), await withFallback(sum), `chunks of ${chunk}`);
  }
  // the check value of CRC-64/GO-ISO (Go's crc64.ISO table)
  const c = new Crc64().update(new TextEncoder().encode("123456789")).digest();
  assert.equal(Array.from(c, (b) => b.toString(16).padStart(2, "0")).join(""), "b90956c775a41001");
});

Deno.test("native: a layer imported with and without the native libraries has the same tar-split and digests", async () => {
  const root = await tempDir("native-");
  try {
    const src = `${root}/src`;
    Deno.mkdirSync(`${src}/usr/bin`, { recursive: true });
    Deno.writeFileSync(`${src}/usr/bin/tool`, sample());
    Deno.writeFileSync(`${src}/big`, randomBytes(3 << 20));
    for (let i = 0; i < 200; i++) {
      Deno.writeTextFileSync(`${src}/usr/f${i}`, `file ${i}\n`.repeat(i));
    }
    Deno.symlinkSync("usr/bin/tool", `${src}/link`);
    const tarBytes = (await new Deno.Command("tar", {
      args: ["--numeric-owner", "-C", src, "-cf", "-", "."],
      stdout: "piped",
    }).output()).stdout;
    const gz = await gzip(tarBytes);
    const results = [];
    for (const fallback of [false, true]) {
      const dir = `${root}/${fallback ? "fallback" : "native"}`;
      const importIt = async () => {
        const store = await Store.open(storeOpts(dir));
        try {
          const { layer } = await store.putLayer({ diff: streamOf(gz, 65_536) });
          const split = await Deno.readFile(
            `${dir}/g/vfs-layers/${layer.id}.tar-split.gz`,
          );
          const diff = new Uint8Array(
            await new Response(await store.diff("", layer.id, { compression: 0 })).arrayBuffer(),
          );
          return { layer, split, diff };
        } finally {
          await store.shutdown(true);
        }
      };
      results.push(fallback ? await withFallback(importIt) : await importIt());
    }
    const [n, f] = results;
    assert.equal(n.layer["compressed-diff-digest"], f.layer["compressed-diff-digest"]);
    assert.equal(n.layer["diff-digest"], f.layer["diff-digest"]);
    assert.equal(n.layer["diff-size"], tarBytes.length);
    assert.equal(
      n.layer["diff-digest"],
      "sha256:" + createHash("sha256").update(tarBytes).digest("hex"),
    );
    // gzip output can differ between zlib builds; the JSON lines inside must not
    const lines = async (b: Uint8Array) => new TextDecoder().decode(await decode(b, 65_536));
    assert.equal(await lines(n.split), await lines(f.split), "tar-split records");
    assert.deepEqual(n.diff, tarBytes, "diff is the tarball (native)");
    assert.deepEqual(f.diff, tarBytes, "diff is the tarball (fallback)");
  } finally {
    await removeTree(root);
  }
});

Deno.test("native: a layer read from a file (a byte stream, read into reused buffers) imports in every compression, with and without the native libraries", async () => {
  const root = await tempDir("ring-");
  try {
    const src = `${root}/src`;
    Deno.mkdirSync(src);
    Deno.writeFileSync(`${src}/a`, sample());
    Deno.writeFileSync(`${src}/b`, randomBytes(5 << 20));
    for (let i = 0; i < 100; i++) {
      Deno.writeTextFileSync(`${src}/f${i}`, `file ${i}\n`.repeat(i * 9));
    }
    const tarFile = `${root}/layer.tar`;
    const tarred = await new Deno.Command("tar", {
      args: ["--numeric-owner", "-C", src, "-cf", tarFile, "."],
    }).output();
    assert.ok(tarred.success);
    const want = "sha256:" +
      createHash("sha256").update(Deno.readFileSync(tarFile)).digest("hex");
    // many more chunks than the ring has buffers: a decoder holding input chunks would see
    // them overwritten (node:zlib's zstd did)
    const files: [string, string, string][] = [["uncompressed", tarFile, want]];
    const bigTar = `${root}/big.tar`;
    generate(`${src}/c`, { bytes: 60 << 20, files: 40 }); // compresses as binaries do
    assert.ok(
      (await new Deno.Command("tar", { args: ["--numeric-owner", "-C", src, "-cf", bigTar, "."] })
        .output()).success,
    );
    const bigWant = "sha256:" +
      createHash("sha256").update(Deno.readFileSync(bigTar)).digest("hex");
    for (
      const [what, cmd, tar, digest] of [
        ["gzip", "gzip -1", bigTar, bigWant],
        ["zstd", "zstd -q", bigTar, bigWant],
        ["xz", "xz -0", tarFile, want],
        ["bzip2", "bzip2", tarFile, want],
      ]
    ) {
      const out = `${tar}.${what}`;
      const r = await new Deno.Command("sh", { args: ["-c", `${cmd} -c ${tar} > ${out}`] })
        .output();
      assert.ok(r.success, what);
      files.push([what, out, digest]);
    }
    for (const fallback of [false, true]) {
      const dir = `${root}/${fallback ? "fallback" : "native"}`;
      const store = await Store.open(storeOpts(dir));
      try {
        for (const [what, file, digest] of files) {
          const put = async () => {
            const f = await Deno.open(file);
            return (await store.putLayer({ diff: f.readable })).layer;
          };
          const layer = fallback ? await withFallback(put) : await put();
          assert.equal(layer["diff-digest"], digest, `${what}${fallback ? " (fallback)" : ""}`);
          const back = await store.diff("", layer.id, { compression: 0 });
          const h = createHash("sha256");
          for await (const c of back) h.update(c);
          assert.equal("sha256:" + h.digest("hex"), digest, `${what}: diff`);
        }
      } finally {
        await store.shutdown(true);
      }
    }
  } finally {
    await removeTree(root);
  }
});

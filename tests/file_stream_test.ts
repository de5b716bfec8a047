import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import type { FileGetter } from "../lib/archive/file_getter.ts";
import { type FileStream, openFileStream } from "../lib/archive/file_stream.ts";
import { SyscallError } from "../ffi/errors.ts";
import { emptyHeader } from "../lib/archive/tar_header.ts";
import { REBUILD_CHUNK, rebuildTar, TarSplitPacker } from "../lib/archive/tar_split.ts";
import { writeTar } from "../lib/archive/tar_writer.ts";
import { removeTree, tempDir } from "./helpers.ts";
import { collect, concat, streamOf } from "./archive_fixture.ts";

/** Sizes around the chunk and alignment boundaries rebuilding cares about. */
const SIZES = [
  1,
  7,
  511,
  512,
  513,
  65_537,
  REBUILD_CHUNK - 3,
  REBUILD_CHUNK,
  3 * REBUILD_CHUNK + 5,
];

function fileGetter(dir: string): FileGetter {
  return { get: (p) => Promise.resolve(openFileStream(`${dir}/${p}`)), close: async () => {} };
}

/** Writes `files` into `dir`, returns their tar and its gzip'd tar-split. */
async function layer(dir: string, files: [string, Uint8Array][]) {
  for (const [name, data] of files) await Deno.writeFile(`${dir}/${name}`, data);
  const tar = await collect(writeTar(files.map(([name, data]) => ({
    header: { ...emptyHeader(name), mode: 0o644, size: data.length },
    body: [data],
  }))));
  const parts: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (c) => void parts.push(c.slice()) });
  await collect(streamOf(tar, 4096).pipeThrough(new TarSplitPacker(sink)));
  return { tar, ts: concat(parts) };
}

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

Deno.test("file stream: reads the whole file as a stream and can be released early", async () => {
  const dir = await tempDir();
  try {
    const data = random(200_000);
    await Deno.writeFile(`${dir}/f`, data);
    const s = openFileStream(`${dir}/f`);
    assert.ok(s instanceof ReadableStream);
    assert.deepEqual(await collect(s), data);
    const direct = openFileStream(`${dir}/f`);
    const buf = new Uint8Array(10);
    assert.equal(direct.readInto(buf), 10);
    assert.deepEqual(buf, data.subarray(0, 10));
    direct.release();
    direct.release();
    assert.equal(direct.readInto(buf), null);
    await openFileStream(`${dir}/f`).cancel();
    assert.throws(
      () => openFileStream(`${dir}/missing`),
      (e) => e instanceof SyscallError && e.code === "ENOENT",
    );
  } finally {
    await removeTree(dir);
  }
});

Deno.test("tar-split: rebuild from file streams is byte-identical through default and BYOB readers", async () => {
  const dir = await tempDir();
  try {
    const { tar, ts } = await layer(dir, SIZES.map((n, i) => [`f${i}`, random(n)]));
    const viaDefault = await collect(rebuildTar(streamOf(ts), fileGetter(dir)));
    assert.deepEqual(viaDefault, tar);
    // A reused, odd-sized buffer: every chunk boundary falls somewhere different.
    for (const size of [1000, REBUILD_CHUNK + 1]) {
      const r = rebuildTar(streamOf(ts), fileGetter(dir)).getReader({ mode: "byob" });
      const got = new Uint8Array(tar.length);
      let off = 0;
      let buf = new Uint8Array(size);
      for (;;) {
        const { done, value } = await r.read(buf);
        if (done) break;
        got.set(value, off);
        off += value.length;
        buf = new Uint8Array(value.buffer);
      }
      assert.equal(off, tar.length);
      assert.deepEqual(got, tar);
    }
    // Streams that are not FileStreams take the generic path.
    const plain: FileGetter = {
      get: async (p) => (await Deno.open(`${dir}/${p}`)).readable,
      close: async () => {},
    };
    assert.deepEqual(await collect(rebuildTar(streamOf(ts), plain)), tar);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("tar-split: rebuild from file streams rejects changed content and sizes", async () => {
  const dir = await tempDir();
  try {
    const data = random(REBUILD_CHUNK + 100);
    const { ts } = await layer(dir, [["f", data]]);
    const fails = async (content: Uint8Array, re: RegExp) => {
      await Deno.writeFile(`${dir}/f`, content);
      await assert.rejects(collect(rebuildTar(streamOf(ts), fileGetter(dir))), (e: unknown) => {
        assert.ok(e instanceof ErrBadArchive);
        assert.match(e.message, re);
        assert.match(e.message, /"f"/);
        return true;
      });
    };
    const flipped = data.slice();
    flipped[REBUILD_CHUNK + 50] ^= 1;
    await fails(flipped, /checksum failed/);
    await fails(data.subarray(1), new RegExp(`file has ${data.length - 1} bytes`));
    await fails(concat([data, new Uint8Array(1)]), new RegExp(`more than ${data.length} bytes`));
    // Files that fit the output buffer are read with one byte to spare (no read for the end).
    for (const n of [1, 100, 4096]) {
      const small = random(n);
      const { ts: smallTs } = await layer(dir, [["f", small]]);
      for (
        const [content, re] of [
          [concat([small, new Uint8Array(1)]), new RegExp(`more than ${n} bytes`)],
          [concat([small, random(5000)]), new RegExp(`more than ${n} bytes`)],
          [small.subarray(1), new RegExp(`file has ${n - 1} bytes`)],
        ] as const
      ) {
        await Deno.writeFile(`${dir}/f`, content);
        await assert.rejects(
          collect(rebuildTar(streamOf(smallTs), fileGetter(dir))),
          (e: unknown) => e instanceof ErrBadArchive && re.test(e.message),
          `${n} bytes: ${re}`,
        );
      }
      await Deno.writeFile(`${dir}/f`, small);
      assert.equal((await collect(rebuildTar(streamOf(smallTs), fileGetter(dir)))).length % 512, 0);
    }
    // Cancelling mid-file releases the open file.
    await Deno.writeFile(`${dir}/f`, data);
    let opened: FileStream | undefined;
    const getter: FileGetter = {
      get: (p) => Promise.resolve(opened = openFileStream(`${dir}/${p}`)),
      close: async () => {},
    };
    const r = rebuildTar(streamOf(ts), getter).getReader();
    await r.read();
    await r.cancel();
    assert.equal(opened!.readInto(new Uint8Array(1)), null);
  } finally {
    await removeTree(dir);
  }
});

import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import type { FileGetter } from "../lib/archive/file_getter.ts";
import { Crc64, crc64 } from "../lib/archive/crc64.ts";
import { emptyHeader, TypeFlag } from "../lib/archive/tar_header.ts";
import { readTar } from "../lib/archive/tar_reader.ts";
import {
  goJsonString,
  readTarSplit,
  rebuildTar,
  TarSplitPacker,
} from "../lib/archive/tar_split.ts";
import { writeTar } from "../lib/archive/tar_writer.ts";
import { isRoot, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import {
  collect,
  concat,
  gnuTar,
  gnuUntar,
  makeTree,
  sha256,
  streamOf,
} from "./archive_fixture.ts";

const enc = new TextEncoder();

/** Packs `tar`, returning the passthrough bytes and the gzip'd tar-split. */
async function pack(tar: Uint8Array, chunk = 65536): Promise<{ out: Uint8Array; ts: Uint8Array }> {
  const parts: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (c) => void parts.push(c.slice()) });
  const out = await collect(streamOf(tar, chunk).pipeThrough(new TarSplitPacker(sink)));
  return { out, ts: concat(parts) };
}

function dirGetter(dir: string): FileGetter {
  return {
    get: async (p) => (await Deno.open(`${dir}/${p}`)).readable,
    close: async () => {},
  };
}

async function gunzip(b: Uint8Array): Promise<string> {
  return new TextDecoder().decode(
    await collect(
      streamOf(b).pipeThrough(
        new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      ),
    ),
  );
}

Deno.test("crc64: matches Go's CRC-64/ISO for known inputs and any split", () => {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  // Values from tar-split files written by containers-storage (base64 YUw+7uLYEAA=, auYvNtJcFPA=).
  assert.equal(hex(crc64(enc.encode("hello\n"))), "614c3eeee2d81000");
  assert.equal(hex(crc64(enc.encode("z".repeat(1000)))), "6ae62f36d25c14f0");
  assert.equal(hex(crc64(new Uint8Array(0))), "0000000000000000");
  const data = crypto.getRandomValues(new Uint8Array(10_000));
  const c = new Crc64();
  for (let i = 0; i < data.length; i += 37) c.update(data.subarray(i, i + 37));
  assert.deepEqual(c.digest(), crc64(data));
  // Slices of 1-5 bytes: some end before reaching 4-byte alignment.
  c.reset();
  for (let i = 0, k = 1; i < data.length; i += k, k = k % 5 + 1) c.update(data.subarray(i, i + k));
  assert.deepEqual(c.digest(), crc64(data));
});

Deno.test("tar-split: JSON strings are encoded as Go's encoding/json does", () => {
  assert.equal(goJsonString("./a.txt"), '"./a.txt"');
  assert.equal(goJsonString('a<b>&c "q"\\'), '"a\\u003cb\\u003e\\u0026c \\"q\\"\\\\"');
  assert.equal(goJsonString("\b\f\n\r\t\x01\u2028"), '"\\u0008\\u000c\\n\\r\\t\\u0001\\u2028"');
});

Deno.test({
  name: "tar-split: GNU tar archives rebuild byte for byte from extracted files",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir();
    try {
      await makeTree(`${dir}/tree`);
      for (
        const [label, opts] of [["gnu", []], ["posix", [
          "--format=posix",
          "--xattrs",
          "--xattrs-include=*",
        ]]] as const
      ) {
        await gnuTar(`${dir}/tree`, `${dir}/${label}.tar`, [...opts]);
        const tar = await Deno.readFile(`${dir}/${label}.tar`);
        const { out, ts } = await pack(tar, 3000);
        assert.deepEqual(out, tar, "passthrough is unchanged");
        await gnuUntar(`${dir}/${label}.tar`, `${dir}/x-${label}`);
        const rebuilt = await collect(rebuildTar(streamOf(ts), dirGetter(`${dir}/x-${label}`)));
        assert.equal(await sha256(rebuilt), await sha256(tar), label);
      }
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "tar-split: interoperates with containers-storage 1.43 both ways",
  ignore: !isRoot || !referenceCli,
  async fn() {
    const dir = await tempDir();
    try {
      const root = { graph: `${dir}/g`, run: `${dir}/r`, driver: "vfs" };
      await makeTree(`${dir}/tree`);
      await gnuTar(`${dir}/tree`, `${dir}/l.tar`, [
        "--format=posix",
        "--xattrs",
        "--xattrs-include=*",
      ]);
      await gnuTar(`${dir}/tree`, `${dir}/gnu.tar`, ["--format=gnu"]);
      for (const name of ["l.tar", "gnu.tar"]) {
        const tar = await Deno.readFile(`${dir}/${name}`);
        const id = (await reference(root, ["import-layer", "-f", `${dir}/${name}`])).stdout.trim();
        const theirsPath = `${root.graph}/vfs-layers/${id}.tar-split.gz`;
        const theirs = await Deno.readFile(theirsPath);
        const { ts: ours } = await pack(tar);
        // Same layout, line for line, as the reference records.
        assert.equal(await gunzip(ours), await gunzip(theirs), `${name}: JSON differs`);
        // Theirs rebuilds with our code from the layer directory.
        const layerDir = `${root.graph}/vfs/dir/${id}`;
        const rebuilt = await collect(rebuildTar(streamOf(theirs), dirGetter(layerDir)));
        assert.equal(await sha256(rebuilt), await sha256(tar), `${name}: rebuild of theirs`);
        // Ours is accepted by the reference: diff -u rebuilds the tarball from it.
        await Deno.writeFile(theirsPath, ours);
        await reference(root, ["diff", "-u", "-f", `${dir}/diff.tar`, id]);
        assert.equal(
          await sha256(await Deno.readFile(`${dir}/diff.tar`)),
          await sha256(tar),
          `${name}: reference reads ours`,
        );
      }
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("tar-split: entry layout (dirs, empty files, trailing bytes, non-UTF-8 names)", async () => {
  const tar = await collect(writeTar([
    { header: { ...emptyHeader("d/", TypeFlag.Dir), mode: 0o755 } },
    { header: { ...emptyHeader("d/empty"), mode: 0o644 } },
    { header: { ...emptyHeader("d/f"), mode: 0o644, size: 6 }, body: [enc.encode("hello\n")] },
    {
      header: { ...emptyHeader("b\udcff.t"), mode: 0o644, size: 1 }, // the byte 0xff
      body: [enc.encode("x")],
    },
  ], { format: "pax" }));
  const padded = concat([tar, new Uint8Array(3000)]);
  const { ts } = await pack(padded, 700);
  const lines = (await gunzip(ts)).trimEnd().split("\n");
  const first = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(first), ["type", "payload", "position"]);
  assert.equal(atob(first.payload).slice(0, 3), "d/\0");
  assert.equal(lines[1], '{"type":1,"name":"d/","payload":null,"position":1}');
  assert.equal(lines[3], '{"type":1,"name":"d/empty","payload":null,"position":3}');
  assert.equal(lines[5], '{"type":1,"name":"d/f","size":6,"payload":"YUw+7uLYEAA=","position":5}');
  assert.match(
    lines[7],
    /^\{"type":1,"name_raw":"Yv8udA==","size":1,"payload":"[^"]+","position":7\}$/,
  );
  assert.equal(lines.at(-1), `{"type":2,"payload":"","position":${lines.length - 1}}`);
  const tail = JSON.parse(lines.at(-2)!);
  assert.equal(atob(tail.payload).length, 3000, "trailing bytes recorded after the end blocks");
  const entries = [];
  for await (const e of readTarSplit(streamOf(ts))) entries.push(e);
  assert.equal(entries[7].name, "b\udcff.t");
  const files: Record<string, string> = { "d/f": "hello\n", "b\udcff.t": "x" };
  const rebuilt = await collect(rebuildTar(streamOf(ts), {
    get: (p) => Promise.resolve(streamOf(enc.encode(files[p]))),
    close: async () => {},
  }));
  assert.deepEqual(rebuilt, padded);
});

Deno.test("tar-split: rebuild rejects changed content, wrong size and duplicate paths", async () => {
  const tar = await collect(writeTar([
    { header: { ...emptyHeader("f"), mode: 0o644, size: 6 }, body: [enc.encode("hello\n")] },
  ]));
  const { ts } = await pack(tar);
  const getter = (content: string): FileGetter => ({
    get: () => Promise.resolve(streamOf(enc.encode(content))),
    close: async () => {},
  });
  const fails = async (content: string, re: RegExp) => {
    await assert.rejects(collect(rebuildTar(streamOf(ts), getter(content))), (e: unknown) => {
      assert.ok(e instanceof ErrBadArchive);
      assert.match(e.message, re);
      assert.match(e.message, /"f"/);
      return true;
    });
  };
  await fails("HELLO\n", /checksum failed/);
  await fails("hello", /file has 5 bytes, tar-split recorded 6/);
  await fails("hello\nmore", /more than 6 bytes/);
  const dup = await collect(writeTar([
    { header: { ...emptyHeader("./a"), mode: 0o644 } },
    { header: { ...emptyHeader("a"), mode: 0o644 } },
  ]));
  await assert.rejects(pack(dup), /duplicates of file paths not supported/);
});

Deno.test("tar-split: malformed tar errors the passthrough and aborts the sink", async () => {
  const tar = await collect(writeTar([
    { header: { ...emptyHeader("f"), mode: 0o644, size: 6 }, body: [enc.encode("hello\n")] },
  ]));
  let aborted = false;
  const sink = new WritableStream<Uint8Array>({ abort: () => void (aborted = true) });
  await assert.rejects(
    collect(streamOf(tar.subarray(0, 515)).pipeThrough(new TarSplitPacker(sink))),
    /truncated body/,
  );
  assert.ok(aborted);
});

Deno.test("tar-split: throughput of reading + recording a ~100 MB generated tar", async () => {
  const body = new Uint8Array(1 << 20);
  for (let i = 0; i < body.length; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
  async function* entries() {
    for (let i = 0; i < 1200; i++) {
      const size = i % 20 === 0 ? body.length : 40_000;
      yield {
        header: { ...emptyHeader(`dir${i % 50}/file${i}`), mode: 0o644, size },
        body: [body.subarray(0, size)],
      };
    }
  }
  const tar = await collect(writeTar(entries()));
  const mb = tar.length / 1e6;
  let t = performance.now();
  let n = 0;
  for await (const e of readTar(streamOf(tar, 65536))) {
    n++;
    for await (const _ of e.body) { /* drain */ }
  }
  const readRate = mb / ((performance.now() - t) / 1000);
  t = performance.now();
  const { out } = await pack(tar);
  const packRate = mb / ((performance.now() - t) / 1000);
  assert.equal(out.length, tar.length);
  assert.equal(n, 1200);
  console.log(
    `  ${mb.toFixed(0)} MB: readTar ${readRate.toFixed(0)} MB/s, TarSplitPacker ${
      packRate.toFixed(0)
    } MB/s`,
  );
});

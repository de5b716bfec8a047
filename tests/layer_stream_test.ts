import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import { Compression, compressStream } from "../lib/archive/compression.ts";
import { emptyHeader, type TarHeader } from "../lib/archive/tar_header.ts";
import { inspectLayer } from "../lib/archive/layer_stream.ts";
import { writeTar } from "../lib/archive/tar_writer.ts";
import { isRoot, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import { collect, concat, gnuTar, makeTree, streamOf } from "./archive_fixture.ts";

const enc = new TextEncoder();

function memorySink(): { sink: WritableStream<Uint8Array>; bytes: () => Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    sink: new WritableStream({ write: (c) => void parts.push(c.slice()) }),
    bytes: () => concat(parts),
  };
}

async function gunzip(b: Uint8Array): Promise<string> {
  const ds = new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>;
  return new TextDecoder().decode(await collect(streamOf(b).pipeThrough(ds)));
}

async function tool(cmd: string, input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args: ["-c"], stdin: "piped", stdout: "piped" }).spawn();
  const w = child.stdin.getWriter();
  await w.write(input);
  await w.close();
  return (await child.output()).stdout;
}

Deno.test({
  name: "layer stream: digests, sizes, compression, id sets and tar-split match containers-storage",
  ignore: !isRoot || !referenceCli,
  async fn() {
    const dir = await tempDir();
    try {
      const root = { graph: `${dir}/g`, run: `${dir}/r`, driver: "vfs" };
      await makeTree(`${dir}/tree`);
      await gnuTar(`${dir}/tree`, `${dir}/l.tar`, ["--format=posix"]);
      const tar = await Deno.readFile(`${dir}/l.tar`);
      const inputs: [string, Uint8Array][] = [
        ["l.tar", tar],
        ["l.tar.gz", await collect(compressStream(streamOf(tar), Compression.Gzip))],
        ["l.tar.zst", await collect(compressStream(streamOf(tar), Compression.Zstd))],
        ["l.tar.xz", await tool("xz", tar)],
        ["l.tar.bz2", await tool("bzip2", tar)],
      ];
      for (const [name, bytes] of inputs) {
        await Deno.writeFile(`${dir}/${name}`, bytes);
        const id = (await reference(root, ["import-layer", "-f", `${dir}/${name}`])).stdout.trim();
        const layers = JSON.parse(await Deno.readTextFile(`${root.graph}/vfs-layers/layers.json`));
        const ref = layers.find((l: { id: string }) => l.id === id);
        const { sink, bytes: tsBytes } = memorySink();
        const { tar: out, done } = inspectLayer(streamOf(bytes, 5000), sink);
        assert.deepEqual(await collect(out), tar, "the tar flows on unchanged");
        const info = await done;
        assert.deepEqual(info, {
          compression: ref.compression ?? 0,
          compressedDigest: ref["compressed-diff-digest"],
          compressedSize: ref["compressed-size"],
          uncompressedDigest: ref["diff-digest"],
          uncompressedSize: ref["diff-size"],
          uids: ref.uidset,
          gids: ref.gidset,
        }, name);
        assert.deepEqual(info.uids, [0, 1234]);
        const theirs = await Deno.readFile(`${root.graph}/vfs-layers/${id}.tar-split.gz`);
        assert.equal(await gunzip(tsBytes()), await gunzip(theirs), `${name}: tar-split`);
      }
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("layer stream: whiteouts do not count in the id sets", async () => {
  const h = (name: string, uid: number, gid: number): TarHeader => ({
    ...emptyHeader(name),
    mode: 0o644,
    uid,
    gid,
  });
  const tar = await collect(writeTar([
    { header: h("a", 10, 20) },
    { header: h("dir/.wh.gone", 99, 98) },
    { header: h("dir/.wh..wh..opq", 97, 96) },
    { header: h("b", 11, 20) },
  ]));
  const { tar: out, done } = inspectLayer(streamOf(tar), new WritableStream());
  await collect(out);
  const info = await done;
  assert.deepEqual([info.uids, info.gids], [[10, 11], [20]]);
  assert.equal(info.compression, Compression.Uncompressed);
});

Deno.test("layer stream: malformed input errors the tar and rejects done", async () => {
  const gz = await collect(
    compressStream(streamOf(enc.encode("not a tar archive at all".repeat(40))), Compression.Gzip),
  );
  const { tar, done } = inspectLayer(streamOf(gz), new WritableStream());
  await assert.rejects(
    collect(tar),
    (e: unknown) => e instanceof ErrBadArchive && /checksum/.test(e.message),
  );
  await assert.rejects(done, ErrBadArchive);
  const garbage = concat([new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]), enc.encode("junk junk junk")]);
  const bad = inspectLayer(streamOf(garbage), new WritableStream());
  await assert.rejects(collect(bad.tar), /invalid zstd data/);
  await assert.rejects(bad.done, /invalid zstd data/);
});

Deno.test("layer stream: back-pressure keeps a slow reader from buffering the input", async () => {
  const chunk = new Uint8Array(64 << 10);
  let produced = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      produced += chunk.length;
      ctl.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  const size = 512 << 20; // 512 MiB body: never fits the budget below if buffered
  const header = { ...emptyHeader("big"), mode: 0o644, size };
  async function* limited() {
    let left = size;
    for await (const c of body) {
      const part = c.subarray(0, Math.min(c.length, left));
      left -= part.length;
      yield part;
      if (left === 0) break;
    }
  }
  const src = writeTar([{ header, body: limited() }]);
  const { tar } = inspectLayer(src, new WritableStream());
  const reader = tar.getReader();
  let consumed = 0;
  for (let i = 0; i < 100; i++) consumed += (await reader.read()).value!.length;
  await new Promise((r) => setTimeout(r, 50));
  const ahead = produced - consumed;
  assert.ok(ahead < 8 << 20, `read ahead ${ahead} bytes`);
  await reader.cancel();
});

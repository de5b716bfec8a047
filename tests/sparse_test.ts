/**
 * GNU sparse files: the three PAX formats GNU tar writes (0.0, 0.1, 1.0) are
 * applied as the expanded files, with holes; old GNU sparse entries are
 * refused as containers-storage 1.43 refuses them; malformed maps are
 * rejected; layers holding sparse files rebuild byte for byte, by us and by
 * the reference from our tar-split, and the reference's tar-split of such a
 * layer rebuilds as the reference's own `diff` does.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ErrBadArchive } from "../lib/errors.ts";
import { applyTar } from "../lib/archive/apply.ts";
import { readTar } from "../lib/archive/tar_reader.ts";
import { readTarSplit, rebuildTar, TarSplitPacker } from "../lib/archive/tar_split.ts";
import type { FileGetter } from "../lib/archive/file_getter.ts";
import { Store } from "../lib/store/mod.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { collect, gnuTar, sha256, streamOf } from "./archive_fixture.ts";
import { storeOpts } from "./store_helpers.ts";

const enc = new TextEncoder();
const MiB = 1 << 20;

/** Writes `data` at each offset of a file of `size` bytes that is otherwise a hole. */
async function sparseFile(path: string, size: number, parts: [number, Uint8Array][]) {
  const f = await Deno.open(path, { create: true, write: true, truncate: true });
  for (const [off, data] of parts) {
    await f.seek(off, Deno.SeekMode.Start);
    await f.write(data);
  }
  await f.truncate(size);
  f.close();
}

function noise(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

/** The source tree: one hole-heavy file, one with several regions and a trailing hole. */
async function makeSource(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await sparseFile(join(dir, "sparse"), 10 * MiB, [[5_000_000, enc.encode("hello\n")]]);
  await sparseFile(join(dir, "multi"), 4 * MiB + 17, [
    [0, enc.encode("head")],
    [MiB, noise(MiB + MiB / 2, 1)], // more than one tar-split segment
    [3 * MiB + 100, noise(5000, 2)],
  ]);
  await Deno.writeTextFile(join(dir, "plain"), "x\n");
}

/** GNU tar `--sparse --format=posix` at each map version. */
const FORMATS: [string, string[]][] = [
  ["0.0", ["--sparse-version=0.0"]],
  ["0.1", ["--sparse-version=0.1"]],
  ["1.0", []],
];

async function posixSparseTar(src: string, out: string, extra: string[]): Promise<Uint8Array> {
  await gnuTar(src, out, ["--sparse", "--format=posix", ...extra]);
  return await Deno.readFile(out);
}

/** Blocks (512 bytes) the file occupies. */
function blocks(path: string): number {
  return Deno.statSync(path).blocks ?? 0;
}

Deno.test({
  name: "sparse: PAX formats 0.0, 0.1 and 1.0 apply as the expanded files, with holes",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir("sparse-");
    try {
      await makeSource(join(dir, "src"));
      for (const [version, extra] of FORMATS) {
        const tar = await posixSparseTar(join(dir, "src"), join(dir, `${version}.tar`), extra);
        const headers = [];
        // Small chunks: maps and headers arrive split across reads.
        for await (const e of readTar(streamOf(tar, 333))) headers.push(e.header);
        const multi = headers.find((h) => h.name === "./multi")!;
        assert.ok(multi, `${version}: real name, not GNUSparseFile.N`);
        assert.equal(multi.size, 4 * MiB + 17, version);
        assert.deepEqual(multi.sparse?.map((r) => r.offset), [0, MiB, 3 * MiB], version);

        const out = join(dir, `out-${version}`);
        await Deno.mkdir(out);
        const { size } = await applyTar(streamOf(tar, 4096), out, { whiteoutFormat: "aufs" });
        assert.equal(size, 10 * MiB + 4 * MiB + 17 + 2, `${version}: logical sizes`);
        for (const name of ["sparse", "multi", "plain"]) {
          const want = await Deno.readFile(join(dir, "src", name));
          const got = await Deno.readFile(join(out, name));
          assert.equal(got.length, want.length, `${version} ${name} size`);
          assert.ok(got.every((b, i) => b === want[i]), `${version} ${name} content`);
        }
        assert.ok(blocks(join(out, "sparse")) <= 16, `${version}: sparse has holes`);
        assert.ok(blocks(join(out, "multi")) < 3200, `${version}: multi has holes`);
        assert.equal((await Deno.stat(join(out, "multi"))).mode! & 0o777, 0o644);
      }
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "sparse: a 10 GiB logical file applies and round-trips without materialising it",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir("sparse-big-");
    try {
      await Deno.mkdir(join(dir, "src"));
      await sparseFile(join(dir, "src/huge"), 10 * 1024 * MiB, [[9 * 1024 * MiB, noise(3, 3)]]);
      const tar = await posixSparseTar(join(dir, "src"), join(dir, "big.tar"), []);
      assert.ok(tar.length < 64 * 1024);
      await Deno.mkdir(join(dir, "out"));
      const before = Deno.memoryUsage().rss;
      const chunks: Uint8Array[] = [];
      const split = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
      await applyTar(streamOf(tar).pipeThrough(new TarSplitPacker(split)), join(dir, "out"), {
        whiteoutFormat: "aufs",
      });
      assert.ok(Deno.memoryUsage().rss - before < 256 * MiB, "no expanded buffer");
      const st = await Deno.stat(join(dir, "out/huge"));
      assert.equal(st.size, 10 * 1024 * MiB);
      assert.ok((st.blocks ?? 0) <= 16);
      const rebuilt = await collect(rebuildTar(streamOf(concatAll(chunks)), noFiles));
      assert.equal(await sha256(rebuilt), await sha256(tar));
    } finally {
      await removeTree(dir);
    }
  },
});

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A getter that must not be asked for anything: sparse files live in the tar-split. */
const noFiles: FileGetter = {
  get: (name) => Promise.reject(new Error(`rebuild asked for ${name}`)),
  close: () => Promise.resolve(),
};

Deno.test({
  name: "sparse: old GNU sparse entries (type S) are refused like containers-storage 1.43",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir("sparse-gnu-");
    try {
      await makeSource(join(dir, "src"));
      await gnuTar(join(dir, "src"), join(dir, "gnu.tar"), ["--sparse", "--format=gnu"]);
      const tar = await Deno.readFile(join(dir, "gnu.tar"));
      await Deno.mkdir(join(dir, "out"));
      await assert.rejects(
        applyTar(streamOf(tar), join(dir, "out"), { whiteoutFormat: "aufs" }),
        (e: Error) =>
          e instanceof ErrBadArchive && /"\.\/(sparse|multi)"/.test(e.message) &&
          /unhandled tar header type 83/.test(e.message) && /at byte offset \d+/.test(e.message),
      );
      if (referenceCli) {
        const r = await run(referenceCli, [
          "-g",
          join(dir, "g"),
          "-R",
          join(dir, "r"),
          "-s",
          "vfs",
          "import-layer",
          "-f",
          join(dir, "gnu.tar"),
        ]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /unhandled tar header type 83/);
      }
    } finally {
      await removeTree(dir);
    }
  },
});

// --- hand-built archives for malformed maps ---

function octal(b: Uint8Array, off: number, len: number, v: number): void {
  b.set(enc.encode(v.toString(8).padStart(len - 1, "0") + "\0"), off);
}

function block(name: string, type: string, size: number): Uint8Array {
  const b = new Uint8Array(512);
  b.set(enc.encode(name), 0);
  octal(b, 100, 8, 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, 0);
  b[156] = type.charCodeAt(0);
  b.set(enc.encode("ustar\x0000"), 257);
  b.fill(0x20, 148, 156);
  octal(b, 148, 7, b.reduce((s, c) => s + c, 0));
  return b;
}

function padded(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 512) * 512);
  out.set(b);
  return out;
}

function paxRecords(recs: [string, string][]): Uint8Array {
  let text = "";
  for (const [k, v] of recs) {
    const body = ` ${k}=${v}\n`;
    let n = body.length + 1;
    while (String(n).length + body.length !== n) n++;
    text += n + body;
  }
  return enc.encode(text);
}

/** One PAX-sparse entry (records + raw data) followed by the end-of-archive blocks. */
function sparseTar(recs: [string, string][], data: Uint8Array, type = "0"): Uint8Array {
  const pax = paxRecords(recs);
  return concatAll([
    block("./PaxHeaders/f", "x", pax.length),
    padded(pax),
    block("./GNUSparseFile.1/f", type, data.length),
    padded(data),
    new Uint8Array(1024),
  ]);
}

const V1 = [["GNU.sparse.major", "1"], ["GNU.sparse.minor", "0"], [
  "GNU.sparse.name",
  "./f",
], ["GNU.sparse.realsize", "4096"]] as [string, string][];
const V01 = (map: string, n: number, size = 4096): [string, string][] => [
  ["GNU.sparse.size", String(size)],
  ["GNU.sparse.numblocks", String(n)],
  ["GNU.sparse.name", "./f"],
  ["GNU.sparse.map", map],
];
const map1x0 = (text: string, data: Uint8Array) => concatAll([padded(enc.encode(text)), data]);

async function readAllOf(tar: Uint8Array): Promise<{ name: string; body: Uint8Array }[]> {
  const out = [];
  for await (const e of readTar(streamOf(tar, 100))) {
    const parts: Uint8Array[] = [];
    for await (const b of e.body) parts.push(b.slice());
    out.push({ name: e.header.name, body: concatAll(parts) });
  }
  return out;
}

Deno.test("sparse: hand-built maps of every format read as their regions", async () => {
  const data = noise(30, 9);
  const cases: [string, Uint8Array][] = [
    ["0.1", sparseTar(V01("100,10,2000,20,4096,0", 3), data)],
    [
      "0.0",
      sparseTar([
        ["GNU.sparse.size", "4096"],
        ["GNU.sparse.numblocks", "2"],
        ["GNU.sparse.offset", "100"],
        ["GNU.sparse.numbytes", "10"],
        ["GNU.sparse.offset", "2000"],
        ["GNU.sparse.numbytes", "20"],
        ["path", "./f"],
      ], data),
    ],
    ["1.0", sparseTar(V1, map1x0("2\n100\n10\n2000\n20\n", data))],
  ];
  for (const [label, tar] of cases) {
    const entries = [];
    for await (const e of readTar(streamOf(tar, 7))) {
      const parts: Uint8Array[] = [];
      for await (const b of e.body) parts.push(b.slice());
      entries.push({ h: e.header, body: concatAll(parts) });
    }
    assert.equal(entries.length, 1, label);
    assert.equal(entries[0].h.name, "./f", label);
    assert.equal(entries[0].h.size, 4096, label);
    assert.deepEqual(entries[0].h.sparse, [
      { offset: 100, length: 10 },
      { offset: 2000, length: 20 },
    ], label);
    assert.deepEqual(entries[0].body, data, label);
    assert.equal(entries[0].h.pax["GNU.sparse.map"], undefined, `${label}: records consumed`);
  }
});

Deno.test("sparse: malformed maps are rejected with ErrBadArchive naming the entry", async () => {
  const d30 = noise(30, 4);
  const cases: [string, Uint8Array, RegExp][] = [
    ["overlap", sparseTar(V01("0,20,10,10", 2), d30), /overlaps the previous one/],
    ["out of order", sparseTar(V01("100,20,0,10", 2), d30), /overlaps the previous one/],
    ["beyond size", sparseTar(V01("4090,30", 1), d30), /extends beyond the file size 4096/],
    ["negative", sparseTar(V01("-5,30", 1), d30), /negative GNU sparse region/],
    ["negative size", sparseTar(V01("0,30", 1, -1), d30), /negative GNU sparse file size/],
    ["count mismatch", sparseTar(V01("0,10,20,20", 3), d30), /4 numbers for 3 regions/],
    ["not a number", sparseTar(V01("0,1x,20,20", 2), d30), /invalid GNU sparse map length/],
    ["bad numblocks", sparseTar(V01("0,30", NaN), d30), /invalid GNU sparse numblocks/],
    ["too little data", sparseTar(V01("0,40", 1), d30), /describes 40 data bytes.*stores 30/],
    ["too much data", sparseTar(V01("0,20", 1), d30), /describes 20 data bytes.*stores 30/],
    [
      "0.0 numbytes first",
      sparseTar([["GNU.sparse.numbytes", "1"], ["GNU.sparse.offset", "0"]], d30),
      /misplaced PAX record GNU.sparse.numbytes/,
    ],
    [
      "1.0 absurd count",
      sparseTar(V1, map1x0("99999999999\n", d30)),
      /absurd GNU sparse region count 99999999999/,
    ],
    [
      "1.0 negative count",
      sparseTar(V1, map1x0("-1\n", d30)),
      /absurd GNU sparse region count -1/,
    ],
    [
      "1.0 map past the data",
      sparseTar(V1, padded(enc.encode("3\n1\n"))),
      /GNU sparse map runs past the entry's data/,
    ],
    [
      "1.0 map in an entry too small",
      sparseTar(V1, new Uint8Array(0)),
      /GNU sparse map runs past the entry's data/,
    ],
    ["1.0 bad number", sparseTar(V1, map1x0("1\nzz\n30\n", d30)), /invalid GNU sparse map offset/],
    [
      "1.0 map data mismatch",
      sparseTar(V1, map1x0("1\n0\n31\n", d30)),
      /describes 31 data bytes, the entry stores 30/,
    ],
    [
      "sparse directory",
      sparseTar(V01("0,0", 1), new Uint8Array(0), "5"),
      /GNU sparse records on an entry of type "5"/,
    ],
  ];
  for (const [label, tar, re] of cases) {
    await assert.rejects(readAllOf(tar), (e: Error) => {
      assert.ok(e instanceof ErrBadArchive, `${label}: ${e}`);
      assert.match(e.message, re, label);
      assert.match(e.message, /"\.\/(f|GNUSparseFile\.1\/f|PaxHeaders\/f)"/, label);
      assert.match(e.message, /at byte offset \d+/, label);
      return true;
    }, label);
  }
  // The stream ends inside a 1.0 map.
  const cut = sparseTar(V1, map1x0("1\n0\n30\n", d30)).subarray(0, 1024 + 512 + 100);
  await assert.rejects(readAllOf(cut), /truncated GNU sparse map/);
  // An unknown map version is not a sparse file (as in Go): its data is read as it is.
  const unknown = await readAllOf(
    sparseTar([["GNU.sparse.major", "2"], ["GNU.sparse.minor", "0"]], d30),
  );
  assert.deepEqual(unknown.map((e) => [e.name, e.body]), [["./GNUSparseFile.1/f", d30]]);
});

// --- through the store, against the reference CLI ---

function refOf(root: string) {
  return { graph: join(root, "g"), run: join(root, "r"), driver: "vfs" };
}

Deno.test({
  name: "sparse: a layer we import rebuilds byte for byte, by us and by the reference",
  ignore: !isRoot || !referenceCli,
  async fn() {
    const root = await tempDir("sparse-store-");
    try {
      await makeSource(join(root, "src"));
      const s = await Store.open(storeOpts(root));
      const tars: [string, Uint8Array][] = [];
      for (const [version, extra] of FORMATS) {
        const tar = await posixSparseTar(join(root, "src"), join(root, `${version}.tar`), extra);
        const { layer } = await s.putLayer({ diff: streamOf(tar, 5000) });
        tars.push([layer.id, tar]);
        const ours = await collect(await s.diff("", layer.id, { compression: 0 }));
        assert.equal(await sha256(ours), await sha256(tar), `our diff, ${version}`);
        const dir = join(root, "g/vfs/dir", layer.id);
        assert.ok(blocks(join(dir, "sparse")) <= 16, `${version}: written sparse`);
        // Sparse files are raw segments of at most 1 MiB; only the plain file is a file entry.
        const files = [];
        let largest = 0;
        const split = await Deno.open(join(root, "g/vfs-layers", `${layer.id}.tar-split.gz`));
        for await (const e of readTarSplit(split.readable)) {
          if (e.type === 1 && e.payload) files.push(e.name);
          if (e.type === 2) largest = Math.max(largest, e.payload?.length ?? 0);
        }
        assert.deepEqual(files, ["./plain"], version);
        assert.equal(largest, MiB, version);
      }
      await s.shutdown(false);
      for (const [id, tar] of tars) {
        const out = join(root, `${id}.out`);
        await reference(refOf(root), ["diff", "-u", "-f", out, id]);
        assert.equal(await sha256(await Deno.readFile(out)), await sha256(tar), "reference diff");
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "sparse: a layer the reference imported rebuilds as the reference's own diff",
  ignore: !isRoot || !referenceCli,
  async fn() {
    const root = await tempDir("sparse-ref-");
    try {
      await makeSource(join(root, "src"));
      const tar = join(root, "layer.tar");
      await posixSparseTar(join(root, "src"), tar, []);
      const ref = refOf(root);
      const id = (await reference(ref, ["import-layer", "-f", tar])).stdout.trim().split(/\s+/)[0];
      const out = join(root, "ref.out");
      await reference(ref, ["diff", "-u", "-f", out, id]);
      const theirs = await Deno.readFile(out);
      const s = await Store.open(storeOpts(root));
      try {
        const ours = await collect(await s.diff("", id, { compression: 0 }));
        assert.equal(await sha256(ours), await sha256(theirs));
      } finally {
        await s.shutdown(false);
      }
      // The reference records the expanded file, so its diff is not what was applied.
      assert.notEqual(await sha256(theirs), await sha256(await Deno.readFile(tar)));
    } finally {
      await removeTree(root);
    }
  },
});

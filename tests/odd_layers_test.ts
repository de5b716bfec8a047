/**
 * Layer tarballs that the reference handles in its own way: names ending in
 * `/`, names with `..`, names, link targets and xattr names that are not
 * UTF-8, AUFS bookkeeping, global headers, unusual types and ends of
 * stream. Each tarball is imported by our CLI and by the reference into
 * twin stores (vfs and overlay): both accept it or both refuse it; when
 * accepted, the applied trees must be equal at the level of stat and xattrs
 * (raw name bytes compared), the tar-split files equal, and `diff -u` by
 * either tool of either store must return the input byte for byte, except
 * where the expectation says otherwise.
 * @module
 */

import assert from "node:assert/strict";
import { isRoot, referenceCli, type RunResult } from "./helpers.ts";
import { dropRoot, ID, newRoot, ours, type Root, theirs } from "./cli_harness.ts";
import { buildTar, type FixtureEntry } from "./tar_fixtures.ts";

const ignore = !isRoot || !referenceCli;
const DRIVERS = ["vfs", "overlay"];

/** The directory holding the layer's files as applied. */
function layerDir(root: Root): string {
  return root.driver === "vfs"
    ? `${root.graph}/vfs/dir/${ID.base}`
    : `${root.graph}/overlay/${ID.base}/diff`;
}

/** Output of a shell pipeline as printable text (raw name bytes shown as octal escapes). */
async function sh(script: string): Promise<string> {
  const out = await new Deno.Command("bash", { args: ["-c", script], stderr: "inherit" }).output();
  assert.equal(out.code, 0, script);
  return new TextDecoder().decode(out.stdout);
}

/**
 * Every entry below `dir` with its type, mode and owner, the size, link
 * target and mtime of files and symlinks (directories may have been made
 * implicitly and whiteouts are made at the time of the apply), and every
 * xattr (names and values), with non-printable bytes of names escaped so
 * that different bytes never compare equal.
 */
async function tree(dir: string): Promise<string> {
  const entries = await sh(
    `cd '${dir}' && find . -mindepth 1 \\( -type f -o -type l \\) ` +
      `-printf '%p|%y|%m|%U:%G|%s|%l|%T@\\0' -o -printf '%p|%y|%m|%U:%G\\0' | ` +
      `LC_ALL=C sort -z | od -An -c -w32`,
  );
  // The kernel's own overlay bookkeeping in an upper directory differs from mount to mount.
  const attrs = await sh(
    `cd '${dir}' && LC_ALL=C getfattr -R -h -d -m - -e hex . 2>/dev/null | ` +
      `LC_ALL=C sed -E '/^trusted.overlay.(uuid|origin|impure)=/d'`,
  );
  return `${entries}\n${attrs}`;
}

/** `diff -u` of the layer by `tool`, as bytes (written to a file: stdout would be decoded). */
async function diffBytes(tool: typeof ours, root: Root): Promise<Uint8Array | string> {
  const out = `${root.dir}/diff-${crypto.randomUUID()}.tar`;
  const r = await tool(root, ["diff", "-u", "-f", out, ID.base]);
  if (r.code !== 0) return r.stderr;
  return await Deno.readFile(out);
}

/** The tar-split file of the layer, decompressed. */
async function tarSplit(root: Root): Promise<string> {
  return await sh(`zcat '${root.graph}/${root.driver}-layers/${ID.base}.tar-split.gz'`);
}

/** Twin stores on one driver: `a` written by our CLI, `b` by the reference. */
interface Twins {
  a: Root;
  b: Root;
}

/** Imports `tar` with each tool into its own new store; returns the stores and the results. */
async function importBoth(
  tar: Uint8Array,
  driver: string,
): Promise<Twins & { ra: RunResult; rb: RunResult }> {
  const a = await newRoot("odd-ours-", driver), b = await newRoot("odd-ref-", driver);
  const [ra, rb] = [await importWith(ours, a, tar), await importWith(theirs, b, tar)];
  return { a, b, ra, rb };
}

async function importWith(tool: typeof ours, root: Root, tar: Uint8Array): Promise<RunResult> {
  await Deno.mkdir(root.dir, { recursive: true });
  await Deno.writeFile(`${root.dir}/in.tar`, tar);
  return await tool(root, ["import-layer", "-i", ID.base, "-f", `${root.dir}/in.tar`]);
}

/** What {@linkcode bothWays} expects besides equal trees. */
interface Expect {
  /** Per tool, the drivers on which its `diff -u` fails (on either store). */
  diffFails?: { ours?: string[]; theirs?: string[] };
  /**
   * What `diff -u` by either tool of the reference's store returns instead
   * of the input ("other": some other bytes), as the reference's tar-split
   * records the layer otherwise (see README).
   */
  theirStoreDiff?: Uint8Array | "other";
  /** Our tar-split differs from the reference's (deliberately; see README). */
  tarSplitDiffers?: boolean;
  /** Checks on our applied tree. */
  check?: (dir: string, driver: string) => Promise<void>;
}

/** Imports `tar` with both tools on each driver; both must accept it (see module doc). */
async function bothWays(
  input: Uint8Array | FixtureEntry[],
  expect: Expect = {},
): Promise<void> {
  const tar = input instanceof Uint8Array ? input : buildTar(input);
  for (const driver of DRIVERS) {
    const { a, b, ra, rb } = await importBoth(tar, driver);
    try {
      assert.equal(ra.code, 0, `${driver} import-layer by ours: ${ra.stderr}`);
      assert.equal(rb.code, 0, `${driver} import-layer by theirs: ${rb.stderr}`);
      assert.equal(await tree(layerDir(a)), await tree(layerDir(b)), `${driver}: applied trees`);
      if (!expect.tarSplitDiffers) {
        assert.equal(await tarSplit(a), await tarSplit(b), `${driver}: tar-split`);
      }
      await expect.check?.(layerDir(a), driver);
      for (const root of [a, b]) {
        for (const tool of [ours, theirs]) {
          const what = `${driver}: diff -u by ${tool.name} of the store written by ${
            root === a ? "ours" : "theirs"
          }`;
          const got = await diffBytes(tool, root);
          if (expect.diffFails?.[tool.name as "ours" | "theirs"]?.includes(driver)) {
            assert.equal(typeof got, "string", `${what} now works`);
            continue;
          }
          assert.ok(got instanceof Uint8Array, `${what}: ${got}`);
          const want: Uint8Array | "other" = root === b ? expect.theirStoreDiff ?? tar : tar;
          if (want === "other") assert.notDeepEqual(got, tar, what);
          else assert.deepEqual(got, want, what);
        }
      }
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  }
}

/** Both tools refuse `tar` on each driver with a message matching `why`; ours leaves no layer. */
async function bothRefuse(
  input: Uint8Array | FixtureEntry[],
  why: RegExp,
  drivers = DRIVERS,
): Promise<void> {
  const tar = input instanceof Uint8Array ? input : buildTar(input);
  for (const driver of drivers) {
    const { a, b, ra, rb } = await importBoth(tar, driver);
    try {
      assert.notEqual(rb.code, 0, `${driver}: the reference accepts it now`);
      assert.match(rb.stderr, why, `${driver}: the reference's error: ${rb.stderr}`);
      assert.notEqual(ra.code, 0, `${driver}: ours accepts it`);
      assert.match(ra.stderr, why, `${driver}: our error: ${ra.stderr}`);
      assert.equal((await ours(a, ["layers", "-q"])).stdout, "", `${driver}: a layer is left`);
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  }
}

Deno.test({
  name: "odd layers: a regular file whose name ends in / applies and diffs back like the reference",
  ignore,
  async fn() {
    await bothWays([
      { name: "file/", data: "hello\n" },
      { name: "d/", type: "5" },
      { name: "d/inner/", data: "in d\n", mode: 0o600 },
    ]);
  },
});

Deno.test({
  name: "odd layers: entries with .. are confined to the layer like the reference's chrooted apply",
  ignore,
  async fn() {
    // The reference's own diff opens "<layer>/../x": it fails on these layers, ours does not.
    await bothWays([
      { name: "../x", data: "x\n" },
      { name: "a/../../y", data: "y\n" },
      { name: "../d/", type: "5", mode: 0o700 },
      { name: "t", data: "t\n" },
      { name: "hl", type: "1", link: "../t" },
      { name: "sub/hl2", type: "1", link: "q/../../../t" },
      { name: "../../sub/../z", type: "2", link: "../../t" },
    ], {
      diffFails: { theirs: DRIVERS },
      check: async (dir) => {
        assert.equal(await Deno.readTextFile(`${dir}/x`), "x\n");
        assert.equal(await Deno.readTextFile(`${dir}/y`), "y\n");
        assert.equal((await Deno.lstat(`${dir}/sub/hl2`)).nlink, 3);
      },
    });
    // Whiteouts and opaque markers under "..": carried out (vfs) or recorded (overlay) inside.
    await bothWays([
      { name: "../d/", type: "5" },
      { name: "../d/.wh..wh..opq", data: "" },
      { name: "../.wh.gone", data: "" },
      { name: "e/../../.wh.gone2", data: "" },
    ]);
  },
});

const enc = new TextEncoder();

/** Joins byte arrays. */
function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) (out.set(p, off), off += p.length);
  return out;
}

/** The entries of `entries` without the end-of-archive blocks, to splice tarballs together. */
function entriesOnly(entries: FixtureEntry[]): Uint8Array {
  return buildTar(entries).subarray(0, -1024);
}

/** One PAX record ("<len> <key>=<value>\n"). */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let n = body.length + 1;
  while (String(n).length + body.length !== n) n++;
  return `${n}${body}`;
}

const END = new Uint8Array(1024);

/** A sparse file (4 KiB of data in 300 kB) as GNU tar writes it with `--sparse-version=0.0`. */
async function sparse00(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "odd-sparse-" });
  try {
    const f = await Deno.open(`${dir}/s`, { create: true, write: true });
    await f.seek(100000, Deno.SeekMode.Start);
    await f.write(enc.encode("data in a hole"));
    await f.truncate(300000);
    f.close();
    const out = await new Deno.Command("tar", {
      args: ["--sparse", "--format=posix", "--sparse-version=0.0", "-C", dir, "-cf", "-", "s"],
    }).output();
    assert.equal(out.code, 0);
    // The PAX header and the file, without GNU tar's end blocks and record padding.
    let off = 0;
    for (let i = 0; i < 2; i++) {
      const size = parseInt(new TextDecoder().decode(out.stdout.subarray(off + 124, off + 135)), 8);
      off += 512 + Math.ceil(size / 512) * 512;
    }
    return out.stdout.subarray(0, off);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "odd layers: AUFS bookkeeping is skipped with its parents made (vfs) or kept (overlay), " +
    "and hard links into .wh..wh.plnk copy the kept file",
  ignore,
  async fn() {
    // 1.43's diff of the vfs layer fails (the .wh..wh.plnk file is not there), and so does ours.
    await bothWays([
      { name: ".wh..wh.plnk/", type: "5", mode: 0o700 },
      { name: ".wh..wh.plnk/123", data: "linked\n", mode: 0o640, uid: 7, mtime: 1500000000 },
      { name: ".wh..wh.aufs", data: "" },
      { name: "./.wh..wh.plnk/x/y", data: "" },
      { name: "a", type: "1", link: ".wh..wh.plnk/123" },
      { name: "sub/b", type: "1", link: "./.wh..wh.plnk/123" },
      { name: "d/.wh..wh.plnk/9", data: "not bookkeeping: not at the root\n" },
    ], {
      diffFails: { ours: ["vfs"], theirs: ["vfs"] },
      check: async (dir, driver) => {
        const st = await Deno.lstat(`${dir}/a`);
        assert.equal(await Deno.readTextFile(`${dir}/sub/b`), "linked\n");
        if (driver !== "vfs") return; // on overlay, a hard link like any other
        assert.equal(st.nlink, 1);
        assert.equal(st.mode! & 0o7777, 0o640);
        assert.equal(st.uid, 7);
        assert.equal(st.mtime!.getTime(), 1500000000_000);
      },
    });
    const none = [{ name: "a", type: "1", link: ".wh..wh.plnk/none" }];
    await bothRefuse(none, /invalid aufs hardlink/, ["vfs"]);
    await bothRefuse(none, /no such file|does not exist/, ["overlay"]);
  },
});

Deno.test({
  name: "odd layers: a global header creates the parent directory its name has",
  ignore,
  async fn() {
    const comment = paxRecord("comment", "made by hand");
    await bothWays([
      { name: "PaxHeaders/0", type: "g", data: comment },
      { name: "x/y/PaxHeaders/1", type: "g", data: comment },
      { name: "f", data: "f\n" },
    ]);
  },
});

Deno.test({
  name: "odd layers: extension headers before a global header apply to nothing",
  ignore,
  async fn() {
    await bothWays(cat(
      entriesOnly([{ name: "PaxHeaders/f", type: "x", data: paxRecord("path", "renamed") }]),
      entriesOnly([{ name: "PaxHeaders/0", type: "g", data: paxRecord("size", "0") }]),
      buildTar([{ name: "f", data: "not renamed\n" }]),
    ));
  },
});

Deno.test({
  name: "odd layers: a contiguous file (type 7) is refused, as by the reference",
  ignore,
  async fn() {
    await bothRefuse(
      [{ name: "c", type: "7", data: "contiguous" }],
      /unhandled tar header type 55/,
    );
  },
});

Deno.test({
  name: "odd layers: a stream that ends after a body or an extension header, " +
    "or inside the padding after them, is a whole archive",
  ignore,
  async fn() {
    const full = buildTar([{ name: "d/", type: "5" }, { name: "d/f", data: "abc" }]);
    const body = 1024 + 3;
    await bothWays(full.subarray(0, body));
    // 1.43's tar-split drops the padding it read: its diff ends after the body, ours is the input.
    await bothWays(full.subarray(0, body + 100), {
      tarSplitDiffers: true,
      theirStoreDiff: full.subarray(0, body),
    });
    const pax = buildTar([{ name: "g", data: "g" }, { name: "f", data: "abc", paxNames: true }]);
    await bothWays(pax.subarray(0, 2048)); // the PAX header of f, and no f
    const longName = entriesOnly([{ name: "././@LongLink", type: "L", data: "long/name\0" }]);
    await bothWays(cat(entriesOnly([{ name: "h", data: "h" }]), longName));
  },
});

Deno.test({
  name:
    "odd layers: GNU sparse files: a duplicate is refused, an extra PAX header before one is not",
  ignore,
  async fn() {
    const sparse = await sparse00();
    await bothRefuse(cat(sparse, sparse, END), /duplicates of file paths not supported/);
    // Its records (size 0, mtime "nan") give way to the sparse file's own.
    const extra = entriesOnly([{
      name: "PaxHeaders/extra",
      type: "x",
      data: paxRecord("size", "0") + paxRecord("mtime", "nan"),
    }]);
    // 1.43 records the expanded file in its tar-split (see README), so its diff is another tar.
    await bothWays(cat(extra, sparse, END), { tarSplitDiffers: true, theirStoreDiff: "other" });
  },
});

/** Bytes of a name given as text with "\xNN" escapes for the bytes that are not UTF-8. */
function raw(spec: string): Uint8Array {
  const out: number[] = [];
  for (const part of spec.split(/(\\x[0-9a-f]{2})/)) {
    if (part.startsWith("\\x")) out.push(parseInt(part.slice(2), 16));
    else out.push(...enc.encode(part));
  }
  return new Uint8Array(out);
}

/** Entries whose names, link targets and xattr names are not UTF-8. */
const NOT_UTF8: FixtureEntry[] = [
  { name: raw("\\xff\\xfe.bin"), data: "two bytes that are not UTF-8\n" },
  { name: raw("d\u00e9\\xff/"), type: "5", mode: 0o750 },
  { name: raw("d\u00e9\\xff/in\\x80ner"), data: "in a directory whose name is not UTF-8\n" },
  { name: raw("d\u00e9\\xff/\\xc3"), data: "a lead byte alone\n", paxNames: true },
  { name: raw(`${"long/".repeat(25)}\\xed\\xa0\\x80`), data: "a PAX path, an encoded surrogate" },
  { name: raw("s\\xfe"), type: "2", link: raw("../\\xff\\x41") },
  { name: raw("h\\xfe"), type: "1", link: raw("\\xff\\xfe.bin") },
  { name: raw("d\u00e9\\xff/.wh.\\xf0\\x9f"), data: "" },
  { name: raw("plain/\\xfe/\\xfd"), data: "in a directory with a UTF-8 name\n", mtime: 1500000000 },
  {
    name: "xattrs",
    data: "x",
    rawXattrs: [[raw("user.\\xff"), enc.encode("w")], [raw("user.\u00e9"), raw("\\xfe")]],
  },
];

Deno.test({
  name: "odd layers: names, link targets and xattr names that are not UTF-8 keep their bytes",
  ignore,
  async fn() {
    await bothWays(NOT_UTF8, {
      check: async (dir) => {
        const names = await sh(`cd '${dir}' && ls -1b`);
        assert.match(names, /^\\377\\376\.bin$/m, "the name's bytes, not U+FFFD");
      },
    });
  },
});

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Standard output of a command by `tool` as bytes (names in it may not be UTF-8). */
async function rawOut(tool: typeof ours, root: Root, args: string[]): Promise<Uint8Array> {
  const global = ["-g", root.graph, "-R", root.run, "-s", root.driver, ...args];
  const out =
    await (tool === ours
      ? new Deno.Command(Deno.execPath(), { args: ["run", "-A", CLI, ...global] })
      : new Deno.Command(referenceCli!, { args: global })).output();
  const what = `${args.join(" ")} by ${tool.name}: ${new TextDecoder().decode(out.stderr)}`;
  assert.equal(out.code, 0, what);
  return out.stdout;
}

/** Lines of raw output, sorted (the reference lists changes in Go's map order). */
function sortedLines(b: Uint8Array): string {
  return [...new TextDecoder("latin1").decode(b).split("\n")].sort().join("\n");
}

/** Runs `script` in the mounted layer `id` of `root` (mounted by the reference, for both). */
async function inMount(root: Root, id: string, script: string): Promise<void> {
  const mnt = new TextDecoder().decode(await rawOut(theirs, root, ["mount", id])).trim();
  try {
    await sh(`cd '${mnt}' && ${script}`);
  } finally {
    await rawOut(theirs, root, ["unmount", id]);
  }
}

/** New names that are not UTF-8 in a layer, with fixed times, and a changed file. */
const ADD = String.raw`mkdir $'n\xfedir' && printf content > $'n\xfedir/f\xff\x80' &&
  ln -s $'../\xff\xfe.bin' $'l\xfe' && printf changed > $'\xff\xfe.bin' &&
  setfattr -n $'user.\xfe\xff' -v 1 $'n\xfedir/f\xff\x80' &&
  touch -h -d @1600000000 $'n\xfedir/f\xff\x80' $'l\xfe' $'\xff\xfe.bin' $'n\xfedir'`;

Deno.test({
  name: "odd layers: names that are not UTF-8 are walked as bytes: copies, naive and overlay " +
    "diffs, changes and sizes match the reference's",
  ignore,
  async fn() {
    const tar = buildTar(NOT_UTF8);
    for (const driver of DRIVERS) {
      const { a, b, ra, rb } = await importBoth(tar, driver);
      try {
        assert.equal(ra.code + rb.code, 0, `${driver}: ${ra.stderr}${rb.stderr}`);
        for (const [root, tool] of [[a, ours], [b, theirs]] as const) {
          await rawOut(tool, root, ["create-layer", "-i", ID.mid, ID.base]);
        }
        if (driver === "vfs") {
          const dir = (r: Root) => `${r.graph}/vfs/dir/${ID.mid}`;
          assert.equal(await tree(dir(a)), await tree(dir(b)), "vfs: the copy of the parent");
        }
        for (const root of [a, b]) await inMount(root, ID.mid, ADD);
        const what = (x: string) => `${driver}: ${x}`;
        for (const args of [["diff", ID.mid], ["diffsize", ID.mid]]) {
          const mine = await rawOut(ours, a, args);
          assert.deepEqual(mine, await rawOut(theirs, b, args), what(args[0]));
          assert.deepEqual(await rawOut(ours, b, args), mine, what(`${args[0]} of their store`));
        }
        const jsonChanges = async (tool: typeof ours, root: Root) =>
          JSON.parse(new TextDecoder().decode(await rawOut(tool, root, ["changes", "-j", ID.mid])))
            .sort((x: { Path: string }, y: { Path: string }) => x.Path < y.Path ? -1 : 1);
        assert.deepEqual(await jsonChanges(ours, a), await jsonChanges(theirs, b), what("json"));
        // Copies between layers walk the source as bytes too.
        for (const [root, tool] of [[a, ours], [b, theirs]] as const) {
          await rawOut(tool, root, ["copy", `${ID.base}:/plain`, `${ID.mid}:/copy`]);
        }
        const midDir = (r: Root) =>
          driver === "vfs" ? `${r.graph}/vfs/dir/${ID.mid}` : `${r.graph}/overlay/${ID.mid}/diff`;
        assert.equal(await tree(midDir(a)), await tree(midDir(b)), what("after copy"));
        // A deletion: its whiteout's time is the time of the diff, so compare the changes only.
        for (const root of [a, b]) await inMount(root, ID.mid, String.raw`rm $'h\xfe'`);
        const changes = sortedLines(await rawOut(ours, a, ["changes", ID.mid]));
        assert.match(changes, /^Delete "\/h\\xfe"$/m); // as Go quotes it
        assert.equal(changes, sortedLines(await rawOut(theirs, b, ["changes", ID.mid])));
        assert.equal(changes, sortedLines(await rawOut(ours, b, ["changes", ID.mid])));
      } finally {
        await dropRoot(a);
        await dropRoot(b);
      }
    }
  },
});

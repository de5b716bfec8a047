/**
 * Layers whose entry names the reference handles and a naive implementation
 * does not: names ending in `/`, names with `..`, names, link targets and
 * xattr names that are not UTF-8. Each tarball is imported by our CLI and by
 * the reference into twin stores (vfs and overlay); the applied trees must
 * be equal at the level of stat and xattrs (raw name bytes compared), and
 * `diff -u` by either tool of either store must return the input byte for
 * byte (where the reference manages its own; see `refDiffFails`).
 * @module
 */

import assert from "node:assert/strict";
import { isRoot, referenceCli } from "./helpers.ts";
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
  const attrs = await sh(`cd '${dir}' && LC_ALL=C getfattr -R -h -d -m - -e hex . 2>/dev/null`);
  return `${entries}\n${attrs}`;
}

/** `diff -u` of the layer by `tool`, as bytes (written to a file: stdout would be decoded). */
async function diffBytes(tool: typeof ours, root: Root): Promise<Uint8Array | string> {
  const out = `${root.dir}/diff-${crypto.randomUUID()}.tar`;
  const r = await tool(root, ["diff", "-u", "-f", out, ID.base]);
  if (r.code !== 0) return r.stderr;
  return await Deno.readFile(out);
}

/** Options of {@linkcode bothWays}. */
interface Expect {
  /** The reference's own `diff -u` fails on its layer (a reference bug we do not copy). */
  refDiffFails?: boolean;
  /** Checks on our applied tree. */
  check?: (dir: string) => Promise<void>;
}

/**
 * Imports `entries` with both tools on each driver and compares the trees
 * and the four `diff -u`s with the input.
 */
async function bothWays(entries: FixtureEntry[], expect: Expect = {}): Promise<void> {
  const tar = buildTar(entries);
  for (const driver of DRIVERS) {
    const a = await newRoot("odd-ours-", driver), b = await newRoot("odd-ref-", driver);
    try {
      for (const [root, tool] of [[a, ours], [b, theirs]] as const) {
        await Deno.mkdir(root.dir, { recursive: true });
        await Deno.writeFile(`${root.dir}/in.tar`, tar);
        const r = await tool(root, ["import-layer", "-i", ID.base, "-f", `${root.dir}/in.tar`]);
        assert.equal(r.code, 0, `${driver} import-layer by ${tool.name}: ${r.stderr}`);
      }
      assert.equal(await tree(layerDir(a)), await tree(layerDir(b)), `${driver}: applied trees`);
      await expect.check?.(layerDir(a));
      for (const root of [a, b]) {
        for (const tool of [ours, theirs]) {
          const what = `${driver}: diff -u by ${tool.name} of the store written by ${
            root === a ? "ours" : "theirs"
          }`;
          const got = await diffBytes(tool, root);
          if (tool === theirs && expect.refDiffFails) {
            assert.equal(typeof got, "string", `${what} now works`);
            continue;
          }
          assert.ok(got instanceof Uint8Array, `${what}: ${got}`);
          assert.deepEqual(got, tar, what);
        }
      }
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  }
}

Deno.test({
  name: "odd names: a regular file whose name ends in / applies and diffs back like the reference",
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
  name: "odd names: entries with .. are confined to the layer like the reference's chrooted apply",
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
      refDiffFails: true,
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

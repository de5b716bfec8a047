/**
 * Corrupted and truncated compressed layers (issue 9, defects 1 and 2) fed to
 * `import-layer` and `applydiff` of our CLI and of the reference, on vfs and
 * overlay: both refuse every one; ours says so in one line (no uncaught
 * error, no stack trace), ending in "unexpected EOF" where the stream was cut
 * short as the reference's does; no layer, directory or file is left behind,
 * and `layers -j` of both CLIs is what it was.
 */
import assert from "node:assert/strict";
import { isRoot, pathsBelow, randomBytes, referenceCli, run } from "./helpers.ts";
import { dropRoot, ID, newRoot, normalize, ours, type Root, theirs } from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;

/** [extension, command that compresses stdin to stdout] of every format a layer may have. */
const FORMATS: [string, string][] = [
  ["gz", "gzip -c"],
  ["bz2", "bzip2 -c"],
  ["xz", "xz -c"],
  ["zst", "zstd -q -c"],
];

/** A layer tarball whose compressed forms span many blocks: text that compresses, and noise. */
async function layerTar(dir: string): Promise<string> {
  const src = `${dir}/src`;
  await Deno.mkdir(`${src}/d`, { recursive: true });
  await Deno.writeTextFile(`${src}/a.txt`, "hello layer\n".repeat(40_000));
  await Deno.writeFile(`${src}/d/noise`, randomBytes(150_000));
  await Deno.writeTextFile(`${src}/d/z.txt`, "last\n");
  const tar = `${dir}/layer.tar`;
  const r = await run("tar", ["-C", src, "--sort=name", "-cf", tar, "."]);
  assert.equal(r.code, 0, r.stderr);
  return tar;
}

/** The bad variants of a compressed layer: [label, bytes, whether it is cut short]. */
function variants(packed: Uint8Array, ext: string): [string, Uint8Array, boolean][] {
  const flipped = packed.slice();
  flipped[Math.floor(packed.length / 2)] ^= 0xff;
  const out: [string, Uint8Array, boolean][] = [
    ["flipped", flipped, false],
    ["cut to 88 bytes", packed.subarray(0, 88), true],
    ["cut in half", packed.subarray(0, Math.floor(packed.length / 2)), true],
    ["without its last 4 bytes", packed.subarray(0, packed.length - 4), true],
  ];
  // Go reads on after a gzip member, zstd frame or bzip2 stream and refuses what is no other;
  // zeros after an xz stream are its padding, which both accept
  if (ext !== "xz") {
    const padded = new Uint8Array(packed.length + 1024);
    padded.set(packed);
    out.push(["followed by 1 KiB of zeros", padded, false]);
  }
  return out;
}

/** Paths of the store, but for the contents of `layer` (a failed applydiff leaves what it wrote, in both). */
function storePaths(root: Root, layer: string): string[][] {
  const content = root.driver === "vfs" ? `/vfs/dir/${layer}/` : `/overlay/${layer}/diff/`;
  return [pathsBelow(root.graph).filter((p) => !p.startsWith(content)), pathsBelow(root.run)];
}

/** `layers -j` of both CLIs on `root`, normalised. */
async function layersByBoth(root: Root): Promise<string[]> {
  const out = [];
  for (const tool of [ours, theirs]) {
    const r = normalize(await tool(root, ["layers", "-j"]), root);
    assert.equal(r.code, 0, r.stderr);
    out.push(r.stdout);
  }
  return out;
}

for (const driver of ["vfs", "overlay"]) {
  Deno.test({
    name:
      `cli corrupt layers (${driver}): flipped, cut or padded gzip, bzip2, xz, zstd are refused in one line, leaving nothing`,
    ignore,
    async fn() {
      const a = await newRoot("cli-ours-", driver);
      const b = await newRoot("cli-ref-", driver);
      try {
        const tar = await layerTar(a.dir);
        for (const [root, tool] of [[a, ours], [b, theirs]] as const) {
          const r = await tool(root, ["create-layer", "-i", ID.base, "-n", "base"]);
          assert.equal(r.code, 0, r.stderr);
        }
        const before = [storePaths(a, ID.base), storePaths(b, ID.base)];
        const layersBefore = [await layersByBoth(a), await layersByBoth(b)];
        let i = 0;
        for (const [ext, compress] of FORMATS) {
          const packed = `${a.dir}/layer.tar.${ext}`;
          const c = await run("sh", ["-c", `${compress} < "$0" > "$1"`, tar, packed]);
          assert.equal(c.code, 0, c.stderr);
          for (const [label, bytes, cut] of variants(await Deno.readFile(packed), ext)) {
            const file = `${a.dir}/bad-${i}.tar.${ext}`;
            await Deno.writeFile(file, bytes);
            // each command meets every format and both kinds of damage
            const args = i++ % 2 === 0
              ? ["import-layer", "-f", file]
              : ["applydiff", "-f", file, ID.base];
            const what = `${args[0]} ${ext} ${label}`;
            const [mine, ref] = await Promise.all([ours(a, args), theirs(b, args)]);
            assert.equal(ref.code, 1, `${what}: the reference accepted it`);
            assert.equal(mine.code, 1, `${what}: we said ${mine.stdout}${mine.stderr}`);
            assert.equal(mine.stdout, "", what);
            assert.match(mine.stderr, /^[^\n]+\n$/, `${what}: one line, we said ${mine.stderr}`);
            assert.doesNotMatch(mine.stderr, /Uncaught|^\s+at /m, what);
            if (cut) {
              assert.match(mine.stderr, /: unexpected EOF\n$/, what);
              assert.ok(
                (ref.stdout + ref.stderr).includes("unexpected EOF"),
                `${what}: ${ref.stderr}`,
              );
            }
          }
        }
        assert.deepEqual([storePaths(a, ID.base), storePaths(b, ID.base)], before);
        assert.deepEqual([await layersByBoth(a), await layersByBoth(b)], layersBefore);
      } finally {
        await dropRoot(a);
        await dropRoot(b);
      }
    },
  });
}

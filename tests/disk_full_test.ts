/**
 * A full disk never bricks the store (issue 9): a store whose graph root
 * and run root live on a small ext4 loop filesystem is filled up (a file
 * takes all the space left), and import-layer, create-image,
 * create-container, set-image-data, delete-container and delete-image
 * each fail with a typed error naming the file and ENOSPC, leaving every
 * JSON file of the store as it was, no temporary file and no directory
 * without its record. With a little space left (enough for the JSON files,
 * not for layer data or a big data item) the operations that need more
 * fail the same way. Once the filler is removed every operation works, and
 * the reference CLI lists the same layers, images and containers as ours.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { StorageError } from "../lib/errors.ts";
import { isRoot, randomBytes, reference, referenceCli, run } from "./helpers.ts";
import { loopFsUnavailable, withLoopFs } from "./loopfs.ts";
import { checkStore, storeOpts } from "./store_helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";

const EXT4 = { mkfs: ["mkfs.ext4", "-q", "-m", "0"], sizeMiB: 16 };
const why = !isRoot
  ? "needs root"
  : !referenceCli
  ? "reference CLI not installed"
  : await loopFsUnavailable(EXT4);
if (why) console.log(`disk full test skipped: ${why}`);

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** The store's JSON files, by path relative to the mount: what a failed operation must not touch. */
const JSON_FILES = [
  "g/vfs-layers/layers.json",
  "g/vfs-images/images.json",
  "g/vfs-containers/containers.json",
  "r/vfs-layers/mountpoints.json",
];

async function jsonFiles(mnt: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of JSON_FILES) out[f] = await Deno.readTextFile(join(mnt, f));
  return out;
}

/** Temporary files of atomic writes anywhere on the filesystem (ours: `.name.tmp-…`). */
async function tempFiles(mnt: string): Promise<string[]> {
  const r = await run("find", [mnt, "-name", ".*.tmp-*", "-o", "-name", ".tmp-*"]);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** Fills the filesystem with `filler` until not one byte more fits, then frees `leave` bytes. */
async function fill(filler: string, leave: number): Promise<void> {
  const f = await Deno.open(filler, { create: true, write: true, append: true });
  const zeros = new Uint8Array(1 << 20);
  try {
    for (const n of [1 << 20, 4096, 512, 1]) {
      try {
        for (;;) await f.write(zeros.subarray(0, n));
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOSPC") throw e;
      }
    }
    if (leave > 0) await f.truncate((await f.stat()).size - leave);
    await f.sync();
  } finally {
    f.close();
  }
}

/** A layer tarball of one file of `size` random bytes (data that does not compress). */
function layerOf(name: string, size: number): Uint8Array {
  return buildTar([{ name, data: randomBytes(size) }]);
}

/** Runs `op` on a freshly opened store (as one CLI command would) and shuts the store down. */
async function withOpen<T>(mnt: string, op: (s: Store) => Promise<T>): Promise<T> {
  const s = await Store.open(storeOpts(mnt));
  try {
    return await op(s);
  } finally {
    await s.shutdown(false).catch(() => {});
  }
}

/**
 * Runs `op`, which must fail with a StorageError naming a file on the
 * filesystem and ENOSPC; then the JSON files must be as before, and no
 * temporary file, incomplete layer or directory without a record left.
 */
async function mustFailFull(
  mnt: string,
  what: string,
  before: Record<string, string>,
  op: (s: Store) => Promise<unknown>,
): Promise<void> {
  let error: unknown;
  try {
    await withOpen(mnt, op);
  } catch (e) {
    error = e;
  }
  assert.ok(error, `${what} worked on a full disk`);
  assert.ok(error instanceof StorageError, `${what}: not a StorageError: ${error}`);
  assert.match(error.message, /ENOSPC \(No space left on device\)/, what);
  assert.ok(
    error.message.includes(`${mnt}/`),
    `${what}: the error names no file: ${error.message}`,
  );
  assert.deepEqual(await jsonFiles(mnt), before, `${what}: a JSON file changed`);
  assert.deepEqual(await tempFiles(mnt), [], `${what}: temporary files left`);
  const check = await checkStore({ graph: join(mnt, "g"), run: join(mnt, "r"), driver: "vfs" });
  assert.deepEqual(check.problems, [], what);
}

/** IDs and names of what `layers`, `images` and `containers -j` list, by either tool. */
async function listings(mnt: string, tool: "ours" | "theirs"): Promise<string[]> {
  const out: string[] = [];
  for (const what of ["layers", "images", "containers"]) {
    let stdout: string;
    if (tool === "theirs") {
      const root = { graph: join(mnt, "g"), run: join(mnt, "r"), driver: "vfs" };
      stdout = (await reference(root, [what, "-j"])).stdout;
    } else {
      const r = await run(Deno.execPath(), [
        "run",
        "-A",
        CLI,
        ...["-g", join(mnt, "g"), "-R", join(mnt, "r"), "-s", "vfs", what, "-j"],
      ]);
      assert.equal(r.code, 0, `our ${what}: ${r.stderr}`);
      stdout = r.stdout;
    }
    for (const o of JSON.parse(stdout) ?? []) {
      out.push(`${what} ${o.id} ${(o.names ?? []).join(",")}`);
    }
  }
  return out.sort();
}

Deno.test({
  name: "full disk: every operation fails with ENOSPC naming the file, the store stays whole",
  ignore: why !== undefined,
  async fn() {
    await withLoopFs(EXT4, async (mnt) => {
      const filler = join(mnt, "filler");
      // A store with a layer, two images (one with big data) and a container.
      const { base, image, spare, container } = await withOpen(mnt, async (s) => {
        const { layer: base } = await s.putLayer({ diff: streamOf(layerOf("base", 300_000)) });
        const image = await s.createImage(base.id, { names: ["img"] });
        await s.setImageBigData(image.id, "manifest", new TextEncoder().encode("{}"));
        const { layer: top } = await s.putLayer({
          parent: base.id,
          diff: streamOf(layerOf("top", 1000)),
        });
        const spare = await s.createImage(top.id, { names: ["spare"] });
        const container = await s.createContainer(image.id, { names: ["ctr"] });
        return { base, image, spare, container };
      });
      const before = await jsonFiles(mnt);
      const listed = await listings(mnt, "ours");

      // Not one byte left.
      await fill(filler, 0);
      const full: [string, (s: Store) => Promise<unknown>][] = [
        ["import-layer", (s) => s.putLayer({ diff: streamOf(layerOf("new", 300_000)) })],
        ["create-image", (s) => s.createImage(base.id, { names: ["img2"] })],
        ["create-container", (s) => s.createContainer(image.id, { names: ["ctr2"] })],
        ["set-image-data", (s) => s.setImageBigData(image.id, "k", randomBytes(50_000))],
        ["delete-container", (s) => s.deleteContainer(container.id)],
        ["delete-image", (s) => s.deleteImage(spare.id)],
      ];
      for (const [what, op] of full) await mustFailFull(mnt, `${what} (full)`, before, op);
      // Our CLI says so in one line, as the reference does: "write <file>: no space left on device".
      const tarPath = join(await Deno.makeTempDir({ prefix: "disk-full-" }), "layer.tar");
      try {
        await Deno.writeFile(tarPath, layerOf("cli", 300_000));
        const r = await run(Deno.execPath(), [
          "run",
          "-A",
          CLI,
          ...[
            "-g",
            join(mnt, "g"),
            "-R",
            join(mnt, "r"),
            "-s",
            "vfs",
            "import-layer",
            "-f",
            tarPath,
          ],
        ]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`^write ${mnt}/\\S+: no space left on device\\n$`, "m"));
        assert.doesNotMatch(r.stderr, /Uncaught|^\s+at /m);
      } finally {
        await Deno.remove(tarPath, { recursive: true }).catch(() => {});
        await Deno.remove(join(tarPath, "..")).catch(() => {});
      }
      assert.deepEqual(await jsonFiles(mnt), before, "import-layer by the CLI");

      // A little left: enough for the JSON files, not for the data.
      await Deno.remove(filler);
      await fill(filler, 64 * 1024);
      const little: [string, (s: Store) => Promise<unknown>][] = [
        ["import-layer", (s) => s.putLayer({ diff: streamOf(layerOf("new", 300_000)) })],
        ["create-container", (s) => s.createContainer(image.id, { names: ["ctr2"] })],
        ["set-image-data", (s) => s.setImageBigData(image.id, "k", randomBytes(300_000))],
      ];
      for (const [what, op] of little) await mustFailFull(mnt, `${what} (nearly full)`, before, op);
      assert.deepEqual(await listings(mnt, "ours"), listed);
      assert.deepEqual(await listings(mnt, "theirs"), listed);

      // Space again: every operation works, and the reference reads what they made.
      await Deno.remove(filler);
      await withOpen(mnt, async (s) => {
        const { layer } = await s.putLayer({ diff: streamOf(layerOf("new", 300_000)) });
        const image2 = await s.createImage(layer.id, { names: ["img2"] });
        await s.createContainer(image.id, { names: ["ctr2"] });
        await s.setImageBigData(image2.id, "k", randomBytes(50_000));
        await s.deleteContainer(container.id);
        assert.deepEqual((await s.deleteImage(spare.id)).length, 1);
      });
      const ours = await listings(mnt, "ours");
      assert.deepEqual(await listings(mnt, "theirs"), ours);
      assert.ok(ours.some((l) => l.startsWith("containers ") && l.endsWith(" ctr2")), `${ours}`);
      assert.ok(!ours.some((l) => l.includes(container.id) || l.includes(spare.id)), `${ours}`);
      const check = await checkStore({ graph: join(mnt, "g"), run: join(mnt, "r"), driver: "vfs" });
      assert.deepEqual([check.problems, check.tempFiles], [[], []]);
    });
  },
});

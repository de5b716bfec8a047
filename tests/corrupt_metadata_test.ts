/**
 * Damaged store files (issue 9, "Corrupt metadata"), on stores the reference
 * CLI wrote. What containers/storage 1.43 does, found by running it:
 *
 * - layers.json, images.json, containers.json cut short, not JSON or not a
 *   list: read as empty (or as the records before the damage) without a
 *   word, and the next write replaces the file, losing the records for good.
 *   We refuse the store instead, with `loading "<path>": <why>`, on every
 *   command that uses it (the others work), and never rewrite the file.
 * - mountpoints.json damaged: every command that loads the layer store fails
 *   (exit 1, a json-iterator message); the others work. We fail the same
 *   commands, with the file named.
 * - An empty file, or `null`: no records, in both.
 * - Lock files cut short or filled with garbage: their content is only the
 *   last writer's token, so both tools reload and carry on, and the next
 *   write puts a new token at its start.
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ErrInvalidStoreFile } from "../lib/errors.ts";
import { Store } from "../lib/store/mod.ts";
import { isRoot, randomBytes, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { normalize, ours, type Root, theirs } from "./cli_harness.ts";
import { storeOpts } from "./store_helpers.ts";
import { buildTar } from "./tar_fixtures.ts";

const ignore = !referenceCli || !isRoot;

const LAYER = "1".repeat(63) + "a";
const IMAGE = "5".repeat(63) + "e";
const CONTAINER = "7".repeat(63) + "a";

/** The store files, relative to the store's directory, and the commands that load each. */
const FILES = {
  layers: "g/vfs-layers/layers.json",
  images: "g/vfs-images/images.json",
  containers: "g/vfs-containers/containers.json",
  mounts: "r/vfs-layers/mountpoints.json",
};

const text = (s: string) => new TextEncoder().encode(s);

/** Damage done to a JSON file (`mounts` for mountpoints.json, whose records differ). */
const DAMAGE: Record<string, (b: Uint8Array, mounts: boolean) => Uint8Array> = {
  "cut in half": (b) => b.subarray(0, Math.floor(b.length / 2)),
  "garbage": () => randomBytes(100),
  "an object, not a list": () => text('{"id":"x"}'),
  "a record without an ID": () => text('[{"names":["x"]}]'),
  "a field of the wrong type": (_b, mounts) =>
    text(
      mounts
        ? `[{"id":"${LAYER}","path":"/x","count":"1"}]`
        : `[{"id":"${"9".repeat(64)}","names":"x"}]`,
    ),
};

/**
 * A store written by the reference: a layer, an image on it, a container of
 * the image, mounted (so mountpoints.json lists it). Every file non-empty.
 */
async function referenceStore(dir: string): Promise<string> {
  const base = join(dir, "base");
  const tar = join(dir, "l.tar");
  await Deno.writeFile(tar, buildTar([{ name: "./a", data: "a\n" }]));
  const root: Root = { dir: base, graph: join(base, "g"), run: join(base, "r"), driver: "vfs" };
  for (
    const args of [
      ["import-layer", "-i", LAYER, "-n", "l1", "-f", tar],
      ["create-image", "-i", IMAGE, "-n", "img", LAYER],
      ["create-container", "-i", CONTAINER, "-n", "c1", "img"],
      ["mount", "c1"],
    ]
  ) {
    const r = await theirs(root, args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  }
  for (const file of Object.values(FILES)) {
    assert.ok((await Deno.stat(join(base, file))).size > 2, file);
  }
  return base;
}

/** Runs `fn` on a store the reference wrote (see {@linkcode referenceStore}) in a temporary directory. */
async function withReferenceStore(fn: (base: string, dir: string) => Promise<void>) {
  const dir = await tempDir("corrupt-");
  try {
    await fn(await referenceStore(dir), dir);
  } finally {
    await removeTree(dir);
  }
}

/** A copy of `base` in `dir`. */
async function copyOf(base: string, dir: string): Promise<Root> {
  const r = await run("cp", ["-a", base, dir]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, graph: join(dir, "g"), run: join(dir, "r"), driver: "vfs" };
}

Deno.test({
  name:
    "corrupt metadata (Store): a damaged store file is ErrInvalidStoreFile naming it, on every use of that store only, and never rewritten",
  ignore,
  fn: () =>
    withReferenceStore(async (base, dir) => {
      let n = 0;
      for (const [kind, file] of Object.entries(FILES)) {
        for (const [damage, harm] of Object.entries(DAMAGE)) {
          const what = `${file} ${damage}`;
          const root = await copyOf(base, join(dir, `lib-${n++}`));
          const path = join(root.dir, file);
          const good = await Deno.readFile(path);
          const bad = harm(good, kind === "mounts");
          await Deno.writeFile(path, bad);
          const s = await Store.open(storeOpts(root.dir));
          try {
            const refused = (e: unknown) => {
              assert.ok(e instanceof ErrInvalidStoreFile, `${what}: ${e}`);
              assert.equal(e.id, path);
              assert.doesNotMatch(e.message, /\n/);
              return true;
            };
            const uses: Record<string, () => Promise<unknown>> = {
              layers: () => s.layers(),
              images: () => s.images(),
              containers: () => s.containers(),
            };
            for (const [use, fn] of Object.entries(uses)) {
              // mountpoints.json is the layer store's too
              const damaged = use === kind || (kind === "mounts" && use === "layers");
              if (damaged) await assert.rejects(fn(), refused, `${what}: ${use}`);
              // the container has a layer of its own
              else assert.equal((await fn() as unknown[]).length, use === "layers" ? 2 : 1, what);
            }
            const writes: Record<string, () => Promise<unknown>> = {
              layers: () => s.createLayer({ names: ["new"] }),
              images: () => s.createImage(LAYER, { names: ["new"] }),
              containers: () => s.createContainer(IMAGE, { names: ["new"] }),
            };
            await assert.rejects(writes[kind === "mounts" ? "layers" : kind](), refused, what);
            assert.deepEqual(await Deno.readFile(path), bad, `${what}: left as it was`);
            // repaired, the store is whole again, and writable
            await Deno.writeFile(path, good);
            assert.deepEqual((await s.layers()).map((l) => l.id).includes(LAYER), true, what);
            assert.equal((await s.images())[0].id, IMAGE, what);
            assert.equal((await s.containers())[0].id, CONTAINER, what);
            await writes[kind === "mounts" ? "layers" : kind]();
          } finally {
            await s.shutdown(true).catch(() => {});
          }
        }
      }
    }),
});

/** Two copies of `base`, one for each tool, with `content` as their `file`. */
async function twins(base: string, dir: string, file: string, content: Uint8Array) {
  const pair = [await copyOf(base, `${dir}-ours`), await copyOf(base, `${dir}-ref`)];
  for (const root of pair) await Deno.writeFile(join(root.dir, file), content);
  return pair;
}

Deno.test({
  name:
    "corrupt metadata (CLI): damaged JSON files against the reference: the same commands work, ours refuse the damaged store naming the file",
  ignore,
  fn: () =>
    withReferenceStore(async (base, dir) => {
      const commands: [string, string[]][] = [
        ["layers", ["layers"]],
        ["images", ["images"]],
        ["containers", ["containers"]],
        ["create-layer", ["create-layer", "-n", "new"]],
      ];
      /** The commands that load each store file, in 1.43 and in ours. */
      const loads: Record<keyof typeof FILES, string[]> = {
        layers: ["layers", "create-layer"],
        images: ["images"],
        containers: ["containers", "create-layer"],
        mounts: ["layers", "create-layer"],
      };
      let n = 0;
      for (const [kind, file] of Object.entries(FILES) as [keyof typeof FILES, string][]) {
        for (const damage of ["cut in half", "garbage"]) {
          for (const [name, args] of commands) {
            const what = `${file} ${damage}: ${name}`;
            const bad = DAMAGE[damage](await Deno.readFile(join(base, file)), kind === "mounts");
            const [a, b] = await twins(base, join(dir, `cli-${n++}`), file, bad);
            const [mine, ref] = await Promise.all([ours(a, args), theirs(b, args)]);
            if (!loads[kind].includes(name)) {
              assert.equal(mine.code, 0, `${what}: ${mine.stderr}`);
              if (name !== "create-layer") {
                assert.deepEqual(normalize(mine, a), normalize(ref, b), what);
              }
            } else {
              assert.equal(mine.code, 1, what);
              assert.equal(mine.stdout, "", what);
              const path = JSON.stringify(join(a.dir, file));
              assert.ok(mine.stderr.startsWith(`loading ${path}: `), `${what}: ${mine.stderr}`);
              assert.match(mine.stderr, /^[^\n]+\n$/, what);
              // 1.43 refuses a damaged mountpoints.json too; the other files it reads as empty
              assert.equal(ref.code, kind === "mounts" ? 1 : 0, `${what}: ${ref.stderr}`);
            }
            assert.deepEqual(await Deno.readFile(join(a.dir, file)), bad, `${what}: not rewritten`);
          }
        }
      }
    }),
});

Deno.test({
  name:
    "corrupt metadata (CLI): an empty or null store file is no records, and damaged lock files are harmless, in both",
  ignore,
  fn: () =>
    withReferenceStore(async (base, dir) => {
      const cases: [string, Uint8Array][] = [
        [FILES.layers, new Uint8Array(0)],
        [FILES.images, text("null")],
        ["g/vfs-layers/layers.lock", randomBytes(10)],
        ["g/vfs-images/images.lock", randomBytes(100)],
        ["g/vfs-containers/containers.lock", randomBytes(100)],
        ["r/vfs-layers/mountpoints.lock", text("garbage\n")],
        ["g/storage.lock", randomBytes(100)],
      ];
      let n = 0;
      for (const [file, content] of cases) {
        const [a, b] = await twins(base, join(dir, `cli-${n++}`), file, content);
        for (
          const args of [["layers"], ["images"], ["containers"], ["create-layer", "-n", "new"]]
        ) {
          const what = `${file}: ${args[0]}`;
          const [mine, ref] = await Promise.all([ours(a, args), theirs(b, args)]);
          assert.equal(mine.code, 0, `${what}: ${mine.stderr}`);
          assert.equal(ref.code, 0, `${what}: ${ref.stderr}`);
          if (args[0] !== "create-layer") {
            assert.deepEqual(normalize(mine, a), normalize(ref, b), what);
          }
        }
        // each store reads the other's result
        const [mine, ref] = await Promise.all([theirs(a, ["layers"]), ours(b, ["layers"])]);
        assert.equal(mine.code, 0, mine.stderr);
        assert.match(mine.stdout, /\tname: new\n/);
        assert.match(ref.stdout, /\tname: new\n/);
      }
    }),
});

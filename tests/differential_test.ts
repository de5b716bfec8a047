/**
 * The differential test of the drop-in CLI: one script of commands — create,
 * import, mount, a file written into a mounted layer, changes, diffsize, diff,
 * names, metadata, big data, images, containers, copy, delete, wipe, shutdown,
 * in text and `-j` form, with the error paths and bad usage (unknown command
 * or flag, missing argument, unknown or ambiguous ID) — run by the reference
 * `containers-storage` on one store and by ours on another, on vfs and on
 * overlay. Every step's stdout, stderr and exit code must match once store
 * paths, random IDs and times are normalised, the tarballs that `diff`
 * rebuilds must match byte for byte, and before the deletions the reference
 * must list the same layers, images and containers in both stores.
 *
 * The script is {@linkcode script}; "ROOT" in an argument stands for the
 * directory of each tool's own store, so that files each tool writes stay
 * apart.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  isRoot,
  notRootReason,
  referenceCli,
  removeTree,
  run,
  type RunResult,
  sha256File,
  tempDir,
} from "./helpers.ts";
import {
  CONTAINER_ID,
  ID,
  IMAGE_ID,
  makeTarball,
  ours,
  randomIDs,
  type Root,
  theirs,
} from "./cli_harness.ts";

/**
 * A command line; one whose output lines (or JSON array items) come in Go
 * map order, which is random, to compare as sets; or an action run on each
 * store directory between commands.
 */
type Step = string[] | { unordered: string[] } | Action;

/** Something done to a store directory between commands. */
type Action = (dir: string) => Promise<void>;

/** A step: the reference must list the same layers, images and containers in both stores. */
const SAME_CONTENT: Action = () => Promise.resolve();

/** An image manifest, set as big data, by which images-by-digest finds its image. */
const MANIFEST = '{"schemaVersion":2,"layers":[]}\n';
const MANIFEST_DIGEST = "sha256:" + createHash("sha256").update(MANIFEST).digest("hex");

/** A layer whose ID shares its first 63 digits with ID.base: "1111…" is ambiguous. */
const BASE_TWIN = "1".repeat(63) + "b";

/** The script, for a store whose root holds `base.tar` and `top.tar`. */
function script(driver: string): Step[] {
  return [
    // bad usage, before and after a store exists
    ["frobnicate"],
    ["layers", "--frobnicate"],
    ["--frobnicate", "layers"],
    ["layer"],
    ["import-layer", "a", "b"],
    ["layers", "-j"],
    // layers
    ["import-layer", "-i", ID.base, "-n", "base", "-f", "ROOT/base.tar"],
    ["import-layer", "-j", "-i", ID.top, "-n", "top", "-f", "ROOT/top.tar", "base"],
    ["create-layer", "-i", BASE_TWIN, "-n", "twin"],
    ["create-layer", "-i", ID.extra, "-n", "rw", "top"],
    ["import-layer", "-i", ID.mid, "-n", "gz", "-f", "ROOT/base.tar.gz"],
    ["applydiff", "-f", "ROOT/top.tar", "twin"],
    ["applydiff", "-f", "ROOT/top.tar", "nope"],
    ["applydiff", "-f", "ROOT/nope.tar", "twin"],
    ["import-layer", "-f", "ROOT/missing.tar"],
    ["import-layer", "-f", "ROOT/base.tar", "nope"],
    ["create-layer", "-n", "base"],
    ["layers"],
    ["layers", "-j"],
    ["layers", "-t"],
    ["layer", "base", "top"],
    ["layer", "-j", "top"],
    ["layer", "nope"],
    ["layer", "1111"],
    ["layer", "-j", ID.top.slice(0, 12)],
    // an ambiguous prefix (1111… is base and twin) and other bad usage
    ["delete-layer", "1111"],
    ["get-names", "1111"],
    ["metadata", "1111"],
    ["diffsize", "1111"],
    { unordered: ["changes", "1111"] },
    { unordered: ["exists", "1111", "3333"] },
    ["get-layer-data", "1111", "k"],
    ["layers", "extra"],
    ["mount"],
    ["applydiff"],
    ["set-names", "nope"],
    ["set-metadata", "nope"],
    ["import-layer", "--uidmap", "bad", "-f", "ROOT/base.tar"],
    ["import-layer", "-f"],
    { unordered: ["exists", "base", "nope"] },
    ["exists", "-j", "-l", "top"],
    // diff, changes, sizes
    ["diff", "-u", "-f", "ROOT/base.out.tar", "base"],
    ["diff", "-u", "-f", "ROOT/top.out.tar", "top"],
    ["diff", "-u", "-f", "ROOT/x.tar", "nope"],
    ["diff", "-x", "top"],
    ["diff", "-f", "ROOT/gz.out.tar.gz", "gz"],
    ["diff", "-u", "-f", "ROOT/gz.out.tar", "gz"],
    ["diff", "-u", "-f", "ROOT/twin.out.tar", "twin"],
    ["layer-parent-owners", "top"],
    ["layer-parent-owners", "-j", "top", "nope"],
    { unordered: ["changes", "top"] },
    { unordered: ["changes", "-j", "top", "base"] },
    { unordered: ["changes", "-j", "base"] },
    ["diffsize", "top"],
    ["diffsize", "nope"],
    // a file written into the mounted read-write layer
    // 1.43 mounts a layer only by its full ID (it hands the driver the name as typed)
    ["mount", ID.extra],
    async (dir) => {
      const mnt = mountpointOf(dir, ID.extra, driver);
      await Deno.writeTextFile(`${mnt}/etc/added.conf`, "added\n");
      await Deno.remove(`${mnt}/etc/hostname`);
    },
    ["mounted", ID.extra],
    ["unmount", ID.extra],
    ["mounted", ID.extra],
    { unordered: ["changes", "rw"] },
    { unordered: ["changes", "-j", "rw"] },
    ["diffsize", "rw"],
    ["mount", "nope"],
    ["unmount", "nope"],
    // copy into a layer
    ["copy", "ROOT/src-base/etc/motd", "rw:/etc/motd.copy"],
    ["copy", "ROOT/nothere", "rw:/x"],
    { unordered: ["changes", "rw"] },
    // names and metadata
    ["add-names", "-n", "base2", "base"],
    ["get-names", "base"],
    ["get-names", "-j", "base"],
    ["set-names", "-n", "top2", "top"],
    ["add-names", "-n", "top2", "base"],
    ["get-names", "nope"],
    ["set-metadata", "-m", "hello metadata", "base"],
    ["metadata", "base"],
    ["metadata", "-q", "base"],
    ["metadata", "nope"],
    // layer data
    ["set-layer-data", "-f", "ROOT/base.tar", "base", "blob"],
    ["list-layer-data", "base"],
    ["get-layer-data", "-f", "ROOT/blob.out", "base", "blob"],
    ["get-layer-data", "base", "nokey"],
    // images
    ["create-image", "-i", IMAGE_ID.one, "-n", "img", "-m", "image md", "top2"],
    ["create-image", "-j", "-n", "plain"],
    ["create-image", "-n", "img", "top2"],
    ["create-image", "nolayer"],
    ["set-image-data", "-f", "ROOT/base.tar", "img", "big"],
    ["set-image-data", "-f", "ROOT/manifest.json", "img", "manifest"],
    ["images-by-digest", MANIFEST_DIGEST],
    ["images-by-digest", "-j", MANIFEST_DIGEST],
    ["images-by-digest", "sha256:" + "0".repeat(64)],
    ["mount", "-r", "img"],
    ["mounted", "img"],
    ["unmount", "img"],
    ["metadata", "img"],
    ["exists", "-i", "img"],
    ["exists", "-c", "img"],
    ["list-image-data", "img"],
    ["list-image-data", "-j", "img"],
    ["get-image-data-size", "img", "big"],
    ["get-image-data-digest", "img", "big"],
    ["images"],
    ["images", "-j"],
    ["image", "img"],
    ["image", "-j", "img", "nope"],
    // containers
    ["create-container", "-i", CONTAINER_ID.one, "-n", "ctr", "img"],
    ["create-container", "-j", "-n", "ctr2", "-m", "md", "img"],
    ["create-container", "nope"],
    ["containers"],
    ["containers", "-j"],
    ["container", "ctr"],
    ["container", "-j", "ctr"],
    ["mount", "ctr"],
    ["unmount", "ctr"],
    ["get-container-dir", "ctr"],
    ["get-container-run-dir", "ctr"],
    ["container-parent-owners", "ctr"],
    ["add-names", "-n", "ctr-alias", "ctr2"],
    ["get-names", "ctr2"],
    ["metadata", "ctr2"],
    ["--debug", "containers"],
    ["set-container-data", "-f", "ROOT/top.tar", "ctr", "cfg"],
    ["get-container-data-size", "ctr", "cfg"],
    ["layers"],
    ["layers", "-t"],
    ["images", "-q"],
    ["status"],
    ["status", "-j"],
    SAME_CONTENT,
    // deletion
    ["delete-image", "img"],
    ["delete-container", "ctr"],
    ["delete-container", "nope"],
    ["delete", "ctr-alias", "nope"],
    // by ID: 1.43 looks for children by the name as typed, and so deletes a parent by name
    ["delete-layer", ID.base],
    ["delete-image", "img"],
    ["delete-layer", "rw"],
    ["delete-layer", "nope"],
    ["layers"],
    ["shutdown"],
    ["wipe", "-j"],
    ["layers", "-j"],
    ["images", "-j"],
    ["shutdown", "-f"],
  ];
}

/** Where `id` is mounted in the store under `dir` (the mount printed it; ours and theirs alike). */
function mountpointOf(dir: string, id: string, driver: string): string {
  return driver === "overlay" ? `${dir}/graph/overlay/${id}/merged` : `${dir}/graph/vfs/dir/${id}`;
}

/** The step's arguments for the store in `dir`. */
function expand(args: string[], dir: string): string[] {
  return args.map((a) => a.replaceAll("ROOT", dir));
}

/**
 * Normalises one tool's result: store paths, random IDs, times, and the
 * commands of ours that the reference lacks, which our program usage lists
 * after the reference's text (tests/cli_help_test.ts checks that part).
 */
function normaliser(root: Root): (r: RunResult) => RunResult {
  const ids = randomIDs();
  const fix = (s: string) =>
    ids(s.replaceAll(root.dir, "ROOT"))
      .replace(/\nExtensions:\n\n( {2}.*\n)+$/, "")
      .replace(/"created":"[^"]*"/g, '"created":"T"')
      .replace(/^time="[^"]*"/gm, "time=T")
      .replace(DRIVER_PROBE, "");
  return (r) => ({ code: r.code, stdout: fix(r.stdout), stderr: fix(r.stderr) });
}

/**
 * The debug lines 1.43's drivers log as they start (which driver was tried,
 * overlay's cached feature checks and backing file system): ours log none,
 * so `--debug` compares the CLI's own lines.
 */
const DRIVER_PROBE =
  /^time=T level=debug msg="(\[graphdriver\] trying|Cached value indicated|backingFs=).*\n/gm;

/** Commands that change nothing in the store: consecutive ones run a few at a time. */
const READING = new Set([
  "frobnicate",
  "--frobnicate",
  "layers",
  "layer",
  "exists",
  "diff",
  "changes",
  "diffsize",
  "mounted",
  "get-names",
  "metadata",
  "list-layer-data",
  "get-layer-data",
  "list-image-data",
  "get-image-data-size",
  "get-image-data-digest",
  "images",
  "image",
  "containers",
  "container",
  "get-container-data-size",
  "status",
  "layer-parent-owners",
  "images-by-digest",
  "get-container-run-dir",
  "container-parent-owners",
  "--debug",
]);

/** The script cut into actions and batches of commands that may run together. */
function batches(steps: Step[]): (Exclude<Step, Action>[] | Action)[] {
  const out: (Exclude<Step, Action>[] | Action)[] = [];
  let reading: Exclude<Step, Action>[] = [];
  const flush = () => {
    if (reading.length) out.push(reading);
    reading = [];
  };
  for (const s of steps) {
    if (typeof s === "function") {
      flush();
      out.push(s);
      continue;
    }
    const args = Array.isArray(s) ? s : s.unordered;
    if (!READING.has(args[0])) {
      flush();
      out.push([s]);
      continue;
    }
    reading.push(s);
    if (reading.length === 4) flush();
  }
  flush();
  return out;
}

/** `r` with its stdout's lines, or the items of its JSON array, sorted. */
function sorted(r: RunResult): RunResult {
  const json = r.stdout.startsWith("[");
  const items = json ? JSON.parse(r.stdout).map(JSON.stringify) : r.stdout.split("\n");
  return { ...r, stdout: items.sort().join("\n") };
}

async function differential(driver: string): Promise<void> {
  // Paths of one length in both, for the help text whose columns they set.
  const top = await tempDir(`differential-${driver}-`);
  const [a, b] = ["a", "b"].map((n): Root => {
    const dir = `${top}/${n}`;
    Deno.mkdirSync(dir);
    return { dir, graph: `${dir}/graph`, run: `${dir}/run`, driver };
  });
  try {
    const files = {
      "etc/hostname": "demo\n",
      "etc/motd": "hello\n",
      "usr/bin/tool": "#!/bin/sh\necho tool\n",
    };
    await makeTarball(a.dir, "base", files);
    await makeTarball(a.dir, "top", { "etc/os-release": "NAME=demo\n", "var/log/x": "" });
    await Deno.writeFile(
      `${a.dir}/base.tar.gz`,
      gzipSync(await Deno.readFile(`${a.dir}/base.tar`)),
    );
    await Deno.writeTextFile(`${a.dir}/manifest.json`, MANIFEST);
    // the same inputs, times included, for the reference
    for (const e of Deno.readDirSync(a.dir)) {
      assert.equal((await run("cp", ["-a", `${a.dir}/${e.name}`, b.dir])).code, 0);
    }
    const [fixA, fixB] = [normaliser(a), normaliser(b)];
    for (const batch of batches(script(driver))) {
      if (batch === SAME_CONTENT) {
        for (const what of ["layers", "images", "containers"]) {
          const [r1, r2] = await Promise.all([theirs(a, [what, "-j"]), theirs(b, [what, "-j"])]);
          assert.deepEqual(fixA(r1), fixB(r2), `${driver}: ${what} as the reference reads them`);
        }
        continue;
      }
      if (typeof batch === "function") {
        await Promise.all([batch(a.dir), batch(b.dir)]);
        continue;
      }
      const results = await Promise.all(batch.map((s) => {
        const args = Array.isArray(s) ? s : s.unordered;
        return Promise.all([ours(a, expand(args, a.dir)), theirs(b, expand(args, b.dir))]);
      }));
      // normalised in script order, so that random IDs are numbered alike
      batch.forEach((s, i) => {
        const order = Array.isArray(s) ? (r: RunResult) => r : sorted;
        const [r1, r2] = results[i];
        assert.deepEqual(
          order(fixA(r1)),
          order(fixB(r2)),
          `${driver}: containers-storage ${(Array.isArray(s) ? s : s.unordered).join(" ")}`,
        );
      });
    }
    for (const name of ["base.out.tar", "top.out.tar", "blob.out", "gz.out.tar", "twin.out.tar"]) {
      assert.equal(
        await sha256File(`${a.dir}/${name}`),
        await sha256File(`${b.dir}/${name}`),
        `${driver}: ${name} byte for byte`,
      );
    }
    assert.equal(
      await sha256File(`${a.dir}/base.out.tar`),
      await sha256File(`${a.dir}/base.tar`),
      `${driver}: diff rebuilds the imported tarball`,
    );
    // gzip streams may differ; what they hold may not
    assert.deepEqual(
      gunzipSync(await Deno.readFile(`${a.dir}/gz.out.tar.gz`)),
      gunzipSync(await Deno.readFile(`${b.dir}/gz.out.tar.gz`)),
      `${driver}: the gzip diff holds the same tarball`,
    );
  } finally {
    await removeTree(top);
  }
}

Deno.test({
  name: "differential: the script on vfs, ours against the reference",
  // unprivileged, 1.43's vfs cannot start (it chowns its home to root)
  ignore: !referenceCli || !isRoot,
  fn: () => differential("vfs"),
});

Deno.test({
  name: "differential: the script on overlay, ours against the reference",
  ignore: !referenceCli || !isRoot,
  fn: () => differential("overlay"),
});

if (!isRoot) console.log(`differential tests: ${notRootReason}`);

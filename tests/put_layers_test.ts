/**
 * Store.putLayers, a chain of layers under one hold of the write lock:
 *
 * - on overlay (diffs applied concurrently: the progress of two layers
 *   interleaves) and on vfs (one after another), the records, tar-split
 *   files, diffs and trees are those of putLayer called layer by layer;
 * - a bad blob in the middle of the chain, an ID or name in use or given
 *   twice: a typed error (the bad blob's through `onLayerError` with its
 *   index) and the store's files byte-identical to before (lock files aside);
 * - SIGKILL of a process in the middle of a batch: our Store and the
 *   reference CLI (`layers`), whichever opens first, see a consistent store
 *   with none of the chain's layers or all of them, never an incomplete one;
 * - the reference CLI run while a batch is under way waits for the lock and
 *   lists all the chain's layers, complete.
 *
 * Root only (overlay mounts, and 1.43's vfs cannot start unprivileged).
 * @module
 */

import { join } from "node:path";
import { ErrBadArchive, ErrDuplicateID, ErrDuplicateName, StorageError } from "../lib/errors.ts";
import { type LogLevel, setLogSink } from "../lib/log.ts";
import { type Layer, Store } from "../lib/store/mod.ts";
import { CHAIN_IDS, CHAIN_LENGTH, chainTars } from "./layer_chain_fixture.ts";
import {
  isRoot,
  layerTree,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  tempDir,
  writeStorageConf,
} from "./helpers.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  bytesOf,
  checkStore,
  storeOpts,
} from "./store_helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";

const ignore = !isRoot;
if (ignore) console.log(`putLayers tests ${notRootReason}`);
const refIgnore = ignore || !referenceCli;
if (isRoot && !referenceCli) console.log("putLayers interop tests skipped: no reference CLI");

const DRIVERS = ["overlay", "vfs"];
const CHILD = new URL("./put_layers_child.ts", import.meta.url).pathname;

async function open(root: string, driver: string): Promise<Store> {
  return await Store.open(storeOpts(root, { graphDriverName: driver }));
}

/** A record without what differs from one put to another (its creation time). */
function comparable(l: Layer): Omit<Layer, "created"> {
  const { created: _, ...rest } = l;
  return rest;
}

/** Every file under the store's roots (lock files aside) with its mode and content digest. */
async function snapshot(root: string): Promise<string> {
  const script = `cd "$0" && find . -path '*.lock' -prune -o -printf '%p %y %m %U %G %s %l\\n' | ` +
    `LC_ALL=C sort && find . -type f ! -name '*.lock' -print0 | LC_ALL=C sort -z | ` +
    `xargs -0 -r sha256sum`;
  const out = await new Deno.Command("sh", { args: ["-c", script, root] }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

for (const driver of DRIVERS) {
  Deno.test({
    name: `putLayers (${driver}): same records, tar-split, diffs and trees as putLayer one by one`,
    ignore,
    fn: async () => {
      const tars = chainTars({ files: 1000 });
      const [a, b] = [await tempDir(`chain-seq-${driver}-`), await tempDir(`chain-par-${driver}-`)];
      const seq = await open(a, driver);
      const par = await open(b, driver);
      try {
        // From files, as images are read: each read waits for the kernel, so layers take turns.
        const files = tars.map((_, i) => join(a, `layer${i}.tar`));
        for (const [i, t] of tars.entries()) await Deno.writeFile(files[i], t);
        const read = async (i: number) => (await Deno.open(files[i])).readable;
        let parent = "";
        for (const i of tars.keys()) {
          parent = (await seq.putLayer({ id: CHAIN_IDS[i], parent, diff: await read(i) })).layer.id;
        }
        const events: number[] = [];
        const put = await par.putLayers({
          layers: await Promise.all(tars.map(async (_, i) => ({
            id: CHAIN_IDS[i],
            diff: await read(i),
            onProgress: () => events.push(i),
          }))),
        });
        assertEquals(put.map((p) => p.layer.id), CHAIN_IDS);
        // Every layer reported progress; on overlay the first two were read at the same time.
        for (let i = 0; i < CHAIN_LENGTH; i++) assert(events.includes(i), `no progress of ${i}`);
        const interleaved = events.lastIndexOf(0) > events.indexOf(1);
        assertEquals(interleaved, driver === "overlay", `progress order ${events.join("")}`);

        const seqLayers = await seq.layers();
        const parLayers = await par.layers();
        assertEquals(parLayers.map(comparable), seqLayers.map(comparable));
        assertEquals(put.map((p) => comparable(p.layer)), seqLayers.map(comparable));
        for (const id of CHAIN_IDS) {
          const split = (root: string) =>
            Deno.readFile(join(root, "g", `${driver}-layers`, `${id}.tar-split.gz`));
          assertEquals(await split(b), await split(a), `tar-split of ${id}`);
          const diff = async (s: Store) => await bytesOf(await s.diff("", id));
          assertEquals(await diff(par), await diff(seq), `diff of ${id}`);
          const tree = async (s: Store) => {
            const dir = await s.mount(id);
            try {
              return await layerTree(dir);
            } finally {
              await s.unmount(id);
            }
          };
          assertEquals(await tree(par), await tree(seq), `tree of ${id}`);
        }
        // The lookups by digest are those of the layers put one by one.
        for (const l of seqLayers) {
          const ids = async (s: Store) =>
            (await s.layersByUncompressedDigest(l["diff-digest"]!)).map((x) => x.id);
          assertEquals(await ids(par), await ids(seq));
        }
      } finally {
        await seq.shutdown(true).catch(() => {});
        await par.shutdown(true).catch(() => {});
        await removeTree(a);
        await removeTree(b);
      }
    },
  });

  Deno.test({
    name: `putLayers (${driver}): a failure anywhere leaves the store byte-identical`,
    ignore,
    fn: async () => {
      const tars = chainTars({ files: 100 });
      const root = await tempDir(`chain-fail-${driver}-`);
      let s = await open(root, driver);
      try {
        const base = (await s.putLayer({
          names: ["base"],
          diff: streamOf(buildTar([{ name: "x", data: "x\n" }])),
        })).layer;
        await s.shutdown(false);
        const before = await snapshot(root);
        s = await open(root, driver);
        const chain = (bad?: { at: number; bytes: Uint8Array }) =>
          tars.map((t, i) => ({
            id: CHAIN_IDS[i],
            names: [`n${i}`],
            diff: streamOf(bad?.at === i ? bad.bytes : t, 8 << 10),
          }));
        // A tar cut in the middle of an entry, the second of four layers.
        const cut = chainTars({ files: 100 })[0].subarray(0, 20_000);
        const failed: number[] = [];
        const e = await assertRejects(
          () =>
            s.putLayers({
              parent: base.id,
              layers: chain({ at: 1, bytes: cut }),
              onLayerError: (i, e) => (failed.push(i), e),
            }),
          StorageError,
        );
        assert(
          e instanceof ErrBadArchive || /unexpected end|truncated|short/i.test(e.message),
          e.message,
        );
        assertEquals(failed, [1]);
        // Bytes that are no tar at all, on top.
        await assertRejects(
          () =>
            s.putLayers({
              parent: base.id,
              layers: chain({ at: 3, bytes: new TextEncoder().encode("no tar ".repeat(500)) }),
            }),
          StorageError,
        );
        // An ID in use, or given twice; a name in use, or given twice.
        await assertRejects(
          () => s.putLayers({ layers: [{ id: base.id, diff: streamOf(tars[0]) }] }),
          ErrDuplicateID,
        );
        const twice = chain();
        twice[2].id = twice[0].id;
        await assertRejects(() => s.putLayers({ layers: twice }), ErrDuplicateID);
        const named = chain();
        named[3].names = ["base"];
        await assertRejects(() => s.putLayers({ layers: named }), ErrDuplicateName);
        named[3].names = ["n0"];
        await assertRejects(() => s.putLayers({ layers: named }), ErrDuplicateName);
        await s.shutdown(false);
        assertEquals(await snapshot(root), before);
        // And the store takes the chain afterwards.
        s = await open(root, driver);
        const put = await s.putLayers({ parent: "base", layers: chain() });
        assertEquals(put.map((p) => p.layer.parent), [base.id, ...CHAIN_IDS.slice(0, -1)]);
      } finally {
        await s.shutdown(true).catch(() => {});
        await removeTree(root);
      }
    },
  });
}

/** The overlay store at `root` as the reference CLI sees it, with an isolated storage.conf. */
async function refRoot(root: string) {
  const ref = { graph: join(root, "g"), run: join(root, "r"), driver: "overlay" };
  return { ref, env: await writeStorageConf(join(root, "storage.conf"), ref) };
}

async function rawLayers(root: string): Promise<{ id: string; flags?: Record<string, unknown> }[]> {
  try {
    return JSON.parse(await Deno.readTextFile(join(root, "g/overlay-layers/layers.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return [];
    throw e;
  }
}

Deno.test({
  name: "SIGKILL during putLayers: ours and the reference see none or all of the chain, complete",
  ignore: refIgnore,
  fn: async () => {
    const root = await tempDir("chain-crash-");
    const { ref, env } = await refRoot(root);
    try {
      let midways = 0;
      for (let i = 0; i < 6 && (i < 3 || midways === 0); i++) {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CHILD, root, "3000"],
          stdout: "piped",
          stderr: "null",
        }).spawn();
        let output = "";
        const reading = (async () => {
          for await (const c of child.stdout) output += new TextDecoder().decode(c);
        })();
        let exited = false;
        child.status.then(() => exited = true);
        // Once the records are saved incomplete, then a random part of the apply.
        const deadline = Date.now() + 60_000;
        while (!exited && !(await rawLayers(root)).some((l) => l.flags?.incomplete)) {
          assert(Date.now() < deadline, `the child never got there: ${output}`);
          await new Promise((r) => setTimeout(r, 2));
        }
        await new Promise((r) => setTimeout(r, Math.random() * 400));
        try {
          child.kill("SIGKILL");
        } catch {
          // done already
        }
        await child.status;
        await reading;
        const midway = (await rawLayers(root)).some((l) => l.flags?.incomplete);
        if (midway) midways++;
        const logged: [LogLevel, string][] = [];
        const ours = async () => {
          const previous = setLogSink((level, msg) => logged.push([level, msg]));
          try {
            const s = await open(root, "overlay");
            const layers = await s.layers();
            await s.shutdown(false);
            return layers.map((l) => l.id);
          } finally {
            setLogSink(previous);
          }
        };
        const theirs = async () => {
          const out = await reference(ref, ["layers", "-j"], { env });
          return ((JSON.parse(out.stdout) ?? []) as { id: string }[]).map((l) => l.id);
        };
        const first = i % 2 === 0 ? await ours() : await theirs();
        const second = i % 2 === 0 ? await theirs() : await ours();
        assertEquals(second, first);
        if (midway && i % 2 === 0) {
          assert(
            logged.some(([l, m]) => l === "warning" && m.startsWith("Found incomplete layer")),
          );
        }
        assert(first.length === 0 || first.length === CHAIN_LENGTH, `left ${first.length} layers`);
        if (output.includes("done")) assertEquals(first, CHAIN_IDS);
        const check = await checkStore(ref);
        assertEquals(check.problems, []);
        assert(check.layers.every((l) => !l.flags?.incomplete));
        if (first.length > 0) {
          const s = await open(root, "overlay");
          for (const id of [...CHAIN_IDS].reverse()) await s.deleteLayer(id);
          await s.shutdown(false);
        }
      }
      assert(midways > 0, "no kill landed in the middle of the batch");
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "the reference CLI waits for a batch's lock and lists the whole chain, complete",
  ignore: refIgnore,
  fn: async () => {
    const root = await tempDir("chain-lock-");
    const { ref, env } = await refRoot(root);
    const s = await open(root, "overlay");
    try {
      const tars = chainTars({ files: 2000 });
      let doneAt = 0;
      const putting = s.putLayers({
        layers: tars.map((t, i) => ({ id: CHAIN_IDS[i], diff: streamOf(t, 64 << 10) })),
      }).then((r) => (doneAt = performance.now(), r));
      while (!(await rawLayers(root)).some((l) => l.flags?.incomplete)) {
        await new Promise((r) => setTimeout(r, 1));
      }
      let listedAt = 0;
      const listing = reference(ref, ["layers", "-j"], { env })
        .then((r) => (listedAt = performance.now(), r));
      const [out] = await Promise.all([listing, putting]);
      assert(doneAt > 0 && doneAt <= listedAt, "the reference listed before the batch was done");
      const listed = JSON.parse(out.stdout) as { id: string; flags?: Record<string, unknown> }[];
      assertEquals(listed.map((l) => l.id), CHAIN_IDS);
      assert(listed.every((l) => !l.flags?.incomplete), out.stdout);
    } finally {
      await s.shutdown(true).catch(() => {});
      await removeTree(root);
    }
  },
});

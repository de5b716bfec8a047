/**
 * Crash safety of images and containers: a child process is SIGKILLed in
 * the middle of `createContainer` (vfs copies the image's 4,000 files into
 * the new layer) and in the middle of `deleteImage` (three vfs layers of
 * 1,000 files to remove, top first), a few times at random moments. Afterwards our
 * Store.open and the reference CLI (`layers`, `images`, `containers`) read
 * the store without error, whichever comes first; the incomplete layer is
 * gone; no directory or file lacks its record; no container lacks its
 * layer, no image its top layer; and what is left is what 1.43 leaves: the
 * container either exists whole or not at all, the deleted image's layers
 * that survive are its bottom ones, complete.
 * @module
 */

import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { type LogLevel, setLogSink } from "../lib/log.ts";
import {
  isRoot,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  tempDir,
  writeStorageConf,
} from "./helpers.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, checkStore, storeOpts } from "./store_helpers.ts";

const CHILD = new URL("./store_child.ts", import.meta.url).pathname;
/** Kills per test, at least; more (up to {@linkcode MAX_REPEATS}) until one lands mid-operation. */
const REPEATS = 3;
const MAX_REPEATS = 8;
/** Files in the big layer: enough that copying or removing it takes a good fraction of a second. */
const FILES = 4000;
/** Files in the bottom layer of the image that deleteImage removes (each of its 3 layers copies them). */
const CHAIN_FILES = 1000;

const ignore = !isRoot || !referenceCli;
if (ignore) {
  console.log(
    `store crash tests ${isRoot ? "skipped: reference CLI not installed" : notRootReason}`,
  );
}

/** A tar of `files` small files in 40 directories under `top/`. */
function bigTar(top: string, files = FILES): Uint8Array {
  const entries: FixtureEntry[] = [{ name: `${top}/`, type: "5" }];
  for (let d = 0; d < 40; d++) {
    entries.push({ name: `${top}/d${d}/`, type: "5" });
    for (let f = 0; f < files / 40; f++) {
      entries.push({ name: `${top}/d${d}/f${f}`, data: `${d}/${f}\n`.repeat(20) });
    }
  }
  return buildTar(entries);
}

/** Regular files below `dir`. */
async function countFiles(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) n += await countFiles(join(dir, e.name));
    else n++;
  }
  return n;
}

/** A test store: our options, the reference's root and an isolated storage.conf for it. */
interface Fixture {
  root: string;
  ref: { graph: string; run: string; driver: string };
  env: Record<string, string>;
}

async function fixture(prefix: string): Promise<Fixture> {
  const root = await tempDir(prefix);
  const ref = { graph: join(root, "g"), run: join(root, "r"), driver: "vfs" };
  return { root, ref, env: await writeStorageConf(join(root, "storage.conf"), ref) };
}

/** The layers of layers.json, read directly ([] while it does not exist). */
async function rawLayers(f: Fixture): Promise<{ id: string; flags?: { incomplete?: boolean } }[]> {
  try {
    return JSON.parse(await Deno.readTextFile(join(f.ref.graph, "vfs-layers/layers.json")));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * Runs the store child with `args`, waits for its "start" line, then until
 * `ready()` holds (or the child is done), then `delayMs` more, and
 * SIGKILLs it.
 * @returns what it printed before dying, and whether a layer was left
 * flagged incomplete (the kill landed in the middle of the operation)
 */
async function killChild(
  f: Fixture,
  args: string[],
  ready: () => Promise<boolean>,
  delayMs: number,
): Promise<{ output: string; midway: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, args[0], f.root, ...args.slice(1)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let output = "";
  const reading = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) output += dec.decode(chunk);
  })();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  try {
    while (!exited && (!output.includes("start\n") || !(await ready()))) {
      assert(Date.now() < deadline, `the child never got there: ${output}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, delayMs));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // it finished already
    }
    await child.status;
  }
  await reading;
  const midway = (await rawLayers(f)).some((l) => l.flags?.incomplete === true);
  return { output, midway };
}

/**
 * Reads the store after a crash, with our Store first (checking that it
 * reports the incomplete layer it deletes) or the reference CLI first, then
 * the other; returns the store's files as checkStore sees them, after
 * asserting that they are consistent.
 */
async function reopen(f: Fixture, oursFirst: boolean, midway: boolean) {
  const ours = async (first: boolean) => {
    const logged: [LogLevel, string][] = [];
    const previous = setLogSink((level, msg) => logged.push([level, msg]));
    try {
      const s = await Store.open(storeOpts(f.root));
      await s.layers();
      await s.images();
      await s.containers();
      await s.shutdown(false);
    } finally {
      setLogSink(previous);
    }
    if (first && midway) {
      assert(logged.some(([l, m]) => l === "warning" && m.startsWith("Found incomplete layer")));
    }
  };
  const theirs = async () => {
    for (const what of ["layers", "images", "containers"]) {
      const out = await reference(f.ref, [what, "-j"], { env: f.env });
      const listed = JSON.parse(out.stdout); // "null" when there are none
      assert(listed === null || Array.isArray(listed), out.stdout);
    }
  };
  if (oursFirst) {
    await ours(true);
    await theirs();
  } else {
    await theirs();
    await ours(false);
  }
  const check = await checkStore(f.ref);
  assertEquals(check.problems, []);
  return check;
}

Deno.test({
  name: "SIGKILL during createContainer: ours and the reference read the store, nothing half-made",
  ignore,
  fn: async () => {
    const f = await fixture("crash-ctr-");
    try {
      let s = await Store.open(storeOpts(f.root));
      const t0 = performance.now();
      const { layer: base } = await s.putLayer({ diff: streamOf(bigTar("big"), 1 << 20) });
      const putMs = performance.now() - t0;
      const image = await s.createImage(base.id, { names: ["big"] });
      await s.shutdown(false);
      const baseFiles = await countFiles(join(f.ref.graph, "vfs/dir", base.id));
      let midways = 0;
      let i = 0;
      for (; i < REPEATS || (midways === 0 && i < MAX_REPEATS); i++) {
        const known = new Set((await rawLayers(f)).map((l) => l.id));
        // Once the container's layer is recorded and being copied into.
        const ready = async () => {
          const fresh = (await rawLayers(f)).find((l) => !known.has(l.id));
          if (!fresh) return false;
          try {
            return (await countFiles(join(f.ref.graph, "vfs/dir", fresh.id))) > 0;
          } catch {
            return false;
          }
        };
        const name = `c${i}`;
        const { output, midway } = await killChild(
          f,
          ["create-container", image.id, name],
          ready,
          Math.random() * putMs / 4,
        );
        if (midway) midways++;
        const check = await reopen(f, i % 2 === 0, midway);
        const c = check.containers.find((c) => c.names?.includes(name));
        const finished = /^start\n[0-9a-f]{64}\n/.test(output);
        if (finished) assert(c, `the child created ${name} but it is gone`);
        // Every layer but the image's is a container's, or a complete copy a container never got
        // (1.43 too records the container only after its layer is complete).
        const containerLayers = new Set(check.containers.map((c) => c.layer));
        for (const l of check.layers) {
          if (l.id === base.id) continue;
          assertEquals(l.parent, base.id);
          const files = await countFiles(join(f.ref.graph, "vfs/dir", l.id));
          assertEquals(files, baseFiles, `layer ${l.id} is a partial copy`);
          if (!containerLayers.has(l.id)) {
            assert(!finished && !c, `layer ${l.id} outlived its container`);
            s = await Store.open(storeOpts(f.root));
            await s.deleteLayer(l.id);
            await s.shutdown(false);
          }
        }
        assert(check.unreferencedLayers.length <= 1, `${check.unreferencedLayers}`);
      }
      assert(midways > 0, "no kill landed in the middle of createContainer");
      // The store is still usable: a container on the image, with the image's files.
      s = await Store.open(storeOpts(f.root));
      const c = await s.createContainer(image.id, { names: ["after"] });
      const dir = await s.mount(c.id);
      assertEquals(await countFiles(dir), baseFiles);
      await s.unmount(c.id);
      await s.shutdown(false);
      console.log(`${midways} of ${i} kills landed in the middle of createContainer`);
    } finally {
      await removeTree(f.root);
    }
  },
});

Deno.test({
  name: "SIGKILL during deleteImage: ours and the reference read the store, the bottom layers stay",
  ignore,
  fn: async () => {
    const f = await fixture("crash-rmi-");
    try {
      // An image on three layers: each vfs layer is a full copy, so each takes a while to remove.
      const build = async (tag: string) => {
        const s = await Store.open(storeOpts(f.root));
        const chain: string[] = [];
        for (let j = 0; j < 3; j++) {
          const tar = j === 0
            ? bigTar(tag, CHAIN_FILES)
            : buildTar([{ name: `top${j}`, data: `${j}` }]);
          const { layer } = await s.putLayer({
            parent: chain.at(-1),
            names: [`${tag}-l${j}`],
            diff: streamOf(tar, 1 << 20),
          });
          chain.push(layer.id);
        }
        const image = await s.createImage(chain[2], { names: [tag] });
        return { s, chain, image };
      };
      // How long removing the three layers takes here, measured once: the kills land within it.
      const calibration = await build("calibration");
      const t0 = performance.now();
      assertEquals(
        await calibration.s.deleteImage(calibration.image.id),
        calibration.chain.toReversed(),
      );
      const removeMs = performance.now() - t0;
      await calibration.s.shutdown(false);
      let midways = 0;
      let i = 0;
      for (; i < REPEATS || (midways === 0 && i < MAX_REPEATS); i++) {
        const { s: opened, chain, image } = await build(`i${i}`);
        await opened.shutdown(false);
        // Once the image's record is gone: its layers are being removed.
        const ready = async () => {
          try {
            const images = JSON.parse(
              await Deno.readTextFile(join(f.ref.graph, "vfs-images/images.json")),
            );
            return !images.some((im: { id: string }) => im.id === image.id);
          } catch {
            return false; // not written yet
          }
        };
        const { output, midway } = await killChild(
          f,
          ["delete-image", image.id],
          ready,
          Math.random() * removeMs,
        );
        if (midway) midways++;
        const check = await reopen(f, i % 2 === 1, midway);
        assert(!check.images.some((im) => im.id === image.id), "the image came back");
        // What survives of the chain is its bottom, whole; nothing else was touched.
        const left = chain.filter((id) => check.layers.some((l) => l.id === id));
        assertEquals(left, chain.slice(0, left.length), "layers were removed out of order");
        if (output.includes("]\n")) assertEquals(left, [], "the child finished");
        assertEquals(check.unreferencedLayers, left);
        assertEquals(check.layers.length, left.length);
        const s = await Store.open(storeOpts(f.root));
        for (const id of left) {
          const dir = await s.mount(id);
          assertEquals(
            await countFiles(dir),
            CHAIN_FILES + left.indexOf(id),
            `layer ${id} is partial`,
          );
          await s.unmount(id);
        }
        // The leftovers are ordinary layers: delete them (top first) as a user would.
        for (const id of left.reverse()) await s.deleteLayer(id);
        await s.shutdown(false);
        assertEquals((await checkStore(f.ref)).layers, []);
      }
      assert(midways > 0, "no kill landed in the middle of deleteImage");
      console.log(`${midways} of ${i} kills landed in the middle of deleteImage`);
    } finally {
      await removeTree(f.root);
    }
  },
});

/**
 * A child process for the store tests that need several processes:
 *
 * - `open <root>`: opens the vfs store at root (prints "ok" or the error).
 * - `put <root> <name>`: puts a layer named <name> from the tar on stdin, prints its ID.
 * - `many <root> <prefix> <n>`: puts <n> small layers named <prefix>-<i>, each on the previous.
 * - `churn <root> <prefix> <deadline ms>`: until the deadline (epoch ms), creates layers, images
 *   and containers named <prefix>-l<i>, -i<i>, -c<i> (writing a file into each container through
 *   a mount) and deletes containers and images at random; prints one JSON line
 *   `{"op":"create"|"delete","kind","name","id"}` after each change is made, then "done".
 * - `create-container <root> <image> <name>`: prints "start", creates the container, prints its ID.
 * - `delete-image <root> <image>`: prints "start", deletes the image, prints the removed layers.
 * - `crash-ops <root> <prefix> <first>`: makes a layer and two images, prints "start", then until
 *   killed runs the operations of CRASH_OPS in turn from position <first>: imports a layer,
 *   creates an image on it, sets a big data item of the image, then creates a container on it or
 *   deletes an image that no container uses. Prints one JSON line `{"begin": op}` (with the ID of
 *   the image it deletes) before each
 *   operation and `{"done": op, …}` (the IDs, names, key and digest) once it returned.
 * @module
 */

import { Store } from "../lib/store/mod.ts";
import { CRASH_OPS, sha, storeOpts } from "./store_helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";

const [cmd, root, ...rest] = Deno.args;

try {
  const s = await Store.open(storeOpts(root));
  if (cmd === "open") {
    console.log("ok");
  } else if (cmd === "put") {
    const { layer } = await s.putLayer({ names: [rest[0]], diff: Deno.stdin.readable });
    console.log(layer.id);
  } else if (cmd === "many") {
    const [prefix, n] = rest;
    let parent = "";
    for (let i = 0; i < Number(n); i++) {
      const tar = buildTar([{ name: `${prefix}/`, type: "5" }, {
        name: `${prefix}/f${i}`,
        data: `${prefix} ${i}\n`,
      }]);
      const { layer } = await s.putLayer({
        parent,
        names: [`${prefix}-${i}`],
        diff: streamOf(tar),
      });
      await s.setMetadata(layer.id, `${prefix} ${i}`);
      parent = layer.id;
    }
    console.log("done");
  } else if (cmd === "churn") {
    await churn(s, rest[0], Number(rest[1]));
    // Not shutdown(): it refuses while any process has a layer of the store mounted, as in 1.43.
    s.free();
    console.log("done");
    Deno.exit(0);
  } else if (cmd === "create-container") {
    console.log("start");
    console.log((await s.createContainer(rest[0], { names: [rest[1]] })).id);
  } else if (cmd === "delete-image") {
    console.log("start");
    console.log(JSON.stringify(await s.deleteImage(rest[0])));
  } else if (cmd === "crash-ops") {
    await crashOps(s, rest[0], Number(rest[1] ?? 0));
  }
  await s.shutdown(false);
} catch (e) {
  console.log(`${(e as Error).name}: ${(e as Error).message}`);
  Deno.exit(3);
}

/** The `churn` loop: each step either makes a layer+image+container or deletes one of ours. */
async function churn(s: Store, prefix: string, deadline: number): Promise<void> {
  const report = (op: string, kind: string, name: string, id: string) =>
    console.log(JSON.stringify({ op, kind, name, id }));
  const live: { image: string; layer: string; i: number; container?: string }[] = [];
  for (let i = 0; Date.now() < deadline; i++) {
    if (live.length < 3 || Math.random() < 0.5) {
      const tar = buildTar([{ name: `${prefix}/`, type: "5" }, {
        name: `${prefix}/l${i}`,
        data: `${prefix} ${i}\n`,
      }]);
      const { layer } = await s.putLayer({ names: [`${prefix}-l${i}`], diff: streamOf(tar) });
      report("create", "layer", `${prefix}-l${i}`, layer.id);
      const image = await s.createImage(layer.id, {
        names: [`${prefix}-i${i}`],
        bigData: [{ key: "config", data: new TextEncoder().encode(`${prefix} ${i}`) }],
      });
      report("create", "image", `${prefix}-i${i}`, image.id);
      const c = await s.createContainer(image.id, { names: [`${prefix}-c${i}`] });
      const dir = await s.mount(c.id);
      await Deno.writeTextFile(`${dir}/owner`, `${prefix}-c${i}`);
      await s.unmount(c.id);
      report("create", "container", `${prefix}-c${i}`, c.id);
      live.push({ image: image.id, layer: layer.id, i, container: c.id });
      continue;
    }
    const k = Math.floor(Math.random() * live.length);
    const e = live[k];
    if (e.container) {
      await s.deleteContainer(e.container);
      report("delete", "container", `${prefix}-c${e.i}`, e.container);
      e.container = undefined;
      continue;
    }
    const removed = await s.deleteImage(e.image);
    report("delete", "image", `${prefix}-i${e.i}`, e.image);
    if (!removed.includes(e.layer)) throw new Error(`deleting ${e.image} kept its layer`);
    report("delete", "layer", `${prefix}-l${e.i}`, e.layer);
    live.splice(k, 1);
  }
}

/**
 * The `crash-ops` loop (see the module doc): after a layer and two images
 * made before "start" (so that any operation can come first), it runs the
 * operations in the order of {@linkcode CRASH_OPS} from position `first`
 * on, until the process is killed.
 */
async function crashOps(s: Store, prefix: string, first: number): Promise<never> {
  const report = (line: object) => console.log(JSON.stringify(line));
  let n = 0;
  const tarOf = () =>
    buildTar([
      { name: `${prefix}-${n}/`, type: "5" },
      ...Array.from({ length: 30 }, (_, f) => ({
        name: `${prefix}-${n}/f${f}`,
        data: `${prefix} ${n} ${f}\n`.repeat(50),
      })),
    ]);
  const newLayer = async () => {
    const name = `${prefix}-l${n++}`;
    const { layer } = await s.putLayer({ names: [name], diff: streamOf(tarOf()) });
    return { id: layer.id, name };
  };
  const newImage = async (layer: string) => {
    const name = `${prefix}-i${n++}`;
    return { id: (await s.createImage(layer, { names: [name] })).id, name, layer };
  };
  let layer = await newLayer();
  let image = await newImage(layer.id);
  let deletable = await newImage(layer.id);
  report({ done: "import-layer", ...layer });
  report({ done: "create-image", ...image });
  report({ done: "create-image", ...deletable });
  console.log("start");
  for (let i = first;; i++) {
    const op = CRASH_OPS[i % CRASH_OPS.length];
    report(op === "delete-image" ? { begin: op, id: deletable.id } : { begin: op });
    if (op === "import-layer") {
      layer = await newLayer();
      report({ done: op, ...layer });
    } else if (op === "create-image") {
      image = await newImage(layer.id);
      report({ done: op, ...image });
    } else if (op === "set-image-data") {
      const data = new TextEncoder().encode(`${prefix} ${n}\n`.repeat(200));
      const key = `k${n++}`;
      await s.setImageBigData(image.id, key, data);
      report({ done: op, id: image.id, key, digest: sha(data) });
    } else if (op === "create-container") {
      const name = `${prefix}-c${n++}`;
      const c = await s.createContainer(image.id, { names: [name] });
      report({ done: op, id: c.id, name, layer: c.layer, image: image.id });
    } else {
      // the image made in the round before, which no container uses
      const removed = await s.deleteImage(deletable.id);
      report({ done: op, id: deletable.id, removed });
      deletable = image;
    }
  }
}

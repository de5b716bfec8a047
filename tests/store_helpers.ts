/**
 * Helpers shared by the layer store, vfs, interop, crash and concurrency
 * tests: store options for a temp root, stream/digest utilities and the
 * small assertion wrappers those tests use.
 * @module
 */

import nodeAssert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { StoreOptions } from "../lib/config.ts";

/** Store options for a vfs store under `root` (`root/g`, `root/r`). */
export function storeOpts(root: string, extra: Partial<StoreOptions> = {}): StoreOptions {
  return {
    graphRoot: join(root, "g"),
    runRoot: join(root, "r"),
    graphDriverName: "vfs",
    graphDriverOptions: [],
    uidMap: [],
    gidMap: [],
    imageStores: [],
    ...extra,
  };
}

/** All bytes of a stream. */
export async function bytesOf(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** "sha256:<hex>" of bytes. */
export function sha(b: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(b).digest("hex");
}

/** Truthiness assertion. */
export function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg);
}

/** Deep equality assertion. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts that `fn` rejects, optionally with an instance of `cls`; returns the error. */
// deno-lint-ignore no-explicit-any
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new Error(`expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`);
    }
    return e as E;
  }
  throw new Error(`expected a rejection${cls ? ` with ${cls.name}` : ""}`);
}

/** Names of the entries of a directory (empty when it does not exist). */
export async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** What {@linkcode checkStore} found in a store's files. */
export interface StoreCheck {
  /** Inconsistencies: unparsable JSON, records without data, data without records, dangling references. */
  problems: string[];
  /** Layers that no image (top or mapped layer) or container reaches through parents. */
  unreferencedLayers: string[];
  /** Leftover temporary files of atomic writes (a process killed while writing one). */
  tempFiles: string[];
  /** layers.json, images.json and containers.json as parsed. */
  layers: any[];
  images: any[];
  containers: any[];
}

/** A temporary file of an atomic write: ours (`.name.tmp-…`) or containers/storage's (`.tmp-name…`). */
const TEMP_FILE = /^\.(tmp-.+|.+\.tmp-.+)$/;

/**
 * Reads a store's files directly (not through our Store, so that the check
 * does not trust the code under test) and reports what is inconsistent:
 * every JSON file of the layer, image and container stores must parse; no
 * layer may be flagged incomplete or lack its parent or its driver
 * directory; no directory under the driver's home (vfs `dir/`, overlay's
 * home) or file under `<driver>-layers`, `<driver>-images` and
 * `<driver>-containers` (graph and run root) may lack a record; images
 * need their layers, containers their layers and images; the mount table
 * names only existing layers; names are unique per kind.
 */
export async function checkStore(
  root: { graph: string; run: string; driver: string },
): Promise<StoreCheck> {
  const { graph, run, driver } = root;
  const problems: string[] = [];
  const tempFiles: string[] = [];
  const readJSON = async (path: string): Promise<any[]> => {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    try {
      return text === "" ? [] : JSON.parse(text) ?? [];
    } catch (e) {
      problems.push(`${path} does not parse: ${e}`);
      return [];
    }
  };
  const layers = await readJSON(join(graph, `${driver}-layers`, "layers.json"));
  const images = await readJSON(join(graph, `${driver}-images`, "images.json"));
  const containers = await readJSON(join(graph, `${driver}-containers`, "containers.json"));
  const mounts = await readJSON(join(run, `${driver}-layers`, "mountpoints.json"));
  const layerIDs = new Set(layers.map((l) => l.id));
  const imageIDs = new Set(images.map((i) => i.id));
  const containerIDs = new Set(containers.map((c) => c.id));
  for (const [kind, records] of [["layer", layers], ["image", images], ["container", containers]]) {
    const seen = new Map<string, string>();
    for (const r of records as any[]) {
      for (const name of r.names ?? []) {
        if (seen.has(name)) problems.push(`${kind} name ${name} on ${seen.get(name)} and ${r.id}`);
        seen.set(name, r.id);
      }
    }
  }
  // Layers and the driver's directories.
  const driverDirs = driver === "vfs" ? join(graph, "vfs", "dir") : join(graph, driver);
  const dirs = new Set(await listDir(driverDirs));
  for (const l of layers) {
    if (l.flags?.incomplete) problems.push(`layer ${l.id} is flagged incomplete`);
    if (l.parent && !layerIDs.has(l.parent)) {
      problems.push(`layer ${l.id}: parent ${l.parent} missing`);
    }
    if (!dirs.has(l.id)) problems.push(`layer ${l.id} has no directory in ${driverDirs}`);
  }
  for (const d of dirs) {
    if (layerIDs.has(d) || (driver === "overlay" && (d === "l" || d.startsWith(".")))) continue;
    problems.push(`orphan directory ${join(driverDirs, d)}`);
  }
  if (driver === "overlay") {
    for (const link of await listDir(join(driverDirs, "l"))) {
      const target = await Deno.readLink(join(driverDirs, "l", link));
      if (!layerIDs.has(target.split("/")[1])) problems.push(`dangling overlay link l/${link}`);
    }
  }
  // Files of the record stores: their JSON and lock, the records' own files, nothing else.
  const owned = async (dir: string, own: string[], isOwner: (name: string) => boolean) => {
    for (const name of await listDir(dir)) {
      if (own.includes(name) || isOwner(name)) continue;
      if (TEMP_FILE.test(name)) tempFiles.push(join(dir, name));
      else problems.push(`orphan ${join(dir, name)}`);
    }
  };
  await owned(
    join(graph, `${driver}-layers`),
    ["layers.json", "layers.lock"],
    (n) => layerIDs.has(n.replace(/\.tar-split\.gz$/, "")),
  );
  await owned(join(run, `${driver}-layers`), ["mountpoints.json", "mountpoints.lock"], () => false);
  await owned(
    join(graph, `${driver}-images`),
    ["images.json", "images.lock"],
    (n) => imageIDs.has(n),
  );
  await owned(
    join(graph, `${driver}-containers`),
    ["containers.json", "containers.lock"],
    (n) => containerIDs.has(n),
  );
  await owned(join(run, `${driver}-containers`), [], (n) => containerIDs.has(n));
  // References between records.
  for (const i of images) {
    for (const l of [i.layer, ...(i["mapped-layers"] ?? [])]) {
      if (l && !layerIDs.has(l)) problems.push(`image ${i.id}: layer ${l} missing`);
    }
  }
  for (const c of containers) {
    if (!layerIDs.has(c.layer)) problems.push(`container ${c.id}: layer ${c.layer} missing`);
    if (c.image && !imageIDs.has(c.image)) {
      problems.push(`container ${c.id}: image ${c.image} missing`);
    }
  }
  for (const m of mounts) {
    if (!layerIDs.has(m.id)) problems.push(`mountpoints.json names missing layer ${m.id}`);
  }
  // Layers nothing reaches.
  const reached = new Set<string>();
  const byID = new Map(layers.map((l) => [l.id, l]));
  const roots = [
    ...images.flatMap((i) => [i.layer, ...(i["mapped-layers"] ?? [])]),
    ...containers.map((c) => c.layer),
  ];
  for (let id of roots) {
    while (id && !reached.has(id) && byID.has(id)) {
      reached.add(id);
      id = byID.get(id).parent;
    }
  }
  const unreferencedLayers = layers.map((l) => l.id).filter((id) => !reached.has(id));
  return { problems, unreferencedLayers, tempFiles, layers, images, containers };
}

/**
 * The operations of store_child.ts `crash-ops`, in its order: images
 * alternately get a container and are deleted a round later.
 */
export const CRASH_OPS = [
  "import-layer",
  "create-image",
  "set-image-data",
  "create-container",
  "import-layer",
  "create-image",
  "set-image-data",
  "delete-image",
];

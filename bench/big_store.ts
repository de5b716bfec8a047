/**
 * A store with many records for the listing benchmarks (`layers`, `images`,
 * `containers`): 2,000 layers (500 three-layer image chains, 200 container
 * layers, 300 loose layers), 500 images and 200 containers, written as
 * containers/storage 1.43 writes its JSON files. The layers are empty and
 * have no driver directories: listing reads only the records.
 *
 * @example
 * ```ts ignore
 * import { writeBigStore } from "./big_store.ts";
 * writeBigStore("/tmp/g", "overlay");
 * ```
 * @module
 */

import { rng } from "./generate.ts";

/** Writes the records into graph root `graph` for `driver` (its directories are created). */
export function writeBigStore(graph: string, driver: string): void {
  const rand = rng(7);
  const id = () => {
    let s = "";
    for (let i = 0; i < 8; i++) {
      s += Math.floor(rand() * 2 ** 32).toString(16).padStart(8, "0");
    }
    return s;
  };
  const created = "2026-01-01T00:00:00.000000001Z";
  const layers: Record<string, unknown>[] = [];
  const images: Record<string, unknown>[] = [];
  const containers: Record<string, unknown>[] = [];
  for (let i = 0; i < 500; i++) {
    let parent: string | undefined;
    for (let k = 0; k < 3; k++) {
      const l: Record<string, unknown> = { id: id(), created };
      if (parent) l.parent = parent;
      layers.push(l);
      parent = l.id as string;
    }
    images.push({ id: id(), names: [`localhost/bench/img${i}:latest`], layer: parent, created });
  }
  for (let i = 0; i < 200; i++) {
    const image = images[i * 2];
    const layer = { id: id(), parent: image.layer, created };
    layers.push(layer);
    containers.push({
      id: id(),
      names: [`ctr${i}`],
      image: image.id,
      layer: layer.id,
      created,
      flags: { MountLabel: "", ProcessLabel: "" },
    });
  }
  for (let i = 0; i < 300; i++) layers.push({ id: id(), created });
  for (
    const [dir, file, records] of [
      ["layers", "layers.json", layers],
      ["images", "images.json", images],
      ["containers", "containers.json", containers],
    ] as const
  ) {
    Deno.mkdirSync(`${graph}/${driver}-${dir}`, { recursive: true });
    Deno.writeTextFileSync(`${graph}/${driver}-${dir}/${file}`, JSON.stringify(records));
  }
}

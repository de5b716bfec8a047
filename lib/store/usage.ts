/**
 * What uses a layer besides other layers: the top (and mapped top) layers
 * of images and the layers of containers, read from images.json and
 * containers.json under their locks. The image and container stores
 * themselves come later; this reads only the fields the layer checks need.
 *
 * @example
 * ```ts ignore
 * const images = await readRecords("/g/vfs-images", "images");
 * ```
 * @module
 */

import { join } from "node:path";
import { LockFile } from "../lockfile.ts";

/** The fields of an images.json or containers.json record that refer to layers. */
export interface LayerUser {
  /** Image or container ID. */
  id: string;
  /** Top layer (image) or read-write layer (container). */
  layer?: string;
  /** Images only: top layers made for other ID mappings. */
  "mapped-layers"?: string[];
}

/** Reads `<dir>/<kind>.json` under `<dir>/<kind>.lock` held for reading; absent means none. */
export async function readRecords(
  dir: string,
  kind: "images" | "containers",
  readOnly = false,
): Promise<LayerUser[]> {
  let lock: LockFile;
  try {
    lock = await LockFile.get(join(dir, `${kind}.lock`), { readOnly });
  } catch (e) {
    if (readOnly) return [];
    throw e;
  }
  await lock.rLock();
  try {
    const text = await Deno.readTextFile(join(dir, `${kind}.json`));
    return text.length > 0 ? JSON.parse(text) ?? [] : [];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  } finally {
    lock.unlock();
  }
}

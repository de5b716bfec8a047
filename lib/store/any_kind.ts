/**
 * Store operations that take an ID or name of any kind of object and find
 * it the way containers/storage 1.43 does: layers first (ours, then those
 * of additional image stores), then images, then containers. Names,
 * metadata, lookups, unchecked deletion and wiping live here.
 *
 * @example
 * ```ts ignore
 * const id = await lookupAny(parts, "web");       // a layer, image or container
 * await updateNames(parts, id, ["web", "www"], "set");
 * ```
 * @module
 */

import { ErrLayerUnknown, ErrNotALayer, ErrNotAnID } from "../errors.ts";
import type { NameOperation } from "../layers/encode.ts";
import { applyNameOperation, dedupeNames } from "../layers/encode.ts";
import {
  allImageStores,
  allLayerStores,
  containerPath,
  imageHolds,
  layerHolds,
  type StoreParts,
  withLocks,
} from "./parts.ts";

/** Holds for reading everything an any-kind lookup may visit, in lock order. */
function readAll(p: StoreParts) {
  return [
    ...layerHolds(p, "read"),
    ...imageHolds(p, "read"),
    [p.containerStore, "read"] as const,
  ];
}

/**
 * What an ID or name refers to, as the first of: a layer, an image, a
 * container; the result of `pick` for it, or undefined when nothing matches.
 */
async function findAny<T>(
  p: StoreParts,
  idOrName: string,
  pick: {
    layer: (id: string) => T;
    image: (id: string) => T;
    container: (id: string) => T;
  },
): Promise<T | undefined> {
  return await withLocks(readAll(p), () => {
    const ls = allLayerStores(p).find((s) => s.exists(idOrName));
    if (ls) return pick.layer(ls.lookupID(idOrName));
    const is = allImageStores(p).find((s) => s.exists(idOrName));
    if (is) return pick.image(is.lookupID(idOrName));
    if (p.containerStore.exists(idOrName)) {
      return pick.container(p.containerStore.lookupID(idOrName));
    }
    return undefined;
  });
}

/** The ID of the layer, image or container `idOrName` names. */
export async function lookupAny(p: StoreParts, idOrName: string): Promise<string> {
  const same = (id: string) => id;
  const id = await findAny(p, idOrName, { layer: same, image: same, container: same });
  if (id === undefined) throw new ErrLayerUnknown(idOrName);
  return id;
}

/** Whether `idOrName` names a layer, an image or a container. */
export async function existsAny(p: StoreParts, idOrName: string): Promise<boolean> {
  const yes = () => true;
  return (await findAny(p, idOrName, { layer: yes, image: yes, container: yes })) ?? false;
}

/** The names of the layer, image or container `idOrName` names. */
export async function namesOf(p: StoreParts, idOrName: string): Promise<string[]> {
  const names = await findAny(p, idOrName, {
    layer: (id) => allLayerStores(p).find((s) => s.exists(id))!.get(id).names ?? [],
    image: (id) => allImageStores(p).find((s) => s.exists(id))!.get(id).names ?? [],
    container: (id) => p.containerStore.get(id).names ?? [],
  });
  if (names === undefined) throw new ErrLayerUnknown(idOrName);
  return names;
}

/** The metadata of the layer, image or container `idOrName` names. */
export async function metadataOf(p: StoreParts, idOrName: string): Promise<string> {
  const md = await findAny(p, idOrName, {
    layer: (id) => allLayerStores(p).find((s) => s.exists(id))!.metadata(id),
    image: (id) => allImageStores(p).find((s) => s.exists(id))!.metadata(id),
    container: (id) => p.containerStore.metadata(id),
  });
  if (md === undefined) throw new ErrNotAnID(idOrName);
  return md;
}

/** Holds for changing our stores, in lock order. */
function writeOurs(p: StoreParts) {
  return [
    [p.layerStore, "write"] as const,
    [p.imageStore, "write"] as const,
    [p.containerStore, "write"] as const,
  ];
}

/** Replaces the metadata of our layer, image or container `idOrName`. */
export async function setMetadataOf(p: StoreParts, idOrName: string, md: string): Promise<void> {
  await withLocks(writeOurs(p), async () => {
    for (const s of [p.layerStore, p.imageStore, p.containerStore]) {
      if (s.exists(idOrName)) return await s.setMetadata(idOrName, md);
    }
    throw new ErrNotAnID(idOrName);
  });
}

/**
 * Changes the names of a layer, image or container (names move away from
 * other objects of the same kind). An image of an additional image store
 * gets a record of its own in our store carrying the new names, since the
 * read-only store cannot change.
 */
export async function updateNames(
  p: StoreParts,
  idOrName: string,
  given: string[],
  op: NameOperation,
): Promise<void> {
  const names = dedupeNames(given);
  const holds = [
    [p.layerStore, "write"] as const,
    ...imageHolds(p, "write"),
    [p.containerStore, "write"] as const,
  ];
  await withLocks(holds, async () => {
    const ours = [p.layerStore, p.imageStore] as const;
    for (const s of ours) {
      if (!s.exists(idOrName)) continue;
      if (op === "set") return await s.setNames(idOrName, names);
      if (op === "add") return await s.addNames(idOrName, names);
      return await s.removeNames(idOrName, names);
    }
    const ro = p.roImageStores.find((s) => s.exists(idOrName));
    if (ro) {
      const image = ro.get(idOrName);
      await p.imageStore.create({
        id: image.id,
        names: applyNameOperation(image.names ?? [], names, op),
        layer: image.layer,
        metadata: image.metadata,
        created: image.created,
        digest: image.digest,
      });
      return;
    }
    const cs = p.containerStore;
    if (!cs.exists(idOrName)) throw new ErrLayerUnknown(idOrName);
    if (op === "set") return await cs.setNames(idOrName, names);
    if (op === "add") return await cs.addNames(idOrName, names);
    return await cs.removeNames(idOrName, names);
  });
}

/**
 * Deletes a container (with its layer and directories), an image or a
 * layer by ID or name, without the checks of the kind-specific deletes.
 */
export async function deleteAny(p: StoreParts, idOrName: string): Promise<void> {
  await withLocks(writeOurs(p), async () => {
    const { layerStore: ls, imageStore: is, containerStore: cs } = p;
    if (cs.exists(idOrName)) {
      const c = cs.get(idOrName);
      if (!ls.exists(c.layer)) throw new ErrNotALayer(c.layer);
      await ls.delete(c.layer);
      await cs.delete(c.id);
      for (const where of ["graph", "run"] as const) {
        await Deno.remove(`${containerPath(p, where, c.id)}/userdata`, { recursive: true })
          .catch((e) => {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          });
      }
      return;
    }
    if (is.exists(idOrName)) return await is.delete(idOrName);
    if (ls.exists(idOrName)) return await ls.delete(idOrName);
    throw new ErrLayerUnknown(idOrName);
  });
}

/** Deletes every container, image and layer of our store. */
export async function wipeAll(p: StoreParts): Promise<void> {
  await withLocks(writeOurs(p), async () => {
    await p.containerStore.wipe();
    await p.imageStore.wipe();
    await p.layerStore.wipe();
  });
}

/**
 * Store operations on images, with containers/storage 1.43's semantics:
 * creating an image on a layer of any layer store, deleting one together
 * with the layers that nothing else uses any more, its size, and finding
 * or making the copy of its top layer that matches a container's ID
 * mappings.
 *
 * @example
 * ```ts ignore
 * const image = await createImage(parts, topLayerID, { names: ["base"] });
 * const removedLayers = await deleteImage(parts, image.id, true);
 * ```
 * @module
 */

import {
  ErrImageUnknown,
  ErrImageUsedByContainer,
  ErrLayerUnknown,
  ErrNotAnImage,
  StorageError,
} from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import type { Image } from "../images/image.ts";
import type { ImageStore, ManifestDigester } from "../images/image_store.ts";
import type { Layer } from "../layers/layer.ts";
import {
  allImageStores,
  allLayerStores,
  canUseShifting,
  imageHolds,
  imageStoreOf,
  layerHolds,
  layerStoreOf,
  type StoreParts,
  withLocks,
} from "./parts.ts";

/** One big data item to store with a new image. */
export interface ImageBigDataItem {
  /** The item's key (e.g. "manifest", or "sha256:<config digest>"). */
  key: string;
  /** Its content. */
  data: Uint8Array;
  /** For manifest items: the digest to record instead of computing it. */
  digest?: string;
}

/** Options of {@linkcode createImage}. */
export interface CreateImageOptions {
  /** The image ID; random when absent (containers/image uses the config digest's hex). */
  id?: string;
  /** Names, unique across images. */
  names?: string[];
  /** Free-form metadata. */
  metadata?: string;
  /** The digest to find the image by (normally its manifest's). */
  digest?: string;
  /** Creation time; now when absent. */
  created?: Date | string;
  /** Big data items stored with the image, in this order. */
  bigData?: ImageBigDataItem[];
  /** Names the image had before, most recent first. */
  namesHistory?: string[];
  /** Flags to set on the image. */
  flags?: Record<string, unknown>;
}

/** ID mappings a container asks for, as containers/storage's IDMappingOptions. */
export interface IDMappingOptions {
  /** Use the host's UIDs (no mapping). */
  hostUIDMapping?: boolean;
  /** Use the host's GIDs (no mapping). */
  hostGIDMapping?: boolean;
  /** UID mapping. */
  uidMap?: IDMap[];
  /** GID mapping. */
  gidMap?: IDMap[];
}

/** Go's time.Time in RFC 3339 with nanoseconds, as images.json stores it. */
function rfc3339(created: Date | string | undefined): string | undefined {
  if (created === undefined || typeof created === "string") return created;
  return created.toISOString().replace(/\.?0*Z$/, "Z");
}

/**
 * Creates an image on `layer` (a layer of any layer store, by ID, name or
 * prefix; none for an image without layers), with its big data items. On a
 * failure after the record was made, the record is removed again.
 */
export async function createImage(
  p: StoreParts,
  layer: string | undefined,
  opts: CreateImageOptions = {},
): Promise<Image> {
  const holds = [...(layer ? layerHolds(p, "write") : []), [p.imageStore, "write"] as const];
  return await withLocks(holds, async () => {
    let topLayer: string | undefined;
    if (layer) {
      const ls = layerStoreOf(p, layer);
      if (!ls) throw new ErrLayerUnknown(layer);
      topLayer = ls.lookupID(layer);
    }
    const is = p.imageStore;
    const image = await is.create({
      id: opts.id,
      names: opts.names,
      layer: topLayer,
      metadata: opts.metadata,
      created: rfc3339(opts.created),
      digest: opts.digest,
      namesHistory: opts.namesHistory,
      flags: opts.flags,
    });
    try {
      for (const item of opts.bigData ?? []) {
        const digester: ManifestDigester | undefined = item.digest ? () => item.digest! : undefined;
        await is.setBigData(image.id, item.key, item.data, digester);
      }
    } catch (e) {
      await is.delete(image.id).catch(() => {});
      throw e;
    }
    return is.get(image.id);
  });
}

/** An image by ID, name or prefix from any image store (ours first). */
export async function getImage(p: StoreParts, idOrName: string): Promise<Image> {
  return await withLocks(imageHolds(p, "read"), () => {
    const is = imageStoreOf(p, idOrName);
    if (!is) throw new ErrImageUnknown(idOrName);
    return is.get(idOrName);
  });
}

/** All images: ours, then those of additional image stores. */
export async function listImages(p: StoreParts): Promise<Image[]> {
  return await withLocks(imageHolds(p, "read"), () => allImageStores(p).flatMap((s) => s.list()));
}

/** Images whose top layer (or a mapped copy of it) is the layer `idOrName`. */
export async function imagesByTopLayer(p: StoreParts, idOrName: string): Promise<Image[]> {
  return await withLocks([...layerHolds(p, "read"), ...imageHolds(p, "read")], () => {
    const ls = layerStoreOf(p, idOrName);
    if (!ls) throw new ErrLayerUnknown(idOrName);
    const id = ls.lookupID(idOrName);
    return allImageStores(p).flatMap((s) => s.list()).filter((i) =>
      i.layer === id || (i["mapped-layers"] ?? []).includes(id)
    );
  });
}

/** Images findable by digest `d` (their digest or a manifest's), in every image store. */
export async function imagesByDigest(p: StoreParts, d: string): Promise<Image[]> {
  return await withLocks(
    imageHolds(p, "read"),
    () => allImageStores(p).flatMap((s) => s.byDigest(d)),
  );
}

/**
 * Deletes an image (with `commit`; without, only reports) and returns the
 * layers that go with it: its mapped top layers, then its top layer and
 * each parent in turn, stopping at the first layer that a container, another
 * image or another child still uses.
 */
export async function deleteImage(p: StoreParts, id: string, commit: boolean): Promise<string[]> {
  const ls = p.layerStore;
  const is = p.imageStore;
  const cs = p.containerStore;
  const holds = [[ls, "write"], [is, "write"], [cs, "write"]] as const;
  return await withLocks(holds, async () => {
    if (!is.exists(id)) throw new ErrNotAnImage(id);
    const image = is.get(id);
    // 1.43 names the last container using the image.
    const user = cs.list().findLast((c) => c.image === image.id);
    if (user) throw new ErrImageUsedByContainer(image.id, { detail: `used by ${user.id}` });
    const childrenOf = new Map<string, string[]>();
    for (const l of ls.layers()) {
      const parent = l.parent ?? "";
      childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), l.id]);
    }
    const otherTops = new Set<string>();
    for (const other of is.list()) {
      if (other.id === image.id) continue;
      if (other.layer) otherTops.add(other.layer);
      for (const l of other["mapped-layers"] ?? []) otherTops.add(l);
    }
    const mapped = image["mapped-layers"] ?? [];
    const doomed = [...mapped];
    const doomedSet = new Set(mapped);
    for (let layer = image.layer ?? ""; layer !== "";) {
      if (cs.exists(layer) || otherTops.has(layer)) break;
      const toCheck = layer === image.layer ? [layer, ...mapped] : [layer];
      const keptChild = toCheck.some((l) =>
        (childrenOf.get(l) ?? []).some((child) => !doomedSet.has(child))
      );
      if (keptChild) break;
      doomed.push(layer);
      doomedSet.add(layer);
      layer = ls.exists(layer) ? ls.get(layer).parent ?? "" : "";
    }
    if (commit) {
      await is.delete(image.id);
      for (const layer of doomed) await ls.delete(layer);
    }
    return doomed;
  });
}

/**
 * The size of an image: the diffs of its top layer, mapped top layers and
 * all their parents (each counted once), plus its big data items.
 */
export async function imageSize(p: StoreParts, id: string): Promise<number> {
  return await withLocks([...layerHolds(p, "read"), ...imageHolds(p, "read")], async () => {
    const is = imageStoreOf(p, id);
    if (!is) throw new ErrImageUnknown(id);
    const image = is.get(id);
    const queue = [image.layer ?? "", ...(image["mapped-layers"] ?? [])].filter((l) => l !== "");
    const seen = new Set<string>();
    let size = 0;
    while (queue.length > 0) {
      const layerID = queue.shift()!;
      if (seen.has(layerID)) continue;
      seen.add(layerID);
      const ls = layerStoreOf(p, layerID);
      if (!ls) throw new ErrLayerUnknown(layerID);
      const layer = ls.get(layerID);
      if (layer["diff-digest"]) size += layer["diff-size"] ?? 0;
      else size += await (await import("../layers/diff.ts")).diffSize(ls, "", layer.id);
      if (layer.parent) queue.push(layer.parent);
    }
    for (const key of is.bigDataNames(image.id)) size += await is.bigDataSize(image.id, key);
    return size;
  });
}

function sameMap(a: readonly IDMap[] | undefined, b: readonly IDMap[] | undefined): boolean {
  return JSON.stringify(a ?? []) === JSON.stringify(b ?? []);
}

/** Whether a layer already has the mappings a container asks for. */
function layerMatches(p: StoreParts, layer: Layer, want: IDMappingOptions): boolean {
  const plain = !(layer.uidmap?.length) && !(layer.gidmap?.length);
  if (canUseShifting(p, want.uidMap, want.gidMap) && plain) return true;
  if (want.hostUIDMapping && layer.uidmap?.length) return false;
  if (want.hostGIDMapping && layer.gidmap?.length) return false;
  return sameMap(layer.uidmap, want.uidMap) && sameMap(layer.gidmap, want.gidMap);
}

/**
 * The top layer a container with mappings `want` should sit on: the
 * image's top layer or a mapped copy of it that matches, else (when
 * `createMapped` and the image is ours) a new copy of the top layer with
 * those mappings, recorded in the image's `mapped-layers` for reuse. The
 * caller holds our layer and image stores for writing and the read-only
 * ones for reading.
 */
export async function imageTopLayerForMapping(
  p: StoreParts,
  image: Image,
  home: ImageStore,
  createMapped: boolean,
  want: IDMappingOptions,
): Promise<Layer> {
  let fallback: { layer: Layer; parent?: Layer } | undefined;
  const candidates = [image.layer ?? "", ...(image["mapped-layers"] ?? [])].filter((c) => c);
  for (const ls of allLayerStores(p)) {
    for (const candidate of candidates) {
      if (!ls.exists(candidate)) continue;
      const layer = ls.get(candidate);
      let parent: Layer | undefined;
      if (layer.parent) {
        const ps = layerStoreOf(p, layer.parent);
        if (!ps) continue;
        parent = ps.get(layer.parent);
      }
      if (layerMatches(p, layer, want)) return layer;
      if (!fallback) {
        fallback = { layer, parent };
        if (ls !== p.layerStore) createMapped = false;
      }
    }
  }
  if (!fallback) throw new ErrLayerUnknown(image.layer ?? image.id);
  if (!createMapped || home !== p.imageStore) return fallback.layer;
  const shifting = canUseShifting(p, want.uidMap, want.gidMap);
  let mapped: Layer;
  try {
    const { put } = await import("../layers/put.ts");
    mapped = (await put(p.layerStore, {
      parent: fallback.parent,
      mountLabel: fallback.layer.mountlabel ?? "",
      templateLayer: fallback.layer.id,
      uidMap: shifting || want.hostUIDMapping ? [] : structuredClone(want.uidMap ?? []),
      gidMap: shifting || want.hostGIDMapping ? [] : structuredClone(want.gidMap ?? []),
    })).layer;
  } catch (e) {
    throw new StorageError(fallback.layer.id, {
      detail: "creating an ID-mapped copy of the layer",
      cause: e,
    });
  }
  try {
    await home.addMappedLayer(image.id, mapped.id);
  } catch (e) {
    await p.layerStore.delete(mapped.id).catch(() => {});
    throw e;
  }
  return mapped;
}

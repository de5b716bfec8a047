/**
 * An image into the store, recorded exactly as containers/image 5.23
 * (skopeo 1.9, podman 4.3, buildah 1.28) records one, so those tools treat
 * it as their own:
 *
 * - each layer is put with the ID containers/image gives it: the diff_id's
 *   hex for the base, then sha256 of `<parent ID>+<diff_id hex>`; a layer
 *   already there under that ID is reused, not read again;
 * - the blob goes to the store as it is (compressed or not), so the layer
 *   records the blob's digest and size, its diff's digest and size and its
 *   compression; the blob is checked against its descriptor while it is
 *   read and the diff against the config's diff_id, and a layer that fails
 *   either is removed again;
 * - the image's ID is the config digest's hex; its big data are the config
 *   (`sha256:<config digest>`), the index when there was one
 *   (`manifest-<index digest>`), the manifest (`manifest-<digest>` and
 *   `manifest`) and an empty `signature-<manifest hex>`; its metadata
 *   `{"signatures-sizes":{"<manifest digest>":[]}}`; its creation time the
 *   config's; then the name is added (and so recorded in names-history).
 *
 * On any failure, the layers and the image made by this copy are deleted,
 * so the store is left as it was.
 *
 * @example
 * ```ts ignore
 * const image = await resolveImage(src, { platform: hostPlatform() });
 * const { id } = await commitToStore(store, src, image, { name: "localhost/app:latest" });
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { ErrDuplicateID, ErrLayerUnknown } from "../errors.ts";
import { manifestDigest } from "../images/manifest_digest.ts";
import type { ProgressOptions } from "../progress.ts";
import type { Store } from "../store/mod.ts";
import { ErrInvalidImage } from "./errors.ts";
import type { ImageSource, ResolvedImage } from "./source.ts";
import { blobError, verifyBlob } from "./verify.ts";

/** Options of {@linkcode commitToStore}. */
export interface CommitOptions {
  /** The (normalized) name to add to the image. */
  name?: string;
  /** The progress options of each layer's import (by index), if progress is followed. */
  progress?: (index: number) => ProgressOptions;
  /** Layers unpacked at once where the store's driver allows it (default 2). */
  concurrency?: number;
}

/** What {@linkcode commitToStore} did. */
export interface CommitResult {
  /** The image's ID. */
  id: string;
  /** Its layers' IDs, base first. */
  layers: string[];
  /** How many of them were already in the store. */
  reused: number;
}

const hex = (digest: string) => digest.slice(digest.indexOf(":") + 1);

/** containers/image's ID of a layer: the base's diff_id hex, then sha256 of "<parent>+<diff_id hex>". */
export function layerID(parent: string, diffID: string): string {
  if (!parent) return hex(diffID);
  return createHash("sha256").update(`${parent}+${hex(diffID)}`).digest("hex");
}

/** `created` as Go's time.Time marshals it: fraction without trailing zeros. */
function goTime(created: string | undefined): string | undefined {
  if (!created) return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/i.exec(created);
  if (!m) return undefined;
  const frac = (m[2] ?? "").slice(0, 9).replace(/0+$/, "");
  return `${m[1]}${frac ? "." + frac : ""}${m[3].toUpperCase() === "Z" ? "Z" : m[3]}`;
}

async function exists(store: Store, id: string): Promise<boolean> {
  try {
    return (await store.layer(id)).id === id;
  } catch (e) {
    if (e instanceof ErrLayerUnknown) return false;
    throw e;
  }
}

/** How many of the chain's layers, from the base, are in the store. */
async function presentPrefix(store: Store, ids: string[]): Promise<number> {
  let n = 0;
  while (n < ids.length && await exists(store, ids[n])) n++;
  return n;
}

/**
 * Puts the layers from `from` on as one chain (diffs applied concurrently
 * where the driver allows it), each checked against its blob's digest and
 * its diff_id; returns their IDs. On a failure none of them is left.
 */
async function putMissing(
  store: Store,
  src: ImageSource,
  image: ResolvedImage,
  ids: string[],
  from: number,
  opts: CommitOptions,
): Promise<string[]> {
  const wanted = image.layers.slice(from);
  const diffs: ReadableStream<Uint8Array>[] = [];
  try {
    for (const layer of wanted) {
      diffs.push((await src.blob(layer.blob)).pipeThrough(verifyBlob(layer.blob, "layer")));
    }
  } catch (e) {
    for (const d of diffs) await d.cancel().catch(() => {});
    throw e;
  }
  const put = await store.putLayers({
    parent: ids[from - 1],
    layers: wanted.map((_, i) => ({
      id: ids[from + i],
      diff: diffs[i],
      ...opts.progress?.(from + i),
    })),
    concurrency: opts.concurrency,
    onLayerError: (i, e) => blobError(e, wanted[i].blob.digest),
  });
  const made = put.map((p) => p.layer.id);
  try {
    for (const [i, { layer: got }] of put.entries()) {
      const { blob, diffID } = wanted[i];
      if (got["diff-digest"] !== diffID) {
        throw new ErrInvalidImage(blob.digest, {
          detail: `uncompressed digest ${got["diff-digest"]} is not the config's diff_id ${diffID}`,
        });
      }
      if (got["compressed-diff-digest"] !== blob.digest) {
        throw new ErrInvalidImage(blob.digest, {
          detail: `digest mismatch: got ${got["compressed-diff-digest"]}`,
        });
      }
    }
  } catch (e) {
    for (const id of made.reverse()) await store.deleteLayer(id).catch(() => {});
    throw e;
  }
  return made;
}

/**
 * Puts the image into the store the way containers/image does.
 * @throws {ErrInvalidImage} for a blob or diff that is not what the image says.
 */
export async function commitToStore(
  store: Store,
  src: ImageSource,
  image: ResolvedImage,
  opts: CommitOptions = {},
): Promise<CommitResult> {
  const made: string[] = [];
  let madeImage: string | undefined;
  const ids: string[] = [];
  for (const layer of image.layers) ids.push(layerID(ids.at(-1) ?? "", layer.diffID));
  try {
    // A layer's ID names its parents, so the layers already there are a prefix of the chain.
    let reused = await presentPrefix(store, ids);
    while (reused < ids.length) {
      try {
        made.push(...await putMissing(store, src, image, ids, reused, opts));
        break;
      } catch (e) {
        // Another copy made some of them meanwhile: reused, as containers/image does.
        const now = e instanceof ErrDuplicateID ? await presentPrefix(store, ids) : reused;
        if (now <= reused) throw e;
        reused = now;
      }
    }
    const parent = ids.at(-1) ?? "";
    const id = hex(image.parsed.config.digest);
    const md = image.manifestDigest;
    const bigData = [
      { key: image.parsed.config.digest, data: image.config },
      ...(image.index
        ? [{ key: `manifest-${manifestDigest(image.index)}`, data: image.index }]
        : []),
      { key: `manifest-${md}`, data: image.manifest },
      { key: "manifest", data: image.manifest },
      { key: `signature-${hex(md)}`, data: new Uint8Array() },
    ];
    const metadata = JSON.stringify({ "signatures-sizes": { [md]: [] } });
    try {
      await store.createImage(parent || undefined, {
        id,
        created: goTime(image.configInfo.created),
        bigData,
        metadata,
      });
      madeImage = id;
    } catch (e) {
      if (!(e instanceof ErrDuplicateID)) throw e;
      const old = await store.image(id);
      if ((old.layer ?? "") !== parent) {
        throw new ErrDuplicateID(id, { detail: "the image exists with a different top layer" });
      }
      for (const item of bigData) await store.setImageBigData(id, item.key, item.data);
      if ((await store.metadata(id)) !== metadata) await store.setMetadata(id, metadata);
    }
    if (opts.name) await store.addNames(id, [opts.name]);
    return { id, layers: ids, reused: ids.length - made.length };
  } catch (e) {
    // Only the record: deleteImage would also take layers that were there before.
    if (madeImage) await store.delete(madeImage).catch(() => {});
    for (const l of made.reverse()) await store.deleteLayer(l).catch(() => {});
    throw e;
  }
}

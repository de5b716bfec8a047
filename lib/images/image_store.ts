/**
 * The image store: `<graphroot>/<driver>-images/images.json` under
 * images.lock, with each image's big data files in `<id>/`, in the format
 * and with the rules of containers/storage 1.43 — names unique across
 * images (a name given to one image is taken from another), a history of
 * names, digests of big data items, lookups by digest (the image's
 * `digest` and the digests of its `manifest*` items), and read-only
 * stores for additional image stores.
 *
 * @example
 * ```ts ignore
 * const images = await ImageStore.open({ dir: "/g/vfs-images" });
 * const img = await images.writing(() => images.create({ layer: topLayerID, names: ["base"] }));
 * ```
 * @module
 */

import { ErrDuplicateID, ErrDuplicateName, ErrImageUnknown, StorageError } from "../errors.ts";
import { generateID } from "../ids.ts";
import { dedupeNames, nowRFC3339Nano } from "../layers/encode.ts";
import { RecordStore, type RecordStoreConfig, sha256Digest } from "../records/record_store.ts";
import { encodeImages, type Image, MANIFEST_KEY_PREFIX } from "./image.ts";
import { isValidDigest, manifestDigest } from "./manifest_digest.ts";

/** What a new image record holds. */
export interface NewImage {
  /** The ID; a random one when absent. */
  id?: string;
  /** Names, unique across images. */
  names?: string[];
  /** ID of the top layer ("" or absent for an image without layers). */
  layer?: string;
  /** Free-form metadata. */
  metadata?: string;
  /** Creation time (RFC 3339); now when absent. */
  created?: string;
  /** A digest to find the image by (normally its manifest's). */
  digest?: string;
  /** Names the image had before (most recent first). */
  namesHistory?: string[];
  /** Flags to set on the image. */
  flags?: Record<string, unknown>;
}

/** Computes the digest of a manifest-like big data item. */
export type ManifestDigester = (data: Uint8Array) => string | Promise<string>;

/** One images.json. */
export class ImageStore extends RecordStore<Image> {
  /** @internal */
  protected readonly kind = "images";
  /** Digests (not stored) of each image: its `digest` and its manifests' digests. */
  #digests = new Map<string, string[]>();
  #byDigest = new Map<string, Image[]>();

  /**
   * Opens the store in `dir`, creating its directory and lock unless
   * read-only, and loads it (a damaged images.json is reported by each use).
   */
  static async open(cfg: RecordStoreConfig): Promise<ImageStore> {
    const s = new ImageStore(cfg, await RecordStore.lockFor(cfg, "images"));
    await s.openWith(() => s.load(), cfg.readOnly);
    return s;
  }

  /** @internal */
  protected unknown(id: string): StorageError {
    return new ErrImageUnknown(id);
  }

  /** @internal */
  protected encode(images: Image[]): string {
    return encodeImages(images);
  }

  /** @internal */
  protected reindex(images: Image[]): void {
    const digests = new Map<string, string[]>();
    const byDigest = new Map<string, Image[]>();
    for (const image of images) {
      const ds = computeDigests(image);
      digests.set(image.id, ds);
      for (const d of ds) byDigest.set(d, [...(byDigest.get(d) ?? []), image]);
    }
    this.#digests = digests;
    this.#byDigest = byDigest;
  }

  /** A copy of one image, marked `readonly` when it lives in a read-only store. */
  override get(idOrName: string): Image {
    return this.#out(this.mustLookup(idOrName));
  }

  /** Copies of all images, in file order. */
  override list(): Image[] {
    return this.records.map((i) => this.#out(i));
  }

  #out(image: Image): Image {
    const copy = structuredClone(image);
    if (!this.isReadWrite()) copy.readonly = true;
    return copy;
  }

  /** The digests an image can be found by: its `digest` first, then its manifests'. */
  digests(idOrName: string): string[] {
    return [...(this.#digests.get(this.mustLookup(idOrName).id) ?? [])];
  }

  /** Images findable by digest `d` (empty when none). */
  byDigest(d: string): Image[] {
    return (this.#byDigest.get(d) ?? []).map((i) => this.#out(i));
  }

  /**
   * Adds an image record. Names must not belong to another image; an ID
   * in use is refused.
   */
  async create(spec: NewImage): Promise<Image> {
    this.checkWritable("create new images");
    let id = spec.id;
    if (!id) {
      do id = generateID(); while (this.hasID(id));
    }
    if (this.hasID(id)) {
      throw new ErrDuplicateID(id, { detail: "an image with this ID already exists" });
    }
    const names = dedupeNames(spec.names ?? []);
    for (const name of names) {
      const holder = this.holderOf(name);
      if (holder) {
        throw new ErrDuplicateName(name, { detail: `already associated with image ${holder.id}` });
      }
    }
    const image: Image = {
      id,
      digest: spec.digest || undefined,
      names,
      "names-history": spec.namesHistory?.length ? dedupeNames(spec.namesHistory) : undefined,
      layer: spec.layer || undefined,
      metadata: spec.metadata || undefined,
      "big-data-names": [],
      "big-data-sizes": {},
      "big-data-digests": {},
      created: spec.created || nowRFC3339Nano(),
      flags: { ...spec.flags },
    };
    computeDigests(image);
    this.insert(image);
    this.reindex([...this.records]);
    await this.save();
    return this.#out(image);
  }

  /** Replaces an image's names (recording them in its history). */
  override setNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "set", addToHistory);
  }

  /** Adds names to an image (recording them in its history). */
  override addNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "add", addToHistory);
  }

  /** Removes names from an image. */
  override removeNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "remove", addToHistory);
  }

  /** Records a copy of the top layer made for other ID mappings. */
  async addMappedLayer(idOrName: string, layerID: string): Promise<void> {
    this.checkWritable("modify images");
    const image = this.mustLookup(idOrName);
    (image["mapped-layers"] ??= []).push(layerID);
    await this.save();
  }

  /** Forgets a mapped copy of the top layer (nothing when it is not recorded). */
  async removeMappedLayer(idOrName: string, layerID: string): Promise<void> {
    this.checkWritable("modify images");
    const image = this.mustLookup(idOrName);
    const before = image["mapped-layers"] ?? [];
    if (!before.includes(layerID)) return;
    image["mapped-layers"] = before.filter((l) => l !== layerID);
    await this.save();
  }

  /** The recorded digest of a big data item, or undefined when none was recorded. */
  bigDataDigest(idOrName: string, key: string): string | undefined {
    return this.mustLookup(idOrName)["big-data-digests"]?.[key];
  }

  /**
   * Stores a big data item. Items whose key starts with "manifest" are
   * digested with `digester` (containers/image's manifest digest by
   * default) and make the image findable by that digest; the first such
   * digest becomes the image's `digest` when it had none.
   */
  async setBigData(
    idOrName: string,
    key: string,
    data: Uint8Array,
    digester: ManifestDigester = manifestDigest,
  ): Promise<void> {
    const digest = key.startsWith(MANIFEST_KEY_PREFIX) ? await digester(data) : sha256Digest(data);
    const image = await this.writeBigData(idOrName, key, data, digest);
    const before = image.digest;
    this.reindex([...this.records]);
    // recomputing may have filled in the image's digest; that is part of the record.
    if (image.digest !== before) await this.save();
  }
}

/** Images keep every name they were given, newest first. */
function addToHistory(image: Image, name: string): void {
  image["names-history"] = dedupeNames([name, ...(image["names-history"] ?? [])]);
}

/**
 * The digests an image is findable by, validating them and filling in the
 * image's `digest` from its first manifest when it has none.
 */
function computeDigests(image: Image): string[] {
  const out: string[] = [];
  if (image.digest) {
    if (!isValidDigest(image.digest)) {
      throw new StorageError(image.id, { detail: `invalid image digest ${image.digest}` });
    }
    out.push(image.digest);
  }
  for (const [key, d] of Object.entries(image["big-data-digests"] ?? {})) {
    if (!key.startsWith(MANIFEST_KEY_PREFIX)) continue;
    if (!isValidDigest(d)) {
      throw new StorageError(image.id, {
        detail: `invalid digest ${d} of big data item ${JSON.stringify(key)}`,
      });
    }
    if (!out.includes(d)) out.push(d);
  }
  if (!image.digest && out.length > 0) image.digest = out[0];
  return out;
}

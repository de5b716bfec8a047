/**
 * An image of the store as an image source, as containers/image's storage
 * source reads one: the manifest and config from the image's big data, and
 * the layers as their uncompressed diffs (rebuilt from tar-split), named by
 * their diff digests, so a destination compresses them as it wants.
 *
 * @example
 * ```ts ignore
 * const src = await StoreSource.open(store, "localhost/app:latest");
 * const image = await resolveImage(src, { platform: hostPlatform() });
 * ```
 * @module
 */

import { Compression } from "../archive/compression.ts";
import { ErrImageUnknown } from "../errors.ts";
import type { Image } from "../images/image.ts";
import type { Layer } from "../layers/layer.ts";
import type { Store } from "../store/mod.ts";
import { ErrInvalidImage } from "./errors.ts";
import type { Descriptor, ParsedManifest } from "./manifest.ts";
import { DOCKER_LAYER, DOCKER_MANIFEST, OCI_LAYER } from "./media_types.ts";
import type { ImageSource } from "./source.ts";

/** An image of a store, read as containers/image reads one. */
export class StoreSource implements ImageSource {
  readonly #store: Store;
  readonly #image: Image;
  /** Layers by diff digest, for blob(): base first. */
  #layers = new Map<string, Layer>();

  private constructor(store: Store, image: Image) {
    this.#store = store;
    this.#image = image;
  }

  /**
   * The image named `nameOrID` (name, ID or ID prefix) of `store`.
   * @throws {ErrImageUnknown} when there is none.
   */
  static async open(store: Store, nameOrID: string): Promise<StoreSource> {
    return new StoreSource(store, await store.image(nameOrID));
  }

  /** The image record. */
  get image(): Image {
    return this.#image;
  }

  /** The image's `manifest` big data item. */
  async manifest(): Promise<Uint8Array> {
    try {
      return await this.#store.imageBigData(this.#image.id, "manifest");
    } catch (e) {
      throw new ErrInvalidImage(this.#image.id, { detail: "the image has no manifest", cause: e });
    }
  }

  /** The layers of the image, base first, as uncompressed blobs named by their diff digests. */
  async layerBlobs(manifest: ParsedManifest): Promise<Descriptor[]> {
    const chain: Layer[] = [];
    for (let id = this.#image.layer ?? ""; id;) {
      const l = await this.#store.layer(id);
      chain.unshift(l);
      id = l.parent ?? "";
    }
    const mediaType = manifest.mediaType === DOCKER_MANIFEST ? DOCKER_LAYER : OCI_LAYER;
    return chain.map((l) => {
      const digest = l["diff-digest"];
      const size = l["diff-size"];
      if (!digest || size === undefined || size < 0) {
        throw new ErrInvalidImage(l.id, { detail: "the layer's uncompressed digest is unknown" });
      }
      this.#layers.set(digest, l);
      return { mediaType, digest, size };
    });
  }

  /** A layer's diff, uncompressed, or a big data item (the config) named by its digest. */
  async blob(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const layer = this.#layers.get(desc.digest);
    if (layer) {
      return await this.#store.diff("", layer.id, { compression: Compression.Uncompressed });
    }
    try {
      return ReadableStream.from([await this.#store.imageBigData(this.#image.id, desc.digest)]);
    } catch (e) {
      if (e instanceof ErrImageUnknown) throw e;
      throw new ErrInvalidImage(desc.digest, {
        detail: `no such blob in image ${this.#image.id}`,
        cause: e,
      });
    }
  }

  /** Nothing to release (the store is the caller's). */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

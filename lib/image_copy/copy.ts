/**
 * Copying an image between transports and the store: `oci:`,
 * `oci-archive:`, `docker-archive:` and `containers-storage:` references
 * (or a {@linkcode ImageReference} with an open Store), one image chosen
 * from an index for a platform, verified blob by blob, stored the way
 * containers/image stores it or written as a layout or archive that
 * skopeo reads. Layers stream from source to destination; none is held in
 * memory.
 *
 * @example
 * ```ts ignore
 * import { copyImage } from "./copy.ts";
 * await copyImage("oci:/tmp/layout:latest", { transport: "containers-storage", store, name: "localhost/app:latest" });
 * await copyImage("containers-storage:localhost/app:latest", "oci-archive:/tmp/app.tar", { compression: "zstd" });
 * ```
 * @module
 */

import { join } from "node:path";
import { defaultStoreOptions } from "../config.ts";
import { type Progress, progressCounter, type ProgressOptions } from "../progress.ts";
import { Store } from "../store/mod.ts";
import { DockerArchiveSource, writeDockerArchiveDir } from "./docker_archive.ts";
import { ErrInvalidReference } from "./errors.ts";
import { type LayerCompression, OciLayoutSource, writeOciLayout } from "./oci_layout.ts";
import { hostPlatform, parsePlatform, type Platform } from "./platform.ts";
import {
  type ImageReference,
  normalizeName,
  parseReference,
  type StoreReference,
} from "./reference.ts";
import { type ImageSource, resolveImage } from "./source.ts";
import { commitToStore } from "./store_dest.ts";
import { StoreSource } from "./store_source.ts";
import { extractArchive, writeArchive } from "./tar_dir.ts";

/**
 * How far a copy is: the library's {@linkcode Progress} of the layer being
 * read (its blob's bytes; tar entries when the store reads it), and where
 * that layer stands among all.
 */
export interface CopyProgress extends Progress {
  /** Index of the layer being read (0 = base). */
  layer: number;
  /** Number of layers. */
  layers: number;
  /** Bytes of all layer blobs read so far (layers already in the store count as read). */
  totalBytes: number;
  /** Size of all layer blobs. */
  totalSize: number;
}

/** Options of {@linkcode copyImage}. */
export interface CopyImageOptions {
  /** Platform to pick from an index: "os/arch[/variant]" or a Platform (default: the host's). */
  platform?: string | Platform;
  /** Layer compression for layouts and OCI archives (default: as containers/image, gzip). */
  compression?: LayerCompression;
  /** Name of the image in the destination (store, docker archive), overriding the reference's. */
  name?: string;
  /** The store for `containers-storage:` references that name none (default: the configured one). */
  store?: Store;
  /** Called as layer bytes are read. */
  onProgress?: (p: CopyProgress) => void;
  /**
   * Layers unpacked at once into a store whose driver allows it (overlay;
   * vfs takes them one after another), default 2.
   */
  layerConcurrency?: number;
}

/** What {@linkcode copyImage} copied. */
export interface CopyImageResult {
  /** The digest of the image's manifest (as in the source). */
  manifestDigest: string;
  /** The digest of the manifest written, when the destination is a layout or OCI archive. */
  writtenDigest?: string;
  /** The config digest. */
  configDigest: string;
  /** The image ID, when the destination is the store. */
  imageID?: string;
  /** Layer IDs, base first, when the destination is the store. */
  layerIDs?: string[];
  /** Layers already in the store and reused, when the destination is the store. */
  reusedLayers?: number;
}

/** The store of a reference and whether we opened it (and so shut it down). */
async function storeOf(
  ref: StoreReference,
  fallback: Store | undefined,
): Promise<{ store: Store; opened: boolean }> {
  if (ref.store) return { store: ref.store, opened: false };
  if (!ref.spec && fallback) return { store: fallback, opened: false };
  const base = await defaultStoreOptions();
  if (!ref.spec) return { store: await Store.open(base), opened: true };
  const s = ref.spec;
  return {
    store: await Store.open({
      ...base,
      graphRoot: s.graphRoot,
      runRoot: s.runRoot ?? base.runRoot,
      graphDriverName: s.driver ?? base.graphDriverName,
      graphDriverOptions: s.options ?? base.graphDriverOptions,
    }),
    opened: true,
  };
}

/**
 * Copies one image from `src` to `dst`.
 * @throws {ErrInvalidReference} for a reference that cannot be used.
 * @throws {ErrInvalidImage} for an image that is malformed, incomplete or
 * does not match its digests; nothing is left in the destination then.
 */
export async function copyImage(
  src: string | ImageReference,
  dst: string | ImageReference,
  opts: CopyImageOptions = {},
): Promise<CopyImageResult> {
  const from = typeof src === "string" ? parseReference(src) : src;
  const to = typeof dst === "string" ? parseReference(dst) : dst;
  const platform = typeof opts.platform === "string"
    ? parsePlatform(opts.platform)
    : opts.platform ?? hostPlatform();
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    let source: ImageSource;
    if (from.transport === "containers-storage") {
      const { store, opened } = await storeOf(from, opts.store);
      if (opened) cleanups.push(() => store.shutdown(false));
      source = await StoreSource.open(store, from.id ?? from.name!);
    } else if (from.transport === "oci") {
      source = new OciLayoutSource(from.path, from.ref);
    } else {
      const dir = await extractArchive(from.path);
      cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
      source = from.transport === "oci-archive"
        ? new OciLayoutSource(dir, from.ref)
        : await DockerArchiveSource.open(dir, from.ref);
    }
    cleanups.push(() => source.close());
    const image = await resolveImage(source, { platform });
    const sizes = image.layers.map((l) => l.blob.size);
    const totalSize = sizes.reduce((a, b) => a + b, 0);
    const onProgress = opts.onProgress;
    // Layers may be read concurrently: the total sums what each has done so far.
    const done = sizes.map(() => 0);
    const progress = onProgress
      ? (layer: number): ProgressOptions => ({
        expectedSize: sizes[layer],
        onProgress: (p) => {
          done[layer] = p.bytes;
          onProgress({
            ...p,
            layer,
            layers: sizes.length,
            totalBytes: done.reduce((a, b) => a + b, 0),
            totalSize,
          });
        },
      })
      : undefined;
    const tapLayer = progress
      ? (layer: number, stream: ReadableStream<Uint8Array>) => {
        const counter = progressCounter(progress(layer))!;
        return stream.pipeThrough(counter.bytes());
      }
      : undefined;
    const result: CopyImageResult = {
      manifestDigest: image.manifestDigest,
      configDigest: image.parsed.config.digest,
    };
    if (to.transport === "containers-storage") {
      if (from.transport === "containers-storage") {
        throw new ErrInvalidReference("containers-storage", {
          detail: "copying from a store to a store is not supported",
        });
      }
      const { store, opened } = await storeOf(to, opts.store);
      if (opened) cleanups.push(() => store.shutdown(false));
      const name = opts.name ? normalizeName(opts.name) : to.name;
      const r = await commitToStore(store, source, image, {
        name,
        progress,
        concurrency: opts.layerConcurrency,
      });
      Object.assign(result, { imageID: r.id, layerIDs: r.layers, reusedLayers: r.reused });
    } else if (to.transport === "oci") {
      result.writtenDigest = (await writeOciLayout(to.path, source, image, {
        ref: to.ref,
        compression: opts.compression,
        tapLayer,
      })).digest;
    } else {
      const dir = await Deno.makeTempDir({ prefix: "image-archive-" });
      cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
      if (to.transport === "oci-archive") {
        result.writtenDigest = (await writeOciLayout(join(dir, "layout"), source, image, {
          ref: to.ref,
          compression: opts.compression,
          tapLayer,
        })).digest;
        await writeArchive(join(dir, "layout"), to.path);
      } else {
        const named = opts.name ?? to.ref;
        await writeDockerArchiveDir(dir, source, image, {
          name: named ? normalizeName(named) : undefined,
          tapLayer,
        });
        await writeArchive(dir, to.path);
      }
    }
    return result;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
}

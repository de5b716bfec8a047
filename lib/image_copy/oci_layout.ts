/**
 * OCI image layouts (`oci:DIR[:REF]`): a source reading the image that
 * index.json names (by its `org.opencontainers.image.ref.name`, or the only
 * one), and a writer putting an image into a layout, its layers copied as
 * they are or recompressed (gzip, zstd, none), its manifest rewritten as an
 * OCI manifest when a layer changed or it was a Docker one.
 *
 * @example
 * ```ts ignore
 * const src = new OciLayoutSource("/tmp/layout", "latest");
 * const image = await resolveImage(src, { platform: hostPlatform() });
 * await writeOciLayout("/tmp/copy", src, image, { ref: "latest" });
 * ```
 * @module
 */

import { join } from "node:path";
import { Compression, compressStream, decompressStream } from "../archive/compression.ts";
import { DigestStream } from "../archive/digest.ts";
import { manifestDigest } from "../images/manifest_digest.ts";
import { pathExists } from "../path_exists.ts";
import { ErrInvalidImage } from "./errors.ts";
import { checkDescriptor, type Descriptor } from "./manifest.ts";
import {
  DOCKER_MANIFEST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
} from "./media_types.ts";
import type { ImageSource, ResolvedImage, ResolvedLayer } from "./source.ts";
import { blobError, readVerified, verifyBlob } from "./verify.ts";

/** The annotation naming an image of a layout. */
export const REF_NAME = "org.opencontainers.image.ref.name";

/** How layers are written: recompressed to one of these, or kept as they are when unset. */
export type LayerCompression = "gzip" | "zstd" | "none";

const encoder = new TextEncoder();

/** The path of a blob in a layout. */
function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  return join(dir, "blobs", alg, hex);
}

/** Reads a layout's index.json. */
async function readIndex(dir: string): Promise<{ manifests: Descriptor[] }> {
  const path = join(dir, "index.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ErrInvalidImage(path, { detail: "cannot read the layout's index", cause: e });
  }
  let json: { manifests?: unknown };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ErrInvalidImage(path, { detail: "not valid JSON", cause: e });
  }
  if (!Array.isArray(json?.manifests)) {
    throw new ErrInvalidImage(path, { detail: "index has no manifests list" });
  }
  return { manifests: json.manifests.map((m, i) => checkDescriptor(m, `${path} manifests[${i}]`)) };
}

/** An OCI layout read as an image source. */
export class OciLayoutSource implements ImageSource {
  readonly #dir: string;
  readonly #ref?: string;

  /**
   * @param dir The layout's directory.
   * @param ref The image's ref name; none for a layout holding one image.
   */
  constructor(dir: string, ref?: string) {
    this.#dir = dir;
    this.#ref = ref;
  }

  /** The manifest or index that index.json names for the ref. */
  async manifest(): Promise<Uint8Array> {
    const { manifests } = await readIndex(this.#dir);
    const what = join(this.#dir, "index.json");
    let desc: Descriptor | undefined;
    if (this.#ref) {
      desc = manifests.find((m) => m.annotations?.[REF_NAME] === this.#ref);
      if (!desc) throw new ErrInvalidImage(what, { detail: `no image named ${this.#ref}` });
    } else if (manifests.length === 1) {
      desc = manifests[0];
    } else {
      throw new ErrInvalidImage(what, {
        detail: `${manifests.length} images and no ref name given`,
      });
    }
    return await readVerified(await this.blob(desc), desc, "manifest");
  }

  /** A blob's file as a stream; refused when missing or of another size than `desc` gives. */
  async blob(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const path = blobPath(this.#dir, desc.digest);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path);
    } catch (e) {
      throw new ErrInvalidImage(desc.digest, {
        detail: `blob missing from the layout (${path})`,
        cause: e,
      });
    }
    const { size } = await file.stat();
    if (size !== desc.size) {
      file.close();
      throw new ErrInvalidImage(desc.digest, {
        detail: `blob is ${size} bytes, its descriptor gives ${desc.size}`,
      });
    }
    return file.readable;
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Options of {@linkcode writeOciLayout}. */
export interface WriteLayoutOptions {
  /** The ref name the image gets in index.json (replacing an image of that name). */
  ref?: string;
  /**
   * Layer compression wanted; unset keeps compressed layers as they are and
   * gzips uncompressed ones, as containers/image's OCI destination does.
   */
  compression?: LayerCompression;
  /** Called with each layer's stream before it is read (progress counting). */
  tapLayer?: (index: number, stream: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;
}

const MEDIA: Record<number, string> = {
  [Compression.Uncompressed]: OCI_LAYER,
  [Compression.Gzip]: OCI_LAYER_GZIP,
  [Compression.Zstd]: OCI_LAYER_ZSTD,
};
const WANT: Record<LayerCompression, Compression> = {
  gzip: Compression.Gzip,
  zstd: Compression.Zstd,
  none: Compression.Uncompressed,
};

/** Writes `stream` to a temporary file of the layout, then moves it to its digest's name. */
async function putBlob(
  dir: string,
  stream: ReadableStream<Uint8Array>,
  created: string[],
): Promise<{ digest: string; size: number }> {
  const tmp = join(dir, "blobs", "sha256", `.tmp-${crypto.randomUUID()}`);
  const d = new DigestStream();
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    await stream.pipeThrough(d).pipeTo(file.writable);
    const { digest, size } = await d.result;
    const path = blobPath(dir, digest);
    if (!(await pathExists(path))) created.push(path);
    await Deno.rename(tmp, path);
    return { digest, size };
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Copies one layer into the layout, recompressing it when asked; its new descriptor. */
async function putLayer(
  dir: string,
  src: ImageSource,
  layer: ResolvedLayer,
  opts: WriteLayoutOptions & { index: number },
  created: string[],
): Promise<Descriptor> {
  try {
    return await copyLayer(dir, src, layer, opts, created);
  } catch (e) {
    throw blobError(e, layer.blob.digest);
  }
}

/** {@linkcode putLayer}'s work. */
async function copyLayer(
  dir: string,
  src: ImageSource,
  layer: ResolvedLayer,
  opts: WriteLayoutOptions & { index: number },
  created: string[],
): Promise<Descriptor> {
  const open = async () => {
    const raw = (await src.blob(layer.blob)).pipeThrough(verifyBlob(layer.blob, "layer"));
    return opts.tapLayer ? opts.tapLayer(opts.index, raw) : raw;
  };
  const { compression: actual, stream: plain } = await decompressStream(await open());
  const want = opts.compression === undefined
    ? (actual === Compression.Uncompressed ? Compression.Gzip : actual)
    : WANT[opts.compression];
  if (want === actual) {
    await plain.cancel();
    if (MEDIA[actual] === undefined) {
      throw new ErrInvalidImage(layer.blob.digest, { detail: "layer compression not supported" });
    }
    const put = await putBlob(dir, await open(), created);
    return { mediaType: MEDIA[actual], digest: put.digest, size: put.size };
  }
  const diff = new DigestStream();
  const tar = plain.pipeThrough(diff);
  const out = want === Compression.Uncompressed
    ? tar
    : compressStream(tar, want as Compression.Gzip | Compression.Zstd);
  const put = await putBlob(dir, out, created);
  const { digest } = await diff.result;
  if (digest !== layer.diffID) {
    throw new ErrInvalidImage(layer.blob.digest, {
      detail: `uncompressed digest ${digest} is not the config's diff_id ${layer.diffID}`,
    });
  }
  return { mediaType: MEDIA[want], digest: put.digest, size: put.size };
}

/** The manifest to write: the source's bytes, or an OCI manifest with the new layer descriptors. */
function layoutManifest(image: ResolvedImage, layers: Descriptor[]): Uint8Array {
  const same = image.parsed.mediaType === OCI_MANIFEST &&
    layers.every((l, i) => {
      const o = image.parsed.layers[i];
      return o && o.digest === l.digest && o.size === l.size && o.mediaType === l.mediaType;
    }) && layers.length === image.parsed.layers.length;
  if (same) return image.manifest;
  const json = structuredClone(image.parsed.json);
  const docker = image.parsed.mediaType === DOCKER_MANIFEST;
  json.mediaType = OCI_MANIFEST;
  const config = json.config as Record<string, unknown>;
  if (docker) config.mediaType = OCI_CONFIG;
  const old = (json.layers ?? []) as Record<string, unknown>[];
  json.layers = layers.map((l, i) => ({ ...(old[i] ?? {}), ...l }));
  return encoder.encode(JSON.stringify(json));
}

/**
 * Writes the image to the layout at `dir` (made when missing): blobs, the
 * manifest, index.json naming it. On failure the blobs it added are removed
 * (the directory too when it made it).
 * @returns the descriptor of the manifest written.
 */
export async function writeOciLayout(
  dir: string,
  src: ImageSource,
  image: ResolvedImage,
  opts: WriteLayoutOptions = {},
): Promise<Descriptor> {
  const made = !(await pathExists(dir));
  const created: string[] = [];
  try {
    await Deno.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    if (!(await pathExists(join(dir, "oci-layout")))) {
      await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    }
    const layers: Descriptor[] = [];
    for (const [index, layer] of image.layers.entries()) {
      layers.push(await putLayer(dir, src, layer, { ...opts, index }, created));
    }
    const put = (bytes: Uint8Array) => putBlob(dir, ReadableStream.from([bytes]), created);
    await put(image.config);
    const manifest = layoutManifest(image, layers);
    await put(manifest);
    const desc: Descriptor = {
      mediaType: OCI_MANIFEST,
      digest: manifestDigest(manifest),
      size: manifest.length,
      ...(opts.ref ? { annotations: { [REF_NAME]: opts.ref } } : {}),
    };
    const old = (await pathExists(join(dir, "index.json"))) ? (await readIndex(dir)).manifests : [];
    const kept = old.filter((m) => !opts.ref || m.annotations?.[REF_NAME] !== opts.ref);
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...kept, desc] };
    const tmp = join(dir, `.index.json.tmp-${crypto.randomUUID()}`);
    await Deno.writeTextFile(tmp, JSON.stringify(index));
    await Deno.rename(tmp, join(dir, "index.json"));
    return desc;
  } catch (e) {
    if (made) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else for (const p of created) await Deno.remove(p).catch(() => {});
    throw e;
  }
}

/**
 * Docker archives (`docker save`, `docker-archive:FILE[:NAME]`): a source
 * reading one image of an extracted archive with the Docker schema 2
 * manifest containers/image generates for it (layers named by their
 * diff_ids, so what is stored is what skopeo stores), and a writer of such
 * an archive's files (config, uncompressed layers, manifest.json).
 *
 * @example
 * ```ts ignore
 * const src = await DockerArchiveSource.open(await extractArchive("image.tar"), "busybox:latest");
 * const image = await resolveImage(src, { platform: hostPlatform() });
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { Compression, decompressStream, detectCompression } from "../archive/compression.ts";
import { DigestStream } from "../archive/digest.ts";
import { ErrInvalidImage } from "./errors.ts";
import type { Descriptor } from "./manifest.ts";
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from "./media_types.ts";
import { normalizeName } from "./reference.ts";
import type { ImageSource, ResolvedImage } from "./source.ts";
import { blobError, verifyBlob } from "./verify.ts";

/** One image of manifest.json. */
interface ArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const encoder = new TextEncoder();

/** Reads the file `name` of the archive, refusing names that leave it. */
function inside(root: string, name: string, what: string): string {
  if (typeof name !== "string" || name.split("/").includes("..") || name.startsWith("/")) {
    throw new ErrInvalidImage(what, { detail: `invalid path ${JSON.stringify(name)}` });
  }
  return join(root, name);
}

async function sizeOf(path: string, what: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    throw new ErrInvalidImage(what, { detail: `${path} is missing from the archive`, cause: e });
  }
}

/** An image of an extracted docker archive. */
export class DockerArchiveSource implements ImageSource {
  readonly #manifest: Uint8Array;
  readonly #config: { digest: string; bytes: Uint8Array };
  readonly #layers: Map<string, string>;

  private constructor(
    manifest: Uint8Array,
    config: { digest: string; bytes: Uint8Array },
    layers: Map<string, string>,
  ) {
    this.#manifest = manifest;
    this.#config = config;
    this.#layers = layers;
  }

  /**
   * The image `ref` (a name among RepoTags; none for an archive of one
   * image) of the archive extracted at `root`.
   * @throws {ErrInvalidImage} for a malformed archive.
   */
  static async open(root: string, ref?: string): Promise<DockerArchiveSource> {
    const what = "manifest.json";
    let entries: ArchiveEntry[];
    try {
      entries = JSON.parse(await Deno.readTextFile(join(root, what)));
    } catch (e) {
      throw new ErrInvalidImage(what, { detail: "missing or not valid JSON", cause: e });
    }
    if (!Array.isArray(entries)) throw new ErrInvalidImage(what, { detail: "not a list" });
    let entry: ArchiveEntry | undefined;
    if (ref) {
      const want = normalizeName(ref);
      entry = entries.find((e) => (e?.RepoTags ?? []).some((t) => normalizeName(t) === want));
      if (!entry) throw new ErrInvalidImage(what, { detail: `no image named ${ref}` });
    } else if (entries.length === 1) {
      entry = entries[0];
    } else {
      throw new ErrInvalidImage(what, { detail: `${entries.length} images and no name given` });
    }
    if (typeof entry?.Config !== "string" || !Array.isArray(entry.Layers)) {
      throw new ErrInvalidImage(what, { detail: "an image without Config or Layers" });
    }
    const configPath = inside(root, entry.Config, what);
    await sizeOf(configPath, entry.Config);
    const bytes = await Deno.readFile(configPath);
    const digest = "sha256:" + createHash("sha256").update(bytes).digest("hex");
    let diffIDs: unknown;
    try {
      diffIDs = JSON.parse(new TextDecoder().decode(bytes))?.rootfs?.diff_ids;
    } catch (e) {
      throw new ErrInvalidImage(entry.Config, { detail: "config is not valid JSON", cause: e });
    }
    if (!Array.isArray(diffIDs) || diffIDs.length !== entry.Layers.length) {
      throw new ErrInvalidImage(entry.Config, {
        detail: "rootfs.diff_ids does not list one digest per layer",
      });
    }
    const layers = new Map<string, string>();
    const descs: Descriptor[] = [];
    for (const [i, name] of entry.Layers.entries()) {
      const path = inside(root, name, what);
      const size = await sizeOf(path, name);
      const head = new Uint8Array(6);
      const f = await Deno.open(path);
      const n = (await f.read(head)) ?? 0;
      f.close();
      if (detectCompression(head.subarray(0, n)) !== Compression.Uncompressed) {
        throw new ErrInvalidImage(name, {
          detail: "compressed layers in docker archives are not supported",
        });
      }
      layers.set(String(diffIDs[i]), path);
      descs.push({ mediaType: DOCKER_LAYER_GZIP, size, digest: String(diffIDs[i]) });
    }
    // containers/image's generated manifest, with Go's field order.
    const manifest = encoder.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: bytes.length, digest },
      layers: descs.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest })),
    }));
    return new DockerArchiveSource(manifest, { digest, bytes }, layers);
  }

  /** The generated manifest. */
  manifest(): Promise<Uint8Array> {
    return Promise.resolve(this.#manifest);
  }

  /** The config, or a layer file named by its diff_id. */
  async blob(desc: Descriptor): Promise<ReadableStream<Uint8Array>> {
    if (desc.digest === this.#config.digest) return ReadableStream.from([this.#config.bytes]);
    const path = this.#layers.get(desc.digest);
    if (!path) throw new ErrInvalidImage(desc.digest, { detail: "no such blob in the archive" });
    return (await Deno.open(path)).readable;
  }

  /** Nothing to release: the extracted directory is the caller's. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Options of {@linkcode writeDockerArchiveDir}. */
export interface DockerArchiveOptions {
  /** The name recorded in RepoTags. */
  name?: string;
  /** Called with each layer's stream before it is read (progress counting). */
  tapLayer?: (index: number, stream: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;
}

/**
 * Writes the files of a docker archive of `image` into `dir`: the config
 * as `<hex>.json`, each layer uncompressed as `<diff_id hex>.tar` (checked
 * against its diff_id), manifest.json.
 */
export async function writeDockerArchiveDir(
  dir: string,
  src: ImageSource,
  image: ResolvedImage,
  opts: DockerArchiveOptions = {},
): Promise<void> {
  const layers: string[] = [];
  for (const [i, layer] of image.layers.entries()) {
    let raw = (await src.blob(layer.blob)).pipeThrough(verifyBlob(layer.blob, "layer"));
    if (opts.tapLayer) raw = opts.tapLayer(i, raw);
    const name = `${layer.diffID.slice(7)}.tar`;
    const d = new DigestStream();
    let digest: string;
    try {
      const { stream } = await decompressStream(raw);
      const out = await Deno.open(join(dir, name), { write: true, createNew: true, mode: 0o644 });
      await stream.pipeThrough(d).pipeTo(out.writable);
      digest = (await d.result).digest;
    } catch (e) {
      throw blobError(e, layer.blob.digest);
    }
    if (digest !== layer.diffID) {
      throw new ErrInvalidImage(layer.blob.digest, {
        detail: `uncompressed digest ${digest} is not the config's diff_id ${layer.diffID}`,
      });
    }
    layers.push(name);
  }
  const config = `${image.parsed.config.digest.slice(7)}.json`;
  await Deno.writeFile(join(dir, config), image.config);
  const entry = { Config: config, RepoTags: opts.name ? [opts.name] : [], Layers: layers };
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify([entry]));
}

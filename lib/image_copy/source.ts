/**
 * What an image source is (a layout, an archive, the store) and how one
 * image is resolved from it: the top-level manifest, the instance chosen
 * from an index for a platform, the config, and the layer blobs with the
 * config's diff_ids, each blob verified against its descriptor.
 *
 * @example
 * ```ts ignore
 * const image = await resolveImage(source, { platform: hostPlatform() });
 * console.log(image.manifestDigest, image.layers.map((l) => l.diffID));
 * ```
 * @module
 */

import { manifestDigest } from "../images/manifest_digest.ts";
import { ErrInvalidImage } from "./errors.ts";
import {
  type Descriptor,
  parseConfig,
  type ParsedConfig,
  type ParsedManifest,
  parseManifest,
} from "./manifest.ts";
import { chooseInstance, type Platform } from "./platform.ts";
import { readVerified } from "./verify.ts";

/** Where an image is read from. */
export interface ImageSource {
  /** The top-level manifest or index, already checked against what names it. */
  manifest(): Promise<Uint8Array>;
  /**
   * A blob's bytes as stored (unverified: the caller verifies).
   * @throws {ErrInvalidImage} when the blob is missing.
   */
  blob(desc: Descriptor): Promise<ReadableStream<Uint8Array>>;
  /**
   * The blobs this source hands out for the manifest's layers, when they
   * differ from the manifest's own (the store gives uncompressed diffs).
   */
  layerBlobs?(manifest: ParsedManifest): Promise<Descriptor[]>;
  /** Releases what the source holds (temporary files, an open store). */
  close(): Promise<void>;
}

/** One layer of a resolved image. */
export interface ResolvedLayer {
  /** The blob to read for it. */
  blob: Descriptor;
  /** Its uncompressed digest, from the config's rootfs.diff_ids. */
  diffID: string;
}

/** One image of a source, resolved and verified but for its layer blobs. */
export interface ResolvedImage {
  /** The top-level index or manifest list, when the source's manifest is one. */
  index?: Uint8Array;
  /** The image's manifest. */
  manifest: Uint8Array;
  /** Its digest. */
  manifestDigest: string;
  /** The manifest, parsed. */
  parsed: ParsedManifest;
  /** The config blob. */
  config: Uint8Array;
  /** The config, parsed. */
  configInfo: ParsedConfig;
  /** The layers, base first. */
  layers: ResolvedLayer[];
}

/** Options of {@linkcode resolveImage}. */
export interface ResolveOptions {
  /** The platform to pick from an index. */
  platform: Platform;
}

/**
 * Resolves the image of `src`: its manifest (through an index for
 * `opts.platform`), verified config, and layers with their diff_ids.
 * @throws {ErrInvalidImage} for anything malformed, missing or mismatched.
 */
export async function resolveImage(
  src: ImageSource,
  opts: ResolveOptions,
): Promise<ResolvedImage> {
  const top = await src.manifest();
  const topDigest = manifestDigest(top);
  let parsed = parseManifest(top, topDigest);
  let manifest = top;
  let index: Uint8Array | undefined;
  if (parsed.kind === "index") {
    index = top;
    const desc = chooseInstance(parsed.manifests, opts.platform, topDigest);
    manifest = await readVerified(await src.blob(desc), desc, "manifest");
    parsed = parseManifest(manifest, desc.digest);
    if (parsed.kind === "index") {
      throw new ErrInvalidImage(desc.digest, { detail: "an index inside an index" });
    }
  }
  const config = await readVerified(
    await src.blob(parsed.config),
    parsed.config,
    "config",
    32 << 20,
  );
  const configInfo = parseConfig(config, parsed.config.digest);
  const blobs = src.layerBlobs ? await src.layerBlobs(parsed) : parsed.layers;
  if (configInfo.diffIDs.length !== blobs.length) {
    throw new ErrInvalidImage(parsed.config.digest, {
      detail: `config lists ${configInfo.diffIDs.length} diff_ids for ${blobs.length} layers`,
    });
  }
  return {
    index,
    manifest,
    manifestDigest: manifestDigest(manifest),
    parsed,
    config,
    configInfo,
    layers: blobs.map((blob, i) => ({ blob, diffID: configInfo.diffIDs[i] })),
  };
}

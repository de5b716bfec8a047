/**
 * Parsing and checking of image manifests, indexes and configs: an OCI
 * image manifest or Docker schema 2 manifest, an OCI index or Docker
 * manifest list, with the media type guessed as containers/image guesses
 * it when the document does not say; every descriptor checked (sha256
 * digest, size, known media type). Anything else is refused with an
 * {@linkcode ErrInvalidImage} naming the document.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const m = parseManifest(new TextEncoder().encode('{"schemaVersion":2,"manifests":[]}'), "index.json");
 * console.log(m.kind, m.mediaType);
 * ```
 * @module
 */

import { ErrInvalidImage } from "./errors.ts";
import {
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  isConfigType,
  isIndexType,
  isLayerType,
  isManifestType,
  OCI_INDEX,
  OCI_MANIFEST,
} from "./media_types.ts";

/** A content descriptor as manifests and indexes carry them. */
export interface Descriptor {
  /** Media type of the content. */
  mediaType: string;
  /** "sha256:<64 hex>". */
  digest: string;
  /** Length in bytes. */
  size: number;
  /** Target platform (index entries). */
  platform?: { os?: string; architecture?: string; variant?: string };
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** A parsed index or manifest list. */
export interface ParsedIndex {
  /** Discriminant. */
  kind: "index";
  /** OCI index or Docker manifest list. */
  mediaType: string;
  /** The image manifests it lists. */
  manifests: Descriptor[];
}

/** A parsed single-image manifest. */
export interface ParsedManifest {
  /** Discriminant. */
  kind: "manifest";
  /** OCI image manifest or Docker schema 2. */
  mediaType: string;
  /** The config blob. */
  config: Descriptor;
  /** The layer blobs, base first. */
  layers: Descriptor[];
  /** The whole document, for rewriting descriptors. */
  json: Record<string, unknown>;
}

/** What a config says that a copy needs. */
export interface ParsedConfig {
  /** rootfs.diff_ids, base first. */
  diffIDs: string[];
  /** "created", as written. */
  created?: string;
  /** "os". */
  os?: string;
  /** "architecture". */
  architecture?: string;
}

const decoder = new TextDecoder();
const SHA256 = /^sha256:[0-9a-f]{64}$/;

function parseJSON(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new ErrInvalidImage(what, { detail: "not valid JSON", cause: e });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ErrInvalidImage(what, { detail: "not a JSON object" });
  }
  return v as Record<string, unknown>;
}

/** Checks a descriptor's shape: a sha256 digest, a size, a media type. */
export function checkDescriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== "object" || d === null) {
    throw new ErrInvalidImage(what, { detail: "descriptor is not an object" });
  }
  if (typeof d.digest !== "string" || !SHA256.test(d.digest)) {
    throw new ErrInvalidImage(what, {
      detail: `descriptor digest ${JSON.stringify(d.digest)} is not a sha256 digest`,
    });
  }
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ErrInvalidImage(d.digest, { detail: `invalid size ${JSON.stringify(d.size)}` });
  }
  if (d.mediaType !== undefined && typeof d.mediaType !== "string") {
    throw new ErrInvalidImage(d.digest, { detail: "media type is not a string" });
  }
  return { ...d, mediaType: d.mediaType ?? "" } as Descriptor;
}

/** The media type of a manifest-like document, guessed as containers/image does when absent. */
function guessMediaType(json: Record<string, unknown>): string {
  if (typeof json.mediaType === "string" && json.mediaType !== "") return json.mediaType;
  if (json.schemaVersion === 1) return "application/vnd.docker.distribution.manifest.v1+json";
  if (json.schemaVersion !== 2) return "";
  if ("manifests" in json) return OCI_INDEX;
  const config = json.config as { mediaType?: unknown } | undefined;
  return config?.mediaType === DOCKER_CONFIG ? DOCKER_MANIFEST : OCI_MANIFEST;
}

/**
 * Parses a manifest or index; `what` names it in errors (its digest or file).
 * @throws {ErrInvalidImage} when malformed or of an unsupported media type.
 */
export function parseManifest(bytes: Uint8Array, what: string): ParsedIndex | ParsedManifest {
  const json = parseJSON(bytes, what);
  const mediaType = guessMediaType(json);
  if (isIndexType(mediaType)) {
    if (!Array.isArray(json.manifests)) {
      throw new ErrInvalidImage(what, { detail: "index has no manifests list" });
    }
    const manifests = json.manifests.map((m, i) => checkDescriptor(m, `${what} manifests[${i}]`));
    return { kind: "index", mediaType, manifests };
  }
  if (!isManifestType(mediaType)) {
    throw new ErrInvalidImage(what, {
      detail: `unsupported manifest media type ${JSON.stringify(mediaType)}`,
    });
  }
  if (json.schemaVersion !== 2) {
    throw new ErrInvalidImage(what, { detail: "schemaVersion is not 2" });
  }
  const config = checkDescriptor(json.config, `${what} config`);
  if (!isConfigType(config.mediaType)) {
    throw new ErrInvalidImage(config.digest, {
      detail: `unsupported config media type ${JSON.stringify(config.mediaType)}`,
    });
  }
  if (!Array.isArray(json.layers)) {
    throw new ErrInvalidImage(what, { detail: "manifest has no layers list" });
  }
  const layers = json.layers.map((l, i) => checkDescriptor(l, `${what} layers[${i}]`));
  for (const l of layers) {
    if (!isLayerType(l.mediaType)) {
      throw new ErrInvalidImage(l.digest, {
        detail: `unsupported layer media type ${JSON.stringify(l.mediaType)}`,
      });
    }
  }
  return { kind: "manifest", mediaType, config, layers, json };
}

/**
 * Parses an image config; `what` names it in errors.
 * @throws {ErrInvalidImage} when it is not JSON or its rootfs.diff_ids are not sha256 digests.
 */
export function parseConfig(bytes: Uint8Array, what: string): ParsedConfig {
  const json = parseJSON(bytes, what);
  const rootfs = json.rootfs as { diff_ids?: unknown } | undefined;
  const ids = rootfs?.diff_ids ?? [];
  if (!Array.isArray(ids) || ids.some((d) => typeof d !== "string" || !SHA256.test(d))) {
    throw new ErrInvalidImage(what, { detail: "rootfs.diff_ids is not a list of sha256 digests" });
  }
  const str = (v: unknown) => typeof v === "string" ? v : undefined;
  return {
    diffIDs: ids as string[],
    created: str(json.created),
    os: str(json.os),
    architecture: str(json.architecture),
  };
}

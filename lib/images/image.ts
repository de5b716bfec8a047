/**
 * The image record as containers/storage 1.43 keeps it in images.json, and
 * its byte-compatible encoding. As for layers, the in-memory type is the
 * JSON form itself; only `readonly` (an image of an additional store) is
 * run-time state that the encoder drops.
 *
 * @example
 * ```ts
 * import { encodeImages, type Image } from "./image.ts";
 * const img: Image = { id: "a".repeat(64), names: ["alpine"], created: "2026-01-01T00:00:00Z" };
 * console.log(encodeImages([img]));
 * ```
 * @module
 */

import { type FieldRule, goStringify, goStruct } from "../go_json.ts";
import type { StoredRecord } from "../records/record_store.ts";

/** An image record; JSON keys are the ones images.json uses. */
export interface Image extends StoredRecord {
  /** Digest of the image's manifest, used to find it by digest. */
  digest?: string;
  /** Every name the image ever had, most recent first. */
  "names-history"?: string[];
  /** ID of the image's top layer. */
  layer?: string;
  /** Copies of the top layer made for other ID mappings. */
  "mapped-layers"?: string[];
  /** Run-time only: the image lives in a read-only (additional) store. */
  readonly?: boolean;
}

/** Key order and omission rules of Go's Image struct. */
const IMAGE_FIELDS: readonly (readonly [string, FieldRule])[] = [
  ["id", "always"],
  ["digest", "omitempty"],
  ["names", "omitempty"],
  ["names-history", "omitempty"],
  ["layer", "omitempty"],
  ["mapped-layers", "omitempty"],
  ["metadata", "omitempty"],
  ["big-data-names", "omitempty"],
  ["big-data-sizes", "omitempty"],
  ["big-data-digests", "omitempty"],
  ["created", "time"],
  ["flags", "omitempty"],
];

/** The object Go would marshal for one image. */
export function imageToJSON(image: Image): Record<string, unknown> {
  return goStruct(image, IMAGE_FIELDS);
}

/** images.json content for a list of images. */
export function encodeImages(images: readonly Image[]): string {
  return goStringify(images.map(imageToJSON));
}

/**
 * The prefix of big data keys that hold manifests: their digests make an
 * image findable by digest, and the first fills in a missing `digest`.
 */
export const MANIFEST_KEY_PREFIX = "manifest";

/** The big data key under which containers/image stores an image's (single) manifest. */
export const MANIFEST_KEY = "manifest";

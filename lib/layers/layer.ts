/**
 * The layer record as containers/storage 1.43 keeps it in layers.json.
 *
 * The in-memory type is the JSON form itself (same keys, same omissions),
 * so loading and saving never convert field by field; only the run-time
 * mount state (`mountpoint`, `mountcount`) and `readonly` live beside it,
 * and the encoder drops them.
 *
 * @example
 * ```ts
 * import { copyLayer, type Layer } from "./layer.ts";
 * const l: Layer = { id: "a".repeat(64), names: ["base"], created: "2026-01-01T00:00:00Z" };
 * console.log(copyLayer(l).names);
 * ```
 * @module
 */

import type { IDMap } from "../idmap.ts";
import type { ProgressOptions } from "../progress.ts";

/** A layer record; JSON keys are the ones layers.json uses. */
export interface Layer {
  /** 64-hex ID. */
  id: string;
  /** Names, unique among layers. */
  names?: string[];
  /** ID of the parent layer ("" or absent for a base layer). */
  parent?: string;
  /** Caller's free-form metadata. */
  metadata?: string;
  /** SELinux mount label. */
  mountlabel?: string;
  /** Creation time, RFC 3339 with nanoseconds, kept as written. */
  created?: string;
  /** Digest of the blob last applied, as received. */
  "compressed-diff-digest"?: string;
  /** Length of the blob last applied, as received. */
  "compressed-size"?: number;
  /** Digest of the blob last applied, decompressed (the DiffID). */
  "diff-digest"?: string;
  /** Length of the decompressed blob last applied. */
  "diff-size"?: number;
  /** Compression detected on the blob last applied (0 none, 1 bzip2, 2 gzip, 3 xz, 4 zstd). */
  compression?: number;
  /** UIDs used by the layer's files. */
  uidset?: number[];
  /** GIDs used by the layer's files. */
  gidset?: number[];
  /** Arbitrary flags; "incomplete": true marks a layer being created or deleted. */
  flags?: Record<string, unknown>;
  /** UID mapping of the layer's files. */
  uidmap?: IDMap[];
  /** GID mapping of the layer's files. */
  gidmap?: IDMap[];
  /** Keys of the layer's big data items. */
  "big-data-names"?: string[];
  /** Run-time only: where the layer is (or was last) mounted. Not saved in layers.json. */
  mountpoint?: string;
  /** Run-time only: mount reference count from mountpoints.json. Not saved in layers.json. */
  mountcount?: number;
  /** Run-time only: the layer lives in a read-only (additional) store. */
  readonly?: boolean;
}

/** One entry of mountpoints.json. */
export interface LayerMountPoint {
  /** Layer ID. */
  id: string;
  /** Mount point path. */
  path: string;
  /** Reference count. */
  count: number;
}

/** Options for creating a layer, as Go's LayerOptions. */
export interface LayerOptions {
  /** Use the host's UID mapping (no mapping), ignoring the parent's and the store's. */
  hostUIDMapping?: boolean;
  /** Use the host's GID mapping (no mapping), ignoring the parent's and the store's. */
  hostGIDMapping?: boolean;
  /** UID mapping of the new layer. */
  uidMap?: IDMap[];
  /** GID mapping of the new layer. */
  gidMap?: IDMap[];
  /** A layer (child of the same parent) whose contents and digests the new layer copies. */
  templateLayer?: string;
  /** Known sha256 digest of the compressed diff, recorded instead of computing it. */
  originalDigest?: string;
  /** Known sha256 digest of the uncompressed diff, recorded instead of computing it. */
  uncompressedDigest?: string;
  /** Flags to set on the new layer. */
  flags?: Record<string, unknown>;
  /** Per-layer driver options (e.g. size). */
  storageOpt?: Record<string, string>;
}

/** What `Store.createLayer` takes: where the new layer goes, what it is called, and its LayerOptions. */
export interface CreateLayerOptions extends LayerOptions {
  /** ID of the new layer; a random one is generated when absent. */
  id?: string;
  /** ID, name or unique ID prefix of the parent layer; absent or "" for a base layer. */
  parent?: string;
  /** Names of the new layer, unique among layers (default none). */
  names?: string[];
  /** SELinux mount label (default ""). */
  mountLabel?: string;
  /** Create a read-write (container) layer instead of a read-only one (default false). */
  writeable?: boolean;
}

/**
 * What `Store.putLayer` takes: {@linkcode CreateLayerOptions}, a diff to
 * apply, and a callback following its reading (`onProgress`).
 */
export interface PutLayerOptions extends CreateLayerOptions, ProgressOptions {
  /** A layer tarball (any compression) applied to the new layer; none leaves it empty. */
  diff?: ReadableStream<Uint8Array>;
}

/** The flag that marks a layer whose creation or deletion has not finished. */
export const INCOMPLETE_FLAG = "incomplete";

/** Whether a layer carries `"incomplete": true` (only the boolean true counts, like Go). */
export function hasIncompleteFlag(layer: Layer): boolean {
  return layer.flags?.[INCOMPLETE_FLAG] === true;
}

/** A deep copy of a layer record, so callers cannot change the store's copy. */
export function copyLayer(layer: Layer): Layer {
  return structuredClone(layer);
}

/** The ID mappings of a layer, as drivers take them. */
export function layerMappings(
  layer: Layer | undefined,
): { uidMap: IDMap[]; gidMap: IDMap[] } {
  return { uidMap: layer?.uidmap ?? [], gidMap: layer?.gidmap ?? [] };
}

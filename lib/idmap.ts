/**
 * UID/GID mappings between a container's ID space and the host's, in the
 * shape containers/storage stores them in layers.json (`uidmap`/`gidmap`).
 *
 * @example
 * ```ts
 * import type { IDMap } from "./idmap.ts";
 * const m: IDMap = { container_id: 0, host_id: 100000, size: 65536 };
 * ```
 * @module
 */

/** One contiguous range of a mapping; field names are the JSON keys of containers/storage. */
export interface IDMap {
  /** First ID inside the container. */
  container_id: number;
  /** First ID on the host. */
  host_id: number;
  /** Number of IDs in the range. */
  size: number;
}

/** The UID and GID mappings of a layer or container; empty arrays mean identity. */
export interface IDMappings {
  /** UID ranges. */
  uidMap: IDMap[];
  /** GID ranges. */
  gidMap: IDMap[];
}

/**
 * The container record as containers/storage 1.43 keeps it in
 * containers.json, the flags it reads from it, and its byte-compatible
 * encoding.
 *
 * @example
 * ```ts
 * import { type Container, encodeContainers, mountLabelOf } from "./container.ts";
 * const c: Container = { id: "c".repeat(64), image: "", layer: "l".repeat(64), flags: { MountLabel: "" } };
 * console.log(mountLabelOf(c), encodeContainers([c]));
 * ```
 * @module
 */

import { type FieldRule, goStringify, goStruct } from "../go_json.ts";
import type { IDMap } from "../idmap.ts";
import type { StoredRecord } from "../records/record_store.ts";

/** A container record; JSON keys are the ones containers.json uses. */
export interface Container extends StoredRecord {
  /** ID of the image the container was created from ("" for none). */
  image: string;
  /** ID of the container's read-write layer. */
  layer: string;
  /** UID mapping of the container (absent: the host's). */
  uidmap?: IDMap[];
  /** GID mapping of the container (absent: the host's). */
  gidmap?: IDMap[];
}

/** Flag holding the SELinux label the container's filesystem is mounted with. */
export const MOUNT_LABEL_FLAG = "MountLabel";
/** Flag holding the SELinux label of the container's processes. */
export const PROCESS_LABEL_FLAG = "ProcessLabel";
/** Flag holding extra mount options for the container's layer. */
export const MOUNT_OPTS_FLAG = "MountOpts";
/** Flag marking a container whose layer may be mounted without syncing (overlay "volatile"). */
export const VOLATILE_FLAG = "Volatile";

/** Key order and omission rules of Go's Container struct. */
const CONTAINER_FIELDS: readonly (readonly [string, FieldRule])[] = [
  ["id", "always"],
  ["names", "omitempty"],
  ["image", "always"],
  ["layer", "always"],
  ["metadata", "omitempty"],
  ["big-data-names", "omitempty"],
  ["big-data-sizes", "omitempty"],
  ["big-data-digests", "omitempty"],
  ["created", "time"],
  ["uidmap", "omitempty"],
  ["gidmap", "omitempty"],
  ["flags", "omitempty"],
];

/** The object Go would marshal for one container. */
export function containerToJSON(c: Container): Record<string, unknown> {
  return goStruct(c, CONTAINER_FIELDS);
}

/** containers.json content for a list of containers. */
export function encodeContainers(containers: readonly Container[]): string {
  return goStringify(containers.map(containerToJSON));
}

/** The container's mount label ("" when unset or not a string). */
export function mountLabelOf(c: Container): string {
  const v = c.flags?.[MOUNT_LABEL_FLAG];
  return typeof v === "string" ? v : "";
}

/** The container's process label ("" when unset or not a string). */
export function processLabelOf(c: Container): string {
  const v = c.flags?.[PROCESS_LABEL_FLAG];
  return typeof v === "string" ? v : "";
}

/** The container's extra mount options (only the string entries count). */
export function mountOptsOf(c: Container): string[] {
  const v = c.flags?.[MOUNT_OPTS_FLAG];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** Whether the container was created volatile. */
export function isVolatile(c: Container): boolean {
  return c.flags?.[VOLATILE_FLAG] === true;
}

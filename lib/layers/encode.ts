/**
 * Byte-compatible encoding of layers.json and mountpoints.json: the field
 * order of Go's structs, `omitempty` rules, sorted map keys and Go's HTML
 * escaping, so a file we write is what containers/storage would write.
 * Also Go's RFC 3339 nanosecond timestamps.
 *
 * @example
 * ```ts
 * import { encodeLayers, nowRFC3339Nano } from "./encode.ts";
 * console.log(encodeLayers([{ id: "a".repeat(64), created: nowRFC3339Nano() }]));
 * ```
 * @module
 */

import { type FieldRule, goStringify, goStruct } from "../go_json.ts";
import type { Layer, LayerMountPoint } from "./layer.ts";

/** Key order and omission rules of Go's Layer struct; run-time fields are absent on purpose. */
const LAYER_FIELDS: readonly (readonly [string, FieldRule])[] = [
  ["id", "always"],
  ["names", "omitempty"],
  ["parent", "omitempty"],
  ["metadata", "omitempty"],
  ["mountlabel", "omitempty"],
  ["created", "time"],
  ["compressed-diff-digest", "omitempty"],
  ["compressed-size", "omitempty"],
  ["diff-digest", "omitempty"],
  ["diff-size", "omitempty"],
  ["compression", "omitempty"],
  ["uidset", "omitempty"],
  ["gidset", "omitempty"],
  ["flags", "omitempty"],
  ["uidmap", "omitempty"],
  ["gidmap", "omitempty"],
  ["big-data-names", "omitempty"],
];

/** The object Go would marshal for one layer. */
export function layerToJSON(layer: Layer): Record<string, unknown> {
  return goStruct(layer, LAYER_FIELDS);
}

/** layers.json content for a list of layers. */
export function encodeLayers(layers: Layer[]): string {
  return goStringify(layers.map(layerToJSON));
}

/** mountpoints.json content: only layers mounted at least once, in store order. */
export function encodeMounts(layers: Layer[]): string {
  const mounts: LayerMountPoint[] = [];
  for (const l of layers) {
    if (l.mountpoint && (l.mountcount ?? 0) > 0) {
      mounts.push({ id: l.id, path: l.mountpoint, count: l.mountcount! });
    }
  }
  return goStringify(mounts);
}

/** The current time as Go prints `time.Now().UTC()` with RFC3339Nano (trailing zeros trimmed). */
export function nowRFC3339Nano(): string {
  const ms = performance.timeOrigin + performance.now();
  const wholeMs = Math.floor(ms);
  const nanos = Math.floor((ms - wholeMs) * 1e6) + (wholeMs % 1000) * 1e6;
  const iso = new Date(wholeMs).toISOString().slice(0, 19);
  const frac = String(nanos).padStart(9, "0").replace(/0+$/, "");
  return `${iso}${frac ? "." + frac : ""}Z`;
}

/** Nanoseconds since the epoch of an RFC 3339 time (any offset); 0n when unparseable. */
export function parseTimeNs(s: string | undefined): bigint {
  const m = s?.match(
    /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/,
  );
  if (!m) return 0n;
  const secs = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(secs)) return 0n;
  return BigInt(secs) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0") || "0");
}

/** The file name Go uses for a big data key: itself if made of [.0-9a-z], else "=" + base64. */
export function bigDataFileName(key: string): string {
  if (/^[.0-9a-z]*$/.test(key)) return key;
  const bytes = new TextEncoder().encode(key);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return "=" + btoa(bin);
}

/** Names without repeats, first occurrence kept. */
export function dedupeNames(names: string[]): string[] {
  return [...new Set(names)];
}

/** How a names update combines old and given names. */
export type NameOperation = "set" | "add" | "remove";

/** The names after an update, as containers/storage computes them (add appends). */
export function applyNameOperation(old: string[], given: string[], op: NameOperation): string[] {
  switch (op) {
    case "set":
      return dedupeNames(given);
    case "remove":
      return dedupeNames(old.filter((n) => !given.includes(n)));
    case "add":
      return dedupeNames([...old, ...given]);
  }
}

/**
 * Automatic user namespaces (podman's `--userns=auto`), as containers/storage
 * 1.43 computes them: the container gets `size` consecutive container IDs
 * from 0, backed by host IDs that the subordinate ID files grant to the
 * "containers" user (root) or to the user (rootless) and that no other
 * container of the store uses yet. The size comes from the request, else
 * from the IDs the image's layers and its /etc/passwd and /etc/group use,
 * bounded by the store's auto-userns-min-size and auto-userns-max-size.
 *
 * @example
 * ```ts
 * import { autoUserNsMappings, IDSet } from "./userns.ts";
 * const available = new IDSet([[100000, 165536]]);
 * const { uidMap } = autoUserNsMappings({ size: 1024, availableUIDs: available, availableGIDs: available, usedUIDs: [], usedGIDs: [] });
 * console.log(uidMap); // [{ container_id: 0, host_id: 100000, size: 1024 }]
 * ```
 * @module
 */

import { StorageError } from "../errors.ts";
import type { IDMap, IDMappings } from "../idmap.ts";

/** A set of IDs as sorted, disjoint, non-adjacent half-open intervals [start, end). */
export class IDSet {
  /** The intervals, sorted and merged. */
  readonly intervals: readonly (readonly [number, number])[];

  /** Builds a set from intervals in any order, overlapping or not. */
  constructor(intervals: Iterable<readonly [number, number]> = []) {
    const sorted = [...intervals].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [s, e] of sorted) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    this.intervals = merged;
  }

  /** The host IDs of a mapping. */
  static hostIDs(maps: readonly IDMap[]): IDSet {
    return new IDSet(maps.map((m) => [m.host_id, m.host_id + m.size] as const));
  }

  /** The container IDs of a mapping. */
  static containerIDs(maps: readonly IDMap[]): IDSet {
    return new IDSet(maps.map((m) => [m.container_id, m.container_id + m.size] as const));
  }

  /** Number of IDs in the set. */
  get size(): number {
    return this.intervals.reduce((n, [s, e]) => n + e - s, 0);
  }

  /** The IDs of this set that are not in `other`. */
  subtract(other: IDSet): IDSet {
    let out = [...this.intervals];
    for (const [os, oe] of other.intervals) {
      out = out.flatMap(([s, e]): [number, number][] => {
        if (oe <= s || os >= e) return [[s, e]];
        const parts: [number, number][] = [];
        if (s < os) parts.push([s, os]);
        if (oe < e) parts.push([oe, e]);
        return parts;
      });
    }
    return new IDSet(out);
  }

  /**
   * The lowest `n` IDs of the set.
   * @throws {StorageError} when the set has fewer than `n` IDs.
   */
  take(n: number): IDSet {
    const out: [number, number][] = [];
    let left = n;
    for (const [s, e] of this.intervals) {
      if (left === 0) break;
      const k = Math.min(left, e - s);
      out.push([s, s + k]);
      left -= k;
    }
    if (left > 0) {
      throw new StorageError(undefined, {
        detail: `could not find enough available IDs: ${n} wanted, ${this.size} free`,
      });
    }
    return new IDSet(out);
  }

  /** A mapping that pairs this set's IDs (host side) with `containerIDs`, in order. */
  zip(containerIDs: IDSet): IDMap[] {
    const maps: IDMap[] = [];
    const hosts = this.intervals.map(([s, e]) => [s, e]);
    const conts = containerIDs.intervals.map(([s, e]) => [s, e]);
    let h = 0;
    let c = 0;
    while (h < hosts.length && c < conts.length) {
      const size = Math.min(hosts[h][1] - hosts[h][0], conts[c][1] - conts[c][0]);
      maps.push({ container_id: conts[c][0], host_id: hosts[h][0], size });
      hosts[h][0] += size;
      conts[c][0] += size;
      if (hosts[h][0] === hosts[h][1]) h++;
      if (conts[c][0] === conts[c][1]) c++;
    }
    return maps;
  }
}

/** Inputs of {@linkcode autoUserNsMappings}. */
export interface AutoUserNsInput {
  /** How many container IDs (from 0) the namespace must cover. */
  size: number;
  /** Host UIDs the store may hand out. */
  availableUIDs: IDSet;
  /** Host GIDs the store may hand out. */
  availableGIDs: IDSet;
  /** UID mappings of the store's other containers. */
  usedUIDs: readonly IDMap[];
  /** GID mappings of the store's other containers. */
  usedGIDs: readonly IDMap[];
  /** UID ranges the caller maps itself (their container IDs are not allocated). */
  additionalUIDs?: readonly IDMap[];
  /** GID ranges the caller maps itself. */
  additionalGIDs?: readonly IDMap[];
}

/**
 * The mappings of a new automatic user namespace: the first free host IDs
 * zipped with container IDs 0…size-1 (minus those the caller maps itself),
 * followed by the caller's own ranges.
 * @throws {StorageError} when not enough host IDs are free.
 */
export function autoUserNsMappings(input: AutoUserNsInput): IDMappings {
  const additionalUIDs = input.additionalUIDs ?? [];
  const additionalGIDs = input.additionalGIDs ?? [];
  const target = new IDSet([[0, input.size]]);
  const side = (available: IDSet, used: readonly IDMap[], additional: readonly IDMap[]) => {
    const wanted = target.subtract(IDSet.containerIDs(additional));
    const taken = IDSet.hostIDs([...used, ...additional]);
    const hosts = available.subtract(taken).take(wanted.size);
    return [...hosts.zip(wanted), ...additional];
  };
  return {
    uidMap: side(input.availableUIDs, input.usedUIDs, additionalUIDs),
    gidMap: side(input.availableGIDs, input.usedGIDs, additionalGIDs),
  };
}

/**
 * The namespace size an /etc/passwd and /etc/group need: one more than the
 * highest UID or GID they name, "nobody" aside (it is usually 65534 and
 * mapped to the overflow ID anyway). Unparseable lines are skipped.
 */
export function sizeForUserFiles(passwd: string, group: string): number {
  let size = 0;
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || f[0] === "nobody") continue;
    for (const v of [f[2], f[3]]) if (/^\d+$/.test(v)) size = Math.max(size, Number(v) + 1);
  }
  for (const line of group.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || f[0] === "nobody") continue;
    if (/^\d+$/.test(f[2])) size = Math.max(size, Number(f[2]) + 1);
  }
  return size;
}

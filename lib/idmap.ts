/**
 * UID/GID mappings between a container's ID space and the host's, in the
 * shape containers/storage stores them in layers.json (`uidmap`/`gidmap`):
 * parsing "container:host:size" specs and /etc/subuid, and mapping IDs
 * both ways (also as containers/storage re-owns files: unmapped IDs to the
 * overflow ID).
 *
 * @example
 * ```ts
 * import { parseIDMap, toContainer, toHost } from "./idmap.ts";
 * const m = parseIDMap("0:100000:65536", "remap-uids");
 * console.log(toHost(0, m), toContainer(100005, m)); // 100000 5
 * ```
 * @module
 */

import { ErrInvalidIDMap, ErrUnmappedID } from "./errors.ts";

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

/** IDs are 32-bit unsigned on Linux; a range may end exactly at 2^32. */
const ID_LIMIT = 2 ** 32;

function parseField(text: string, spec: string, what: string): number {
  if (!/^[0-9]+$/.test(text)) {
    throw new ErrInvalidIDMap(spec, { detail: `${what}: ${JSON.stringify(text)} is not a number` });
  }
  const n = Number(text);
  if (n >= ID_LIMIT) {
    throw new ErrInvalidIDMap(spec, { detail: `${what}: ${text} does not fit in 32 bits` });
  }
  return n;
}

/**
 * Parses mapping specs into ranges.
 *
 * Each spec is `container:host:size`; several triples may be joined with
 * ":" (what containers/storage's remap-uids accepts, e.g.
 * "0:100000:1000:1000:200000:10") or with ",". Empty specs are skipped, so
 * `parseIDMap("")` is `[]` (identity).
 *
 * @param spec One spec or a list of them.
 * @param what Name of the setting, used in error messages (e.g. "remap-uids").
 * @throws {ErrInvalidIDMap} on a malformed field, a zero size, a range past
 * 2^32, or ranges that overlap on the container or host side.
 */
export function parseIDMap(spec: string | string[], what = "ID map"): IDMap[] {
  const maps: IDMap[] = [];
  for (const item of typeof spec === "string" ? [spec] : spec) {
    for (const part of item.split(",")) {
      const trimmed = part.trim();
      if (trimmed === "") continue;
      const fields = trimmed.split(":");
      if (fields.length % 3 !== 0) {
        throw new ErrInvalidIDMap(trimmed, {
          detail: `${what}: expected "container:host:size" triples of unsigned integers`,
        });
      }
      for (let i = 0; i < fields.length; i += 3) {
        const m = {
          container_id: parseField(fields[i], trimmed, what),
          host_id: parseField(fields[i + 1], trimmed, what),
          size: parseField(fields[i + 2], trimmed, what),
        };
        if (m.size === 0) throw new ErrInvalidIDMap(trimmed, { detail: `${what}: size is 0` });
        if (m.container_id + m.size > ID_LIMIT || m.host_id + m.size > ID_LIMIT) {
          throw new ErrInvalidIDMap(trimmed, { detail: `${what}: range ends past 2^32` });
        }
        maps.push(m);
      }
    }
  }
  checkOverlaps(maps, what);
  return maps;
}

/** Overlapping ranges would make a lookup ambiguous (and the kernel rejects them). */
function checkOverlaps(maps: IDMap[], what: string): void {
  for (const side of ["container_id", "host_id"] as const) {
    const sorted = [...maps].sort((a, b) => a[side] - b[side]);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (prev[side] + prev.size > sorted[i][side]) {
        const fmt = (m: IDMap) => `${m.container_id}:${m.host_id}:${m.size}`;
        throw new ErrInvalidIDMap(`${fmt(prev)},${fmt(sorted[i])}`, {
          detail: `${what}: ranges overlap on the ${
            side === "host_id" ? "host" : "container"
          } side`,
        });
      }
    }
  }
}

/**
 * Maps a container ID to the host ID. An empty mapping is the identity.
 * @throws {ErrUnmappedID} if no range covers `id`.
 */
export function toHost(id: number, maps: IDMap[]): number {
  if (maps.length === 0) return id;
  for (const m of maps) {
    if (id >= m.container_id && id < m.container_id + m.size) {
      return m.host_id + (id - m.container_id);
    }
  }
  throw new ErrUnmappedID(String(id), { detail: "container ID has no host ID in the mapping" });
}

/**
 * Maps a host ID to the container ID. An empty mapping is the identity.
 * @throws {ErrUnmappedID} if no range covers `id`.
 */
export function toContainer(id: number, maps: IDMap[]): number {
  if (maps.length === 0) return id;
  for (const m of maps) {
    if (id >= m.host_id && id < m.host_id + m.size) {
      return m.container_id + (id - m.host_id);
    }
  }
  throw new ErrUnmappedID(String(id), { detail: "host ID has no container ID in the mapping" });
}

/** The owner of a file: a UID and a GID. */
export interface IDPair {
  /** User ID. */
  uid: number;
  /** Group ID. */
  gid: number;
}

/**
 * The ID the kernel shows for IDs it cannot map. containers/storage 1.43
 * reads /proc/sys/kernel/overflowuid (and overflowgid) but parses the text
 * with its trailing newline, which fails, so it always uses this default.
 */
export const OVERFLOW_ID = 65534;

/**
 * The host IDs of container root under `m`, as idtools.GetRootUIDGID gives
 * them: the host ID of container ID 0, or the only host ID of a mapping of
 * a single ID (whatever its container ID).
 * @throws {ErrUnmappedID} if container ID 0 is not mapped.
 */
export function rootPair(m: IDMappings): IDPair {
  const root = (maps: IDMap[]) =>
    maps.length === 1 && maps[0].size === 1 ? maps[0].host_id : toHost(0, maps);
  return { uid: root(m.uidMap), gid: root(m.gidMap) };
}

/**
 * The host IDs of container root, or -1 for both (chown's "leave as is")
 * when the mapping has no container ID 0 — idtools' RootPair, which layers
 * with such mappings are created with.
 */
export function rootPairOrKeep(m: IDMappings): IDPair {
  try {
    return rootPair(m);
  } catch (e) {
    if (!(e instanceof ErrUnmappedID)) throw e;
    return { uid: -1, gid: -1 };
  }
}

/**
 * Maps a container owner to the host as idtools' ToHostOverflow does: an ID
 * that no range covers becomes {@linkcode OVERFLOW_ID}, except one equal to
 * the host ID of container root, which is kept.
 */
export function toHostOverflow(pair: IDPair, m: IDMappings): IDPair {
  // when 0 is unmapped, Go compares with -1
  const root = rootPairOrKeep(m);
  const host = (id: number, rootID: number, maps: IDMap[]) => {
    if (id === rootID) return id;
    try {
      return toHost(id, maps);
    } catch (e) {
      if (!(e instanceof ErrUnmappedID)) throw e;
      return OVERFLOW_ID;
    }
  };
  return { uid: host(pair.uid, root.uid, m.uidMap), gid: host(pair.gid, root.gid, m.gidMap) };
}

/**
 * True when the mapping changes no ID: it is empty or every range maps
 * onto itself. Accepts one mapping or a UID/GID pair.
 */
export function isIdentity(maps: IDMap[] | IDMappings): boolean {
  if (!Array.isArray(maps)) return isIdentity(maps.uidMap) && isIdentity(maps.gidMap);
  return maps.every((m) => m.container_id === m.host_id);
}

/**
 * Reads the ranges that a subordinate-ID file (/etc/subuid, /etc/subgid
 * format: `name:start:count` per line) grants to `name`, and lays them out
 * as a mapping whose container IDs start at 0 and follow one another in
 * order of host start, as containers/storage does for remap-user.
 *
 * Lines for "ALL" apply to every name; blank lines and `#` comments are
 * skipped.
 * @throws {ErrInvalidIDMap} on a malformed line for `name`, or if no range
 * is granted to `name`.
 */
export function parseSubIDs(text: string, name: string, file = "subordinate ID file"): IDMap[] {
  const ranges: { start: number; count: number }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(":");
    if (parts[0] !== name && parts[0] !== "ALL") continue;
    const where = `${file}:${i + 1}`;
    if (parts.length !== 3) {
      throw new ErrInvalidIDMap(line, { detail: `${where}: expected "name:start:count"` });
    }
    const start = parseField(parts[1], line, where);
    const count = parseField(parts[2], line, where);
    if (count > 0) ranges.push({ start, count });
  }
  if (ranges.length === 0) {
    throw new ErrInvalidIDMap(name, { detail: `no ranges found for this name in ${file}` });
  }
  ranges.sort((a, b) => a.start - b.start);
  const maps: IDMap[] = [];
  let next = 0;
  for (const r of ranges) {
    maps.push({ container_id: next, host_id: r.start, size: r.count });
    next += r.count;
  }
  checkOverlaps(maps, file);
  return maps;
}

/**
 * Builds the mappings for remap-user/remap-group from /etc/subuid and
 * /etc/subgid (paths can be overridden for tests).
 * @throws {ErrInvalidIDMap} if a file lacks ranges for the name or is malformed.
 */
export async function idMappingsForUser(
  user: string,
  group: string,
  files: { subuid?: string; subgid?: string } = {},
): Promise<IDMappings> {
  const subuid = files.subuid ?? "/etc/subuid";
  const subgid = files.subgid ?? "/etc/subgid";
  const read = async (path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return "";
      throw e;
    }
  };
  return {
    uidMap: parseSubIDs(await read(subuid), user, subuid),
    gidMap: parseSubIDs(await read(subgid), group, subgid),
  };
}

/**
 * The container store: `<graphroot>/<driver>-containers/containers.json`
 * under containers.lock, with each container's big data files in `<id>/`,
 * as containers/storage 1.43 keeps them. A container is found by its ID,
 * a unique ID prefix, one of its names or the ID of its layer.
 *
 * @example
 * ```ts ignore
 * const containers = await ContainerStore.open({ dir: "/g/vfs-containers" });
 * const c = await containers.writing(() => containers.create({ image: imageID, layer: layerID }));
 * ```
 * @module
 */

import {
  ErrContainerUnknown,
  ErrDuplicateID,
  ErrDuplicateName,
  ErrInvalidIDMap,
  type StorageError,
} from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import { generateID } from "../ids.ts";
import { dedupeNames, nowRFC3339Nano } from "../layers/encode.ts";
import { RecordStore, type RecordStoreConfig, sha256Digest } from "../records/record_store.ts";
import { type Container, encodeContainers, MOUNT_OPTS_FLAG, VOLATILE_FLAG } from "./container.ts";

/** What a new container record holds. */
export interface NewContainer {
  /** The ID; a random one when absent. */
  id?: string;
  /** Names, unique across containers. */
  names?: string[];
  /** ID of the image ("" for none). */
  image: string;
  /** ID of the container's read-write layer. */
  layer: string;
  /** Free-form metadata. */
  metadata?: string;
  /** Flags (MountLabel, ProcessLabel, …). */
  flags?: Record<string, unknown>;
  /** Extra mount options, kept as the MountOpts flag. */
  mountOpts?: string[];
  /** Record the container as volatile (the Volatile flag). */
  volatile?: boolean;
  /** UID mapping (empty: the host's). */
  uidMap?: IDMap[];
  /** GID mapping (empty: the host's). */
  gidMap?: IDMap[];
}

/** One containers.json. */
export class ContainerStore extends RecordStore<Container> {
  /** @internal */
  protected readonly kind = "containers";
  #byLayer = new Map<string, Container>();

  /**
   * Opens the store in `dir`, creating its directory and lock, and loads it
   * (a damaged containers.json is reported by each use).
   */
  static async open(cfg: RecordStoreConfig): Promise<ContainerStore> {
    const s = new ContainerStore(cfg, await RecordStore.lockFor(cfg, "containers"));
    await s.openWith(() => s.load(), cfg.readOnly);
    return s;
  }

  /** @internal */
  protected unknown(id: string): StorageError {
    return new ErrContainerUnknown(id);
  }

  /** @internal */
  protected encode(containers: Container[]): string {
    return encodeContainers(containers);
  }

  /** @internal */
  protected reindex(containers: Container[]): void {
    this.#byLayer = new Map(containers.map((c) => [c.layer, c]));
  }

  /** Containers are also found by the ID of their layer (before ID prefixes). @internal */
  protected override lookup(idOrName: string): Container | undefined {
    return this.exactMatch(idOrName) ?? this.#byLayer.get(idOrName) ??
      this.prefixMatch(idOrName);
  }

  /** The container whose read-write layer is `layerID`, if any. */
  byLayer(layerID: string): Container | undefined {
    const c = this.#byLayer.get(layerID);
    return c && structuredClone(c);
  }

  /** Adds a container record. Names must not belong to another container. */
  async create(spec: NewContainer): Promise<Container> {
    this.checkWritable("create new containers");
    let id = spec.id;
    if (!id) {
      do id = generateID(); while (this.hasID(id));
    }
    if (this.hasID(id)) {
      throw new ErrDuplicateID(id, { detail: "a container with this ID already exists" });
    }
    const flags: Record<string, unknown> = { ...spec.flags };
    if (spec.mountOpts) flags[MOUNT_OPTS_FLAG] = [...spec.mountOpts];
    if (spec.volatile) flags[VOLATILE_FLAG] = true;
    const names = dedupeNames(spec.names ?? []);
    for (const name of names) {
      const holder = this.holderOf(name);
      if (holder) {
        throw new ErrDuplicateName(name, {
          detail: `the container name is already in use by ${holder.id}; ` +
            "remove that container to be able to reuse that name",
        });
      }
    }
    checkOverlaps(spec.uidMap ?? [], "UID");
    checkOverlaps(spec.gidMap ?? [], "GID");
    const c: Container = {
      id,
      names,
      image: spec.image,
      layer: spec.layer,
      metadata: spec.metadata || undefined,
      "big-data-names": [],
      "big-data-sizes": {},
      "big-data-digests": {},
      created: nowRFC3339Nano(),
      uidmap: spec.uidMap?.length ? structuredClone(spec.uidMap) : undefined,
      gidmap: spec.gidMap?.length ? structuredClone(spec.gidMap) : undefined,
      flags,
    };
    this.insert(c);
    this.reindex([...this.records]);
    await this.save();
    return structuredClone(c);
  }

  /**
   * The recorded digest of a big data item, else the digest of its file
   * (undefined when the item does not exist).
   */
  async bigDataDigest(idOrName: string, key: string): Promise<string | undefined> {
    const c = this.mustLookup(idOrName);
    const known = c["big-data-digests"]?.[key];
    if (known !== undefined) return known;
    try {
      return sha256Digest(await this.bigData(c.id, key));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }

  /** Stores a big data item and records its size and sha256 digest. */
  async setBigData(idOrName: string, key: string, data: Uint8Array): Promise<void> {
    await this.writeBigData(idOrName, key, data, sha256Digest(data));
  }
}

/** containers/storage refuses mappings whose host or container ranges overlap. */
function checkOverlaps(map: IDMap[], what: string): void {
  const sides = [["container_id", "container"], ["host_id", "host"]] as const;
  for (const [key, side] of sides) {
    const ranges = map.map((m) => [m[key], m[key] + m.size] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i][0] < ranges[i - 1][1]) {
        throw new ErrInvalidIDMap(undefined, {
          detail: `overlapping ${what} ${side} ranges in the container's mapping`,
        });
      }
    }
  }
}

/**
 * What a Store is made of — the driver, the layer, image and container
 * stores (ours and those of additional image stores), the graph and user
 * namespace locks — and the lock discipline of containers/storage 1.43
 * that every Store operation follows: layer stores first, then image
 * stores, then the container store, each store of ours locked for writing
 * when the operation changes anything and every read-only store locked for
 * reading, released in reverse order. Keeping one order everywhere is what
 * keeps us and the Go tools from deadlocking on a shared store.
 *
 * @example
 * ```ts ignore
 * await withLocks([...layerHolds(parts, "write"), [parts.imageStore, "write"]], async () => {
 *   // look up a layer, create an image on it
 * });
 * ```
 * @module
 */

import { join } from "../path.ts";
import type { Driver } from "../../drivers/driver.ts";
import type { ContainerStore } from "../containers/container_store.ts";
import type { IDMap } from "../idmap.ts";
import type { ImageStore } from "../images/image_store.ts";
import type { LayerStore } from "../layers/layer_store.ts";
import type { LockFile } from "../lockfile.ts";

/** Store-wide settings from storage.conf that operations consult. */
export interface StoreSettings {
  /** The user whose subordinate IDs automatic user namespaces use (root only). */
  autoUsernsUser: string;
  /** Smallest automatic user namespace. */
  autoNsMinSize: number;
  /** Largest automatic user namespace. */
  autoNsMaxSize: number;
  /** Ignore containers' volatile flag when mounting. */
  disableVolatile: boolean;
}

/** Everything a Store holds. @internal */
export interface StoreParts {
  /** Absolute graph root. */
  graphRoot: string;
  /** Absolute run root. */
  runRoot: string;
  /** Driver options as given. */
  graphOptions: string[];
  /** Default UID mapping. */
  uidMap: IDMap[];
  /** Default GID mapping. */
  gidMap: IDMap[];
  /** The driver. */
  driver: Driver;
  /** Our layers. */
  layerStore: LayerStore;
  /** Layers of additional image stores. */
  roLayerStores: LayerStore[];
  /** Our images. */
  imageStore: ImageStore;
  /** Images of additional image stores. */
  roImageStores: ImageStore[];
  /** Our containers. */
  containerStore: ContainerStore;
  /** storage.lock: serializes driver (re)initialisation, mounts and shutdown. */
  graphLock: LockFile;
  /** userns.lock: serializes allocation of user namespaces. */
  usernsLock: LockFile;
  /** Settings from storage.conf. */
  settings: StoreSettings;
}

/** Anything with the start/stop locking pairs of our stores. */
export interface Lockable {
  /** Takes the lock for reading and reloads. */
  startReading(): Promise<void>;
  /** Releases a read lock. */
  stopReading(): void;
  /** Takes the lock for writing and reloads. */
  startWriting(): Promise<void>;
  /** Releases a write lock. */
  stopWriting(): void;
}

/** How a store is held during an operation. */
export type Hold = readonly [Lockable, "read" | "write"];

/** Runs `fn` holding `holds` in the order given, releasing them in reverse. */
export async function withLocks<T>(holds: readonly Hold[], fn: () => Promise<T> | T): Promise<T> {
  const taken: Hold[] = [];
  try {
    for (const hold of holds) {
      if (hold[1] === "write") await hold[0].startWriting();
      else await hold[0].startReading();
      taken.push(hold);
    }
    return await fn();
  } finally {
    for (const [store, mode] of taken.reverse()) {
      if (mode === "write") store.stopWriting();
      else store.stopReading();
    }
  }
}

/** Our layer store held in `mode`, then every read-only layer store for reading. */
export function layerHolds(p: StoreParts, mode: "read" | "write"): Hold[] {
  return [[p.layerStore, mode], ...p.roLayerStores.map((s) => [s, "read"] as const)];
}

/** Our image store held in `mode`, then every read-only image store for reading. */
export function imageHolds(p: StoreParts, mode: "read" | "write"): Hold[] {
  return [[p.imageStore, mode], ...p.roImageStores.map((s) => [s, "read"] as const)];
}

/** Our layer store, then the read-only ones. */
export function allLayerStores(p: StoreParts): LayerStore[] {
  return [p.layerStore, ...p.roLayerStores];
}

/** Our image store, then the read-only ones. */
export function allImageStores(p: StoreParts): ImageStore[] {
  return [p.imageStore, ...p.roImageStores];
}

/** The layer store holding `idOrName`, ours first (callers hold the locks). */
export function layerStoreOf(p: StoreParts, idOrName: string): LayerStore | undefined {
  return allLayerStores(p).find((s) => s.exists(idOrName));
}

/** The image store holding `idOrName`, ours first (callers hold the locks). */
export function imageStoreOf(p: StoreParts, idOrName: string): ImageStore | undefined {
  return allImageStores(p).find((s) => s.exists(idOrName));
}

/** Whether mappings are one contiguous run on both sides (what ID-mapped mounts can express). */
function isContiguous(maps: readonly IDMap[]): boolean {
  const sorted = [...maps].sort((a, b) => a.container_id - b.container_id);
  return sorted.every((m, i) =>
    i === 0 || (m.container_id === sorted[i - 1].container_id + sorted[i - 1].size &&
      m.host_id === sorted[i - 1].host_id + sorted[i - 1].size)
  );
}

/** Whether the driver can give a layer these mappings at mount time instead of chowning it. */
export function canUseShifting(
  p: StoreParts,
  uidMap: readonly IDMap[] | undefined,
  gidMap: readonly IDMap[] | undefined,
): boolean {
  return p.driver.supportsShifting() && isContiguous(uidMap ?? []) && isContiguous(gidMap ?? []);
}

/** `<root>/<driver>-containers/<id>`: where a container's own files live (graph or run root). */
export function containerPath(p: StoreParts, where: "graph" | "run", id: string): string {
  const root = where === "graph" ? p.graphRoot : p.runRoot;
  return join(root, `${p.driver.name}-containers`, id);
}

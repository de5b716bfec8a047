/**
 * The contract between the layer store and a storage driver (overlay, vfs, …).
 *
 * The store owns metadata (layers.json, names, digests, tar-split, mount
 * counts); a driver owns only the bytes of each layer on disk and how to
 * mount them. Nothing driver-specific leaks into the store: it talks to
 * drivers only through this interface.
 *
 * @example
 * ```ts ignore
 * import { loadDriver } from "./registry.ts";
 * const driver = await loadDriver("vfs", { home: "/var/lib/containers/storage/vfs", runHome: "/run/containers/storage/vfs", options: [] });
 * await driver.create("abc…", "", {});
 * ```
 * @module
 */

import type { Change } from "../lib/archive/change.ts";
import type { FileGetter } from "../lib/archive/file_getter.ts";
import type { IDMappings } from "../lib/idmap.ts";

export { type Change, ChangeKind } from "../lib/archive/change.ts";
export type { FileGetter, FileReader } from "../lib/archive/file_getter.ts";

/** Options for creating a layer's directory. */
export interface CreateOpts {
  /** SELinux mount label. */
  mountLabel?: string;
  /** Per-layer driver options, e.g. `{ size: "10G" }`. */
  storageOpt?: Record<string, string>;
  /** ID mappings of the new layer (its files are owned by mapped IDs). */
  idMappings?: IDMappings;
  /** Continue when chown to a mapped ID fails. */
  ignoreChownErrors?: boolean;
}

/** Options for mounting a layer. */
export interface MountOpts {
  /** SELinux mount label. */
  mountLabel?: string;
  /** Extra mount options (e.g. "ro"). */
  options?: string[];
  /** ID mappings to apply at mount time (drivers that support shifting). */
  idMappings?: IDMappings;
  /** Do not let the driver shift IDs at mount time. */
  disableShifting?: boolean;
  /** Skip syncing the mount's writes to disk (overlay "volatile"); drivers without it ignore it. */
  volatile?: boolean;
}

/** Options for applying an uncompressed layer tar to a layer. */
export interface ApplyDiffOpts {
  /** The uncompressed tar stream (AUFS whiteouts). */
  diff: ReadableStream<Uint8Array>;
  /** ID mappings of the layer: tar IDs are mapped from container to host. */
  mappings?: IDMappings;
  /** SELinux mount label. */
  mountLabel?: string;
  /** Continue when chown fails (rootless). */
  ignoreChownErrors?: boolean;
  /** Permission bits forced on every created entry, as containers/storage's force_mask. */
  forceMask?: number;
}

/** Where a driver keeps its data, and its options from storage.conf/--storage-opt. */
export interface DriverConfig {
  /** `<graphroot>/<driver>`: the driver's home. */
  home: string;
  /** `<runroot>/<driver>`: the driver's run-time state (feature cache, …). */
  runHome: string;
  /** Options as `key=value` strings, keys with or without the driver prefix (e.g. "overlay.mountopt=nodev"). */
  options: string[];
  /** Default ID mappings of the store. */
  idMappings?: IDMappings;
  /** Read-only graph roots of additional image stores. */
  additionalImageStores?: string[];
}

/** A storage driver. Every method is async; IDs are 64-hex layer IDs. */
export interface Driver {
  /** The driver's name, e.g. "overlay". */
  readonly name: string;
  /** Status pairs as `containers-storage status` prints them. */
  status(): Promise<[string, string][]>;
  /** Driver metadata of a layer (e.g. overlay's "LowerDir", "UpperDir"). */
  metadata(id: string): Promise<Record<string, string>>;
  /** Releases everything the driver holds (mounts of its home, …). */
  cleanup(): Promise<void>;
  /** Creates a read-only layer on top of `parent` ("" for none). */
  create(id: string, parent: string, opts?: CreateOpts): Promise<void>;
  /** Creates a writable (container) layer on top of `parent`. */
  createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void>;
  /** Creates a layer as a copy of `template`, which has the same parent. */
  createFromTemplate(
    id: string,
    template: string,
    templateMappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    opts: CreateOpts | undefined,
    readWrite: boolean,
  ): Promise<void>;
  /** Removes a layer's data; unmounts it first if it is mounted. */
  remove(id: string): Promise<void>;
  /** Mounts a layer and returns the path of its root filesystem. */
  get(id: string, opts?: MountOpts): Promise<string>;
  /** Unmounts a layer mounted by {@linkcode get}. */
  put(id: string): Promise<void>;
  /** Whether the driver has data for the layer. */
  exists(id: string): Promise<boolean>;
  /** Applies an uncompressed tar to the layer; returns the size of the applied content. */
  applyDiff(id: string, parent: string, opts: ApplyDiffOpts): Promise<number>;
  /** A tar stream (AUFS whiteouts) of the changes of `id` against `parent`. */
  diff(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<ReadableStream<Uint8Array>>;
  /** The changes of `id` against `parent`. */
  changes(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<Change[]>;
  /** The size of the changes of `id` against `parent`. */
  diffSize(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<number>;
  /** A getter of file contents without mounting, for tar-split rebuilds. */
  diffGetter(id: string): Promise<FileGetter>;
  /** Whether the driver can shift IDs at mount time. */
  supportsShifting(): boolean;
  /** Rewrites ownership of a layer's files from one mapping to another. */
  updateLayerIDMap(
    id: string,
    toContainer: IDMappings,
    toHost: IDMappings,
    mountLabel: string,
  ): Promise<void>;
  /** Graph roots of read-only additional image stores the driver reads lowers from. */
  additionalImageStores(): string[];
}

/**
 * An optional capability of a driver: applying a layer's diff needs nothing
 * of its parent's content. A driver that has it promises that, for a layer
 * made by `create(id, parent)`, `applyDiff(id, parent, …)` neither reads
 * the parent's files nor depends on them, and that applying the parent's own
 * diff changes nothing that `create` took from the parent. The layers of a
 * chain can then all be created first, base first, and their diffs applied
 * concurrently in any order, with the same result as one after another. A
 * driver whose `create` copies its parent's content (vfs) must not have it.
 */
export interface ParentFreeApply {
  /** Declares the capability (always true where present). */
  readonly appliesWithoutParentContent: true;
}

/** Whether `driver` declares {@linkcode ParentFreeApply}. */
export function appliesWithoutParentContent(driver: Driver): boolean {
  return (driver as Partial<ParentFreeApply>).appliesWithoutParentContent === true;
}

/** A driver module, as the registry loads it: one per file under drivers/. */
export interface DriverModule {
  /** The driver's name. */
  name: string;
  /** Builds the driver; rejects with a clear error when the host cannot run it. */
  init(config: DriverConfig): Promise<Driver>;
}

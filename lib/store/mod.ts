/**
 * The Store: one graph root + run root + driver, as containers/storage's
 * Store — layers, images and containers in the same files and directories
 * as the reference, shared with podman, buildah, skopeo and the
 * `containers-storage` CLI. Every operation takes the locks of the stores
 * it touches in 1.43's order (layers, images, containers) and reloads
 * what other processes changed.
 *
 * The work is done in `images.ts`, `containers.ts`, `any_kind.ts` and the
 * layer modules; this class is the one public face of it.
 *
 * @example
 * ```ts ignore
 * import { Store } from "./mod.ts";
 * const store = await Store.open({ graphRoot: "/tmp/g", runRoot: "/tmp/r", graphDriverName: "vfs",
 *   graphDriverOptions: [], uidMap: [], gidMap: [], imageStores: [] });
 * const { layer } = await store.putLayer({ names: ["base"], diff: tarball });
 * const image = await store.createImage(layer.id, { names: ["base"] });
 * const container = await store.createContainer(image.id, { names: ["web"] });
 * console.log(await store.mount(container.id));
 * await store.unmount(container.id);
 * await store.shutdown(false);
 * ```
 * @module
 */

import { join, resolve } from "../path.ts";
import type { Change, Driver, MountOpts } from "../../drivers/driver.ts";
import { pickDriver } from "../../drivers/registry.ts";
import type { Compression } from "../archive/compression.ts";
import type { passOn } from "../archive/pass_on.ts";
import type { StoreOptions } from "../config.ts";
import type { Container } from "../containers/container.ts";
import { isVolatile, mountOptsOf } from "../containers/container.ts";
import { ContainerStore } from "../containers/container_store.ts";
import {
  ErrContainerUnknown,
  ErrImageUnknown,
  ErrIncompleteOptions,
  ErrInvalidBigDataName,
  ErrLayerHasChildren,
  ErrLayerUnknown,
  ErrLayerUsedByContainer,
  ErrLayerUsedByImage,
  ErrNotALayer,
  ErrNotSupported,
  ErrParentIsContainer,
  ErrSizeUnknown,
  StorageError,
} from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import type { Image } from "../images/image.ts";
import { ImageStore, type ManifestDigester } from "../images/image_store.ts";
import { isValidDigest } from "../images/manifest_digest.ts";
import type { CreateLayerOptions, Layer, LayerOptions, PutLayerOptions } from "../layers/layer.ts";
import { LockFile } from "../lockfile.ts";
import * as mounts from "../layers/mounts.ts";
import type { ChainLayer } from "../layers/put_chain.ts";
import { LayerStore } from "../layers/layer_store.ts";
import {
  deleteAny,
  existsAny,
  lookupAny,
  metadataOf,
  namesOf,
  setMetadataOf,
  updateNames,
  wipeAll,
} from "./any_kind.ts";
import {
  containerByLayer,
  containerDir,
  containerFile,
  containerParentOwners,
  containerSize,
  createContainer,
  type CreateContainerOptions,
  deleteContainer,
  getContainer,
  setContainerFile,
} from "./containers.ts";
import {
  createImage,
  type CreateImageOptions,
  deleteImage,
  getImage,
  imagesByDigest,
  imagesByTopLayer,
  imageSize,
  listImages,
} from "./images.ts";
import {
  allImageStores,
  allLayerStores,
  canUseShifting,
  imageHolds,
  imageStoreOf,
  layerHolds,
  layerStoreOf,
  type StoreParts,
  type StoreSettings,
  withLocks,
} from "./parts.ts";
import { checkStorePermissions } from "./permissions.ts";
import type { ProgressOptions } from "../progress.ts";

export type { CreateLayerOptions, Layer, LayerOptions, PutLayerOptions } from "../layers/layer.ts";
export type { Image } from "../images/image.ts";
export type { Container } from "../containers/container.ts";
export type { ManifestDigester } from "../images/image_store.ts";
export type { CreateImageOptions, IDMappingOptions, ImageBigDataItem } from "./images.ts";
export type { AutoUserNsOptions, CreateContainerOptions } from "./containers.ts";
export type { StoreSettings } from "./parts.ts";
export type { ChainLayer } from "../layers/put_chain.ts";

/** What {@linkcode Store.putLayers} takes: the chain, where it goes, and its ID mappings. */
export interface PutLayersOptions
  extends Pick<LayerOptions, "hostUIDMapping" | "hostGIDMapping" | "uidMap" | "gidMap"> {
  /** The new layers, base first: each one's parent is the one before it. */
  layers: ChainLayer[];
  /** ID, name or unique ID prefix of the first layer's parent; absent or "" for a base layer. */
  parent?: string;
  /** Diffs applied at once where the driver allows it (default 2). */
  concurrency?: number;
  /** Maps a layer's failure (by index in `layers`) to the error thrown; default: unchanged. */
  onLayerError?: (index: number, error: unknown) => unknown;
}

/** Smallest automatic user namespace when storage.conf says nothing (as 1.43). */
const AUTO_USERNS_MIN_SIZE = 1024;
/** Largest automatic user namespace when storage.conf says nothing (as 1.43). */
const AUTO_USERNS_MAX_SIZE = 65536;
/** The user whose subordinate IDs root's automatic user namespaces use. */
const ROOT_AUTO_USERNS_USER = "containers";

/** A containers/storage store. Open with {@linkcode Store.open}. */
export class Store {
  /** Absolute graph root. */
  readonly graphRoot: string;
  /** Absolute run root. */
  readonly runRoot: string;
  /** Driver options as given. */
  readonly graphOptions: string[];
  /** Default UID mapping. */
  readonly uidMap: IDMap[];
  /** Default GID mapping. */
  readonly gidMap: IDMap[];
  /** Name of the driver in use (the picked one when none was configured). */
  readonly graphDriverName: string;
  /** The driver. */
  readonly driver: Driver;
  /** Settings from storage.conf that operations consult. */
  readonly settings: StoreSettings;
  /** The stores and locks the operations work on. */
  readonly #p: StoreParts;
  /** Open stores by graph root: lock state is per process, so one object per root. */
  static #open = new Map<string, Store>();

  private constructor(parts: StoreParts) {
    this.#p = parts;
    this.graphRoot = parts.graphRoot;
    this.runRoot = parts.runRoot;
    this.graphOptions = parts.graphOptions;
    this.uidMap = parts.uidMap;
    this.gidMap = parts.gidMap;
    this.driver = parts.driver;
    this.graphDriverName = parts.driver.name;
    this.settings = parts.settings;
  }

  /**
   * Opens (creating if needed) the store described by `opts`: checks Deno
   * permissions, creates the directories and lock files the reference
   * creates, loads the driver, the layer, image and container stores (and
   * those of additional image stores, read-only), and cleans up layers a
   * crashed writer left incomplete. Opening a graph root this process
   * already has open (and not shut down) returns the same Store, as
   * containers/storage's GetStore does.
   */
  static async open(opts: StoreOptions): Promise<Store> {
    if (!opts.graphRoot) {
      throw new ErrIncompleteOptions(undefined, { detail: "no storage root specified" });
    }
    if (!opts.runRoot) {
      throw new ErrIncompleteOptions(undefined, { detail: "no storage runroot specified" });
    }
    const graphRoot = resolve(opts.graphRoot);
    const runRoot = resolve(opts.runRoot);
    const known = Store.#open.get(graphRoot);
    if (known && (!opts.graphDriverName || opts.graphDriverName === known.graphDriverName)) {
      return known;
    }
    const graphOptions = [...(opts.graphDriverOptions ?? [])];
    const uidMap = structuredClone(opts.uidMap ?? []);
    const gidMap = structuredClone(opts.gidMap ?? []);
    const imageStores = (opts.imageStores ?? []).map((p) => resolve(p));
    checkStorePermissions({ graphRoot, runRoot, imageStores });
    await Deno.mkdir(runRoot, { recursive: true, mode: 0o700 });
    await Deno.mkdir(graphRoot, { recursive: true, mode: 0o700 });
    for (const sub of ["mounts", "tmp", opts.graphDriverName ?? ""]) {
      await Deno.mkdir(join(graphRoot, sub), { recursive: true, mode: 0o700 });
    }
    const graphLock = await LockFile.get(join(graphRoot, "storage.lock"));
    const usernsLock = await LockFile.get(join(graphRoot, "userns.lock"));
    await graphLock.lock();
    let driver: Driver;
    try {
      driver = await pickDriver({
        graphRoot,
        runRoot,
        options: graphOptions,
        idMappings: { uidMap, gidMap },
        additionalImageStores: imageStores,
      }, opts.graphDriverName || undefined);
    } finally {
      graphLock.unlock();
    }
    const prefix = `${driver.name}-`;
    const layerStore = await LayerStore.open({
      layerDir: join(graphRoot, `${prefix}layers`),
      runDir: join(runRoot, `${prefix}layers`),
      driver,
      uidMap,
      gidMap,
    });
    const roLayerStores: LayerStore[] = [];
    const roImageStores: ImageStore[] = [];
    for (const root of driver.additionalImageStores()) {
      roLayerStores.push(
        await LayerStore.open({
          layerDir: join(root, `${prefix}layers`),
          runDir: join(runRoot, `${prefix}layers`),
          driver,
          readOnly: true,
        }),
      );
      roImageStores.push(
        await ImageStore.open({ dir: join(root, `${prefix}images`), readOnly: true }),
      );
    }
    const imageStore = await ImageStore.open({ dir: join(graphRoot, `${prefix}images`) });
    const containerStore = await ContainerStore.open({
      dir: join(graphRoot, `${prefix}containers`),
    });
    await Deno.mkdir(join(runRoot, `${prefix}containers`), { recursive: true, mode: 0o700 });
    await Deno.mkdir(join(runRoot, `${prefix}locks`), { recursive: true, mode: 0o700 });
    const s = new Store({
      graphRoot,
      runRoot,
      graphOptions,
      uidMap,
      gidMap,
      driver,
      layerStore,
      roLayerStores,
      imageStore,
      roImageStores,
      containerStore,
      graphLock,
      usernsLock,
      settings: {
        autoUsernsUser: opts.rootAutoNsUser || ROOT_AUTO_USERNS_USER,
        autoNsMinSize: opts.autoNsMinSize || AUTO_USERNS_MIN_SIZE,
        autoNsMaxSize: opts.autoNsMaxSize || AUTO_USERNS_MAX_SIZE,
        disableVolatile: opts.disableVolatile ?? false,
      },
    });
    Store.#open.set(graphRoot, s);
    return s;
  }

  /** Driver status pairs (`containers-storage status` prints them after the store's own). */
  async status(): Promise<[string, string][]> {
    return await this.driver.status();
  }

  /** Version pairs; containers/storage 1.43 reports none. */
  version(): [string, string][] {
    return [];
  }

  /**
   * Releases the driver. Mounted layers are reported (and with `force`
   * unmounted); if any was mounted the call fails with
   * ErrLayerUsedByContainer naming them, as containers/storage does.
   * @returns The IDs of layers that were mounted (empty on success).
   */
  async shutdown(force: boolean): Promise<string[]> {
    const { graphLock, layerStore: ls } = this.#p;
    await graphLock.lock();
    try {
      return await ls.writing(async () => {
        const mounted: string[] = [];
        let err: unknown;
        for (const layer of ls.layers()) {
          if (!layer.mountcount) continue;
          mounted.push(layer.id);
          if (!force) continue;
          try {
            while ((await mounts.mounted(ls, layer.id)) > 0) {
              await mounts.unmount(ls, layer.id, true);
            }
          } catch (e) {
            err ??= e;
          }
        }
        if (err) throw err;
        if (mounted.length > 0) {
          throw new ErrLayerUsedByContainer(mounted.join(","), { detail: "a layer is mounted" });
        }
        await this.driver.cleanup();
        graphLock.touch();
        Store.#open.delete(this.graphRoot);
        return mounted;
      });
    } finally {
      graphLock.unlock();
    }
  }

  /**
   * Forgets this Store object without shutting the driver down, so the
   * next {@linkcode Store.open} of its graph root builds a new one.
   */
  free(): void {
    if (Store.#open.get(this.graphRoot) === this) Store.#open.delete(this.graphRoot);
  }

  /**
   * A lock named after a digest, in the run root, that processes pulling
   * the same blob can share (containers/image takes it around a layer copy).
   */
  async getDigestLock(digest: string): Promise<LockFile> {
    if (!isValidDigest(digest)) {
      throw new StorageError(digest, { detail: "not a valid digest for a digest lock" });
    }
    return await LockFile.get(join(this.runRoot, `${this.graphDriverName}-locks`, digest));
  }

  // ---- layers ------------------------------------------------------------

  /** Runs `fn` on each layer store (ours first) under its read lock until it returns a value. */
  async #firstLayerStore<T>(
    fn: (ls: LayerStore) => T | undefined | Promise<T | undefined>,
  ): Promise<T | undefined> {
    for (const ls of allLayerStores(this.#p)) {
      const v = await ls.reading(() => fn(ls));
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** Creates an empty layer; see {@linkcode putLayer} for the defaults. */
  async createLayer(opts: CreateLayerOptions = {}): Promise<Layer> {
    return (await this.putLayer(opts)).layer;
  }

  /**
   * Creates a layer on `opts.parent` (a layer of any layer store; none by
   * default) and applies `opts.diff` to it when given. Without an `id` one
   * is generated; the layer is read-only unless `writeable`. Unless the
   * options say otherwise the layer inherits the ID mappings of its parent,
   * or the store's for a base layer. A container's layer cannot be a parent.
   */
  async putLayer(opts: PutLayerOptions): Promise<{ layer: Layer; size: number }> {
    const { put } = await import("../layers/put.ts");
    const p = this.#p;
    const holds = [...layerHolds(p, "write"), [p.containerStore, "read"] as const];
    return await withLocks(holds, () => {
      const { parent, uidMap, gidMap } = this.#newLayerPlace(opts);
      return put(p.layerStore, { ...opts, parent, uidMap, gidMap });
    });
  }

  /**
   * Puts a chain of new layers, each the parent of the next (the first on
   * `opts.parent`), under one hold of the layer store's write lock. Where
   * the driver needs nothing of a parent's content to apply a child's diff
   * (overlay) the diffs are applied `opts.concurrency` (default 2) at a
   * time; otherwise (vfs) one after another. Mappings are chosen as by
   * {@linkcode putLayer}, once for the chain. On any failure no layer of the
   * chain is left; the error is that of the first layer that failed.
   */
  async putLayers(opts: PutLayersOptions): Promise<{ layer: Layer; size: number }[]> {
    const { putChain } = await import("../layers/put_chain.ts");
    const p = this.#p;
    const holds = [...layerHolds(p, "write"), [p.containerStore, "read"] as const];
    return await withLocks(holds, () => {
      const { parent, uidMap, gidMap } = this.#newLayerPlace(opts);
      return putChain(p.layerStore, { ...opts, parent, uidMap, gidMap });
    });
  }

  /** The parent record and recorded mappings of a new layer; the caller holds the locks. */
  #newLayerPlace(opts: LayerOptions & { parent?: string }): {
    parent?: Layer;
    uidMap: IDMap[];
    gidMap: IDMap[];
  } {
    const p = this.#p;
    const { parent, hostUIDMapping, hostGIDMapping } = opts;
    let uidMap = (hostUIDMapping ? undefined : opts.uidMap) ?? [];
    let gidMap = (hostGIDMapping ? undefined : opts.gidMap) ?? [];
    let parentLayer: Layer | undefined;
    if (parent) {
      const ls = layerStoreOf(p, parent);
      if (!ls) throw new ErrLayerUnknown(parent);
      parentLayer = ls.get(parent);
      if (p.containerStore.byLayer(parentLayer.id)) {
        throw new ErrParentIsContainer(parentLayer.id);
      }
      if (!hostUIDMapping && uidMap.length === 0) uidMap = parentLayer.uidmap ?? [];
      if (!hostGIDMapping && gidMap.length === 0) gidMap = parentLayer.gidmap ?? [];
    } else {
      if (!hostUIDMapping && uidMap.length === 0) uidMap = this.uidMap;
      if (!hostGIDMapping && gidMap.length === 0) gidMap = this.gidMap;
    }
    const shifting = canUseShifting(p, uidMap, gidMap);
    return {
      parent: parentLayer,
      uidMap: shifting ? [] : structuredClone(uidMap),
      gidMap: shifting ? [] : structuredClone(gidMap),
    };
  }

  /**
   * Applies a layer tarball (any compression) to an existing layer; returns
   * the applied size. `opts.onProgress` follows the reading of `diff`.
   */
  async applyDiff(
    to: string,
    diff: ReadableStream<Uint8Array>,
    opts: ProgressOptions = {},
  ): Promise<number> {
    const { applyDiff } = await import("../layers/put.ts");
    const ls = this.#p.layerStore;
    return await ls.writing(() => {
      if (!ls.exists(to)) throw new ErrLayerUnknown(to);
      return applyDiff(ls, to, diff, opts);
    });
  }

  /**
   * A tar stream turning `from` ("" for the parent) into `to`: the applied
   * tarball byte for byte when `from` is the parent and a tar-split exists.
   * The store stays read-locked until the stream is consumed or cancelled.
   * `opts.onProgress` follows the tar as it is produced (before compression).
   */
  async diff(
    from: string,
    to: string,
    opts?: { compression?: Compression } & ProgressOptions,
  ): Promise<ReadableStream<Uint8Array>> {
    const diffs = await import("../layers/diff.ts");
    const { passOn } = await import("../archive/pass_on.ts");
    for (const ls of allLayerStores(this.#p)) {
      await ls.startReading();
      let handedOver = false;
      try {
        if (!ls.exists(to)) continue;
        const stream = await diffs.diff(ls, from, to, opts);
        handedOver = true;
        return unlockWhenDone(stream, () => ls.stopReading(), passOn);
      } finally {
        if (!handedOver) ls.stopReading();
      }
    }
    throw new ErrLayerUnknown(to);
  }

  /** Estimated size of {@linkcode diff}'s uncompressed output. */
  async diffSize(from: string, to: string): Promise<number> {
    const diffs = await import("../layers/diff.ts");
    const n = await this.#firstLayerStore((ls) =>
      ls.exists(to) ? diffs.diffSize(ls, from, to) : undefined
    );
    if (n === undefined) throw new ErrLayerUnknown(to);
    return n;
  }

  /** The changes of `to` against `from` ("" for the parent). */
  async changes(from: string, to: string): Promise<Change[]> {
    const diffs = await import("../layers/diff.ts");
    const c = await this.#firstLayerStore((ls) =>
      ls.exists(to) ? diffs.changes(ls, from, to) : undefined
    );
    if (c === undefined) throw new ErrLayerUnknown(to);
    return c;
  }

  /** All layers: ours, then those of additional image stores. */
  async layers(): Promise<Layer[]> {
    return await withLocks(
      layerHolds(this.#p, "read"),
      () => allLayerStores(this.#p).flatMap((ls) => ls.layers()),
    );
  }

  /** One layer by ID, name or unique ID prefix. */
  async layer(idOrName: string): Promise<Layer> {
    const l = await this.#firstLayerStore((ls) =>
      ls.exists(idOrName) ? ls.get(idOrName) : undefined
    );
    if (!l) throw new ErrLayerUnknown(idOrName);
    return l;
  }

  /** The recorded uncompressed size of a layer's diff, or -1 when unknown. */
  async layerSize(id: string): Promise<number> {
    const n = await this.#firstLayerStore((ls) => ls.exists(id) ? ls.size(id) : undefined);
    if (n === undefined) throw new ErrLayerUnknown(id);
    return n;
  }

  async #byDigest(d: string, which: "compressed" | "uncompressed"): Promise<Layer[]> {
    if (!isValidDigest(d)) {
      throw new StorageError(d, { detail: "invalid digest: looking for layers matching it" });
    }
    const out = await withLocks(
      layerHolds(this.#p, "read"),
      () =>
        allLayerStores(this.#p).flatMap((ls) =>
          which === "compressed" ? ls.layersByCompressedDigest(d) : ls.layersByUncompressedDigest(d)
        ),
    );
    if (out.length === 0) throw new ErrLayerUnknown(d);
    return out;
  }

  /** Layers whose compressed-diff-digest is `d`. */
  layersByCompressedDigest(d: string): Promise<Layer[]> {
    return this.#byDigest(d, "compressed");
  }

  /** Layers whose diff-digest is `d`. */
  layersByUncompressedDigest(d: string): Promise<Layer[]> {
    return this.#byDigest(d, "uncompressed");
  }

  /**
   * Deletes a layer unless another layer is built on it, it is an image's
   * top layer or a container's layer. A mapped copy of an image's top
   * layer may go; the image forgets it.
   */
  async deleteLayer(id: string): Promise<void> {
    const { layerStore: ls, imageStore: is, containerStore: cs } = this.#p;
    await withLocks([[ls, "write"], [is, "write"], [cs, "write"]], async () => {
      if (!ls.exists(id)) throw new ErrNotALayer(id);
      const layer = ls.get(id);
      const [child] = ls.children(layer.id);
      if (child) throw new ErrLayerHasChildren(layer.id, { detail: `used by layer ${child.id}` });
      const images = is.list();
      const image = images.find((i) => i.layer === layer.id);
      if (image) throw new ErrLayerUsedByImage(layer.id, { detail: `used by image ${image.id}` });
      const c = cs.byLayer(layer.id);
      if (c) throw new ErrLayerUsedByContainer(layer.id, { detail: `used by container ${c.id}` });
      await ls.delete(layer.id);
      for (const i of images) {
        if ((i["mapped-layers"] ?? []).includes(layer.id)) {
          await is.removeMappedLayer(i.id, layer.id);
        }
      }
    });
  }

  /** Unmapped owners of the directories above a mapped layer's mount point. */
  async layerParentOwners(id: string): Promise<{ uids: number[]; gids: number[] }> {
    const ls = this.#p.layerStore;
    return await ls.reading(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return mounts.parentOwners(ls, id);
    });
  }

  /** Sets a flag on a layer. */
  async setLayerFlag(id: string, flag: string, value: unknown): Promise<void> {
    await this.#ourLayer(id, (ls) => ls.setFlag(id, flag, value));
  }

  /** Clears a flag of a layer. */
  async clearLayerFlag(id: string, flag: string): Promise<void> {
    await this.#ourLayer(id, (ls) => ls.clearFlag(id, flag));
  }

  /** Keys of a layer's big data items. */
  async listLayerBigData(id: string): Promise<string[]> {
    const names = await this.#firstLayerStore((ls) =>
      ls.exists(id) ? ls.bigDataNames(id) : undefined
    );
    if (!names) throw new ErrLayerUnknown(id);
    return names;
  }

  /** Opens a layer's big data item. */
  async layerBigData(id: string, key: string): Promise<ReadableStream<Uint8Array>> {
    const data = await this.#firstLayerStore((ls) =>
      ls.exists(id) ? ls.bigData(id, key) : undefined
    );
    if (!data) throw new ErrLayerUnknown(id);
    return data;
  }

  /** Stores a layer's big data item. */
  async setLayerBigData(
    id: string,
    key: string,
    data: ReadableStream<Uint8Array> | Uint8Array,
  ): Promise<void> {
    await this.#ourLayer(id, (ls) => ls.setBigData(id, key, data));
  }

  async #ourLayer(id: string, fn: (ls: LayerStore) => Promise<void>): Promise<void> {
    const ls = this.#p.layerStore;
    await ls.writing(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return fn(ls);
    });
  }

  // ---- mounts ------------------------------------------------------------

  /** Mounts our layer `layerID` under storage.lock and the layer store's lock. */
  async #mountLayer(layerID: string, opts: MountOpts): Promise<string> {
    const { graphLock, layerStore: ls } = this.#p;
    await graphLock.lock();
    try {
      return await ls.writing(() => {
        if (!ls.exists(layerID)) throw new ErrLayerUnknown(layerID);
        return mounts.mount(ls, layerID, opts);
      });
    } finally {
      graphLock.unlock();
    }
  }

  /** The layer of the container `idOrName`, or undefined when it names no container. */
  async #containerOf(idOrName: string): Promise<Container | undefined> {
    const cs = this.#p.containerStore;
    return await cs.reading(() => cs.exists(idOrName) ? cs.get(idOrName) : undefined);
  }

  /**
   * Mounts a container's root filesystem (with its ID mappings, mount
   * options and volatile flag) or a layer, and returns the path.
   */
  async mount(id: string, mountLabel = ""): Promise<string> {
    const c = await this.#containerOf(id);
    if (!c) return await this.#mountLayer(id, { mountLabel });
    const opts: MountOpts = { mountLabel, options: mountOptsOf(c) };
    if (c.uidmap || c.gidmap) {
      opts.idMappings = { uidMap: c.uidmap ?? [], gidMap: c.gidmap ?? [] };
      opts.disableShifting = !canUseShifting(this.#p, c.uidmap, c.gidmap);
    }
    if (!this.settings.disableVolatile && isVolatile(c)) opts.volatile = true;
    return await this.#mountLayer(c.layer, opts);
  }

  /**
   * Drops one mount of a container's or layer's filesystem (all with
   * `force`); returns whether it is still mounted.
   */
  async unmount(id: string, force = false): Promise<boolean> {
    const layerID = (await this.#containerOf(id))?.layer ?? id;
    const ls = this.#p.layerStore;
    return await ls.writing(() => {
      if (!ls.exists(layerID)) throw new ErrLayerUnknown(layerID);
      return mounts.unmount(ls, layerID, force);
    });
  }

  /** How many times a container's or layer's filesystem is mounted. */
  async mounted(id: string): Promise<number> {
    const layerID = (await this.#containerOf(id))?.layer ?? id;
    const ls = this.#p.layerStore;
    return await ls.reading(() => mounts.mounted(ls, layerID));
  }

  /**
   * Mounts an image's top layer read-only, with extra mount options
   * ("rw" is refused), and returns the path.
   */
  async mountImage(id: string, mountOpts: string[] = [], mountLabel = ""): Promise<string> {
    const image = await this.image(id);
    if (mountOpts.includes("rw")) {
      throw new ErrNotSupported(id, { detail: '"rw" option not supported for image mounts' });
    }
    return await this.#mountLayer(image.layer ?? "", {
      mountLabel,
      options: [...mountOpts, "ro"],
    });
  }

  /** Drops one mount of an image's top layer (all with `force`); returns whether it is still mounted. */
  async unmountImage(id: string, force = false): Promise<boolean> {
    const image = await this.image(id);
    return await this.unmount(image.layer ?? "", force);
  }

  // ---- any kind ------------------------------------------------------------

  /** Whether `id` names a layer, an image or a container (by ID, name or prefix). */
  exists(id: string): Promise<boolean> {
    return existsAny(this.#p, id);
  }

  /** The ID of the layer, image or container `name` names (layers first). */
  lookup(name: string): Promise<string> {
    return lookupAny(this.#p, name);
  }

  /** Names of a layer, image or container. */
  names(id: string): Promise<string[]> {
    return namesOf(this.#p, id);
  }

  /** Replaces the names of a layer, image or container (taking them from others of its kind). */
  setNames(id: string, names: string[]): Promise<void> {
    return updateNames(this.#p, id, names, "set");
  }

  /** Adds names to a layer, image or container (taking them from others of its kind). */
  addNames(id: string, names: string[]): Promise<void> {
    return updateNames(this.#p, id, names, "add");
  }

  /** Removes names from a layer, image or container. */
  removeNames(id: string, names: string[]): Promise<void> {
    return updateNames(this.#p, id, names, "remove");
  }

  /** The metadata of a layer, image or container. */
  metadata(id: string): Promise<string> {
    return metadataOf(this.#p, id);
  }

  /** Replaces the metadata of a layer, image or container of ours. */
  setMetadata(id: string, metadata: string): Promise<void> {
    return setMetadataOf(this.#p, id, metadata);
  }

  /**
   * Deletes a container (its layer and directories too), an image or a
   * layer, without the safety checks of {@linkcode deleteContainer},
   * {@linkcode deleteImage} and {@linkcode deleteLayer}.
   */
  delete(id: string): Promise<void> {
    return deleteAny(this.#p, id);
  }

  /** Deletes every container, image and layer of this store. */
  wipe(): Promise<void> {
    return wipeAll(this.#p);
  }

  // ---- images --------------------------------------------------------------

  /** Creates an image on the layer `topLayer` (none for an image without layers). */
  createImage(topLayer: string | undefined, opts?: CreateImageOptions): Promise<Image> {
    return createImage(this.#p, topLayer, opts);
  }

  /** An image by ID, name or prefix, ours or from an additional image store. */
  image(id: string): Promise<Image> {
    return getImage(this.#p, id);
  }

  /** All images: ours, then those of additional image stores. */
  images(): Promise<Image[]> {
    return listImages(this.#p);
  }

  /** Images whose top layer (or a mapped copy of it) is the given layer. */
  imagesByTopLayer(layer: string): Promise<Image[]> {
    return imagesByTopLayer(this.#p, layer);
  }

  /** Images findable by a digest: their own, or a manifest item's. */
  imagesByDigest(digest: string): Promise<Image[]> {
    return imagesByDigest(this.#p, digest);
  }

  /**
   * Deletes an image and the layers nothing else uses any more (with
   * `commit`; without, only says which would go). Refused while a
   * container uses the image.
   * @returns The IDs of the layers (to be) removed.
   */
  deleteImage(id: string, commit = true): Promise<string[]> {
    return deleteImage(this.#p, id, commit);
  }

  /** The size of an image's layers (each counted once) and big data. */
  imageSize(id: string): Promise<number> {
    return imageSize(this.#p, id);
  }

  /** Runs `fn` on the image store holding image `id` (ours first), under read locks. */
  async #inImageStore<T>(id: string, fn: (s: ImageStore) => T | Promise<T>): Promise<T> {
    return await withLocks(imageHolds(this.#p, "read"), () => {
      const s = imageStoreOf(this.#p, id);
      if (!s) throw new ErrImageUnknown(id);
      return fn(s);
    });
  }

  /**
   * The first result of `fn` among the image stores holding image `id`
   * (ours first), as 1.43 reads big data: a store whose record of the
   * image lacks the item gives way to the next. Fails as the last one did.
   */
  async #fromImageStores<T>(id: string, fn: (s: ImageStore) => T | Promise<T>): Promise<T> {
    return await withLocks(imageHolds(this.#p, "read"), async () => {
      let failure: unknown = new ErrImageUnknown(id);
      for (const s of allImageStores(this.#p).filter((s) => s.exists(id))) {
        try {
          return await fn(s);
        } catch (e) {
          failure = e;
        }
      }
      throw failure;
    });
  }

  /** The digests an image is findable by (Go's Image.Digests): its digest, then its manifests'. */
  imageDigests(id: string): Promise<string[]> {
    return this.#inImageStore(id, (s) => s.digests(id));
  }

  /** Keys of an image's big data items. */
  listImageBigData(id: string): Promise<string[]> {
    return this.#inImageStore(id, (s) => s.bigDataNames(id));
  }

  /**
   * An image's big data item.
   * @throws {Deno.errors.NotFound} when the image has no such item.
   */
  imageBigData(id: string, key: string): Promise<Uint8Array> {
    return this.#fromImageStores(id, (s) => s.bigData(id, key));
  }

  /** The size of an image's big data item. */
  async imageBigDataSize(id: string, key: string): Promise<number> {
    if (key === "") throw new ErrInvalidBigDataName(undefined, { detail: "empty name" });
    return await this.#fromImageStores(id, (s) => s.bigDataSize(id, key));
  }

  /** The recorded digest of an image's big data item. */
  async imageBigDataDigest(id: string, key: string): Promise<string> {
    if (key === "") throw new ErrInvalidBigDataName(undefined, { detail: "empty name" });
    return await this.#fromImageStores(id, (s) => {
      const d = s.bigDataDigest(id, key);
      if (d === undefined || !isValidDigest(d)) {
        throw new ErrSizeUnknown(id, { detail: `no digest recorded for ${JSON.stringify(key)}` });
      }
      return d;
    });
  }

  /**
   * Stores a big data item of one of our images. Items whose key starts
   * with "manifest" are digested with `digester` (the manifest digest of
   * containers/image by default) and make the image findable by digest.
   */
  async setImageBigData(
    id: string,
    key: string,
    data: Uint8Array,
    digester?: ManifestDigester,
  ): Promise<void> {
    const is = this.#p.imageStore;
    await is.writing(() => is.setBigData(id, key, data, digester));
  }

  // ---- containers ------------------------------------------------------------

  /**
   * Creates a container on `image` (none for a container without an
   * image): a read-write layer on the image's top layer, or on a copy of
   * it with the container's ID mappings when the driver cannot shift them.
   */
  createContainer(image: string | undefined, opts?: CreateContainerOptions): Promise<Container> {
    return createContainer(this.#p, image, opts);
  }

  /** A container by ID, name, prefix or the ID of its layer. */
  container(id: string): Promise<Container> {
    return getContainer(this.#p, id);
  }

  /** All containers. */
  async containers(): Promise<Container[]> {
    const cs = this.#p.containerStore;
    return await cs.reading(() => cs.list());
  }

  /** The container whose read-write layer is `layer`. */
  containerByLayer(layer: string): Promise<Container> {
    return containerByLayer(this.#p, layer);
  }

  /** Deletes a container with its layer and directories. */
  deleteContainer(id: string): Promise<void> {
    return deleteContainer(this.#p, id);
  }

  /** The size of a container's layer diff, big data and directories. */
  containerSize(id: string): Promise<number> {
    return containerSize(this.#p, id);
  }

  /** Runs `fn` on the container store under its read lock, after checking `id` exists. */
  async #inContainerStore<T>(id: string, fn: (s: ContainerStore) => T | Promise<T>): Promise<T> {
    const cs = this.#p.containerStore;
    return await cs.reading(() => {
      if (!cs.exists(id)) throw new ErrContainerUnknown(id);
      return fn(cs);
    });
  }

  /** Keys of a container's big data items. */
  listContainerBigData(id: string): Promise<string[]> {
    return this.#inContainerStore(id, (s) => s.bigDataNames(id));
  }

  /**
   * A container's big data item.
   * @throws {Deno.errors.NotFound} when the container has no such item.
   */
  containerBigData(id: string, key: string): Promise<Uint8Array> {
    return this.#inContainerStore(id, (s) => s.bigData(id, key));
  }

  /** The size of a container's big data item. */
  containerBigDataSize(id: string, key: string): Promise<number> {
    return this.#inContainerStore(id, (s) => s.bigDataSize(id, key));
  }

  /** The digest of a container's big data item. */
  async containerBigDataDigest(id: string, key: string): Promise<string> {
    const d = await this.#inContainerStore(id, (s) => s.bigDataDigest(id, key));
    if (d === undefined) {
      throw new ErrSizeUnknown(id, { detail: `no digest for ${JSON.stringify(key)}` });
    }
    return d;
  }

  /** Stores a container's big data item. */
  async setContainerBigData(id: string, key: string, data: Uint8Array): Promise<void> {
    const cs = this.#p.containerStore;
    await cs.writing(() => cs.setBigData(id, key, data));
  }

  /** The container's directory in the graph root (`…/userdata`), created if missing. */
  containerDirectory(id: string): Promise<string> {
    return containerDir(this.#p, "graph", id);
  }

  /** The container's directory in the run root (`…/userdata`), created if missing. */
  containerRunDirectory(id: string): Promise<string> {
    return containerDir(this.#p, "run", id);
  }

  /** Writes a file in the container's graph-root directory. */
  setContainerDirectoryFile(id: string, file: string, data: Uint8Array): Promise<void> {
    return setContainerFile(this.#p, "graph", id, file, data);
  }

  /** Reads a file from the container's graph-root directory. */
  fromContainerDirectory(id: string, file: string): Promise<Uint8Array> {
    return containerFile(this.#p, "graph", id, file);
  }

  /** Writes a file in the container's run-root directory. */
  setContainerRunDirectoryFile(id: string, file: string, data: Uint8Array): Promise<void> {
    return setContainerFile(this.#p, "run", id, file, data);
  }

  /** Reads a file from the container's run-root directory. */
  fromContainerRunDirectory(id: string, file: string): Promise<Uint8Array> {
    return containerFile(this.#p, "run", id, file);
  }

  /** Owners of the directories above a mapped container's mount point that its mapping lacks. */
  containerParentOwners(id: string): Promise<{ uids: number[]; gids: number[] }> {
    return containerParentOwners(this.#p, id);
  }
}

/**
 * Wraps a stream so `done` runs once when it ends, fails or is cancelled
 * (BYOB reads pass). `pass` is pass_on.ts's passOn, which the caller loads
 * with the diff code so that opening a store does not.
 */
function unlockWhenDone(
  stream: ReadableStream<Uint8Array>,
  done: () => void,
  pass: typeof passOn,
): ReadableStream<Uint8Array> {
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  return pass(stream, {
    end: () => Promise.resolve(finish()),
    fail: (e) => {
      finish();
      return e;
    },
    cancel: () => Promise.resolve(finish()),
  });
}

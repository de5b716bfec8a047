/**
 * The Store: one graph root + run root + driver, as containers/storage's
 * Store. It lays out the same directories and lock files as the reference
 * and exposes the layer operations (images and containers come later);
 * every operation takes the layer store's lock and reloads what other
 * processes changed, exactly like Go's store methods.
 *
 * @example
 * ```ts ignore
 * import { Store } from "./mod.ts";
 * const store = await Store.open({ graphRoot: "/tmp/g", runRoot: "/tmp/r", graphDriverName: "vfs",
 *   graphDriverOptions: [], uidMap: [], gidMap: [], imageStores: [] });
 * const { layer } = await store.putLayer({ names: ["base"], diff: tarball });
 * await store.shutdown(false);
 * ```
 * @module
 */

import { join, resolve } from "node:path";
import type { Change, Driver } from "../../drivers/driver.ts";
import { pickDriver } from "../../drivers/registry.ts";
import type { Compression } from "../archive/compression.ts";
import type { StoreOptions } from "../config.ts";
import {
  ErrIncompleteOptions,
  ErrLayerHasChildren,
  ErrLayerUnknown,
  ErrLayerUsedByContainer,
  ErrLayerUsedByImage,
  ErrNotALayer,
  ErrParentIsContainer,
  StorageError,
} from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import { dedupeNames } from "../layers/encode.ts";
import type { CreateLayerOptions, Layer, PutLayerOptions } from "../layers/layer.ts";
import { LockFile } from "../lockfile.ts";
import * as diffs from "../layers/diff.ts";
import * as mounts from "../layers/mounts.ts";
import { applyDiff, put } from "../layers/put.ts";
import { LayerStore } from "../layers/layer_store.ts";
import { checkStorePermissions } from "./permissions.ts";
import { readRecords } from "./usage.ts";

export type { CreateLayerOptions, Layer, LayerOptions, PutLayerOptions } from "../layers/layer.ts";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** Everything a Store holds, gathered by {@linkcode Store.open} before the Store exists. */
interface StoreParts {
  graphRoot: string;
  runRoot: string;
  graphOptions: string[];
  uidMap: IDMap[];
  gidMap: IDMap[];
  driver: Driver;
  layerStore: LayerStore;
  roLayerStores: LayerStore[];
  graphLock: LockFile;
}

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
  /** The store's own (writable) layers. @internal */
  readonly layerStore: LayerStore;
  /** Layers of additional image stores, read-only. @internal */
  readonly roLayerStores: readonly LayerStore[];
  /** storage.lock. @internal */
  readonly graphLock: LockFile;
  /** Open stores by graph root: lock state is per process, so one object per root. */
  static #open = new Map<string, Store>();

  private constructor(parts: StoreParts) {
    this.graphRoot = parts.graphRoot;
    this.runRoot = parts.runRoot;
    this.graphOptions = parts.graphOptions;
    this.uidMap = parts.uidMap;
    this.gidMap = parts.gidMap;
    this.driver = parts.driver;
    this.graphDriverName = parts.driver.name;
    this.layerStore = parts.layerStore;
    this.roLayerStores = parts.roLayerStores;
    this.graphLock = parts.graphLock;
  }

  /**
   * Opens (creating if needed) the store described by `opts`: checks Deno
   * permissions, creates the directories and lock files the reference
   * creates, loads the driver and the layer stores, and cleans up layers a
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
    await LockFile.get(join(graphRoot, "userns.lock"));
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
    for (const root of driver.additionalImageStores()) {
      roLayerStores.push(
        await LayerStore.open({
          layerDir: join(root, `${prefix}layers`),
          runDir: join(runRoot, `${prefix}layers`),
          driver,
          readOnly: true,
        }),
      );
    }
    for (const kind of ["images", "containers"]) {
      const dir = join(graphRoot, `${prefix}${kind}`);
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await LockFile.get(join(dir, `${kind}.lock`));
    }
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
      graphLock,
    });
    Store.#open.set(graphRoot, s);
    return s;
  }

  /** Driver status pairs (`containers-storage status` prints them after the store's own). */
  async status(): Promise<[string, string][]> {
    return await this.driver.status();
  }

  /**
   * Releases the driver. Mounted layers are reported (and with `force`
   * unmounted); if any was mounted the call fails with
   * ErrLayerUsedByContainer naming them, as containers/storage does.
   * @returns The IDs of layers that were mounted (empty on success).
   */
  async shutdown(force: boolean): Promise<string[]> {
    const ls = this.layerStore;
    await this.graphLock.lock();
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
        this.graphLock.touch();
        Store.#open.delete(this.graphRoot);
        return mounted;
      });
    } finally {
      this.graphLock.unlock();
    }
  }

  // ---- helpers -----------------------------------------------------------

  /** Runs `fn` on each store (ours first) under its read lock until it returns a value. */
  async #firstStore<T>(
    fn: (ls: LayerStore) => T | undefined | Promise<T | undefined>,
  ): Promise<T | undefined> {
    for (const ls of [this.layerStore, ...this.roLayerStores]) {
      const v = await ls.reading(() => fn(ls));
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** The store holding `id` (ours first), or throws ErrLayerUnknown. */
  async #storeOf(id: string): Promise<LayerStore> {
    const ls = await this.#firstStore((ls) => ls.exists(id) ? ls : undefined);
    if (!ls) throw new ErrLayerUnknown(id);
    return ls;
  }

  #dir(kind: "images" | "containers"): string {
    return join(this.graphRoot, `${this.graphDriverName}-${kind}`);
  }

  // ---- creation ----------------------------------------------------------

  /** Creates an empty layer; see {@linkcode putLayer} for the defaults. */
  async createLayer(opts: CreateLayerOptions = {}): Promise<Layer> {
    return (await this.putLayer(opts)).layer;
  }

  /**
   * Creates a layer on `opts.parent` (none by default) and applies
   * `opts.diff` to it when given. Without an `id` one is generated; the
   * layer is read-only unless `writeable`. Unless the options say otherwise
   * the layer inherits the ID mappings of its parent, or the store's for a
   * base layer.
   */
  async putLayer(opts: PutLayerOptions): Promise<{ layer: Layer; size: number }> {
    const { parent, hostUIDMapping, hostGIDMapping } = opts;
    let uidMap = (hostUIDMapping ? undefined : opts.uidMap) ?? [];
    let gidMap = (hostGIDMapping ? undefined : opts.gidMap) ?? [];
    const ls = this.layerStore;
    return await ls.writing(async () => {
      let parentLayer: Layer | undefined;
      if (parent) {
        parentLayer = ls.exists(parent) ? ls.get(parent) : undefined;
        for (const ro of this.roLayerStores) {
          if (parentLayer) break;
          parentLayer = await ro.reading(() => ro.exists(parent) ? ro.get(parent) : undefined);
        }
        if (!parentLayer) throw new ErrLayerUnknown(parent);
        const containers = await readRecords(this.#dir("containers"), "containers");
        if (containers.some((c) => c.layer === parentLayer!.id)) {
          throw new ErrParentIsContainer(parentLayer.id);
        }
        if (!hostUIDMapping && uidMap.length === 0) uidMap = parentLayer.uidmap ?? [];
        if (!hostGIDMapping && gidMap.length === 0) gidMap = parentLayer.gidmap ?? [];
      } else {
        if (!hostUIDMapping && uidMap.length === 0) uidMap = this.uidMap;
        if (!hostGIDMapping && gidMap.length === 0) gidMap = this.gidMap;
      }
      const shifting = this.driver.supportsShifting();
      return await put(ls, {
        ...opts,
        parent: parentLayer,
        uidMap: shifting ? [] : structuredClone(uidMap),
        gidMap: shifting ? [] : structuredClone(gidMap),
      });
    });
  }

  /** Applies a layer tarball (any compression) to an existing layer; returns the applied size. */
  async applyDiff(to: string, diff: ReadableStream<Uint8Array>): Promise<number> {
    const ls = this.layerStore;
    return await ls.writing(() => {
      if (!ls.exists(to)) throw new ErrLayerUnknown(to);
      return applyDiff(ls, to, diff);
    });
  }

  // ---- reading diffs -----------------------------------------------------

  /**
   * A tar stream turning `from` ("" for the parent) into `to`: the applied
   * tarball byte for byte when `from` is the parent and a tar-split exists.
   * The store stays read-locked until the stream is consumed or cancelled.
   */
  async diff(
    from: string,
    to: string,
    opts?: { compression?: Compression },
  ): Promise<ReadableStream<Uint8Array>> {
    for (const ls of [this.layerStore, ...this.roLayerStores]) {
      await ls.startReading();
      let handedOver = false;
      try {
        if (!ls.exists(to)) continue;
        const stream = await diffs.diff(ls, from, to, opts);
        handedOver = true;
        return unlockWhenDone(stream, () => ls.stopReading());
      } finally {
        if (!handedOver) ls.stopReading();
      }
    }
    throw new ErrLayerUnknown(to);
  }

  /** Estimated size of {@linkcode diff}'s uncompressed output. */
  async diffSize(from: string, to: string): Promise<number> {
    const ls = await this.#firstStore((ls) =>
      ls.exists(to) ? diffs.diffSize(ls, from, to) : undefined
    );
    if (ls === undefined) throw new ErrLayerUnknown(to);
    return ls;
  }

  /** The changes of `to` against `from` ("" for the parent). */
  async changes(from: string, to: string): Promise<Change[]> {
    const c = await this.#firstStore((ls) =>
      ls.exists(to) ? diffs.changes(ls, from, to) : undefined
    );
    if (c === undefined) throw new ErrLayerUnknown(to);
    return c;
  }

  // ---- mounts ------------------------------------------------------------

  /** Mounts a layer; returns the path of its root filesystem. */
  async mount(id: string, mountLabel = ""): Promise<string> {
    const ls = this.layerStore;
    return await ls.writing(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return mounts.mount(ls, id, { mountLabel });
    });
  }

  /** Drops one mount of a layer (all with `force`); returns whether it is still mounted. */
  async unmount(id: string, force: boolean): Promise<boolean> {
    const ls = this.layerStore;
    return await ls.writing(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return mounts.unmount(ls, id, force);
    });
  }

  /** How many times a layer is mounted. */
  async mounted(id: string): Promise<number> {
    const ls = this.layerStore;
    return await ls.reading(() => mounts.mounted(ls, id));
  }

  /** Unmapped owners of the directories above a mapped layer's mount point. */
  async layerParentOwners(id: string): Promise<{ uids: number[]; gids: number[] }> {
    const ls = this.layerStore;
    return await ls.reading(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return mounts.parentOwners(ls, id);
    });
  }

  // ---- listing and lookup --------------------------------------------------

  /** All layers: ours, then those of additional image stores. */
  async layers(): Promise<Layer[]> {
    const out: Layer[] = [];
    for (const ls of [this.layerStore, ...this.roLayerStores]) {
      out.push(...await ls.reading(() => ls.layers()));
    }
    return out;
  }

  /** One layer by ID, name or unique ID prefix. */
  async layer(idOrName: string): Promise<Layer> {
    const l = await this.#firstStore((ls) => ls.exists(idOrName) ? ls.get(idOrName) : undefined);
    if (!l) throw new ErrLayerUnknown(idOrName);
    return l;
  }

  /** Whether a layer is known by that ID, name or prefix. */
  async exists(id: string): Promise<boolean> {
    return (await this.#firstStore((ls) => ls.exists(id) || undefined)) ?? false;
  }

  /** The ID of a layer by ID, name or prefix. */
  async lookup(name: string): Promise<string> {
    return (await this.layer(name)).id;
  }

  /** The recorded uncompressed size of a layer's diff, or -1 when unknown. */
  async layerSize(id: string): Promise<number> {
    return (await this.#firstStore((ls) => ls.exists(id) ? ls.size(id) : undefined)) ??
      Promise.reject(new ErrLayerUnknown(id));
  }

  async #byDigest(d: string, which: "compressed" | "uncompressed"): Promise<Layer[]> {
    if (!DIGEST_RE.test(d)) {
      throw new StorageError(d, { detail: "invalid digest: looking for layers matching it" });
    }
    const out: Layer[] = [];
    for (const ls of [this.layerStore, ...this.roLayerStores]) {
      out.push(
        ...await ls.reading(() =>
          which === "compressed" ? ls.layersByCompressedDigest(d) : ls.layersByUncompressedDigest(d)
        ),
      );
    }
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

  // ---- deletion ------------------------------------------------------------

  /**
   * Deletes a layer unless another layer is built on it or an image or
   * container uses it.
   */
  async deleteLayer(id: string): Promise<void> {
    const ls = this.layerStore;
    await ls.writing(async () => {
      if (!ls.exists(id)) throw new ErrNotALayer(id);
      const layer = ls.get(id);
      const [child] = ls.children(layer.id);
      if (child) throw new ErrLayerHasChildren(layer.id, { detail: `used by layer ${child.id}` });
      for (const img of await readRecords(this.#dir("images"), "images")) {
        if (img.layer === layer.id || (img["mapped-layers"] ?? []).includes(layer.id)) {
          throw new ErrLayerUsedByImage(layer.id, { detail: `used by image ${img.id}` });
        }
      }
      for (const c of await readRecords(this.#dir("containers"), "containers")) {
        if (c.layer === layer.id) {
          throw new ErrLayerUsedByContainer(layer.id, { detail: `used by container ${c.id}` });
        }
      }
      await ls.delete(layer.id);
    });
  }

  /** Deletes every layer. */
  async wipe(): Promise<void> {
    const ls = this.layerStore;
    await ls.writing(() => ls.wipe());
  }

  // ---- names, metadata, big data ---------------------------------------------

  /** Names of a layer. */
  async names(id: string): Promise<string[]> {
    return (await this.layer(id)).names ?? [];
  }

  /** Replaces a layer's names (taking them from other layers). */
  async setNames(id: string, names: string[]): Promise<void> {
    await this.#rw(id, (ls) => ls.setNames(id, dedupeNames(names)));
  }

  /** Adds names to a layer (taking them from other layers). */
  async addNames(id: string, names: string[]): Promise<void> {
    await this.#rw(id, (ls) => ls.addNames(id, dedupeNames(names)));
  }

  /** Removes names from a layer. */
  async removeNames(id: string, names: string[]): Promise<void> {
    await this.#rw(id, (ls) => ls.removeNames(id, dedupeNames(names)));
  }

  /** A layer's metadata. */
  async metadata(id: string): Promise<string> {
    const md = await this.#firstStore((ls) => ls.exists(id) ? ls.metadata(id) : undefined);
    if (md === undefined) throw new ErrLayerUnknown(id);
    return md;
  }

  /** Replaces a layer's metadata. */
  async setMetadata(id: string, md: string): Promise<void> {
    await this.#rw(id, (ls) => ls.setMetadata(id, md));
  }

  /** Sets a flag on a layer. */
  async setLayerFlag(id: string, flag: string, value: unknown): Promise<void> {
    await this.#rw(id, (ls) => ls.setFlag(id, flag, value));
  }

  /** Clears a flag of a layer. */
  async clearLayerFlag(id: string, flag: string): Promise<void> {
    await this.#rw(id, (ls) => ls.clearFlag(id, flag));
  }

  /** Keys of a layer's big data items. */
  async listLayerBigData(id: string): Promise<string[]> {
    const ls = await this.#storeOf(id);
    return await ls.reading(() => ls.bigDataNames(id));
  }

  /** Opens a layer's big data item. */
  async layerBigData(id: string, key: string): Promise<ReadableStream<Uint8Array>> {
    const ls = await this.#storeOf(id);
    return await ls.reading(() => ls.bigData(id, key));
  }

  /** Stores a layer's big data item. */
  async setLayerBigData(
    id: string,
    key: string,
    data: ReadableStream<Uint8Array> | Uint8Array,
  ): Promise<void> {
    await this.#rw(id, (ls) => ls.setBigData(id, key, data));
  }

  async #rw(id: string, fn: (ls: LayerStore) => Promise<void>): Promise<void> {
    const ls = this.layerStore;
    await ls.writing(() => {
      if (!ls.exists(id)) throw new ErrLayerUnknown(id);
      return fn(ls);
    });
  }
}

/** Wraps a stream so `done` runs once when it ends, fails or is cancelled. */
function unlockWhenDone(
  stream: ReadableStream<Uint8Array>,
  done: () => void,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read();
        if (r.done) {
          finish();
          c.close();
        } else c.enqueue(r.value);
      } catch (e) {
        finish();
        c.error(e);
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        finish();
      }
    },
  }, { highWaterMark: 0 });
}

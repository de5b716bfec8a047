/**
 * The layer store: layers.json and mountpoints.json on top of a driver, with
 * the locking, reloading and crash-recovery rules of containers/storage 1.43.
 *
 * Methods other than {@linkcode LayerStore.open}, the `start*`/`stop*`
 * locking pair and the mount methods (which take mountpoints.lock
 * themselves) expect the caller to hold layers.lock: for writing for
 * changes, for reading otherwise. {@linkcode LayerStore.writing} and
 * {@linkcode LayerStore.reading} wrap a callback in that protocol.
 *
 * Creation, diffs and mounts live in put.ts, diff.ts and mounts.ts as
 * functions over this class, to keep each file to one concern.
 *
 * @example
 * ```ts ignore
 * const ls = await LayerStore.open({ layerDir, runDir, driver });
 * const layers = await ls.reading(() => ls.layers());
 * ```
 * @module
 */

import { join } from "../path.ts";
import type { Driver } from "../../drivers/driver.ts";
import { atomicWriteFile, atomicWriteStream } from "../atomic.ts";
import {
  ErrDuplicateName,
  ErrInvalidBigDataName,
  ErrLayerUnknown,
  ErrStoreIsReadOnly,
  StorageError,
} from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import { TruncIndex } from "../ids.ts";
import { LockFile } from "../lockfile.ts";
import { log } from "../log.ts";
import { LockedStore, mtimeOf, readStoreFile, RECORD_FIELDS } from "../locked_store.ts";
import {
  applyNameOperation,
  bigDataFileName,
  encodeLayers,
  encodeMounts,
  type NameOperation,
  parseTimeNs,
} from "./encode.ts";
import { copyLayer, hasIncompleteFlag, INCOMPLETE_FLAG, type Layer } from "./layer.ts";
import { mounted, unmount } from "./mounts.ts";

/** Where a layer store keeps its files and which driver holds the layer data. */
export interface LayerStoreConfig {
  /** `<graphroot>/<driver>-layers`: layers.json, layers.lock, tar-split and big data. */
  layerDir: string;
  /** `<runroot>/<driver>-layers`: mountpoints.json and mountpoints.lock. */
  runDir: string;
  /** The driver holding the layers' contents. */
  driver: Driver;
  /** An additional (read-only) image store: never written, never cleaned. */
  readOnly?: boolean;
  /** Default UID mapping of the store. */
  uidMap?: IDMap[];
  /** Default GID mapping of the store. */
  gidMap?: IDMap[];
}

/** A set of layers kept in one layers.json. */
export class LayerStore extends LockedStore {
  /** layers.json directory. */
  readonly layerDir: string;
  /** mountpoints.json directory. */
  readonly runDir: string;
  /** The driver. */
  readonly driver: Driver;
  /** Default mappings of the store. */
  readonly uidMap: IDMap[];
  /** Default mappings of the store. */
  readonly gidMap: IDMap[];
  /** layers.lock. @internal */
  lockfile!: LockFile;
  /** @internal */
  protected readonly kind = "layers";
  /** mountpoints.lock (absent for read-only stores). @internal */
  mountsLockfile?: LockFile;
  /** Layers in creation order, as in layers.json. @internal */
  list: Layer[] = [];
  /** @internal */
  byID: Map<string, Layer> = new Map();
  /** @internal */
  byName: Map<string, Layer> = new Map();
  /** @internal */
  byMount: Map<string, Layer> = new Map();
  /** @internal */
  byCompressed: Map<string, string[]> = new Map();
  /** @internal */
  byUncompressed: Map<string, string[]> = new Map();
  /** @internal */
  idIndex: TruncIndex = new TruncIndex();
  #layersMtime = -1;
  #loaded = false;

  private constructor(cfg: LayerStoreConfig) {
    super();
    this.layerDir = cfg.layerDir;
    this.runDir = cfg.runDir;
    this.driver = cfg.driver;
    this.uidMap = cfg.uidMap ?? [];
    this.gidMap = cfg.gidMap ?? [];
  }

  /**
   * Opens a layer store: creates its directories and lock files, then loads
   * it under the write lock, deleting layers left incomplete by a crash
   * (a read-only store is loaded under a read lock and never cleaned). A
   * damaged layers.json or mountpoints.json does not fail the open: every
   * use of the store reports it (ErrInvalidStoreFile).
   */
  static async open(cfg: LayerStoreConfig): Promise<LayerStore> {
    const s = new LayerStore(cfg);
    if (cfg.readOnly) {
      s.lockfile = await LockFile.get(join(cfg.layerDir, "layers.lock"), { readOnly: true });
    } else {
      await Deno.mkdir(cfg.runDir, { recursive: true, mode: 0o700 });
      await Deno.mkdir(cfg.layerDir, { recursive: true, mode: 0o700 });
      s.lockfile = await LockFile.get(join(cfg.layerDir, "layers.lock"));
      s.mountsLockfile = await LockFile.get(join(cfg.runDir, "mountpoints.lock"));
    }
    await s.openWith(() => s.load(), cfg.readOnly);
    return s;
  }

  /** Path of layers.json. */
  get layersPath(): string {
    return join(this.layerDir, "layers.json");
  }

  /** Path of mountpoints.json. */
  get mountsPath(): string {
    return join(this.runDir, "mountpoints.json");
  }

  /** Path of a layer's tar-split file. */
  tarSplitPath(id: string): string {
    return join(this.layerDir, `${id}.tar-split.gz`);
  }

  /** Directory of a layer's big data items. */
  dataDir(id: string): string {
    return join(this.layerDir, id);
  }

  // ---- reloading ---------------------------------------------------------

  /** Whether another process changed layers.json or the mount table since we last looked. */
  async modified(): Promise<boolean> {
    if (!this.#loaded || this.lockfile.modified()) return true;
    if (this.mountsLockfile) {
      await this.mountsLockfile.rLock();
      try {
        if (this.mountsLockfile.modified()) return true;
      } finally {
        this.mountsLockfile.unlock();
      }
    }
    // A hand-edited layers.json counts too.
    return (await mtimeOf(this.layersPath)) !== this.#layersMtime;
  }

  /** Reloads when {@linkcode modified}. */
  async reloadIfChanged(): Promise<void> {
    if (await this.modified()) await this.load();
  }

  // ---- load / save -------------------------------------------------------

  /**
   * Reads layers.json and mountpoints.json. A name claimed by two layers
   * stays with the later one. Under the write lock, layers still flagged
   * incomplete are deleted. A file cut short, not JSON or not a list of
   * records is ErrInvalidStoreFile, never an empty store (1.43 reads it as
   * empty, and its next save loses the layers' records).
   */
  async load(): Promise<void> {
    let shouldSave = false;
    // Until this load succeeds, every use of the store loads again (and fails
    // again) rather than work on what an earlier load left.
    this.#loaded = false;
    this.#layersMtime = await mtimeOf(this.layersPath);
    const layers = await readStoreFile<Layer>(this.layersPath, RECORD_FIELDS);
    const byID: Map<string, Layer> = new Map();
    const byName: Map<string, Layer> = new Map();
    const byCompressed: Map<string, string[]> = new Map();
    const byUncompressed: Map<string, string[]> = new Map();
    const readOnly = !this.isReadWrite();
    for (const layer of layers) {
      byID.set(layer.id, layer);
      for (const name of layer.names ?? []) {
        const conflict = byName.get(name);
        if (conflict) {
          conflict.names = (conflict.names ?? []).filter((n) => n !== name);
          shouldSave = true;
        }
        byName.set(name, layer);
      }
      addToDigestMap(byCompressed, layer["compressed-diff-digest"], layer.id);
      addToDigestMap(byUncompressed, layer["diff-digest"], layer.id);
      if (readOnly) layer.readonly = true;
    }
    if (shouldSave && (readOnly || !this.writeLocked)) {
      throw new ErrDuplicateName(this.layersPath, {
        detail: "duplicate layer names in layers.json",
      });
    }
    this.list = layers;
    this.byID = byID;
    this.byName = byName;
    this.byCompressed = byCompressed;
    this.byUncompressed = byUncompressed;
    this.idIndex = new TruncIndex(layers.map((l) => l.id));
    if (readOnly) {
      this.#loaded = true;
      return;
    }
    await this.mountsLockfile!.rLock();
    try {
      await this.loadMounts();
    } finally {
      this.mountsLockfile!.unlock();
    }
    this.#loaded = true;
    if (!this.writeLocked) return;
    for (const layer of [...this.list]) {
      if (hasIncompleteFlag(layer)) {
        log("warning", `Found incomplete layer ${JSON.stringify(layer.id)}, deleting it`);
        await this.deleteInternal(layer.id);
        shouldSave = true;
      }
    }
    if (shouldSave) await this.saveLayers();
  }

  /** Merges mountpoints.json into the records; the caller holds mountpoints.lock. @internal */
  async loadMounts(): Promise<void> {
    const mounts = await readStoreFile<{ id: string; path: string; count: number }>(
      this.mountsPath,
      { path: "string", count: "number" },
    );
    // Counts that dropped to zero elsewhere are absent from the file: reset all first.
    for (const layer of this.list) {
      delete layer.mountpoint;
      delete layer.mountcount;
    }
    const byMount: Map<string, Layer> = new Map();
    for (const m of mounts) {
      if (!m.path) continue;
      const layer = this.lookup(m.id);
      if (!layer) continue;
      byMount.set(m.path, layer);
      layer.mountpoint = m.path;
      layer.mountcount = m.count;
    }
    this.byMount = byMount;
  }

  /** Writes layers.json and mountpoints.json. */
  async save(): Promise<void> {
    const ml = this.mountsLockfile!;
    await ml.lock();
    try {
      await this.saveLayers();
      await this.saveMounts();
    } finally {
      ml.touch();
      ml.unlock();
    }
  }

  /** Writes layers.json atomically and marks the store changed for other processes. @internal */
  async saveLayers(): Promise<void> {
    if (!this.isReadWrite()) {
      throw new ErrStoreIsReadOnly(this.layersPath, {
        detail: "not allowed to modify the layer store",
      });
    }
    if (!this.writeLocked) {
      throw new StorageError(this.layersPath, { detail: "layer store is not locked for writing" });
    }
    await Deno.mkdir(this.layerDir, { recursive: true, mode: 0o700 });
    try {
      await atomicWriteFile(this.layersPath, encodeLayers(this.list), 0o600);
    } finally {
      this.lockfile.touch();
    }
    this.#layersMtime = await mtimeOf(this.layersPath);
  }

  /** Writes mountpoints.json; the caller holds mountpoints.lock for writing. @internal */
  async saveMounts(): Promise<void> {
    if (!this.isReadWrite()) {
      throw new ErrStoreIsReadOnly(this.mountsPath, {
        detail: "not allowed to modify mount information",
      });
    }
    await Deno.mkdir(this.runDir, { recursive: true, mode: 0o700 });
    await atomicWriteFile(this.mountsPath, encodeMounts(this.list), 0o600);
    await this.loadMounts();
  }

  // ---- lookups -----------------------------------------------------------

  /** The record of a layer by ID, name or unique ID prefix (the store's own object). @internal */
  lookup(idOrName: string): Layer | undefined {
    const byID = this.byID.get(idOrName) ?? this.byName.get(idOrName);
    if (byID) return byID;
    try {
      const id = this.idIndex.get(idOrName);
      return id === undefined ? undefined : this.byID.get(id);
    } catch {
      return undefined;
    }
  }

  /** Like {@linkcode lookup} but throws ErrLayerUnknown. @internal */
  mustLookup(idOrName: string): Layer {
    const layer = this.lookup(idOrName);
    if (!layer) throw new ErrLayerUnknown(idOrName);
    return layer;
  }

  /** Throws ErrStoreIsReadOnly naming what was attempted when the store is read-only. @internal */
  checkWritable(what: string): void {
    if (!this.isReadWrite()) {
      throw new ErrStoreIsReadOnly(this.layersPath, { detail: `not allowed to ${what}` });
    }
  }

  /** Copies of all layers, in creation order. */
  layers(): Layer[] {
    return this.list.map(copyLayer);
  }

  /** A copy of one layer by ID, name or unique prefix. */
  get(idOrName: string): Layer {
    return copyLayer(this.mustLookup(idOrName));
  }

  /** Whether a layer is known by that ID, name or unique prefix. */
  exists(idOrName: string): boolean {
    return this.lookup(idOrName) !== undefined;
  }

  /** The ID of a layer by ID, name or unique prefix. */
  lookupID(idOrName: string): string {
    return this.mustLookup(idOrName).id;
  }

  /** Copies of the layers whose parent is `id`, in creation order. */
  children(id: string): Layer[] {
    return this.list.filter((l) => l.parent === id).map(copyLayer);
  }

  /** The recorded uncompressed size, or -1 when no diff was ever recorded. */
  size(idOrName: string): number {
    const layer = this.mustLookup(idOrName);
    return layer["diff-digest"] ? layer["diff-size"] ?? 0 : -1;
  }

  /** Layers whose compressed-diff-digest is `digest`. */
  layersByCompressedDigest(digest: string): Layer[] {
    return this.#byDigest(this.byCompressed, digest);
  }

  /** Layers whose diff-digest is `digest`. */
  layersByUncompressedDigest(digest: string): Layer[] {
    return this.#byDigest(this.byUncompressed, digest);
  }

  #byDigest(m: Map<string, string[]>, digest: string): Layer[] {
    return (m.get(digest) ?? []).map((id) => copyLayer(this.mustLookup(id)));
  }

  // ---- names, metadata, flags -------------------------------------------

  /** Replaces a layer's names; names taken from other layers are removed there. */
  setNames(id: string, names: string[]): Promise<void> {
    return this.updateNames(id, names, "set");
  }

  /** Adds names to a layer; names taken from other layers are removed there. */
  addNames(id: string, names: string[]): Promise<void> {
    return this.updateNames(id, names, "add");
  }

  /** Removes names from a layer. */
  removeNames(id: string, names: string[]): Promise<void> {
    return this.updateNames(id, names, "remove");
  }

  /** @internal */
  async updateNames(id: string, given: string[], op: NameOperation): Promise<void> {
    this.checkWritable("change layer name assignments");
    const layer = this.mustLookup(id);
    const names = applyNameOperation(layer.names ?? [], given, op);
    for (const name of layer.names ?? []) this.byName.delete(name);
    for (const name of names) {
      const other = this.byName.get(name);
      if (other && other !== layer) other.names = (other.names ?? []).filter((n) => n !== name);
      this.byName.set(name, layer);
    }
    layer.names = names;
    await this.save();
  }

  /** A layer's metadata string. */
  metadata(id: string): string {
    return this.mustLookup(id).metadata ?? "";
  }

  /** Replaces a layer's metadata string. */
  async setMetadata(id: string, metadata: string): Promise<void> {
    this.checkWritable("modify layer metadata");
    this.mustLookup(id).metadata = metadata;
    await this.save();
  }

  /** Sets one flag on a layer. */
  async setFlag(id: string, flag: string, value: unknown): Promise<void> {
    this.checkWritable("set flags on layers");
    const layer = this.mustLookup(id);
    (layer.flags ??= {})[flag] = value;
    await this.save();
  }

  /** Removes one flag from a layer. */
  async clearFlag(id: string, flag: string): Promise<void> {
    this.checkWritable("clear flags on layers");
    const layer = this.mustLookup(id);
    if (layer.flags) delete layer.flags[flag];
    await this.save();
  }

  // ---- big data ----------------------------------------------------------

  /** Keys of a layer's big data items. */
  bigDataNames(id: string): string[] {
    return [...(this.mustLookup(id)["big-data-names"] ?? [])];
  }

  /** Opens a big data item for reading. */
  async bigData(id: string, key: string): Promise<ReadableStream<Uint8Array>> {
    if (key === "") throw new ErrInvalidBigDataName(key, { detail: "empty name" });
    const layer = this.mustLookup(id);
    const f = await Deno.open(join(this.dataDir(layer.id), bigDataFileName(key)));
    return f.readable;
  }

  /** Stores a big data item atomically (readers see the old or the new content). */
  async setBigData(
    id: string,
    key: string,
    data: ReadableStream<Uint8Array> | Uint8Array,
  ): Promise<void> {
    if (key === "") throw new ErrInvalidBigDataName(key, { detail: "empty name" });
    this.checkWritable("save data items associated with layers");
    const layer = this.mustLookup(id);
    await Deno.mkdir(this.dataDir(layer.id), { recursive: true, mode: 0o700 });
    const path = join(this.dataDir(layer.id), bigDataFileName(key));
    if (data instanceof Uint8Array) await atomicWriteFile(path, data, 0o600);
    else await atomicWriteStream(path, data, 0o600);
    const names = layer["big-data-names"] ??= [];
    if (!names.includes(key)) {
      names.push(key);
      await this.save();
    }
  }

  // ---- deletion ----------------------------------------------------------

  /**
   * Removes a layer's data and record without saving. The record is first
   * saved with the incomplete flag so that a crash half-way leaves
   * something the next writer cleans up. @internal
   */
  async deleteInternal(idOrName: string): Promise<void> {
    this.checkWritable("delete layers");
    const layer = this.mustLookup(idOrName);
    if (!hasIncompleteFlag(layer)) {
      (layer.flags ??= {})[INCOMPLETE_FLAG] = true;
      await this.save();
    }
    const id = layer.id;
    await this.driver.remove(id);
    await Deno.remove(this.tarSplitPath(id)).catch(() => {});
    await Deno.remove(this.dataDir(id), { recursive: true }).catch(() => {});
    this.byID.delete(id);
    for (const name of layer.names ?? []) {
      if (this.byName.get(name) === layer) this.byName.delete(name);
    }
    this.idIndex.delete(id);
    if (layer.mountpoint) this.byMount.delete(layer.mountpoint);
    removeFromDigestMap(this.byCompressed, id);
    removeFromDigestMap(this.byUncompressed, id);
    this.list = this.list.filter((l) => l !== layer);
  }

  /** Deletes a layer, unmounting it first if it is mounted. */
  async delete(idOrName: string): Promise<void> {
    const layer = this.mustLookup(idOrName);
    const id = layer.id;
    while ((await mounted(this, id)) > 0) await unmount(this, id, false);
    await this.deleteInternal(id);
    await this.save();
  }

  /** Deletes every layer, newest first. */
  async wipe(): Promise<void> {
    this.checkWritable("delete layers");
    const ids = [...this.list]
      .sort((a, b) => {
        const d = parseTimeNs(b.created) - parseTimeNs(a.created);
        return d > 0n ? 1 : d < 0n ? -1 : 0;
      })
      .map((l) => l.id);
    for (const id of ids) await this.delete(id);
  }
}

/** Records that `id` has `digest` (nothing for an empty digest). @internal */
export function addToDigestMap(
  m: Map<string, string[]>,
  digest: string | undefined,
  id: string,
): void {
  if (!digest) return;
  const ids = m.get(digest);
  if (ids) ids.push(id);
  else m.set(digest, [id]);
}

/** Forgets `id` under every digest. @internal */
export function removeFromDigestMap(m: Map<string, string[]>, id: string): void {
  for (const [digest, ids] of m) {
    const rest = ids.filter((x) => x !== id);
    if (rest.length === 0) m.delete(digest);
    else m.set(digest, rest);
  }
}

/**
 * The part that images.json and containers.json have in common: one JSON
 * array of records under one lock file, each record with an ID, unique
 * names, metadata, flags and "big data" items kept as files beside the
 * JSON. {@linkcode RecordStore} implements the lock protocol, reloading,
 * lookups by ID, name or unique ID prefix, name moves between records and
 * big data bookkeeping; the image and container stores add their own
 * fields and indexes on top.
 *
 * Methods other than `open`, the `start*`/`stop*` pairs and
 * {@linkcode RecordStore.reading}/{@linkcode RecordStore.writing} expect the
 * caller to hold the lock (for writing when they change something).
 *
 * @example
 * ```ts ignore
 * const images = await ImageStore.open({ dir: "/g/vfs-images" });
 * const all = await images.reading(() => images.list());
 * ```
 * @module
 */

import { join } from "../path.ts";
import { sha256Hex } from "../sha256.ts";
import { atomicWriteFile } from "../atomic.ts";
import {
  ErrDuplicateName,
  ErrInvalidBigDataName,
  ErrSizeUnknown,
  ErrStoreIsReadOnly,
  StorageError,
} from "../errors.ts";
import { TruncIndex } from "../ids.ts";
import { applyNameOperation, bigDataFileName, type NameOperation } from "../layers/encode.ts";
import { LockFile } from "../lockfile.ts";
import { LockedStore, mtimeOf, readStoreFile, RECORD_FIELDS } from "../locked_store.ts";

/** The fields every image and container record has (JSON keys as in the files). */
export interface StoredRecord {
  /** 64-hex ID. */
  id: string;
  /** Names, unique within the store. */
  names?: string[];
  /** Caller's free-form metadata. */
  metadata?: string;
  /** Keys of the big data items, in the order they were first set. */
  "big-data-names"?: string[];
  /** Byte size of each big data item. */
  "big-data-sizes"?: Record<string, number>;
  /** Digest of each big data item. */
  "big-data-digests"?: Record<string, string>;
  /** Creation time, RFC 3339 with nanoseconds, kept as written. */
  created?: string;
  /** Arbitrary flags. */
  flags?: Record<string, unknown>;
}

/** Where a record store keeps its files. */
export interface RecordStoreConfig {
  /** `<graphroot>/<driver>-images` or `<graphroot>/<driver>-containers`. */
  dir: string;
  /** An additional (read-only) store: loaded under a read lock, never written. */
  readOnly?: boolean;
}

/**
 * Above this size a big data item is hashed by `node:crypto` (~15× the plain
 * TypeScript hash here); below it, loading Node's modules would cost more
 * start-up than the hash itself.
 */
const NODE_HASH_MIN = 1 << 20;

/** "sha256:<hex>" of bytes, the canonical digest containers/storage records. */
export function sha256Digest(data: Uint8Array): string {
  if (data.length < NODE_HASH_MIN) return "sha256:" + sha256Hex(data);
  return "sha256:" +
    process.getBuiltinModule("node:crypto").createHash("sha256").update(data).digest("hex");
}

/** A set of records kept in one JSON file under one lock. */
export abstract class RecordStore<T extends StoredRecord> extends LockedStore {
  /** The directory holding the JSON file, the lock and the big data directories. */
  readonly dir: string;
  /** The store's lock file. */
  readonly lockfile: LockFile;
  #records: T[] = [];
  #byID = new Map<string, T>();
  #byName = new Map<string, T>();
  #idIndex = new TruncIndex();
  #mtime = -1;
  #loaded = false;

  /** "images" or "containers": names the JSON and lock files. */
  protected abstract override readonly kind: "images" | "containers";

  /** @param cfg Where the store lives. @param lockfile Its lock. */
  protected constructor(cfg: RecordStoreConfig, lockfile: LockFile) {
    super();
    this.dir = cfg.dir;
    this.lockfile = lockfile;
  }

  /** The lock file of a store in `dir`, creating the directory unless read-only. */
  protected static async lockFor(
    cfg: RecordStoreConfig,
    kind: "images" | "containers",
  ): Promise<LockFile> {
    if (!cfg.readOnly) await Deno.mkdir(cfg.dir, { recursive: true, mode: 0o700 });
    return await LockFile.get(join(cfg.dir, `${kind}.lock`), { readOnly: cfg.readOnly });
  }

  /** The error for an ID or name that matches nothing (image or container unknown). */
  protected abstract unknown(id: string): StorageError;

  /** The JSON text of the whole store, byte-compatible with containers/storage. */
  protected abstract encode(records: T[]): string;

  /** Rebuilds the kind-specific indexes after a load; throws to refuse the file. */
  protected abstract reindex(records: T[]): void;

  /** Path of the JSON file. */
  get path(): string {
    return join(this.dir, `${this.kind}.json`);
  }

  /** Directory of a record's big data files. */
  dataDir(id: string): string {
    return join(this.dir, id);
  }

  // ---- reloading ---------------------------------------------------------

  /** Whether another process changed the store since we last loaded or saved it. */
  async modified(): Promise<boolean> {
    // A hand-edited file counts too, as for layers.json.
    return !this.#loaded || this.lockfile.modified() ||
      (await mtimeOf(this.path)) !== this.#mtime;
  }

  /** Reloads when {@linkcode modified}. */
  async reloadIfChanged(): Promise<void> {
    if (await this.modified()) await this.load();
  }

  // ---- load / save -------------------------------------------------------

  /**
   * Reads the JSON file. A name claimed by two records stays with the later
   * one; that repair is saved when we hold the write lock and refused
   * (ErrDuplicateName) otherwise, as containers/storage does. A file cut
   * short, not JSON or not a list of records is ErrInvalidStoreFile, never
   * an empty store (1.43 reads it as empty, and its next save loses the
   * records).
   */
  async load(): Promise<void> {
    // Until this load succeeds, every use of the store loads again (and fails
    // again) rather than work on what an earlier load left.
    this.#loaded = false;
    this.#mtime = await mtimeOf(this.path);
    const records = await readStoreFile<T>(this.path, RECORD_FIELDS);
    const byID = new Map<string, T>();
    const byName = new Map<string, T>();
    let repaired = false;
    for (const r of records) {
      byID.set(r.id, r);
      for (const name of r.names ?? []) {
        const conflict = byName.get(name);
        if (conflict && conflict !== r) {
          conflict.names = (conflict.names ?? []).filter((n) => n !== name);
          repaired = true;
        }
        byName.set(name, r);
      }
    }
    if (repaired && (!this.isReadWrite() || !this.writeLocked)) {
      throw new ErrDuplicateName(this.path, { detail: `duplicate names in ${this.kind}.json` });
    }
    this.reindex(records);
    this.#records = records;
    this.#byID = byID;
    this.#byName = byName;
    this.#idIndex = new TruncIndex(records.map((r) => r.id));
    this.#loaded = true;
    if (repaired) await this.save();
  }

  /** Writes the JSON file atomically and tells other processes it changed. */
  async save(): Promise<void> {
    this.checkWritable(`modify the ${this.kind} store`);
    if (!this.writeLocked) {
      throw new StorageError(this.path, { detail: `${this.kind} store is not locked for writing` });
    }
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      await atomicWriteFile(this.path, this.encode(this.#records), 0o600);
    } finally {
      this.lockfile.touch();
    }
    this.#mtime = await mtimeOf(this.path);
  }

  /** Throws ErrStoreIsReadOnly naming what was attempted when the store is read-only. */
  checkWritable(what: string): void {
    if (!this.isReadWrite()) {
      throw new ErrStoreIsReadOnly(this.path, { detail: `not allowed to ${what}` });
    }
  }

  // ---- lookups -----------------------------------------------------------

  /**
   * The store's own record for an ID, name or unique ID prefix. Subclasses
   * may widen the search (containers are also found by their layer).
   */
  protected lookup(idOrName: string): T | undefined {
    return this.exactMatch(idOrName) ?? this.prefixMatch(idOrName);
  }

  /** The record with this exact ID or name. */
  protected exactMatch(idOrName: string): T | undefined {
    return this.#byID.get(idOrName) ?? this.#byName.get(idOrName);
  }

  /** The record whose ID is the only one starting with `prefix`. */
  protected prefixMatch(prefix: string): T | undefined {
    try {
      const id = this.#idIndex.get(prefix);
      return id === undefined ? undefined : this.#byID.get(id);
    } catch {
      // An ambiguous prefix names nothing, as in containers/storage.
      return undefined;
    }
  }

  /** Like {@linkcode lookup}, throwing the store's "unknown" error. */
  protected mustLookup(idOrName: string): T {
    const r = this.lookup(idOrName);
    if (!r) throw this.unknown(idOrName);
    return r;
  }

  /** The live records, in file order (subclasses hand out copies). */
  protected get records(): readonly T[] {
    return this.#records;
  }

  /** Whether a record is known by that ID, name or unique prefix. */
  exists(idOrName: string): boolean {
    return this.lookup(idOrName) !== undefined;
  }

  /** The ID of a record by ID, name or unique prefix. */
  lookupID(idOrName: string): string {
    return this.mustLookup(idOrName).id;
  }

  /** A copy of one record. */
  get(idOrName: string): T {
    return structuredClone(this.mustLookup(idOrName));
  }

  /** Copies of all records, in file order. */
  list(): T[] {
    return structuredClone(this.#records);
  }

  /** Whether an ID is taken (exactly, not as a prefix). */
  protected hasID(id: string): boolean {
    return this.#byID.has(id);
  }

  /** The record holding `name`, if any. */
  protected holderOf(name: string): T | undefined {
    return this.#byName.get(name);
  }

  /** Adds a new record to the indexes and the file order (the caller saves). */
  protected insert(r: T): void {
    this.#records.push(r);
    this.#byID.set(r.id, r);
    this.#idIndex.add(r.id);
    for (const name of r.names ?? []) this.#byName.set(name, r);
  }

  /** Removes a record from the indexes and the file order (the caller saves). */
  protected remove(r: T): void {
    this.#records = this.#records.filter((x) => x !== r);
    this.#byID.delete(r.id);
    this.#idIndex.delete(r.id);
    for (const name of r.names ?? []) {
      if (this.#byName.get(name) === r) this.#byName.delete(name);
    }
  }

  // ---- names, metadata, flags -------------------------------------------

  /**
   * Applies a names operation; a name taken from another record is removed
   * there. `onName` sees each resulting name (images record name history).
   */
  protected async changeNames(
    idOrName: string,
    given: string[],
    op: NameOperation,
    onName?: (r: T, name: string) => void,
  ): Promise<void> {
    this.checkWritable(`change ${this.kind} name assignments`);
    const r = this.mustLookup(idOrName);
    const names = applyNameOperation(r.names ?? [], given, op);
    for (const name of r.names ?? []) this.#byName.delete(name);
    for (const name of names) {
      const other = this.#byName.get(name);
      if (other && other !== r) other.names = (other.names ?? []).filter((n) => n !== name);
      this.#byName.set(name, r);
      onName?.(r, name);
    }
    r.names = names;
    await this.save();
  }

  /** Replaces a record's names, taking them from other records. */
  setNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "set");
  }

  /** Adds names to a record, taking them from other records. */
  addNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "add");
  }

  /** Removes names from a record. */
  removeNames(idOrName: string, names: string[]): Promise<void> {
    return this.changeNames(idOrName, names, "remove");
  }

  /** A record's metadata string. */
  metadata(idOrName: string): string {
    return this.mustLookup(idOrName).metadata ?? "";
  }

  /** Replaces a record's metadata string. */
  async setMetadata(idOrName: string, metadata: string): Promise<void> {
    this.checkWritable(`modify ${this.kind} metadata`);
    this.mustLookup(idOrName).metadata = metadata;
    await this.save();
  }

  /** Sets one flag. */
  async setFlag(idOrName: string, flag: string, value: unknown): Promise<void> {
    this.checkWritable(`set flags on ${this.kind}`);
    (this.mustLookup(idOrName).flags ??= {})[flag] = value;
    await this.save();
  }

  /** Removes one flag. */
  async clearFlag(idOrName: string, flag: string): Promise<void> {
    this.checkWritable(`clear flags on ${this.kind}`);
    const r = this.mustLookup(idOrName);
    if (r.flags) delete r.flags[flag];
    await this.save();
  }

  // ---- big data ----------------------------------------------------------

  /** Path of a big data item's file (the key made safe as containers/storage does). */
  bigDataPath(id: string, key: string): string {
    return join(this.dataDir(id), bigDataFileName(key));
  }

  /** Keys of a record's big data items. */
  bigDataNames(idOrName: string): string[] {
    return [...(this.mustLookup(idOrName)["big-data-names"] ?? [])];
  }

  /**
   * The content of a big data item.
   * @throws {Deno.errors.NotFound} when the record has no such item.
   */
  async bigData(idOrName: string, key: string): Promise<Uint8Array> {
    checkKey(key, "retrieve", this.kind);
    const r = this.mustLookup(idOrName);
    return await Deno.readFile(this.bigDataPath(r.id, key));
  }

  /** The recorded size of an item, else the size of its file; ErrSizeUnknown when neither. */
  async bigDataSize(idOrName: string, key: string): Promise<number> {
    checkKey(key, "retrieve the size of", this.kind);
    const r = this.mustLookup(idOrName);
    const known = r["big-data-sizes"]?.[key];
    if (known !== undefined) return known;
    try {
      return (await Deno.stat(this.bigDataPath(r.id, key))).size;
    } catch (e) {
      throw new ErrSizeUnknown(r.id, { detail: `big data item ${JSON.stringify(key)}`, cause: e });
    }
  }

  /**
   * Stores a big data item atomically and records its size and `digest`;
   * saves the JSON file only when something recorded changed.
   */
  protected async writeBigData(
    idOrName: string,
    key: string,
    data: Uint8Array,
    digest: string,
  ): Promise<T> {
    checkKey(key, "set", this.kind);
    this.checkWritable(`save data items associated with ${this.kind}`);
    const r = this.mustLookup(idOrName);
    await Deno.mkdir(this.dataDir(r.id), { recursive: true, mode: 0o700 });
    await atomicWriteFile(this.bigDataPath(r.id, key), data, 0o600);
    const sizes = r["big-data-sizes"] ??= {};
    const digests = r["big-data-digests"] ??= {};
    let changed = sizes[key] !== data.length || digests[key] !== digest;
    sizes[key] = data.length;
    digests[key] = digest;
    const names = r["big-data-names"] ??= [];
    if (!names.includes(key)) {
      names.push(key);
      changed = true;
    }
    if (changed) await this.save();
    return r;
  }

  /** Deletes a record and its big data directory. */
  async delete(idOrName: string): Promise<void> {
    this.checkWritable(`delete ${this.kind}`);
    const r = this.mustLookup(idOrName);
    this.remove(r);
    this.reindex(this.#records);
    await this.save();
    await Deno.remove(this.dataDir(r.id), { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  /** Deletes every record. */
  async wipe(): Promise<void> {
    this.checkWritable(`delete ${this.kind}`);
    for (const r of [...this.#records]) await this.delete(r.id);
  }
}

/** The wording containers/storage uses for an empty big data key. */
function checkKey(key: string, action: string, kind: string): void {
  if (key === "") {
    const what = kind === "images" ? "image" : "container";
    throw new ErrInvalidBigDataName(undefined, {
      detail: `can't ${action} ${what} big data item with an empty name`,
    });
  }
}

/**
 * The lock protocol every store of containers/storage follows (layers,
 * images, containers): take the store's lock file for reading or writing,
 * reload the file if another process changed it since we last looked, and
 * refuse writes to a read-only (additional) store before locking.
 * {@linkcode LockedStore} implements it once for the layer store and the
 * record stores.
 *
 * @example
 * ```ts ignore
 * const names = await layerStore.reading(() => layerStore.layers().map((l) => l.names));
 * await imageStore.writing(() => imageStore.setMetadata(id, "note"));
 * ```
 * @module
 */

import { ErrInvalidStoreFile } from "./errors.ts";
import type { LockFile } from "./lockfile.ts";

/** A store kept in files under one lock file. */
export abstract class LockedStore {
  /** The store's lock file. */
  abstract readonly lockfile: LockFile;
  /** What the store holds ("layers", "images", "containers"), for messages. */
  protected abstract readonly kind: string;
  #writeLocked = false;

  /** Throws ErrStoreIsReadOnly naming what was attempted when the store is read-only. */
  abstract checkWritable(what: string): void;

  /** Reloads the store's files when another process changed them. */
  abstract reloadIfChanged(): Promise<void>;

  /** Whether this process holds the store's lock for writing. */
  protected get writeLocked(): boolean {
    return this.#writeLocked;
  }

  /** Whether the store can be changed (false for additional image stores). */
  isReadWrite(): boolean {
    return this.lockfile.isReadWrite();
  }

  /** Takes the lock for writing and reloads what other processes changed. */
  async startWriting(): Promise<void> {
    this.checkWritable(`modify ${this.kind}`);
    await this.lockfile.lock();
    this.#writeLocked = true;
    try {
      await this.reloadIfChanged();
    } catch (e) {
      this.stopWriting();
      throw e;
    }
  }

  /** Releases the write lock. */
  stopWriting(): void {
    this.#writeLocked = false;
    this.lockfile.unlock();
  }

  /** Takes the lock for reading and reloads what other processes changed. */
  async startReading(): Promise<void> {
    await this.lockfile.rLock();
    try {
      await this.reloadIfChanged();
    } catch (e) {
      this.lockfile.unlock();
      throw e;
    }
  }

  /** Releases the read lock. */
  stopReading(): void {
    this.lockfile.unlock();
  }

  /**
   * The first load, when the store is opened: `load` under the read lock
   * (read-only stores) or the write lock. A file that does not parse
   * (ErrInvalidStoreFile) is reported by every use of this store instead,
   * so that the other stores of a Store stay usable, as in 1.43, which loads
   * the layer store when it is first used.
   */
  protected async openWith(load: () => Promise<void>, readOnly?: boolean): Promise<void> {
    try {
      if (readOnly) await this.reading(load);
      else await this.writing(load);
    } catch (e) {
      if (!(e instanceof ErrInvalidStoreFile)) throw e;
    }
  }

  /** Runs `fn` holding the write lock on a freshly reloaded store. */
  async writing<R>(fn: () => Promise<R> | R): Promise<R> {
    await this.startWriting();
    try {
      return await fn();
    } finally {
      this.stopWriting();
    }
  }

  /** Runs `fn` holding the read lock on a freshly reloaded store. */
  async reading<R>(fn: () => Promise<R> | R): Promise<R> {
    await this.startReading();
    try {
      return await fn();
    } finally {
      this.stopReading();
    }
  }
}

/** mtime in ms of a file, or -1 when it does not exist (a hand-edited file counts as a change). */
export async function mtimeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? -1;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return -1;
    throw e;
  }
}

/** What a store's file holds: JSON objects, each with an ID. */
export interface StoreFileRecord {
  /** The record's ID. */
  id: string;
}

/** The JSON type a field of a record must have where present (null counts as absent, as in Go). */
export type FieldType = "string" | "number" | "object" | "strings";

/** The fields of layer, image and container records that the stores use as such. */
export const RECORD_FIELDS: Record<string, FieldType> = {
  names: "strings",
  "big-data-names": "strings",
  flags: "object",
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasType(v: unknown, t: FieldType): boolean {
  switch (t) {
    case "object":
      return isObject(v);
    case "strings":
      return Array.isArray(v) && v.every((s) => typeof s === "string");
    case "string":
      return typeof v === "string";
    case "number":
      return typeof v === "number";
  }
}

/**
 * The records of a store's JSON file (layers.json, images.json,
 * containers.json, mountpoints.json). A file that does not exist, an empty
 * file and `null` hold none, as in 1.43. Anything else that is not an array
 * of objects with a string "id" and `fields` of their types is
 * ErrInvalidStoreFile naming the file and what is wrong, on one line.
 */
export async function readStoreFile<T extends StoreFileRecord>(
  path: string,
  fields: Record<string, FieldType>,
): Promise<T[]> {
  const bad = (why: string) =>
    new ErrInvalidStoreFile(path, { detail: why.replaceAll("\n", "\\n") });
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  if (text.length === 0) return [];
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (data === null) return [];
  if (!Array.isArray(data)) throw bad("not a JSON array");
  data.forEach((r: unknown, i) => {
    const what = `record ${i + 1}`;
    if (!isObject(r)) throw bad(`${what} is not a JSON object`);
    if (typeof r.id !== "string") throw bad(`${what} has no string "id"`);
    for (const [key, type] of Object.entries(fields)) {
      if (r[key] !== undefined && r[key] !== null && !hasType(r[key], type)) {
        throw bad(
          `${what}: "${key}" is not ${type === "strings" ? "a list of strings" : `a ${type}`}`,
        );
      }
    }
  });
  return data as T[];
}

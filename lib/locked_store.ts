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

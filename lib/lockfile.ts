/**
 * The Locker of containers/storage 1.43: a lock file shared with podman,
 * buildah and the reference CLI.
 *
 * - Between processes: whole-file fcntl record locks (OFD locks, which
 *   conflict with the classic POSIX locks the Go code takes; flock(2) would
 *   not). The descriptor is opened on the first acquisition and closed on
 *   the last release, as in Go.
 * - Inside this process: an async reader/writer mutex, since OFD locks taken
 *   through one descriptor never conflict with each other.
 * - Change detection: the first 64 bytes of the file are the "last writer"
 *   token (UnixNano, counter, PID, random) that {@linkcode LockFile.touch}
 *   rewrites and {@linkcode LockFile.modified} compares.
 *
 * @example
 * ```ts
 * import { LockFile } from "./lockfile.ts";
 * const lk = await LockFile.get("/var/lib/containers/storage/overlay-layers/layers.lock");
 * await lk.lock();
 * try {
 *   if (lk.modified()) { /* reload layers.json *\/ }
 *   lk.touch(); // after writing layers.json
 * } finally {
 *   lk.unlock();
 * }
 * ```
 * @module
 */

import { dirname, resolve } from "./path.ts";
import { ErrLockReadOnly, StorageError } from "./errors.ts";
import { SyscallError } from "../ffi/errors.ts";
import { statNs } from "../ffi/fs.ts";
import {
  closeFd,
  lockFd,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  openFd,
  preadFd,
  pwriteFd,
} from "../ffi/lock.ts";

/** Size of the last-writer token at the start of a lock file. */
const LAST_WRITER_SIZE = 64;
const ENOENT = 2, ENOSPC = 28;

/** Per-process counter of tokens, like Go's lastWriterIDCounter. */
let lastWriterCounter = 0n;

/** A fresh last-writer token: LE UnixNano, LE counter, LE PID, 44 random bytes. */
function newLastWrite(): Uint8Array {
  const token = new Uint8Array(LAST_WRITER_SIZE);
  const v = new DataView(token.buffer);
  const nowNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  v.setBigUint64(0, nowNs, true);
  v.setBigUint64(8, ++lastWriterCounter, true);
  v.setUint32(16, Deno.pid, true);
  crypto.getRandomValues(token.subarray(20));
  return token;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Opens (creating 0644, and its directory 0700, if missing) the lock file. */
function openLock(path: string, readOnly: boolean): number {
  const flags = O_CREAT | (readOnly ? O_RDONLY : O_RDWR);
  try {
    return openFd(path, flags, 0o644);
  } catch (e) {
    if (!(e instanceof SyscallError) || e.errno !== ENOENT) throw e;
    Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    return openFd(path, flags, 0o644);
  }
}

/** How a holder uses the in-process mutex; "recursive" holders share with each other. */
type Mode = "read" | "write" | "recursive";

/**
 * Async reader/writer mutex. Holders of the same shared mode ("read" or
 * "recursive") are admitted at once even when a writer is queued: async
 * code has no thread identity, so a nested acquisition that had to queue
 * behind a writer would deadlock.
 */
class AsyncRWMutex {
  #mode: Mode | null = null;
  #holders = 0;
  #queue: { mode: Mode; grant: () => void }[] = [];

  /** The mode of the current holders, or null when free. */
  get mode(): Mode | null {
    return this.#mode;
  }

  #admits(mode: Mode): boolean {
    return this.#holders === 0 || (mode !== "write" && mode === this.#mode);
  }

  acquire(mode: Mode): Promise<void> {
    const sharing = this.#holders > 0 && this.#admits(mode);
    if (sharing || (this.#queue.length === 0 && this.#admits(mode))) {
      this.#mode = mode;
      this.#holders++;
      return Promise.resolve();
    }
    return new Promise((grant) => this.#queue.push({ mode, grant }));
  }

  release(): void {
    if (--this.#holders > 0) return;
    this.#mode = null;
    // Admit the next waiter, and every waiter sharing its mode.
    const next = this.#queue[0];
    if (!next) return;
    const admitted = next.mode === "write"
      ? [next]
      : this.#queue.filter((w) => w.mode === next.mode);
    this.#queue = this.#queue.filter((w) => !admitted.includes(w));
    this.#mode = next.mode;
    this.#holders = admitted.length;
    for (const w of admitted) w.grant();
  }
}

/**
 * A lock file, one instance per path per process (use {@linkcode LockFile.get}).
 * Lock/unlock calls nest: the file lock is taken by the first acquisition
 * and released by the matching last {@linkcode LockFile.unlock}.
 */
export class LockFile {
  static #instances = new Map<string, LockFile>();

  readonly #path: string;
  readonly #readOnly: boolean;
  readonly #mutex = new AsyncRWMutex();
  /** Acquisitions granted or being granted; the descriptor is open while > 0. */
  #counter = 0;
  #fd = -1;
  #ready: Promise<void> = Promise.resolve();
  #locked = false;
  /** Token as of our last touch() or modified(); starts random so the first modified() is true. */
  #lastWrite: Uint8Array = newLastWrite();

  private constructor(path: string, readOnly: boolean) {
    this.#path = path;
    this.#readOnly = readOnly;
  }

  /**
   * The lock file at `path` (created 0644 if missing, with its directory),
   * the same instance for every call with the same path in this process.
   * @throws {StorageError} when the path is already open in the other mode.
   * @throws {SyscallError} when the file cannot be opened or created.
   */
  // deno-lint-ignore require-await -- async for the API; no await keeps check-and-insert atomic
  static async get(path: string, opts: { readOnly?: boolean } = {}): Promise<LockFile> {
    const clean = resolve(path);
    const readOnly = opts.readOnly ?? false;
    const known = LockFile.#instances.get(clean);
    if (known) {
      if (known.#readOnly !== readOnly) {
        const what = known.#readOnly ? "a read-only lock" : "not a read-only lock";
        throw new StorageError(clean, { detail: `lock is ${what}` });
      }
      return known;
    }
    closeFd(openLock(clean, readOnly)); // fail now if the file cannot be opened
    const lk = new LockFile(clean, readOnly);
    LockFile.#instances.set(clean, lk);
    return lk;
  }

  /** The absolute path of the lock file. */
  get path(): string {
    return this.#path;
  }

  /**
   * Takes the lock for writing, waiting (without blocking the event loop)
   * for other holders in this and other processes.
   * @throws {ErrLockReadOnly} on a read-only lock file.
   */
  async lock(): Promise<void> {
    if (this.#readOnly) throw new ErrLockReadOnly(this.#path);
    await this.#acquire("write");
  }

  /**
   * Takes the lock for writing, but shared with other recursiveLock holders
   * in this process (so code holding it may call it again); plain lock()
   * and rLock() callers wait. On a read-only lock file it is rLock().
   */
  async recursiveLock(): Promise<void> {
    await this.#acquire(this.#readOnly ? "read" : "recursive");
  }

  /** Takes the lock for reading, shared with other readers. */
  async rLock(): Promise<void> {
    await this.#acquire("read");
  }

  async #acquire(mode: Mode): Promise<void> {
    await this.#mutex.acquire(mode);
    try {
      // Shared holders admitted while the first one waits for the file lock wait with it.
      if (++this.#counter === 1) {
        this.#ready = this.#openAndLock(mode === "read" ? "read" : "write");
      }
      await this.#ready;
    } catch (e) {
      this.#counter--;
      this.#mutex.release();
      throw e;
    }
    this.#locked = true;
  }

  async #openAndLock(type: "read" | "write"): Promise<void> {
    const fd = openLock(this.#path, this.#readOnly);
    try {
      await lockFd(fd, type, true);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    this.#fd = fd;
  }

  /**
   * Releases one acquisition; the last one closes the descriptor, which
   * drops the file lock.
   * @throws {Error} when the lock is not held (a programming error, as in Go).
   */
  unlock(): void {
    if (!this.#locked) throw new Error(`calling unlock on unlocked lock ${this.#path}`);
    if (--this.#counter === 0) {
      this.#locked = false;
      const fd = this.#fd;
      this.#fd = -1;
      closeFd(fd);
    }
    this.#mutex.release();
  }

  /**
   * Records a change: writes a new last-writer token at offset 0.
   * @throws {Error} without the write lock.
   */
  touch(): void {
    this.assertLockedForWriting();
    const token = newLastWrite();
    const n = pwriteFd(this.#fd, token, 0);
    if (n !== token.length) throw new SyscallError("pwrite", ENOSPC, this.#path);
    this.#lastWrite = token;
  }

  /**
   * True when the token in the file differs from the one this process last
   * wrote or saw (so another process changed the data the lock guards);
   * remembers the file's token. True on the first call.
   * @throws {Error} when the lock is not held.
   */
  modified(): boolean {
    this.assertLocked();
    const buf = new Uint8Array(LAST_WRITER_SIZE);
    // A fresh lock file is empty: a short read is a valid token.
    const current = buf.subarray(0, preadFd(this.#fd, buf, 0));
    const changed = !sameBytes(current, this.#lastWrite);
    this.#lastWrite = current;
    return changed;
  }

  /** True when the lock file was modified (touched) after `when`; true if it cannot be stat'ed. */
  touchedSince(when: Date): boolean {
    let mtime;
    try {
      mtime = statNs(this.#path).mtime;
    } catch {
      return true;
    }
    const touched = BigInt(mtime.sec) * 1_000_000_000n + BigInt(mtime.nsec);
    return BigInt(when.getTime()) * 1_000_000n < touched;
  }

  /** True unless this is a read-only lock file. */
  isReadWrite(): boolean {
    return !this.#readOnly;
  }

  /** True while this process holds the lock (for reading or writing). */
  locked(): boolean {
    return this.#locked;
  }

  /**
   * Checks that this process holds the lock (read or write).
   * @throws {Error} unless it does.
   */
  assertLocked(): void {
    if (!this.#locked) throw new Error(`lock ${this.#path} is not held`);
  }

  /**
   * Checks that this process holds the lock for writing (lock or recursiveLock).
   * @throws {Error} unless it does.
   */
  assertLockedForWriting(): void {
    this.assertLocked();
    if (this.#mutex.mode === "read") {
      throw new Error(`lock ${this.#path} is held for reading, not writing`);
    }
  }
}

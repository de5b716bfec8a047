/**
 * The lock files of containers/storage 1.43, shared with podman, buildah,
 * skopeo and the `containers-storage` CLI: fcntl OFD record locks between
 * processes, an async reader/writer lock inside this one, and the
 * "last writer" token that tells a holder whether another process changed
 * what the lock guards since it last looked.
 *
 * Permissions: `--allow-ffi` (fcntl through libc) and `--allow-read` and
 * `--allow-write` for the lock file's directory.
 *
 * @example
 * ```ts
 * import { LockFile } from "@denostore/storage/lockfile";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const lock = await LockFile.get(`${dir}/layers.lock`); // created when missing
 *   await lock.lock();
 *   try {
 *     // First look: another writer may have been here (reload what the lock guards).
 *     if (!lock.modified()) throw new Error("a new lock reads as modified");
 *     lock.touch(); // after writing: others' modified() now says true
 *     if (lock.modified()) throw new Error("our own write is not a change");
 *   } finally {
 *     lock.unlock();
 *   }
 *   await lock.rLock(); // shared with other readers
 *   lock.unlock();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 * @module
 */

export { LockFile } from "./lib/lockfile.ts";

/**
 * Access to a layer's file contents by path, as containers/storage's
 * FileGetCloser: rebuilding a diff from tar-split needs the bytes of each
 * regular file, and drivers provide them without the archive engine
 * knowing how a layer is stored.
 *
 * @example
 * ```ts
 * import type { FileGetter } from "./file_getter.ts";
 * const empty: FileGetter = {
 *   get: () => Promise.resolve(ReadableStream.from([new Uint8Array()])),
 *   close: () => Promise.resolve(),
 * };
 * await empty.close();
 * ```
 * @module
 */

/** Reads file contents of a layer by path, for rebuilding a diff from tar-split. */
export interface FileGetter {
  /** Opens the content of the file at `path` (a name from the tar, relative to the layer root). */
  get(path: string): Promise<ReadableStream<Uint8Array>>;
  /** Releases what the getter holds (e.g. a temporary mount). */
  close(): Promise<void>;
}

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

/** A file read synchronously into the caller's buffers (a local file). */
export interface FileReader {
  /**
   * Reads into `buf`: the number of bytes read (at least one unless `buf`
   * is empty), or null at end of file.
   */
  readInto(buf: Uint8Array): number | null;
  /** Closes the file (idempotent). */
  release(): void;
}

/** Reads file contents of a layer by path, for rebuilding a diff from tar-split. */
export interface FileGetter {
  /** Opens the content of the file at `path` (a name from the tar, relative to the layer root). */
  get(path: string): Promise<ReadableStream<Uint8Array>>;
  /**
   * Opens the file at `path` for synchronous reads, for getters of local
   * files; the rebuild prefers it to `get` (no stream or promise per file).
   */
  open?(path: string): FileReader;
  /** Releases what the getter holds (e.g. a temporary mount). */
  close(): Promise<void>;
}

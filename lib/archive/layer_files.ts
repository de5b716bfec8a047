/**
 * A layer directory's files opened by the names its tar-split records, for
 * a diff rebuilt from them. Each name is cleaned as the apply cleaned it
 * and opened with openat2's RESOLVE_IN_ROOT: the kernel resolves the
 * parents as a chroot at the layer would, which is what
 * {@linkcode SafeRoot.entryPath} does with an lstat per uncached directory,
 * in one call. When that open fails (or the kernel lacks openat2), the path
 * is resolved by {@linkcode SafeRoot} and opened again, so the error is the
 * one the slow path gives.
 *
 * @example
 * ```ts ignore
 * import { LayerFiles, LayerFilesGetter } from "./layer_files.ts";
 * const files = new LayerFiles("/var/lib/containers/storage/vfs/dir/abc");
 * const f = files.open("./etc/os-release");
 * f.close();
 * files.close();
 * const getter = new LayerFilesGetter(["/var/lib/containers/storage/vfs/dir/abc"]);
 * await getter.close();
 * ```
 * @module
 */

import { RawFile } from "../../ffi/file.ts";
import { O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY } from "../../ffi/libc.ts";
import type { FileGetter, FileReader } from "./file_getter.ts";
import { FileStream, LocalFileReader } from "./file_stream.ts";
import { cleanEntryName, SafeRoot } from "./safe_path.ts";

/** Opens files of one layer directory by entry name; {@linkcode close} when done. */
export class LayerFiles {
  readonly #root: SafeRoot;
  /** An O_PATH descriptor of the directory, opened on first use. */
  #dir: RawFile | undefined;

  /** @param path The layer's directory. */
  constructor(readonly path: string) {
    this.#root = new SafeRoot(path);
  }

  /**
   * Opens the file of entry `name` (e.g. "./usr/bin/env") for reading,
   * never through a final symlink.
   * @throws {SyscallError} or {ErrBadArchive} (a parent missing or not a directory).
   */
  open(name: string): RawFile {
    const parts = cleanEntryName(name);
    if (parts.length > 0) {
      const rel = parts.join("/");
      try {
        this.#dir ??= RawFile.open(this.path, O_PATH | O_DIRECTORY);
        const f = RawFile.openInRoot(this.#dir, rel, O_RDONLY | O_NOFOLLOW, `${this.path}/${rel}`);
        if (f) return f;
      } catch {
        // resolved and opened again below, for the error the resolution gives
      }
    }
    return RawFile.open(this.#root.entryPath(name), O_RDONLY | O_NOFOLLOW);
  }

  /** Closes the directory's descriptor (idempotent; {@linkcode open} reopens it). */
  close(): void {
    this.#dir?.close();
    this.#dir = undefined;
  }
}

/**
 * Reads file contents for tar-split rebuilds from a list of layer
 * directories, the first holding the file winning (overlay: the layer's
 * `diff`, older `diffN` generations, then lowers for layers made from a
 * template; vfs: its one directory).
 */
export class LayerFilesGetter implements FileGetter {
  readonly #dirs: LayerFiles[];

  /** @param dirs Directories searched in order. */
  constructor(dirs: string[]) {
    this.#dirs = dirs.map((d) => new LayerFiles(d));
  }

  /** Opens `path` (a tar entry name such as "./etc/passwd") in the first directory that has it. */
  get(path: string): Promise<ReadableStream<Uint8Array>> {
    try {
      return Promise.resolve(new FileStream(this.#first(path)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Like {@linkcode get}, for synchronous reads. */
  open(path: string): FileReader {
    return new LocalFileReader(this.#first(path));
  }

  #first(path: string): RawFile {
    let first: unknown;
    for (const dir of this.#dirs) {
      try {
        return dir.open(path);
      } catch (e) {
        first ??= e;
      }
    }
    throw first ?? new Deno.errors.NotFound(path);
  }

  /** Closes the directories' descriptors. */
  close(): Promise<void> {
    for (const d of this.#dirs) d.close();
    return Promise.resolve();
  }
}

/**
 * Layer contents for the overlay driver without the kernel's help: sizes of
 * upper directories, a file getter over a layer's diff directories for
 * tar-split rebuilds, and a stream wrapper that releases mounts once a diff
 * stream is consumed or cancelled.
 *
 * @example
 * ```ts ignore
 * const size = await directorySize(`${home}/${id}/diff`);
 * const getter = new DiffDirsGetter([`${home}/${id}/diff`]);
 * ```
 * @module
 */

import type { FileGetter } from "../driver.ts";
import type { FileReader } from "../../lib/archive/file_getter.ts";
import { FileStream, LocalFileReader } from "../../lib/archive/file_stream.ts";
import { LayerFiles } from "../../lib/archive/layer_files.ts";
import type { RawFile } from "../../ffi/file.ts";
import { listDir } from "../../ffi/dirent.ts";
import { isDir, lstatNs } from "../../ffi/fs.ts";

/**
 * Bytes used by the files under `dir`, as containers/storage counts them:
 * directories do not count, hard-linked files count once.
 */
export function directorySize(dir: string): Promise<number> {
  const seen = new Set<bigint>();
  let size = 0;
  const visit = (path: string): void => {
    for (const e of listDir(path)) {
      const p = `${path}/${e.name}`;
      const st = lstatNs(p);
      if (isDir(st)) {
        visit(p);
        continue;
      }
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
      size += st.size;
    }
  };
  visit(dir);
  return Promise.resolve(size);
}

/**
 * Reads file contents for tar-split rebuilds from a list of directories,
 * the first holding the file winning (the layer's `diff`, older `diffN`
 * generations, then lowers for layers made from a template).
 */
export class DiffDirsGetter implements FileGetter {
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

/**
 * Wraps `stream` so that `release` runs exactly once, when the stream ends,
 * errors, or is cancelled by the reader.
 */
export function releaseAfter(
  stream: ReadableStream<Uint8Array>,
  release: () => Promise<void>,
): ReadableStream<Uint8Array> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    await release();
  };
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) {
          await once();
          controller.close();
        } else controller.enqueue(r.value);
      } catch (e) {
        await once();
        controller.error(e);
      }
    },
    async cancel(reason) {
      try {
        await reader.cancel(reason);
      } finally {
        await once();
      }
    },
  });
}

/**
 * Layer contents for the overlay driver without the kernel's help: sizes of
 * upper directories, and a stream wrapper that releases mounts once a diff
 * stream is consumed or cancelled.
 *
 * @example
 * ```ts ignore
 * const size = await directorySize(`${home}/${id}/diff`);
 * ```
 * @module
 */

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

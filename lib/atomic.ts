/**
 * Crash-safe file replacement: readers see either the old file or the
 * complete new one, never a torn write, and after the call returns the new
 * content survives a power loss.
 *
 * The content goes to a temporary file in the same directory (so the
 * rename cannot cross filesystems), which is fsynced, given its mode,
 * renamed over the target, and then the directory is fsynced so the rename
 * itself is durable.
 *
 * @example
 * ```ts
 * import { atomicWriteFile } from "./atomic.ts";
 * await atomicWriteFile("/tmp/layers.json", "[]"); // mode 0600
 * ```
 * @module
 */

import { basename, dirname, join } from "node:path";

const encoder = new TextEncoder();

function tempPath(path: string): string {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  return join(dirname(path), `.${basename(path)}.tmp-${suffix}`);
}

/** Fsyncs a directory so that entries created or renamed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

async function replaceWith(
  path: string,
  mode: number,
  fill: (file: Deno.FsFile) => Promise<number>,
): Promise<number> {
  const tmp = tempPath(path);
  const file = await Deno.open(tmp, { write: true, createNew: true, mode });
  let written: number;
  try {
    written = await fill(file);
    // The umask may have narrowed `mode` at creation; the caller's mode wins.
    await Deno.chmod(tmp, mode);
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
  return written;
}

/**
 * Replaces `path` with `data` atomically and durably.
 * @param mode Permission bits of the new file (default 0600, like the store's JSON files).
 */
export async function atomicWriteFile(
  path: string,
  data: Uint8Array | string,
  mode = 0o600,
): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  await replaceWith(path, mode, async (file) => {
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    return off;
  });
}

/**
 * Replaces `path` with everything `stream` yields, atomically and durably.
 * If the stream errors, the original file is left untouched and no
 * temporary file remains.
 * @returns The number of bytes written.
 */
export async function atomicWriteStream(
  path: string,
  stream: ReadableStream<Uint8Array>,
  mode = 0o600,
): Promise<number> {
  return await replaceWith(path, mode, async (file) => {
    let total = 0;
    for await (const chunk of stream) {
      let off = 0;
      while (off < chunk.length) off += await file.write(chunk.subarray(off));
      total += chunk.length;
    }
    return total;
  });
}

/**
 * Crash-safe file replacement: readers see either the old file or the
 * complete new one, never a torn write, and after the call returns the new
 * content survives a power loss.
 *
 * The content goes to a temporary file in the same directory (so the
 * rename cannot cross filesystems), which is fsynced, given its mode,
 * renamed over the target, and then the directory is fsynced so the rename
 * itself is durable. A failure (a full disk, say) is an ErrFileWrite naming
 * the step and the file, and leaves no temporary file.
 *
 * @example
 * ```ts
 * import { atomicWriteFile } from "./atomic.ts";
 * await atomicWriteFile("/tmp/layers.json", "[]"); // mode 0600
 * ```
 * @module
 */

import { basename, dirname, join } from "./path.ts";
import { ErrFileWrite, StorageError } from "./errors.ts";

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

/**
 * `p`, with its failure as an ErrFileWrite of `op` on `path` (but a missing
 * Deno permission, which says which flag to add).
 */
async function step<T>(op: string, path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof StorageError || e instanceof Deno.errors.NotCapable) throw e;
    throw new ErrFileWrite(op, path, e);
  }
}

async function replaceWith(
  path: string,
  mode: number,
  fill: (write: (bytes: Uint8Array) => Promise<void>) => Promise<number>,
): Promise<number> {
  const tmp = tempPath(path);
  const file = await step("open", tmp, Deno.open(tmp, { write: true, createNew: true, mode }));
  const write = async (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += await step("write", tmp, file.write(bytes.subarray(off)));
  };
  let written: number;
  try {
    written = await fill(write);
    // The umask may have narrowed `mode` at creation; the caller's mode wins.
    await step("chmod", tmp, Deno.chmod(tmp, mode));
    await step("sync", tmp, file.sync());
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await step("rename", tmp, Deno.rename(tmp, path));
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await step("sync", dirname(path), syncDir(dirname(path)));
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
  await replaceWith(path, mode, async (write) => {
    await write(bytes);
    return bytes.length;
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
  return await replaceWith(path, mode, async (write) => {
    let total = 0;
    for await (const chunk of stream) {
      await write(chunk);
      total += chunk.length;
    }
    return total;
  });
}

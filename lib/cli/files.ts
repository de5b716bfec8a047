/**
 * Streaming input and output for commands that move layer-sized data
 * (import-layer, applydiff, diff, get-/set-layer-data): data flows chunk by
 * chunk between stdin/stdout or a file and the store, never whole in memory.
 *
 * @example
 * ```ts ignore
 * import { openInput, writeStream } from "./files.ts";
 * const input = await openInput(""); // stdin
 * await writeStream(input.stream, "/tmp/copy", stdio.out);
 * ```
 * @module
 */

import type { FlagSet } from "./flags.ts";
import type { Sink } from "./io.ts";
import { pathError } from "./messages.ts";

/** An input stream and how to release it. */
export interface Input {
  /** The data. */
  stream: ReadableStream<Uint8Array>;
  /** Closes the file if the stream was not read to the end. */
  close(): void;
}

/** Opens `path` for reading, or stdin when `path` is "". Errors read like Go's ("open /x: …"). */
export async function openInput(path: string): Promise<Input> {
  if (path === "") return { stream: Deno.stdin.readable, close: () => {} };
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw pathError("open", path, e);
  }
  return {
    stream: file.readable,
    close: () => {
      try {
        file.close();
      } catch {
        // already closed by reading the stream to its end
      }
    },
  };
}

/** Creates (or truncates) `path` like Go's os.Create (mode 0666 before umask). */
async function createOutput(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o666 });
  } catch (e) {
    throw pathError("open", path, e);
  }
}

/**
 * Creates the `-f` output file (none means stdout) and runs `fn` with it;
 * if `fn` fails before the file was handed to {@linkcode writeStream}, the
 * file is closed here.
 */
export async function withOutput(
  path: string,
  fn: (file: Deno.FsFile | undefined) => Promise<void>,
): Promise<void> {
  const file = path === "" ? undefined : await createOutput(path);
  try {
    await fn(file);
  } catch (e) {
    try {
      file?.close();
    } catch {
      // already closed by the failed pipe
    }
    throw e;
  }
}

/** Chunk of a byte stream's copy to a file. */
const OUTPUT_CHUNK = 1 << 20;

/** Copies `stream` to the open `file` (closing it), or to `sink` when no file is given. */
export async function writeStream(
  stream: ReadableStream<Uint8Array>,
  file: Deno.FsFile | undefined,
  sink: Sink,
): Promise<void> {
  if (file) {
    let byob: ReadableStreamBYOBReader;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      await stream.pipeTo(file.writable); // not a byte stream
      return;
    }
    // A layer rebuilt into one reused buffer, written synchronously: no
    // allocation and no thread hop per chunk, and a peak RSS flat in layer size.
    try {
      let buf = new Uint8Array(OUTPUT_CHUNK);
      for (;;) {
        const r = await byob.read(buf);
        if (r.done) break;
        for (let off = 0; off < r.value.length;) off += file.writeSync(r.value.subarray(off));
        buf = new Uint8Array(r.value.buffer);
      }
    } catch (e) {
      await byob.cancel(e).catch(() => {});
      throw e;
    } finally {
      file.close();
    }
    return;
  }
  for await (const chunk of stream) sink.write(chunk);
}

/**
 * The metadata that `-m`/`--metadata` and `-f`/`--metadata-file` give
 * (the file wins), read whole; "" when neither is set.
 */
export async function metadataFromFlags(fs: FlagSet): Promise<string> {
  const file = fs.getString("metadata-file");
  if (file === "") return fs.getString("metadata");
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    throw pathError("open", file, e);
  }
}

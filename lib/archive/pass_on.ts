/**
 * A stream passed on with hooks at its end, failure and cancel, keeping
 * what makes a byte stream fast: a consumer's BYOB reads reach the source,
 * so a consumer that reuses one buffer (the CLI writing a diff to a file)
 * reads a layer with no allocation per chunk and a flat peak RSS.
 *
 * @example
 * ```ts ignore
 * import { passOn } from "./pass_on.ts";
 * const s = passOn(source, { end: async () => unlock(), fail: (e) => e });
 * ```
 * @module
 */

import { REBUILD_CHUNK } from "./tar_split.ts";

/** What {@linkcode passOn} does at the end, on a failure and on cancel. */
export interface PassOnHooks {
  /** Runs before the stream closes. */
  end?: () => Promise<void>;
  /** The error the consumer sees for a failure of the source (or of `end`). */
  fail: (e: unknown) => unknown;
  /** Runs after the source is cancelled. */
  cancel?: () => Promise<void>;
}

/**
 * `source` passed on with `hooks`. A byte source (the tar-split rebuild) is
 * passed on as a byte stream whose BYOB reads fill the consumer's own
 * buffers, so a consumer that reuses one buffer gets a layer with no
 * allocation per chunk. Any other source is passed on as an ordinary stream,
 * chunk by chunk: a byte stream would take (detach) its chunks' buffers,
 * which their producer may still use.
 */
export function passOn(
  source: ReadableStream<Uint8Array>,
  hooks: PassOnHooks,
): ReadableStream<Uint8Array> {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    return passChunks(source.getReader(), hooks); // not a byte stream
  }
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: REBUILD_CHUNK,
    async pull(c) {
      try {
        const req = c.byobRequest!;
        const r = await byob.read(req.view as Uint8Array<ArrayBuffer>);
        if (!r.done) return req.respondWithNewView(r.value);
        await hooks.end?.();
        c.close();
        if (r.value) c.byobRequest?.respondWithNewView(r.value);
        else c.byobRequest?.respond(0);
      } catch (e) {
        c.error(await hooks.fail(e));
      }
    },
    async cancel(reason) {
      await byob.cancel(reason).catch(() => {});
      await hooks.cancel?.();
    },
  });
}

function passChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  hooks: PassOnHooks,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read();
        if (!r.done) return c.enqueue(r.value);
        await hooks.end?.();
        c.close();
      } catch (e) {
        c.error(await hooks.fail(e));
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
      await hooks.cancel?.();
    },
  }, { highWaterMark: 0 });
}

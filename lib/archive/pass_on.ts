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
 * `source` passed on as a byte stream, with `hooks`. A byte source (the
 * tar-split rebuild) is read into the consumer's own buffers (BYOB), so a
 * consumer that reuses one buffer gets a layer with no allocation per
 * chunk; any other source is passed on chunk by chunk.
 */
export function passOn(
  source: ReadableStream<Uint8Array>,
  hooks: PassOnHooks,
): ReadableStream<Uint8Array> {
  let byob: ReadableStreamBYOBReader | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    reader = source.getReader(); // not a byte stream
  }
  const close = async (c: ReadableByteStreamController, last?: Uint8Array) => {
    await hooks.end?.();
    c.close();
    if (last) c.byobRequest?.respondWithNewView(last);
    else c.byobRequest?.respond(0);
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: REBUILD_CHUNK,
    async pull(c) {
      try {
        if (byob) {
          const req = c.byobRequest!;
          const r = await byob.read(req.view as Uint8Array<ArrayBuffer>);
          if (r.done) return await close(c, r.value);
          req.respondWithNewView(r.value);
          return;
        }
        for (;;) {
          const r = await reader!.read();
          if (r.done) return await close(c);
          if (r.value.length) return c.enqueue(r.value as Uint8Array<ArrayBuffer>);
        }
      } catch (e) {
        c.error(await hooks.fail(e));
      }
    },
    async cancel(reason) {
      await (byob ?? reader)!.cancel(reason).catch(() => {});
      await hooks.cancel?.();
    },
  });
}

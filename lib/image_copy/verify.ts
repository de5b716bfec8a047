/**
 * Blob verification: a pass-through that fails the stream, before it ends,
 * when the bytes are more or fewer than the descriptor says or their sha256
 * is not its digest, so a consumer (a layer import, a file being written)
 * fails and cleans up instead of keeping wrong content.
 *
 * @example
 * ```ts ignore
 * const checked = (await Deno.open(path)).readable.pipeThrough(verifyBlob(desc));
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { ErrBadArchive } from "../errors.ts";
import { ErrInvalidImage } from "./errors.ts";

/** What a blob must be. */
export interface BlobExpectation {
  /** "sha256:<hex>". */
  digest: string;
  /** Length in bytes; unchecked when absent. */
  size?: number;
}

/** A pass-through checking the bytes against `want` (failing with {@linkcode ErrInvalidImage}). */
export function verifyBlob(
  want: BlobExpectation,
  what = "blob",
): TransformStream<Uint8Array, Uint8Array> {
  const hash = createHash("sha256");
  let n = 0;
  return new TransformStream({
    transform(chunk, ctl) {
      n += chunk.length;
      if (want.size !== undefined && n > want.size) {
        throw new ErrInvalidImage(want.digest, {
          detail: `${what} is longer than the ${want.size} bytes its descriptor gives`,
        });
      }
      hash.update(chunk);
      ctl.enqueue(chunk);
    },
    flush() {
      if (want.size !== undefined && n !== want.size) {
        throw new ErrInvalidImage(want.digest, {
          detail: `${what} is ${n} bytes, its descriptor gives ${want.size}`,
        });
      }
      const got = "sha256:" + hash.digest("hex");
      if (got !== want.digest) {
        throw new ErrInvalidImage(want.digest, { detail: `${what} digest mismatch: got ${got}` });
      }
    },
  });
}

/** Reads a small blob (manifest, config) whole, verified; refuses one over `limit` bytes. */
export async function readVerified(
  stream: ReadableStream<Uint8Array>,
  want: BlobExpectation,
  what: string,
  limit = 4 << 20,
): Promise<Uint8Array> {
  if ((want.size ?? 0) > limit) {
    await stream.cancel();
    throw new ErrInvalidImage(want.digest, { detail: `${what} is larger than ${limit} bytes` });
  }
  const checked = stream.pipeThrough(verifyBlob(want, what));
  return new Uint8Array(await new Response(checked).arrayBuffer());
}

/**
 * A failure met while a blob was read, as the error to report: the
 * ErrInvalidImage in its cause chain (a verification failure), an
 * undecodable blob as an ErrInvalidImage naming `digest`, anything else
 * as it is.
 */
export function blobError(e: unknown, digest: string): unknown {
  for (let c = e; c instanceof Error; c = c.cause) if (c instanceof ErrInvalidImage) return c;
  if (e instanceof ErrBadArchive) {
    return new ErrInvalidImage(digest, { detail: e.message, cause: e });
  }
  return e;
}

/**
 * A passthrough that computes the sha256 digest and byte count of what flows
 * through it, for `compressed-diff-digest`/`diff-digest` and sizes.
 *
 * @example
 * ```ts ignore
 * import { DigestStream } from "./digest.ts";
 * const d = new DigestStream();
 * await (await Deno.open("layer.tar")).readable.pipeThrough(d).pipeTo(new WritableStream());
 * console.log(await d.result); // { digest: "sha256:…", size: 10240 }
 * ```
 * @module
 */

import { libcryptoSha256 } from "../../ffi/libcrypto.ts";

/** Digest and size of a stream. */
export interface DigestResult {
  /** "sha256:<64 hex>". */
  digest: string;
  /** Bytes seen. */
  size: number;
}

/** An incremental SHA-256. */
export interface Sha256 {
  /** Adds bytes. */
  update(buf: Uint8Array): void;
  /** The digest as lower-case hex; the hash is done after. */
  hex(): string;
  /** Adds bytes on another thread, when the implementation can (see LibcryptoSha256). */
  updateBehind?(buf: Uint8Array): Promise<void>;
}

/**
 * A SHA-256 on libcrypto (the CPU's SHA instructions) when it is there,
 * on `node:crypto` otherwise; both give the same digests.
 */
export function sha256(): Sha256 {
  const native = libcryptoSha256();
  if (native) return native;
  // node:crypto loaded only now: Node's modules cost start-up time and ~11 MB of RSS
  const h = process.getBuiltinModule("node:crypto").createHash("sha256");
  return { update: (buf) => void h.update(buf), hex: () => h.digest("hex") };
}

/** Passthrough computing sha256 and size; {@linkcode result} settles when the input ends. */
export class DigestStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Resolves with the digest and size at the end of input; rejects if the stream fails. */
  readonly result: Promise<DigestResult>;
  #size: { n: number };

  constructor() {
    const hash = sha256();
    const size = { n: 0 };
    let resolve!: (r: DigestResult) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<DigestResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => {});
    super({
      transform(chunk, ctl) {
        size.n += chunk.length;
        hash.update(chunk);
        ctl.enqueue(chunk);
      },
      flush() {
        resolve({ digest: "sha256:" + hash.hex(), size: size.n });
      },
      cancel(reason) {
        reject(reason);
      },
    });
    this.result = result;
    this.#size = size;
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size.n;
  }
}

/** sha256 digest ("sha256:…") and size of a whole stream. */
export async function digestStream(stream: ReadableStream<Uint8Array>): Promise<DigestResult> {
  const d = new DigestStream();
  await stream.pipeThrough(d).pipeTo(new WritableStream());
  return await d.result;
}

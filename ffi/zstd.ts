/**
 * zstd decoding with libzstd (`libzstd.so.1`, Debian's `libzstd1`, which
 * dpkg itself needs) through `Deno.dlopen`: a streaming decoder called
 * synchronously on the calling thread. Deno's node:zlib decoder, the
 * fallback, runs behind Node streams and a worker hand-off per chunk; on
 * a Debian rootfs layer it was 1.2× the reference's import time and 160 MB
 * of peak RSS. Optional (see optional_lib.ts): callers fall back to
 * node:zlib when {@linkcode zstdDecoder} gives undefined.
 *
 * `ZSTD_inBuffer` and `ZSTD_outBuffer` (pointer, size, position) are kept
 * here as three 64-bit words each. The decoding context is libzstd's own
 * memory: {@linkcode ZstdDecoder.free} releases it (a finalizer does, should
 * a decoder be dropped without).
 *
 * @example
 * ```ts ignore
 * import { zstdDecoder } from "./zstd.ts";
 * const z = zstdDecoder();
 * if (z) {
 *   z.setInput(zstdBytes);
 *   const out = new Uint8Array(1 << 16);
 *   const { produced, frameDone } = z.decompress(out);
 *   z.free();
 * }
 * ```
 * @module
 */

import { openOptional } from "./optional_lib.ts";

const SYMBOLS = {
  ZSTD_createDCtx: { parameters: [], result: "pointer" },
  ZSTD_freeDCtx: { parameters: ["pointer"], result: "usize" },
  ZSTD_decompressStream: { parameters: ["pointer", "buffer", "buffer"], result: "usize" },
  ZSTD_isError: { parameters: ["usize"], result: "u32" },
  ZSTD_getErrorName: { parameters: ["usize"], result: "pointer" },
} as const;

type Zstd = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `printf 'zstd\n' | zstd -c`: the self-test's frame. */
// deno-fmt-ignore
const PROBE = new Uint8Array([
  40, 181, 47, 253, 4, 88, 41, 0, 0, 122, 115, 116, 100, 10, 4, 241,
  110, 60,
]);

let usable: boolean | undefined;

function lib(): Zstd | undefined {
  const l = openOptional("libzstd.so.1", SYMBOLS);
  if (!l) return undefined;
  if (usable === undefined) usable = selfTest(l);
  return usable ? l : undefined;
}

/** Decodes {@linkcode PROBE} and checks output, positions and the frame's end. */
function selfTest(l: Zstd): boolean {
  const z = new ZstdDecoder(l);
  try {
    z.setInput(PROBE);
    const out = new Uint8Array(64);
    const r = z.decompress(out);
    return r.error === undefined && r.frameDone && z.availIn === 0 &&
      new TextDecoder().decode(out.subarray(0, r.produced)) === "zstd\n";
  } catch {
    return false;
  } finally {
    z.free();
  }
}

/** Result of one {@linkcode ZstdDecoder.decompress} step. */
export interface ZstdStep {
  /** Bytes written to the output buffer. */
  produced: number;
  /** The frame under way is complete and all of it flushed. */
  frameDone: boolean;
  /** libzstd's name for the failure (bad data), if the step failed. */
  error?: string;
}

/** Releases a decoder's context when the decoder is collected without {@linkcode ZstdDecoder.free}. */
const contexts = new FinalizationRegistry<{ lib: Zstd; ctx: Deno.PointerValue }>(
  ({ lib, ctx }) => void lib.ZSTD_freeDCtx(ctx),
);

/**
 * A zstd stream decoder (every frame in turn, skippable ones skipped). Hand
 * it input with {@linkcode setInput} (the buffer must stay untouched until
 * consumed) and call {@linkcode decompress} with output buffers until
 * `availIn` is 0 and an output buffer was left room; then more input.
 */
export class ZstdDecoder {
  #ctx: Deno.PointerValue;
  readonly #in = new BigUint64Array(3);
  readonly #inBytes = new Uint8Array(this.#in.buffer);
  readonly #out = new BigUint64Array(3);
  readonly #outBytes = new Uint8Array(this.#out.buffer);
  /** Keeps the input alive while libzstd points into it. */
  #input: Uint8Array | undefined;

  /** Takes the library's symbols; use {@linkcode zstdDecoder}. */
  constructor(private readonly lib: Zstd) {
    this.#ctx = lib.ZSTD_createDCtx();
    if (this.#ctx === null) throw new Error("libzstd: cannot create a decoding context");
    contexts.register(this, { lib, ctx: this.#ctx }, this);
  }

  /** Points the decoder at `buf` (replacing what was left of the last input). */
  setInput(buf: Uint8Array): void {
    this.#input = buf;
    this.#in[0] = pointer(buf);
    this.#in[1] = BigInt(buf.length);
    this.#in[2] = 0n;
  }

  /** Input bytes not consumed yet. */
  get availIn(): number {
    return Number(this.#in[1] - this.#in[2]);
  }

  /** Decodes into `out`. */
  decompress(out: Uint8Array): ZstdStep {
    if (this.#ctx === null) throw new Error("libzstd: decoder already freed");
    this.#out[0] = pointer(out);
    this.#out[1] = BigInt(out.length);
    this.#out[2] = 0n;
    const r = this.lib.ZSTD_decompressStream(this.#ctx, this.#outBytes, this.#inBytes);
    const produced = Number(this.#out[2]);
    if (this.lib.ZSTD_isError(r)) {
      const name = this.lib.ZSTD_getErrorName(r);
      return {
        produced,
        frameDone: false,
        error: name === null ? `zstd error ${r}` : Deno.UnsafePointerView.getCString(name),
      };
    }
    return { produced, frameDone: r === 0n };
  }

  /** Releases libzstd's context (idempotent). */
  free(): void {
    if (this.#ctx === null) return;
    contexts.unregister(this);
    this.lib.ZSTD_freeDCtx(this.#ctx);
    this.#ctx = null;
    this.#input = undefined;
  }
}

/** A zstd decoder on libzstd, or undefined when the library is not usable. */
export function zstdDecoder(): ZstdDecoder | undefined {
  const l = lib();
  return l ? new ZstdDecoder(l) : undefined;
}

function pointer(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

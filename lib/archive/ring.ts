/**
 * Reading into a ring of reused buffers, for a pipeline whose consumer is
 * done with each chunk long before the ring comes round (the store's apply:
 * every stage hashes, parses or writes a chunk before it reads the next).
 * Fresh buffers per chunk are garbage that V8 collects only after tens of
 * megabytes, so a layer import's peak RSS grew with the chunk churn; with
 * a ring it is flat in layer size.
 *
 * @example
 * ```ts ignore
 * import { ByteRing, ringReader } from "./ring.ts";
 * const chunks = ringReader((await Deno.open("layer.tar")).readable, RING);
 * const out = new ByteRing(RING).next(); // a buffer to fill
 * ```
 * @module
 */

/** How many buffers of what size. */
export interface RingSize {
  /** Buffers in the ring: more than the consumer may hold at once. */
  count: number;
  /** Bytes in each. */
  size: number;
}

/**
 * The ring of the store's apply: 16 buffers of 128 KiB (the stages hold
 * fewer than ten chunks, large files' writes in flight included). Measured
 * on a 201 MiB rootfs .tar.gz and a 1 GiB layer: 64 KiB buffers cost more
 * per chunk than they saved (more garbage grew V8's heap); 256 KiB made
 * the 1 GiB import faster but its peak RSS 96 MB against 92.
 */
export const APPLY_RING: RingSize = { count: 16, size: 128 << 10 };

/**
 * The compressed input's ring when a native decoder (ISA-L, libzstd) pulls
 * it (layer_stream.ts): the decoder holds one chunk and the hash one more,
 * so four buffers do, and 512 KiB reads take a quarter of the hand-offs to
 * Deno's pool (a read and a hash per chunk, ~50 µs of the main thread
 * each) of 128 KiB ones.
 */
export const PULL_INPUT_RING: RingSize = { count: 4, size: 512 << 10 };

/**
 * One buffer of `count × size` bytes handed out in turn, each piece at most
 * `size` bytes and starting where the last one ended (until the ring wraps):
 * consecutive chunks of a decoder's output are then one contiguous span,
 * which the import hashes and writes with one call each instead of one per
 * chunk (a hand-off to Deno's pool costs some 50 µs of the main thread on
 * our VMs). A piece stays untouched until `count × size - size` more bytes
 * have been handed out: at least `count - 1` more pieces.
 */
export class ByteRing {
  // Allocated on first use: a small layer may never need one.
  #buf: Uint8Array<ArrayBuffer> | undefined;
  readonly #ring: RingSize;
  #at = 0;

  /** A ring of `count × size` bytes. */
  constructor(ring: RingSize) {
    this.#ring = ring;
  }

  /** Room for the next piece (at most `size` bytes): fill some, then {@linkcode advance}. */
  room(): Uint8Array<ArrayBuffer> {
    const buf = this.#buf ??= new Uint8Array(this.#ring.count * this.#ring.size);
    if (this.#at === buf.length) this.#at = 0;
    return buf.subarray(this.#at, Math.min(this.#at + this.#ring.size, buf.length));
  }

  /** The first `n` bytes of {@linkcode room} are taken; the next room starts after them. */
  advance(n: number): void {
    this.#at += n;
  }
}

/** Whether `b` starts where `a` ends, in the same buffer (consecutive pieces of one ring). */
export function adjoins(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/** `a` grown by the `n` bytes that follow it in its buffer. */
export function extend(a: Uint8Array, n: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.length + n);
}

/** A {@linkcode ChunkSource} reading into a ring of buffers. */
export interface RingReader extends ChunkSource {
  /**
   * Reads into a new ring of this shape from now on (the chunks read so far
   * keep their buffers): for a consumer that knows, once it has seen the
   * head, how many chunks it holds.
   */
  reshape(ring: RingSize): void;
}

/**
 * A reader of `input` whose chunks are views of a ring of buffers (a chunk
 * is overwritten `ring.count` reads later). Only a byte stream (a file's
 * `readable`) can be read this way; any other is read as it is.
 */
export function ringReader(input: ReadableStream<Uint8Array>, ring: RingSize): RingReader {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = input.getReader({ mode: "byob" });
  } catch {
    const reader = input.getReader();
    return { read: () => reader.read(), cancel: (r) => reader.cancel(r), reshape: () => {} };
  }
  // A BYOB read transfers the buffer it fills: the ring keeps the one it got back.
  let bufs: (ArrayBuffer | undefined)[] = new Array(ring.count); // allocated on first use
  let size = ring.size;
  let i = 0;
  return {
    async read() {
      const slot = i;
      i = (i + 1) % bufs.length;
      const r = await byob.read(new Uint8Array(bufs[slot] ??= new ArrayBuffer(size)));
      if (r.done) return { done: true, value: undefined };
      bufs[slot] = r.value.buffer as ArrayBuffer;
      return r;
    },
    cancel: (reason) => byob.cancel(reason),
    reshape(next) {
      bufs = new Array(next.count);
      size = next.size;
      i = 0;
    },
  };
}

/** `source` as a stream (pulled one chunk per read, no queue). */
export function sourceStream(source: ChunkSource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (ctl) => {
      const r = await source.read();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    cancel: (reason) => source.cancel(reason),
  }, { highWaterMark: 0 });
}

/** What {@linkcode ringReader} gives: a stream reader, or anything that reads alike. */
export interface ChunkSource {
  /** The next chunk, or done at the end; rejects when the input fails. */
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  /** Stops the input. */
  cancel(reason?: unknown): Promise<void>;
}

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

/** Buffers handed out in turn. */
export class ByteRing {
  // Allocated on first use: a small layer touches one or two (zeroing all took 8 ms).
  readonly #bufs: (Uint8Array<ArrayBuffer> | undefined)[];
  readonly #size: number;
  #i = 0;

  /** A ring of `count` buffers of `size` bytes. */
  constructor({ count, size }: RingSize) {
    this.#bufs = new Array(count);
    this.#size = size;
  }

  /** The next buffer; what was in it is overwritten by its next user. */
  next(): Uint8Array<ArrayBuffer> {
    const b = this.#bufs[this.#i] ??= new Uint8Array(this.#size);
    this.#i = (this.#i + 1) % this.#bufs.length;
    return b;
  }
}

/**
 * A reader of `input` whose chunks are views of a ring of buffers (a chunk
 * is overwritten `ring.count` reads later). Only a byte stream (a file's
 * `readable`) can be read this way; any other is read as it is.
 */
export function ringReader(input: ReadableStream<Uint8Array>, ring: RingSize): ChunkSource {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = input.getReader({ mode: "byob" });
  } catch {
    return input.getReader();
  }
  // A BYOB read transfers the buffer it fills: the ring keeps the one it got back.
  const bufs: (ArrayBuffer | undefined)[] = new Array(ring.count); // allocated on first use
  let i = 0;
  return {
    async read() {
      const slot = i;
      i = (i + 1) % bufs.length;
      const r = await byob.read(new Uint8Array(bufs[slot] ??= new ArrayBuffer(ring.size)));
      if (r.done) return { done: true, value: undefined };
      bufs[slot] = r.value.buffer as ArrayBuffer;
      return r;
    },
    cancel: (reason) => byob.cancel(reason),
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

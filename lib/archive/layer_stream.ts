/**
 * One pass over an incoming layer: digest and size of the bytes as received,
 * compression detection and decompression, digest and size of the tar,
 * tar-split recording, and the UID/GID sets — while the tar itself flows on
 * to the caller (the driver's apply). Mirrors containers/storage's
 * layerStore.applyDiffWithOptions.
 *
 * @example
 * ```ts ignore
 * import { inspectLayer } from "./layer_stream.ts";
 * const ts = await Deno.create("/tmp/layer.tar-split.gz");
 * const { tar, done } = inspectLayer((await Deno.open("layer.tar.gz")).readable, ts.writable);
 * await tar.pipeTo(new WritableStream()); // the driver applies it
 * console.log(await done);
 * ```
 * @module
 */

import {
  Compression,
  decompressAs,
  detectCompression,
  isalGunzipOf,
  libzstdOf,
  type PullDecoder,
  readHead,
  type StreamHead,
} from "./compression.ts";
import { type DigestResult, DigestStream, sha256 } from "./digest.ts";
import {
  adjoins,
  APPLY_RING,
  type ChunkSource,
  extend,
  PULL_INPUT_RING,
  ringReader,
  sourceStream,
} from "./ring.ts";
import type { TarHeader } from "./tar_header.ts";
import { TarSplitPacker, type TarSplitPackerOptions, TarSplitRecorder } from "./tar_split.ts";

/** What {@linkcode inspectLayer} learns about a layer. */
export interface LayerStreamInfo {
  /** Compression detected from the magic bytes. */
  compression: Compression;
  /** sha256 of the bytes as received ("sha256:…"). */
  compressedDigest: string;
  /** Number of bytes received. */
  compressedSize: number;
  /** sha256 of the uncompressed tar. */
  uncompressedDigest: string;
  /** Size of the uncompressed tar. */
  uncompressedSize: number;
  /** Sorted UIDs of the entries, whiteouts excepted. */
  uids: number[];
  /** Sorted GIDs of the entries, whiteouts excepted. */
  gids: number[];
}

/** Whether the last path element starts with ".wh." (Go: path.Base(name)). */
function isWhiteout(name: string): boolean {
  let end = name.length;
  while (end > 1 && name[end - 1] === "/") end--;
  const base = name.slice(name.lastIndexOf("/", end - 1) + 1, end);
  return base.startsWith(".wh.");
}

/** Options of {@linkcode inspectLayer}. */
export interface InspectLayerOptions {
  /** Called for each entry of the tar (progress reports count them). */
  onEntry?: () => void;
  /** Called as the input is read, with the number of bytes received so far (for progress). */
  onBytes?: (received: number) => void;
  /**
   * Read the input and decompress into rings of reused buffers (see
   * ring.ts): a chunk of `tar` is valid only until some ten more have been
   * read. For a consumer that is done with each chunk before it reads on,
   * as the drivers' apply is; the peak RSS is then flat in layer size.
   */
  recycle?: boolean;
}

/**
 * Starts inspecting `input`. Read `tar` to its end (trailing bytes included):
 * `done` settles only then, after the tar-split has been written to
 * `tarSplitSink` and closed. Back-pressure flows from `tar` to `input`.
 * Malformed input errors `tar` and rejects `done` with the same error;
 * cancelling `tar` rejects `done`.
 */
export function inspectLayer(
  input: ReadableStream<Uint8Array>,
  tarSplitSink: WritableStream<Uint8Array>,
  opts: InspectLayerOptions = {},
): { tar: ReadableStream<Uint8Array>; done: Promise<LayerStreamInfo> } {
  const ring = opts.recycle ? ringReader(input, APPLY_RING) : undefined;
  const source = ring ?? input.getReader();
  const uids = new Set<number>();
  const gids = new Set<number>();
  const onHeader = (h: TarHeader) => {
    opts.onEntry?.();
    if (isWhiteout(h.name)) return;
    uids.add(h.uid);
    gids.add(h.gid);
  };
  let compression = Compression.Uncompressed;
  let pump: LayerPump | undefined;
  let resolve!: (i: LayerStreamInfo) => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<LayerStreamInfo>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {});
  const start = async (): Promise<LayerPump> => {
    const head = await readHead(source);
    compression = detectCompression(head.bytes);
    const packing: TarSplitPackerOptions = {
      onHeader,
      // Matches what containers-storage 1.43 records for each format.
      finalEmptySegment: compression !== Compression.Xz && compression !== Compression.Zstd,
    };
    const open = opts.recycle ? PULL_DECODERS.get(compression) : undefined;
    const pump = open && pullPump(head, tarSplitSink, packing, open);
    if (!pump) return streamPump(head, compression, tarSplitSink, packing, opts.recycle ?? false);
    ring?.reshape(PULL_INPUT_RING);
    return pump;
  };
  const finish = async (p: LayerPump) => {
    const { compressed: c, uncompressed: u } = await p.digests();
    const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
    resolve({
      compression,
      compressedDigest: c.digest,
      compressedSize: c.size,
      uncompressedDigest: u.digest,
      uncompressedSize: u.size,
      uids: sorted(uids),
      gids: sorted(gids),
    });
  };
  const tar = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        pump ??= await start();
        const chunk = await pump.next();
        opts.onBytes?.(pump.received());
        if (chunk) return ctl.enqueue(chunk);
        await finish(pump);
        ctl.close();
      } catch (e) {
        reject(e);
        ctl.error(e);
        await pump?.stop(e);
      }
    },
    async cancel(reason) {
      reject(reason ?? new Error("layer stream cancelled"));
      if (pump) await pump.stop(reason);
      else await source.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { tar, done };
}

/** A layer's tar as it is decompressed, hashed and recorded, one chunk per {@linkcode next}. */
interface LayerPump {
  /** The next chunk of the tar, or null once it has ended and its tar-split is written. */
  next(): Promise<Uint8Array | null>;
  /** Bytes of the input read so far. */
  received(): number;
  /** The digests, once {@linkcode next} has given null. */
  digests(): Promise<{ compressed: DigestResult; uncompressed: DigestResult }>;
  /** Stops everything after a failure or a cancel (never throws). */
  stop(reason: unknown): Promise<void>;
}

/** The native decoders a layer's pump pulls from, by format (undefined when the library is absent). */
const PULL_DECODERS = new Map<Compression, (input: ChunkSource) => PullDecoder | undefined>([
  [Compression.Gzip, (input) => isalGunzipOf(input, APPLY_RING)],
  [Compression.Zstd, (input) => libzstdOf(input, APPLY_RING)],
]);

/**
 * The pump of the common cases, a gzip layer with ISA-L or a zstd one with
 * libzstd: one loop that reads, hashes, decodes into the ring, hashes and
 * records, with no stream between the stages. Each of the ~3,300 chunks of
 * a rootfs layer went through six Web Streams before (a pull, a promise and
 * a queue each): a fifth of the JavaScript thread's time, and the garbage
 * that grew V8's heap with the layer's size. Undefined without the library.
 */
function pullPump(
  head: StreamHead,
  sink: WritableStream<Uint8Array>,
  packing: TarSplitPackerOptions,
  open: (input: ChunkSource) => PullDecoder | undefined,
): LayerPump | undefined {
  const compressed = new HashBehind();
  const uncompressed = new HashBehind();
  let read = 0;
  let produced = 0;
  const input: ChunkSource = {
    async read() {
      const r = await head.read();
      if (!r.done) {
        await compressed.add(r.value);
        read += r.value.length;
      }
      return r;
    },
    cancel: (reason) => head.cancel(reason),
  };
  const decoder = open(input);
  if (!decoder) return undefined;
  const recorder = new TarSplitRecorder(sink, packing);
  return {
    async next() {
      let chunk: Uint8Array | null;
      try {
        chunk = await decoder.next();
      } catch (e) {
        throw decoder.inputFailure ? decoder.inputFailure.error : e;
      }
      if (chunk === null) {
        decoder.free();
        await recorder.end();
        return null;
      }
      await uncompressed.add(chunk);
      produced += chunk.length;
      await recorder.push(chunk);
      return chunk;
    },
    received: () => read,
    digests: async () => ({
      compressed: { digest: "sha256:" + await compressed.hex(), size: read },
      uncompressed: { digest: "sha256:" + await uncompressed.hex(), size: produced },
    }),
    async stop(reason) {
      decoder.free();
      await recorder.abort(reason);
      await head.cancel(reason).catch(() => {});
      await compressed.settle();
      await uncompressed.settle();
    },
  };
}

/** Largest span {@linkcode HashBehind} hashes in one call. */
const HASH_SPAN = 512 << 10;

/**
 * A SHA-256 that hashes on a thread of Deno's pool while the pump goes on.
 * Chunks that adjoin in one buffer (the inflate ring's pieces) are gathered
 * into spans of up to {@linkcode HASH_SPAN}, hashed with one call each: a
 * rootfs layer's 1,650 output chunks took 1,650 hand-offs, some 50 µs of
 * the pump's thread each. A span is started once the next chunk does not
 * fit it, after the span before it is done, so what is in use trails the
 * newest chunk by at most two spans (1 MiB): well within the ring's turn.
 * With node:crypto it hashes on this thread.
 */
class HashBehind {
  readonly #hash = sha256();
  #pending: Promise<void> = Promise.resolve();
  /** Chunks added and not yet handed to the hash. */
  #span: Uint8Array | undefined;

  /** Adds `chunk`, hashing what came before it if it does not extend that. */
  async add(chunk: Uint8Array): Promise<void> {
    const span = this.#span;
    if (span && adjoins(span, chunk) && span.length + chunk.length <= HASH_SPAN) {
      this.#span = extend(span, chunk.length);
      return;
    }
    this.#span = chunk;
    if (span) await this.#start(span);
  }

  async #start(span: Uint8Array): Promise<void> {
    await this.#pending;
    if (!this.#hash.updateBehind) return this.#hash.update(span);
    this.#pending = this.#hash.updateBehind(span);
    this.#pending.catch(() => {});
  }

  /** The digest (hex) once every chunk is hashed. */
  async hex(): Promise<string> {
    const span = this.#span;
    this.#span = undefined;
    if (span) await this.#start(span);
    await this.#pending;
    return this.#hash.hex();
  }

  /** Waits for the span being hashed, whatever comes of it; the rest is dropped. */
  async settle(): Promise<void> {
    this.#span = undefined;
    await this.#pending.catch(() => {});
  }
}

/** The pump of every other format: the stages as Web Streams. */
function streamPump(
  head: StreamHead,
  compression: Compression,
  sink: WritableStream<Uint8Array>,
  packing: TarSplitPackerOptions,
  recycle: boolean,
): LayerPump {
  const compressed = new DigestStream();
  const uncompressed = new DigestStream();
  const decompressed = decompressAs(
    sourceStream(head).pipeThrough(compressed),
    compression,
    recycle ? { ring: APPLY_RING } : {},
  );
  const tarBytes = compression === Compression.Uncompressed
    ? decompressed
    : decompressed.pipeThrough(uncompressed);
  const reader = tarBytes.pipeThrough(new TarSplitPacker(sink, packing)).getReader();
  return {
    async next() {
      const r = await reader.read();
      return r.done ? null : r.value;
    },
    received: () => compressed.size,
    async digests() {
      // An uncompressed layer's two digests are one: hashing it twice costs as much as the rest.
      const [c, u] = await Promise.all([
        compressed.result,
        compression === Compression.Uncompressed ? compressed.result : uncompressed.result,
      ]);
      return { compressed: c, uncompressed: u };
    },
    async stop(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  };
}

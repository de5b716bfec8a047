/**
 * Layer compression: detection by magic bytes, streaming decompression of
 * gzip, zstd, xz and bzip2, and streaming compression to gzip and zstd.
 *
 * Which engine does what, and why:
 * - gzip is decoded by ISA-L (ffi/isal.ts, Debian's `libisal2`) when the
 *   library is there: about four times as fast as zlib, and on another
 *   thread, so decoding overlaps with the rest of the pipeline. Without it,
 *   `node:zlib` does it (same bytes, same errors).
 * - gzip and zstd use `node:zlib` (native zlib and libzstd inside Deno). Web
 *   `DecompressionStream("gzip")` is not used for reading because it rejects
 *   multi-member gzip (pigz, concatenated layers) that Go's reader accepts,
 *   and it measured slower than `node:zlib`.
 * - xz and bzip2 have no decoder in Deno; we spawn `xz -dc` / `bzip2 -dc`
 *   (Debian's xz-utils and bzip2, present wherever containers run) rather
 *   than take an npm package: the available pure-JS decoders are unmaintained
 *   or slow, and the native tools stream with bounded memory. Missing tools
 *   give an error naming them.
 *
 * Every stream is checked to its end, as Go's readers (and so the reference
 * CLI) check it: a stream cut short is an ErrBadArchive ending in "unexpected
 * EOF", bytes after the last gzip member, zstd frame or bzip2 stream are
 * refused (xz's zero padding excepted), and a decoder's failure, however the
 * decoder reports it, errors the returned stream with an ErrBadArchive. A
 * failure to read the input is passed on as it is.
 *
 * @example
 * ```ts ignore
 * import { decompressStream } from "./compression.ts";
 * const { compression, stream } = await decompressStream((await Deno.open("layer.tar.gz")).readable);
 * ```
 * @module
 */

import type * as zlib from "node:zlib";
import { ErrBadArchive, ErrPermission } from "../errors.ts";
import { inflateError, type IsalInflate, isalInflate } from "../../ffi/isal.ts";
import { type ZstdDecoder, zstdDecoder } from "../../ffi/zstd.ts";
import { ByteRing, type ChunkSource, type RingSize, sourceStream } from "./ring.ts";

/** Compression of a layer, numbered as containers/storage's archive.Compression. */
export enum Compression {
  /** Plain tar. */
  Uncompressed = 0,
  /** bzip2. */
  Bzip2 = 1,
  /** gzip. */
  Gzip = 2,
  /** xz. */
  Xz = 3,
  /** zstd. */
  Zstd = 4,
}

/** Lower-case name of a compression, as used in messages. */
export function compressionName(c: Compression): string {
  return ["uncompressed", "bzip2", "gzip", "xz", "zstd"][c] ?? `compression ${c}`;
}

const MAGIC: [Compression, number[]][] = [
  [Compression.Bzip2, [0x42, 0x5a, 0x68]],
  [Compression.Gzip, [0x1f, 0x8b, 0x08]],
  [Compression.Xz, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  [Compression.Zstd, [0x28, 0xb5, 0x2f, 0xfd]],
];

/** Longest magic; this many leading bytes are enough to detect. */
export const MAGIC_LEN = 6;

/** The compression whose magic starts `bytes` (Uncompressed if none). */
export function detectCompression(bytes: Uint8Array): Compression {
  for (const [c, m] of MAGIC) {
    if (bytes.length >= m.length && m.every((b, i) => bytes[i] === b)) return c;
  }
  return Compression.Uncompressed;
}

/**
 * A decoder's own words, on one line: the CLI prints errors as one line, and
 * the spawned tools write paragraphs ("bzip2: … perhaps it is corrupted?").
 */
function firstLine(text: string): string {
  return text.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? "";
}

/** Wraps decoder failures so callers see which format was bad and why. */
function badData(c: Compression, cause: unknown): ErrBadArchive {
  // node:zlib's zstd messages repeat what ours already say
  const why = (cause instanceof Error ? cause.message : String(cause))
    .replace(/^Zstd decompress error: /, "");
  return new ErrBadArchive(undefined, {
    detail: `invalid ${compressionName(c)} data: ${firstLine(why)}`,
    cause,
  });
}

/**
 * A compressed stream that stops before its end. The words end as Go's
 * io.ErrUnexpectedEOF does, which is what the reference CLI prints for a
 * truncated layer of every format.
 */
function truncated(c: Compression, cause?: unknown): ErrBadArchive {
  return new ErrBadArchive(undefined, {
    detail: `truncated ${compressionName(c)} data: unexpected EOF`,
    cause,
  });
}

/** A decoder that stopped before the end of its input (Go refuses what follows the last stream). */
function trailing(c: Compression, bytes: number): ErrBadArchive {
  return new ErrBadArchive(undefined, {
    detail: `invalid ${
      compressionName(c)
    } data: ${bytes} bytes after the end of the compressed stream`,
  });
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames have magics 0x184D2A50 to 0x184D2A5F. */
const ZSTD_SKIPPABLE = 0x184d2a50;

const enum ZstdField {
  Magic,
  SkippableSize,
  Descriptor,
  BlockHeader,
}

/**
 * Follows the frame structure of a zstd stream (RFC 8878: frame headers,
 * block headers, checksums, skippable frames) without decoding it, to find
 * where each frame ends. Deno 2.9's node:zlib zstd decoder stops at the end
 * of the first frame and drops the rest of the stream (concatenated or
 * multi-frame zstd), and ends quietly on a frame cut short (even one missing
 * only its checksum); so each frame gets a decoder of its own, and a stream
 * that does not end where a frame ends is truncated.
 */
class ZstdFrames {
  #field = ZstdField.Magic;
  #bytes = new Uint8Array(4);
  #have = 0;
  #want = 4;
  /** Bytes to pass over (a header's rest, a block's content, a checksum) before the next field. */
  #skip = 0;
  #checksum = false;

  /**
   * Follows `chunk` up to the end of the current frame; returns how many of
   * its bytes belong to that frame. Throws ErrBadArchive at a magic or block
   * type no zstd decoder accepts.
   */
  scan(chunk: Uint8Array): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i);
        this.#skip -= n;
        i += n;
      } else {
        const n = Math.min(this.#want - this.#have, chunk.length - i);
        this.#bytes.set(chunk.subarray(i, i + n), this.#have);
        this.#have += n;
        i += n;
        if (this.#have === this.#want) {
          this.#have = 0;
          this.#next();
        }
      }
      if (this.complete) break;
    }
    return i;
  }

  /** Whether the bytes seen so far end where a frame ends. */
  get complete(): boolean {
    return this.#field === ZstdField.Magic && this.#have === 0 && this.#skip === 0;
  }

  #next(): void {
    const b = this.#bytes;
    const bad = (what: string) =>
      new ErrBadArchive(undefined, { detail: `invalid zstd data: ${what}` });
    switch (this.#field) {
      case ZstdField.Magic: {
        const magic = (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) >>> 0;
        if (magic === ZSTD_MAGIC) {
          this.#field = ZstdField.Descriptor;
          this.#want = 1;
        } else if ((magic & 0xfffffff0) >>> 0 === ZSTD_SKIPPABLE) {
          this.#field = ZstdField.SkippableSize;
        } else {
          throw bad("magic number mismatch");
        }
        return;
      }
      case ZstdField.SkippableSize:
        this.#skip = (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24) >>> 0;
        this.#field = ZstdField.Magic;
        return;
      case ZstdField.Descriptor: {
        const d = b[0];
        if (d & 0x08) throw bad("reserved bit set in the frame header");
        const single = (d >> 5) & 1;
        this.#checksum = ((d >> 2) & 1) === 1;
        // window descriptor, dictionary ID, frame content size
        this.#skip = (single ? 0 : 1) + [0, 1, 2, 4][d & 3] + [single, 2, 4, 8][d >> 6];
        this.#field = ZstdField.BlockHeader;
        this.#want = 3;
        return;
      }
      case ZstdField.BlockHeader: {
        const h = b[0] | b[1] << 8 | b[2] << 16;
        const type = (h >> 1) & 3;
        if (type === 3) throw bad("reserved block type");
        // an RLE block holds one byte, repeated
        this.#skip = type === 1 ? 1 : h >>> 3;
        if (h & 1) {
          if (this.#checksum) this.#skip += 4;
          this.#field = ZstdField.Magic;
          this.#want = 4;
        }
        return;
      }
    }
  }
}

/**
 * Deno 2.9's node:zlib resumes a decoder whose output buffer filled in a
 * process.nextTick callback that has no try/catch, so corrupt zstd data met
 * there is thrown into the event loop ("Uncaught Error: Zstd decompress
 * error: …", which kills the process) instead of erroring the stream.
 * Wrapping the handle's native write (the one `Object.getPrototypeOf(handle).write`
 * names) turns such a throw into `destroy(error)`, which errors the stream as
 * every other zlib failure does. Without that property (another Deno) the
 * engine is left as is.
 */
function routeThrownErrors(engine: zlib.Gunzip | zlib.ZstdDecompress): void {
  const handle = (engine as unknown as { _handle?: Record<symbol, unknown> })._handle;
  if (!handle) return;
  const native = Object.getPrototypeOf(handle)?.write;
  const key = Object.getOwnPropertySymbols(handle).find((k) => handle[k] === native);
  if (!key || typeof native !== "function") return;
  handle[key] = function (this: unknown, ...args: unknown[]) {
    try {
      return native.apply(this, args);
    } catch (e) {
      engine.destroy(e as Error);
    }
  };
}

/**
 * node:zlib, loaded at first use (as node:stream is): Node's modules cost
 * start-up time and about 11 MB of peak RSS, and a diff, or an import of
 * gzip with ISA-L, needs neither.
 */
function nodeZlib(): typeof zlib {
  return process.getBuiltinModule("node:zlib");
}

/** A node:zlib decoder's output, and what it knows when that output ends or fails. */
interface ZlibDecoder {
  /** The decoded bytes. */
  out: ReadableStreamDefaultReader<Uint8Array>;
  /** How many bytes of the input the decoder left unread. */
  unread(): number;
  /** The failure of `out` as the caller sees it. */
  error(e: unknown): unknown;
}

/** One node:zlib decoder over `input`. */
function zlibDecoder(
  input: ReadableStream<Uint8Array>,
  c: Compression.Gzip | Compression.Zstd,
): ZlibDecoder {
  // output in 64 KiB pieces (node's default is 16 KiB): fewer stream steps per byte
  const opts = { chunkSize: 1 << 16 };
  const engine = c === Compression.Gzip
    ? nodeZlib().createGunzip(opts)
    : nodeZlib().createZstdDecompress(opts);
  routeThrownErrors(engine);
  const src = input.getReader();
  let fed = 0;
  // A failure to read the input (a network or disk error, or the zstd frame
  // check) reaches the decoder's output too; it is passed on as it is, not
  // reported as bad data.
  let inputFailure: { error: unknown } | undefined;
  const counted = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await src.read();
      } catch (error) {
        inputFailure = { error };
        throw error;
      }
      if (r.done) return ctl.close();
      fed += r.value.length;
      ctl.enqueue(r.value);
    },
    cancel: (reason) => src.cancel(reason),
  }, { highWaterMark: 0 });
  return {
    out: viaNode(counted, engine).getReader(),
    unread: () => fed - engine.bytesWritten,
    error(e) {
      if (inputFailure) return inputFailure.error;
      if (e instanceof ErrBadArchive) return e;
      // zlib's "unexpected end of file"
      if ((e as { code?: string })?.code === "Z_BUF_ERROR") return truncated(c, e);
      return badData(c, e);
    },
  };
}

/** Output chunk of the ISA-L decoder when it has no ring to reuse. */
const ISAL_CHUNK = 256 << 10;

/**
 * Decodes gzip (every member, as Go's multistream reader) with ISA-L, one
 * output chunk per {@linkcode next}. A member that does not start where the
 * last one ended is refused as Go refuses it (an invalid header); input
 * that ends inside a member is truncated.
 */
export class IsalGunzip implements PullDecoder {
  #ended = false;
  /** The last inflate filled its buffer: ISA-L may hold more output for the same input. */
  #full = false;
  /** Whether input has been seen (the first chunk holds the first header's flags). */
  #seen = false;
  /** Set when the input itself failed: that is the error to report, not a decoding one. */
  inputFailure?: { error: unknown };

  /**
   * @param src The compressed input.
   * @param inf The decoder's state.
   * @param ring Output buffers to reuse (each chunk valid until the ring comes round);
   *   fresh ones of 256 KiB without.
   */
  constructor(
    readonly src: ChunkSource,
    readonly inf: IsalInflate,
    readonly ring?: ByteRing,
  ) {}

  /** The next decoded chunk, or null at the end of the last member. */
  async next(): Promise<Uint8Array | null> {
    const c = Compression.Gzip;
    const inf = this.inf;
    for (;;) {
      if (inf.finished && inf.availIn === 0 && !this.#full) {
        // between members: the stream may end here
        if (this.#ended) return null;
      }
      if (inf.availIn === 0 && !this.#full) {
        if (this.#ended) throw truncated(c);
        const r = await readInput(this);
        if (r.done) {
          this.#ended = true;
          continue;
        }
        if (r.value.length === 0) continue;
        // zlib's check, kept so both decoders refuse the same headers (ISA-L ignores these bits)
        if (!this.#seen && r.value.length > 3 && (r.value[3] & 0xe0) !== 0) {
          throw badData(c, new Error("unknown header flags set"));
        }
        this.#seen = true;
        inf.setInput(r.value);
      }
      if (inf.finished && !this.#full) inf.reset(); // another member follows
      const out = this.ring?.room() ?? new Uint8Array(ISAL_CHUNK);
      const { status, produced } = inf.inflate(out);
      if (status < 0) throw badData(c, new Error(inflateError(status)));
      this.ring?.advance(produced);
      this.#full = produced === out.length;
      if (produced > 0) return out.subarray(0, produced);
    }
  }

  /** Lets go of the input the decoder points into (after the end or a failure). */
  free(): void {
    this.inf.free();
  }
}

/** A libzstd decoder of `src`, or undefined when libzstd is not usable. */
export function libzstdOf(src: ChunkSource, ring?: RingSize): LibzstdDecoder | undefined {
  const z = zstdDecoder();
  return z && new LibzstdDecoder(src, z, ring);
}

/** An ISA-L gzip decoder of `src`, or undefined when ISA-L is not usable. */
export function isalGunzipOf(src: ChunkSource, ring?: RingSize): IsalGunzip | undefined {
  const inf = isalInflate();
  return inf && new IsalGunzip(src, inf, ring && new ByteRing(ring));
}

/** A decoder pulled one output chunk at a time ({@linkcode IsalGunzip}, {@linkcode LibzstdDecoder}). */
export interface PullDecoder {
  /** Its input. */
  readonly src: ChunkSource;
  /** Set when the input itself failed. */
  inputFailure?: { error: unknown };
  /** The next decoded chunk, or null at the end. */
  next(): Promise<Uint8Array | null>;
  /** Releases what the decoder holds. */
  free(): void;
}

/** Reads a decoder's next input chunk; a failure to read is noted as the input's own. */
async function readInput(d: PullDecoder): Promise<ReadableStreamReadResult<Uint8Array>> {
  try {
    return await d.src.read();
  } catch (error) {
    d.inputFailure = { error };
    throw error;
  }
}

/** A {@linkcode PullDecoder} as a stream. */
function pullStream(d: PullDecoder): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const out = await d.next();
        if (out) ctl.enqueue(out);
        else {
          d.free();
          ctl.close();
        }
      } catch (e) {
        d.free();
        ctl.error(d.inputFailure ? d.inputFailure.error : e);
        await d.src.cancel(e).catch(() => {});
      }
    },
    async cancel(reason) {
      d.free();
      await d.src.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Decodes gzip (every member), with ISA-L when it is there, with node:zlib
 * otherwise, checked to the end: node:zlib stops quietly at zero bytes after
 * a member, which Go's reader refuses.
 */
function gunzip(
  input: ReadableStream<Uint8Array>,
  ring?: RingSize,
): ReadableStream<Uint8Array> {
  const inf = isalInflate();
  if (inf) return pullStream(new IsalGunzip(input.getReader(), inf, ring && new ByteRing(ring)));
  const d = zlibDecoder(ring ? copied(input) : input, Compression.Gzip);
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const r = await d.out.read();
        if (!r.done) return ctl.enqueue(r.value);
        if (d.unread() > 0) throw trailing(Compression.Gzip, d.unread());
        ctl.close();
      } catch (e) {
        ctl.error(d.error(e));
      }
    },
    cancel: (reason) => d.out.cancel(reason),
  }, { highWaterMark: 0 });
}

/** Decodes zstd frame by frame (see {@linkcode ZstdFrames}), each with its own decoder. */
function unzstd(input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const c = Compression.Zstd;
  const src = input.getReader();
  const frames = new ZstdFrames();
  let pending: Uint8Array = new Uint8Array(0);
  let ended = false;
  let frame: ZlibDecoder | undefined;
  /** Reads the next chunk of input into `pending` (false at its end). */
  const fill = async (): Promise<boolean> => {
    while (pending.length === 0 && !ended) {
      const r = await src.read();
      if (r.done) ended = true;
      else pending = r.value;
    }
    return pending.length > 0;
  };
  /** The input from `pending` on, up to the end of the frame that starts there. */
  const frameInput = () =>
    new ReadableStream<Uint8Array>({
      async pull(ctl) {
        // input that ends inside the frame: the frame check below reports it
        if (!await fill()) return ctl.close();
        const n = frames.scan(pending);
        ctl.enqueue(pending.subarray(0, n));
        pending = pending.subarray(n);
        if (frames.complete) ctl.close();
      },
    }, { highWaterMark: 0 });
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        for (;;) {
          if (!frame) {
            if (!await fill()) return ctl.close();
            frame = zlibDecoder(frameInput(), c);
          }
          const r = await frame.out.read();
          if (!r.done) return ctl.enqueue(r.value);
          if (!frames.complete) throw truncated(c);
          if (frame.unread() > 0) throw trailing(c, frame.unread());
          frame = undefined;
        }
      } catch (e) {
        // with no frame under way, the input failed to be read
        ctl.error(frame ? frame.error(e) : e);
        await src.cancel(e).catch(() => {});
      }
    },
    async cancel(reason) {
      await frame?.out.cancel(reason).catch(() => {});
      await src.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Decodes zstd with libzstd (ffi/zstd.ts), every frame in turn, one output
 * chunk per {@linkcode next}. The frame structure is followed as for the
 * node:zlib path ({@linkcode ZstdFrames}), so that both refuse the same
 * streams in the same words: a bad magic or reserved bit, bytes after the
 * last frame, a stream that stops inside a frame.
 */
export class LibzstdDecoder implements PullDecoder {
  readonly #frames = new ZstdFrames();
  readonly #ring: ByteRing | undefined;
  #ended = false;
  /** The last step filled its buffer: libzstd may hold more output. */
  #full = false;
  /** The last step ended a frame, all of it given out. */
  #frameDone = true;
  /** Set when the input itself failed: that is the error to report, not a decoding one. */
  inputFailure?: { error: unknown };

  /**
   * @param src The compressed input.
   * @param z The decoder (freed here at the end, on failure and on {@linkcode free}).
   * @param ring Output buffers to reuse; fresh ones of 256 KiB without.
   */
  constructor(readonly src: ChunkSource, readonly z: ZstdDecoder, ring?: RingSize) {
    this.#ring = ring && new ByteRing(ring);
  }

  /** The next decoded chunk, or null after the last frame. */
  async next(): Promise<Uint8Array | null> {
    const c = Compression.Zstd;
    const z = this.z;
    for (;;) {
      if (z.availIn === 0 && !this.#full) {
        if (this.#ended) {
          if (!this.#frames.complete || !this.#frameDone) throw truncated(c);
          return null;
        }
        const r = await readInput(this);
        if (r.done) {
          this.#ended = true;
          continue;
        }
        for (let i = 0; i < r.value.length;) i += this.#frames.scan(r.value.subarray(i));
        z.setInput(r.value);
      }
      const out = this.#ring?.room() ?? new Uint8Array(ISAL_CHUNK);
      const step = z.decompress(out);
      if (step.error !== undefined) throw badData(c, new Error(step.error));
      this.#ring?.advance(step.produced);
      this.#full = step.produced === out.length;
      this.#frameDone = step.frameDone;
      if (step.produced > 0) return out.subarray(0, step.produced);
    }
  }

  /** Releases libzstd's context. */
  free(): void {
    this.z.free();
  }
}

function viaNode(
  input: ReadableStream<Uint8Array>,
  t: zlib.Gunzip | zlib.Gzip | zlib.ZstdCompress | zlib.ZstdDecompress,
): ReadableStream<Uint8Array> {
  const { Duplex } = process.getBuiltinModule("node:stream");
  const pair = Duplex.toWeb(t) as unknown as TransformStream<Uint8Array, Uint8Array>;
  return input.pipeThrough(pair);
}

/** What the spawned tools say when their input stops before the end of a stream. */
const TOOL_TRUNCATED = /Unexpected end of input|ends unexpectedly/;
/** bzip2's warning (exit 0) for bytes after the last stream, which Go refuses. */
const TOOL_TRAILING = /trailing garbage after EOF/;

/**
 * Pipes `input` through an external decompressor (`xz -dc`, `bzip2 -dc`).
 * Its exit status is the verdict: a non-zero exit errors the stream with
 * its first line of stderr (the tool's refusal, not the broken pipe we then
 * meet writing to it). The child is killed and reaped when the stream
 * fails or is cancelled.
 */
function viaCommand(
  input: ReadableStream<Uint8Array>,
  cmd: string,
  c: Compression,
): ReadableStream<Uint8Array> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args: ["-dc"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (cause) {
    if (cause instanceof Deno.errors.NotCapable) {
      throw new ErrPermission(`--allow-run=${cmd}`, {
        detail: `${compressionName(c)} layers are decompressed by ${cmd}; ` +
          `run deno with --allow-run=${cmd}`,
        cause,
      });
    }
    throw new ErrBadArchive(undefined, {
      detail: `cannot decompress ${compressionName(c)}: ${cmd} not runnable`,
      cause,
    });
  }
  const source = input.getReader();
  // A failure to read the input is the stream's error; a failure to write to
  // the tool means it exited, and its status says why.
  let sourceFailure: { error: unknown } | undefined;
  let allFed = false;
  const fed = (async () => {
    const stdin = child.stdin.getWriter();
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await source.read();
        } catch (e) {
          sourceFailure = { error: e };
          throw e;
        }
        if (r.done) break;
        await stdin.write(r.value);
      }
      await stdin.close();
      allFed = true;
    } catch (e) {
      await stdin.abort(e).catch(() => {});
    }
  })();
  const stderr = new Response(child.stderr).text().catch(() => "");
  const out = child.stdout.getReader();
  /** Kills the tool, stops reading the input and waits for both, so no child or read is left. */
  const stop = async (reason: unknown) => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await Promise.all([out.cancel(reason).catch(() => {}), source.cancel(reason).catch(() => {})]);
    await Promise.all([child.status, fed, stderr]);
  };
  /** The error of a tool's run that ended, or undefined when it decoded all of the input. */
  const verdict = async (): Promise<unknown> => {
    const status = await child.status;
    if (!status.success) await stop(undefined);
    else await fed;
    const said = await stderr;
    if (sourceFailure) return sourceFailure.error;
    if (!status.success) {
      if (TOOL_TRUNCATED.test(said)) return truncated(c);
      const why = firstLine(said).replace(/^.*\(stdin\): /, "").replace(/^\S*bzip2: /, "");
      return badData(c, new Error(`${cmd}: ${why || `exit status ${status.code}`}`));
    }
    if (TOOL_TRAILING.test(said) || !allFed) {
      return badData(c, new Error("trailing garbage after the end of the stream"));
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await out.read();
      } catch (e) {
        await stop(e);
        return ctl.error(badData(c, e));
      }
      if (!r.done) return ctl.enqueue(r.value);
      const e = await verdict();
      if (e === undefined) ctl.close();
      else ctl.error(e);
    },
    cancel: stop,
  }, { highWaterMark: 0 });
}

/** Options of {@linkcode decompressAs} and {@linkcode decompressStream}. */
export interface DecompressOptions {
  /**
   * The input's chunks are views of a ring of reused buffers (see
   * ring.ts), and output chunks may be too (gzip with ISA-L: a ring of
   * this size): each is valid until `count` more have been read. For a
   * consumer done with every chunk before it reads on. Decoders that keep
   * input chunks for longer (node:zlib, the spawned tools) get copies.
   */
  ring?: RingSize;
}

/** `input` with every chunk copied: for a decoder that keeps chunks past the ring's turn. */
function copied(input: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return input.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({ transform: (c, ctl) => ctl.enqueue(c.slice()) }),
  );
}

/** Decompresses `stream` in the given format. */
export function decompressAs(
  stream: ReadableStream<Uint8Array>,
  c: Compression,
  opts: DecompressOptions = {},
): ReadableStream<Uint8Array> {
  switch (c) {
    case Compression.Uncompressed:
      return stream;
    case Compression.Gzip:
      return gunzip(stream, opts.ring);
    case Compression.Zstd: {
      // libzstd is done with each input chunk before it reads the next: no copies
      const z = zstdDecoder();
      if (z) return pullStream(new LibzstdDecoder(stream.getReader(), z, opts.ring));
      return unzstd(opts.ring ? copied(stream) : stream);
    }
    case Compression.Xz:
      return viaCommand(opts.ring ? copied(stream) : stream, "xz", c);
    case Compression.Bzip2:
      return viaCommand(opts.ring ? copied(stream) : stream, "bzip2", c);
  }
}

/**
 * Reads enough of `stream` to detect its compression and returns the
 * decompressed stream (the peeked bytes are not lost).
 */
export async function decompressStream(
  stream: ReadableStream<Uint8Array>,
  opts: DecompressOptions = {},
): Promise<{
  compression: Compression;
  stream: ReadableStream<Uint8Array>;
}> {
  const reader = stream.getReader();
  const head = await readHead(reader);
  const compression = detectCompression(head.bytes);
  return { compression, stream: decompressAs(sourceStream(head), compression, opts) };
}

/** The first bytes of a stream, read to detect its compression, and the stream from its start. */
export interface StreamHead extends ChunkSource {
  /** At least the magic numbers' length of bytes, unless the stream is shorter. */
  bytes: Uint8Array;
}

/**
 * Reads enough of `reader` to detect its compression; the head's `read`
 * then gives those bytes and the rest of the stream.
 */
export async function readHead(reader: ChunkSource): Promise<StreamHead> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  let ended = false;
  while (n < MAGIC_LEN) {
    const r = await reader.read();
    if (r.done) {
      ended = true;
      break;
    }
    chunks.push(r.value);
    n += r.value.length;
  }
  const bytes = chunks.length === 1 ? chunks[0] : new Uint8Array(n);
  if (chunks.length > 1) {
    let o = 0;
    for (const h of chunks) {
      bytes.set(h, o);
      o += h.length;
    }
  }
  let sent = false;
  return {
    bytes,
    read: () => {
      if (!sent) {
        sent = true;
        if (bytes.length) return Promise.resolve({ done: false, value: bytes });
      }
      return ended ? Promise.resolve({ done: true, value: undefined }) : reader.read();
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

/** Compresses `stream` with gzip or zstd (`level` as the format's own scale). */
export function compressStream(
  stream: ReadableStream<Uint8Array>,
  compression: Compression.Gzip | Compression.Zstd,
  level?: number,
): ReadableStream<Uint8Array> {
  if (compression === Compression.Gzip) {
    return viaNode(stream, nodeZlib().createGzip(level === undefined ? {} : { level }));
  }
  if (compression === Compression.Zstd) {
    const z = nodeZlib();
    const params = level === undefined ? {} : { [z.constants.ZSTD_c_compressionLevel]: level };
    return viaNode(stream, z.createZstdCompress({ params }));
  }
  throw new Error(`cannot compress to ${compressionName(compression)}`);
}

/**
 * tar-split: the layout of a layer tarball recorded next to the layer
 * (`<id>.tar-split.gz`), in vbatts/tar-split's format as containers/storage
 * 1.43 writes and reads it, so that `diff` can rebuild the exact bytes that
 * were applied from the files on disk.
 *
 * The file is gzip'd JSON lines, written as Go's encoding/json writes them:
 * - `{"type":2,"payload":"<base64>","position":N}`: raw header, extension,
 *   padding and end-of-archive bytes between file bodies;
 * - `{"type":1,"name":"…","size":N,"payload":"<base64 CRC-64/ISO>","position":N}`:
 *   one entry whose body is not stored (`size` omitted and `payload` null
 *   when it has no body; `name_raw` instead of `name` for non-UTF-8 names).
 * After the end of the archive come the trailing bytes and a final empty
 * segment, as tar-split's disassembler emits them.
 *
 * A GNU sparse file (PAX formats) is recorded as raw segments only, map and
 * data regions included, with no file entry: its files on disk hold the
 * expanded content, from which no rebuild can recover the packed form, and
 * this way both our {@linkcode rebuildTar} and containers-storage's rebuild
 * the original bytes. (containers-storage 1.43 records the expanded content
 * as a file entry instead, so its own `diff` of such a layer differs from
 * what was applied; rebuilding its records gives the same bytes as its diff.)
 * The price is the sparse files' data regions stored in the tar-split, in
 * segments of at most 1 MiB.
 *
 * @example
 * ```ts ignore
 * import { TarSplitPacker, rebuildTar } from "./tar_split.ts";
 * const sink = (await Deno.create("layer.tar-split.gz")).writable;
 * const tar = (await Deno.open("layer.tar")).readable.pipeThrough(new TarSplitPacker(sink));
 * await tar.pipeTo(new WritableStream()); // e.g. the driver's apply
 * ```
 * @module
 */

import { ErrBadArchive } from "../errors.ts";
import { decodeOsString, encodeOsString } from "../os_string.ts";
import type { FileGetter } from "./file_getter.ts";
import { Compression, decompressAs } from "./compression.ts";
import type { RingSize } from "./ring.ts";
import { Crc64 } from "./crc64.ts";
import { GzipWriter } from "./gzip_writer.ts";
import { cleanPath, type TarHeader } from "./tar_header.ts";
import { TarParser } from "./tar_reader.ts";
import { LineBuffer } from "./line_buffer.ts";
import { scanTarSplitLine } from "./tar_split_scan.ts";

/** Entry type of a file (body not stored). */
export const FILE_TYPE = 1;
/** Entry type of a raw segment. */
export const SEGMENT_TYPE = 2;

/** Largest segment of trailing bytes (tar-split reads the tail in 1 MiB chunks) or sparse data. */
const TAIL_CHUNK = 1 << 20;
/** The ring a tar-split stream is inflated into when it is read. */
const TAR_SPLIT_RING: RingSize = { count: 2, size: 256 << 10 };

/** Size of the chunks {@linkcode rebuildTar} produces. */
export const REBUILD_CHUNK = 256 << 10;
/** JSON lines are handed to gzip in batches of about this many bytes. */
const BATCH = 64 << 10;

/** tar-split's ErrDuplicatePath: it cannot record two entries of one (cleaned) path. */
const ERR_DUPLICATE = "duplicates of file paths not supported";

/** Go's encoding/json string encoding (HTML-safe, \u00XX for most control bytes). */
export function goJsonString(s: string): string {
  // deno-lint-ignore no-control-regex -- control bytes are exactly what needs escaping
  if (!/[\x00-\x1f"\\<>&\u2028\u2029]/.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += "\\u" + c.toString(16).padStart(4, "0");
    } else out += s[i];
  }
  return out + '"';
}

function fromBase64(s: string): Uint8Array {
  return (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64(s);
}

/** A growable byte buffer for raw segment bytes. */
class Bytes {
  buf = new Uint8Array(4096);
  len = 0;

  push(b: Uint8Array): void {
    if (this.len + b.length > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + b.length) cap *= 2;
      const nb = new Uint8Array(cap);
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  take(): Uint8Array {
    const v = this.buf.subarray(0, this.len);
    this.len = 0;
    return v;
  }
}

/** Options of {@linkcode TarSplitPacker}. */
export interface TarSplitPackerOptions {
  /** Called with each entry's header, in order. */
  onHeader?: (header: TarHeader) => void;
  /**
   * Record the final empty segment (default true). tar-split records one
   * more segment for the read that returns end-of-file; it is absent when the
   * reference's decompressor returns end-of-file together with the last
   * bytes (its xz and zstd readers do).
   */
  finalEmptySegment?: boolean;
}

/**
 * Records the tar-split layout of a tar pushed through it, chunk by chunk,
 * and writes it, gzip-compressed, to `sink`: the core of
 * {@linkcode TarSplitPacker}, for a pipeline that pulls its chunks itself.
 * Malformed tar input makes {@linkcode push} or {@linkcode end} throw
 * {@linkcode ErrBadArchive}; the sink is closed by {@linkcode end} and
 * aborted when the input fails.
 */
export class TarSplitRecorder {
  /** Records `chunk`, the next bytes of the tar. */
  readonly push: (chunk: Uint8Array) => Promise<void>;
  /** The tar has ended: records its end, and closes the sink once it has the last bytes. */
  readonly end: () => Promise<void>;
  /** Aborts the sink (the input failed). */
  readonly abort: (reason: unknown) => Promise<void>;

  /**
   * @param sink Receives the gzip-compressed JSON lines.
   * @param opts `onHeader` sees every entry's header (saves callers a second parse).
   */
  constructor(sink: WritableStream<Uint8Array>, opts: TarSplitPackerOptions = {}) {
    const onHeader = opts.onHeader;
    const gz = new GzipWriter(sink);
    const lines = new LineBuffer();
    let pos = 0;
    const seg = new Bytes();
    const tail = new Bytes();
    let inTail = false;
    let name = "";
    const crc = new Crc64();
    let size = 0;
    let sparse = false;
    const seen = new Set<string>();

    const segment = (b: Uint8Array) => {
      lines.ascii('{"type":2,"payload":"');
      lines.base64(b);
      lines.ascii('","position":');
      lines.decimal(pos++);
      lines.ascii("}\n");
    };
    const flushSegment = () => {
      if (seg.len) segment(seg.take());
    };
    const parser = new TarParser({
      raw: (b) => seg.push(b),
      header: (h) => {
        onHeader?.(h);
        flushSegment();
        sparse = h.sparse !== undefined;
        name = h.name;
        crc.reset();
        size = 0;
      },
      data: (b) => {
        if (!sparse) {
          crc.update(b);
          size += b.length;
          return;
        }
        for (let i = 0; i < b.length;) {
          const take = Math.min(TAIL_CHUNK - seg.len, b.length - i);
          seg.push(b.subarray(i, i + take));
          i += take;
          if (seg.len === TAIL_CHUNK) flushSegment();
        }
      },
      entryEnd: () => {
        // Checked for sparse files too, which are recorded as segments: tar-split refuses them.
        const key = cleanPath(name);
        if (seen.has(key)) throw new ErrBadArchive(name, { detail: ERR_DUPLICATE });
        seen.add(key);
        if (sparse) return;
        lines.ascii('{"type":1,');
        // tar-split keeps a name that is not UTF-8 as bytes, in base64.
        if (name.isWellFormed()) {
          lines.ascii('"name":');
          lines.utf8(goJsonString(name));
        } else {
          lines.ascii('"name_raw":"');
          lines.base64(encodeOsString(name));
          lines.ascii('"');
        }
        if (size > 0) {
          lines.ascii(',"size":');
          lines.decimal(size);
          lines.ascii(',"payload":"');
          lines.base64(crc.digest());
          lines.ascii('","position":');
        } else {
          lines.ascii(',"payload":null,"position":');
        }
        lines.decimal(pos++);
        lines.ascii("}\n");
      },
      trailing: (b) => {
        if (!inTail) {
          flushSegment();
          inTail = true;
        }
        for (let i = 0; i < b.length;) {
          const take = Math.min(TAIL_CHUNK - tail.len, b.length - i);
          tail.push(b.subarray(i, i + take));
          i += take;
          if (tail.len === TAIL_CHUNK) segment(tail.take());
        }
      },
    });
    // The compressor has consumed a batch once its write settles: the buffer is reused.
    const drain = async (force: boolean) => {
      if (lines.length >= BATCH || (force && lines.length)) await gz.write(lines.take());
    };
    this.push = async (chunk) => {
      try {
        parser.push(chunk);
        await drain(false);
      } catch (e) {
        await gz.abort(e);
        throw e;
      }
    };
    this.end = async () => {
      try {
        parser.end();
        flushSegment();
        if (tail.len) segment(tail.take());
        if (opts.finalEmptySegment ?? true) segment(new Uint8Array(0));
        await drain(true);
        await gz.close();
      } catch (e) {
        await gz.abort(e);
        throw e;
      }
    };
    this.abort = (reason) => gz.abort(reason);
  }
}

/**
 * Passthrough that records the tar-split layout of the tar flowing through
 * it and writes it, gzip-compressed, to `sink` (see
 * {@linkcode TarSplitRecorder}). The output is the input, chunk for chunk.
 * Malformed tar input errors the stream with {@linkcode ErrBadArchive}; the
 * sink is closed when the input ends and aborted when it fails.
 */
export class TarSplitPacker extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * A pass-through stage that records the tar it sees as tar-split into `sink`.
   * @param sink Receives the gzip-compressed JSON lines.
   * @param opts `onHeader` sees every entry's header (saves callers a second parse).
   */
  constructor(sink: WritableStream<Uint8Array>, opts: TarSplitPackerOptions = {}) {
    const recorder = new TarSplitRecorder(sink, opts);
    super({
      async transform(chunk, ctl) {
        await recorder.push(chunk);
        ctl.enqueue(chunk);
      },
      flush: () => recorder.end(),
      cancel: (reason) => recorder.abort(reason),
    });
  }
}

/** One decoded tar-split entry. */
export interface TarSplitEntry {
  /** 1 = file, 2 = segment. */
  type: number;
  /** File name (from `name_raw` when that is what the entry has, decoded losslessly). */
  name?: string;
  /** Body size of a file entry. */
  size: number;
  /** Segment bytes, or the 8-byte CRC of a file entry; null when absent. */
  payload: Uint8Array | null;
  /** Position as recorded. */
  position: number;
}

/** Lines not in Go's compact shape are decoded as text and parsed as JSON. */
const lineText = new TextDecoder("utf-8", { ignoreBOM: true });

function parseLine(bytes: Uint8Array): TarSplitEntry | undefined {
  const fast = scanTarSplitLine(bytes);
  if (fast) return fast;
  const line = lineText.decode(bytes);
  if (!line.trim()) return undefined;
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(line);
  } catch (cause) {
    throw new ErrBadArchive(undefined, {
      detail: `malformed tar-split line ${JSON.stringify(line.slice(0, 80))}`,
      cause,
    });
  }
  return {
    type: Number(e.type),
    name: typeof e.name_raw === "string"
      ? decodeOsString(fromBase64(e.name_raw))
      : (e.name as string | undefined),
    size: Number(e.size ?? 0),
    payload: typeof e.payload === "string" ? fromBase64(e.payload) : null,
    position: Number(e.position ?? 0),
  };
}

/**
 * The entries of a gzip-compressed tar-split stream, those of each
 * decompressed chunk together. Lines are split and scanned as bytes
 * ({@linkcode scanTarSplitLine}): no text is decoded and no string is built
 * for a payload.
 */
async function* tarSplitBatches(
  tarSplit: ReadableStream<Uint8Array>,
): AsyncGenerator<TarSplitEntry[]> {
  const rest = new Bytes();
  let first = true;
  // ISA-L when it is there (a third of a diff's time went to DecompressionStream and its chunks)
  // Decoded into a ring: the 17 MB of a rootfs's lines in fresh 256 KiB chunks were
  // garbage enough to make V8 collect several times. A batch owns what it holds (names,
  // payloads; a line cut by a chunk's end is copied), so the ring may come round once
  // it is built. (Without ISA-L the file's chunks get copied for nothing.)
  for await (let chunk of decompressAs(tarSplit, Compression.Gzip, { ring: TAR_SPLIT_RING })) {
    if (first && chunk.length) {
      first = false;
      // A leading byte order mark is no part of the first line (as a text decoder drops it).
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    const batch: TarSplitEntry[] = [];
    let start = 0;
    try {
      for (let nl; (nl = chunk.indexOf(0x0a, start)) >= 0; start = nl + 1) {
        let line = chunk.subarray(start, nl);
        if (rest.len) {
          rest.push(line);
          line = rest.take();
        }
        const e = parseLine(line);
        if (e) batch.push(e);
      }
    } catch (e) {
      // The entries before a malformed line are read first, as they come.
      if (batch.length) yield batch;
      throw e;
    }
    // Copied: the decompressor may reuse the chunk's buffer.
    if (start < chunk.length) rest.push(chunk.subarray(start));
    if (batch.length) yield batch;
  }
  const e = rest.len ? parseLine(rest.take()) : undefined;
  if (e) yield [e];
}

/** Reads the entries of a gzip-compressed tar-split stream. */
export async function* readTarSplit(
  tarSplit: ReadableStream<Uint8Array>,
): AsyncGenerator<TarSplitEntry> {
  for await (const batch of tarSplitBatches(tarSplit)) yield* batch;
}

/**
 * Rebuilds the original tar stream from a gzip-compressed tar-split stream
 * and the layer's files. Each file's size and CRC-64 are checked against the
 * record. The caller closes `getter` when the stream is done.
 *
 * The result is a byte stream filled on demand: a default reader gets fresh
 * chunks of {@linkcode REBUILD_CHUNK} bytes, a BYOB reader
 * (`getReader({ mode: "byob" })`) gets its own buffer filled, so a consumer
 * that reuses one buffer rebuilds with no allocation per chunk.
 * Files from the getter's synchronous `open` (or streams with `readInto`, as
 * file_stream.ts makes them) are read straight into that buffer.
 */
export function rebuildTar(
  tarSplit: ReadableStream<Uint8Array>,
  getter: FileGetter,
): ReadableStream<Uint8Array> {
  /** The buffer being filled (the pending read's view) and how much of it is. */
  let out: Uint8Array = new Uint8Array(0);
  let len = 0;
  const crc = new Crc64();
  const probe = new Uint8Array(1);

  /** Copies what fits of `p` to the output; returns how much did. */
  const copyIn = (p: Uint8Array): number => {
    const k = Math.min(p.length, out.length - len);
    out.set(k === p.length ? p : p.subarray(0, k), len);
    len += k;
    return k;
  };

  /** Copies `p` to the output, suspending whenever the buffer is full. */
  async function* put(p: Uint8Array): AsyncGenerator<void> {
    for (let i = copyIn(p); i < p.length; i += copyIn(p.subarray(i))) yield;
  }

  /** Copies a stream's body to the output; returns the bytes read (size + 1 if there are more). */
  async function* copyStream(
    src: ReadableStream<Uint8Array>,
    size: number,
  ): AsyncGenerator<void, number> {
    let n = 0;
    for await (const c of src) {
      if (n + c.length > size) return size + 1; // leaving the loop cancels the stream
      crc.update(c);
      n += c.length;
      yield* put(c);
    }
    return n;
  }

  async function* fill(): AsyncGenerator<void> {
    const seen = new Set<string>();
    for await (const batch of tarSplitBatches(tarSplit)) {
      for (const e of batch) {
        if (e.type === SEGMENT_TYPE) {
          if (!e.payload) continue;
          // Inline while it fits: no generator per segment.
          const k = copyIn(e.payload);
          if (k < e.payload.length) yield* put(e.payload.subarray(k));
          continue;
        }
        if (e.type !== FILE_TYPE) {
          throw new ErrBadArchive(e.name, { detail: `unknown tar-split entry type ${e.type}` });
        }
        const name = e.name ?? "";
        const key = cleanPath(name);
        if (seen.has(key)) throw new ErrBadArchive(name, { detail: ERR_DUPLICATE });
        seen.add(key);
        const size = e.size;
        if (size === 0) continue;
        crc.reset();
        // A local file is read synchronously straight into the output, with
        // no stream or promise per file: most of a layer's files are small.
        const src = getter.open ? getter.open(name) : await getter.get(name);
        let n = 0;
        if ("readInto" in src) {
          try {
            for (;;) {
              if (len === out.length) yield;
              // Asking for one byte more than is left, where it fits, tells a file that
              // is longer than recorded without a read to find its end (a short read of a
              // local file is its end).
              const left = size - n;
              const room = out.length - len;
              const ask = left < room ? left + 1 : room;
              const view = out.subarray(len, len + ask);
              const k = src.readInto(view);
              if (k === null) break;
              if (k > left) {
                n = size + 1;
                break;
              }
              crc.update(view.subarray(0, k));
              len += k;
              n += k;
              if (n === size) {
                if (ask === left && src.readInto(probe) !== null) n++;
                break;
              }
            }
          } finally {
            src.release();
          }
        } else n = yield* copyStream(src, size);
        if (n !== size) {
          throw new ErrBadArchive(name, {
            detail: `file has ${
              n > size ? `more than ${size}` : n
            } bytes, tar-split recorded ${size}`,
          });
        }
        if (e.payload && !equal(crc.digest(), e.payload)) {
          throw new ErrBadArchive(name, { detail: "file integrity checksum failed" });
        }
      }
    }
  }
  const it = fill();
  let ended = false;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: REBUILD_CHUNK,
    async pull(ctl) {
      const req = ctl.byobRequest!;
      out = req.view as Uint8Array;
      len = 0;
      // Fill the whole view unless the archive ends first: fewer, fuller chunks.
      if (!ended) ended = (await it.next()).done!;
      if (len) req.respond(len);
      if (ended) {
        ctl.close();
        if (!len) req.respond(0);
      }
    },
    async cancel(reason) {
      await it.throw(reason).catch(() => {});
    },
  });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Layer compression: detection by magic bytes, streaming decompression of
 * gzip, zstd, xz and bzip2, and streaming compression to gzip and zstd.
 *
 * Which engine does what, and why:
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
 * @example
 * ```ts ignore
 * import { decompressStream } from "./compression.ts";
 * const { compression, stream } = await decompressStream((await Deno.open("layer.tar.gz")).readable);
 * ```
 * @module
 */

import { Duplex } from "node:stream";
import * as zlib from "node:zlib";
import { ErrBadArchive } from "../errors.ts";

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

/** Wraps decoder failures so callers see which format was bad and why. */
function badData(c: Compression, cause: unknown): ErrBadArchive {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ErrBadArchive(undefined, {
    detail: `invalid ${compressionName(c)} data: ${why}`,
    cause,
  });
}

function mapErrors(
  s: ReadableStream<Uint8Array>,
  c: Compression,
): ReadableStream<Uint8Array> {
  const reader = s.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const r = await reader.read();
        if (r.done) ctl.close();
        else ctl.enqueue(r.value);
      } catch (e) {
        ctl.error(e instanceof ErrBadArchive ? e : badData(c, e));
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

function viaNode(
  input: ReadableStream<Uint8Array>,
  t: zlib.Gunzip | zlib.Gzip | zlib.ZstdCompress | zlib.ZstdDecompress,
): ReadableStream<Uint8Array> {
  const pair = Duplex.toWeb(t) as unknown as TransformStream<Uint8Array, Uint8Array>;
  return input.pipeThrough(pair);
}

/** Pipes `input` through an external decompressor (`xz -dc`, `bzip2 -dc`). */
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
    throw new ErrBadArchive(undefined, {
      detail: `cannot decompress ${compressionName(c)}: ${cmd} not runnable`,
      cause,
    });
  }
  const fed = input.pipeTo(child.stdin).catch((e) => {
    try {
      child.kill();
    } catch {
      // already exited
    }
    return e;
  });
  const stderr = new Response(child.stderr).text();
  const out = child.stdout.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const r = await out.read();
      if (!r.done) return ctl.enqueue(r.value);
      const status = await child.status;
      const inputErr = await fed;
      if (inputErr) return ctl.error(inputErr);
      if (!status.success) {
        return ctl.error(
          badData(c, new Error(`${cmd}: ${(await stderr).trim() || `exit ${status.code}`}`)),
        );
      }
      ctl.close();
    },
    async cancel(reason) {
      await out.cancel(reason).catch(() => {});
      try {
        child.kill();
      } catch {
        // already exited
      }
      await child.status;
    },
  }, { highWaterMark: 0 });
}

/** Decompresses `stream` in the given format. */
export function decompressAs(
  stream: ReadableStream<Uint8Array>,
  c: Compression,
): ReadableStream<Uint8Array> {
  switch (c) {
    case Compression.Uncompressed:
      return stream;
    case Compression.Gzip:
      return mapErrors(viaNode(stream, zlib.createGunzip()), c);
    case Compression.Zstd:
      return mapErrors(viaNode(stream, zlib.createZstdDecompress()), c);
    case Compression.Xz:
      return viaCommand(stream, "xz", c);
    case Compression.Bzip2:
      return viaCommand(stream, "bzip2", c);
  }
}

/**
 * Reads enough of `stream` to detect its compression and returns the
 * decompressed stream (the peeked bytes are not lost).
 */
export async function decompressStream(
  stream: ReadableStream<Uint8Array>,
): Promise<{ compression: Compression; stream: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let n = 0;
  let ended = false;
  while (n < MAGIC_LEN) {
    const r = await reader.read();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    n += r.value.length;
  }
  const first = head.length === 1 ? head[0] : new Uint8Array(n);
  if (head.length > 1) {
    let o = 0;
    for (const h of head) {
      first.set(h, o);
      o += h.length;
    }
  }
  const compression = detectCompression(first);
  let sentHead = false;
  const rejoined = new ReadableStream<Uint8Array>({
    async pull(ctl) {
      if (!sentHead) {
        sentHead = true;
        if (first.length) return ctl.enqueue(first);
      }
      if (ended) return ctl.close();
      const r = await reader.read();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { compression, stream: decompressAs(rejoined, compression) };
}

/** Compresses `stream` with gzip or zstd (`level` as the format's own scale). */
export function compressStream(
  stream: ReadableStream<Uint8Array>,
  compression: Compression.Gzip | Compression.Zstd,
  level?: number,
): ReadableStream<Uint8Array> {
  if (compression === Compression.Gzip) {
    return viaNode(stream, zlib.createGzip(level === undefined ? {} : { level }));
  }
  if (compression === Compression.Zstd) {
    const params = level === undefined ? {} : { [zlib.constants.ZSTD_c_compressionLevel]: level };
    return viaNode(stream, zlib.createZstdCompress({ params }));
  }
  throw new Error(`cannot compress to ${compressionName(compression)}`);
}

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

import { Compression, decompressStream } from "./compression.ts";
import { DigestStream } from "./digest.ts";
import { APPLY_RING, readIntoRing } from "./ring.ts";
import type { TarHeader } from "./tar_header.ts";
import { TarSplitPacker } from "./tar_split.ts";

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
  const source = opts.recycle ? readIntoRing(input, APPLY_RING) : input;
  const compressed = new DigestStream();
  const uncompressed = new DigestStream();
  const uids = new Set<number>();
  const gids = new Set<number>();
  const onHeader = (h: TarHeader) => {
    opts.onEntry?.();
    if (isWhiteout(h.name)) return;
    uids.add(h.uid);
    gids.add(h.gid);
  };
  let compression = Compression.Uncompressed;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let resolve!: (i: LayerStreamInfo) => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<LayerStreamInfo>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {});
  const finish = async () => {
    // An uncompressed layer's two digests are one: hashing it twice costs as much as the rest.
    const [c, u] = await Promise.all([
      compressed.result,
      compression === Compression.Uncompressed ? compressed.result : uncompressed.result,
    ]);
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
        if (!reader) {
          const d = await decompressStream(
            source.pipeThrough(compressed),
            opts.recycle ? { ring: APPLY_RING } : {},
          );
          compression = d.compression;
          const tarBytes = compression === Compression.Uncompressed
            ? d.stream
            : d.stream.pipeThrough(uncompressed);
          reader = tarBytes
            .pipeThrough(
              new TarSplitPacker(tarSplitSink, {
                onHeader,
                // Matches what containers-storage 1.43 records for each format.
                finalEmptySegment: compression !== Compression.Xz &&
                  compression !== Compression.Zstd,
              }),
            )
            .getReader();
        }
        const r = await reader.read();
        opts.onBytes?.(compressed.size);
        if (!r.done) return ctl.enqueue(r.value);
        await finish();
        ctl.close();
      } catch (e) {
        reject(e);
        ctl.error(e);
      }
    },
    async cancel(reason) {
      reject(reason ?? new Error("layer stream cancelled"));
      if (reader) await reader.cancel(reason).catch(() => {});
      else await source.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { tar, done };
}

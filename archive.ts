/**
 * The archive engine on Web Streams, as containers/storage 1.43 applies and
 * exports layers: a tar codec that keeps every header byte (PAX, GNU long
 * names, sparse files, names that are not UTF-8), tar-split files and the
 * rebuild of a layer from them, compression detection with gzip, zstd, xz
 * and bzip2, the apply of a layer into a directory with whiteouts and path
 * confinement, and the changes and exports of directories.
 *
 * Everything streams: no layer is ever held in memory.
 *
 * Permissions: the codec and compression need none (xz and bzip2 spawn the
 * `xz`/`bzip2` tools: `--allow-run`); applying, walking and exporting
 * directories go through libc (`--allow-ffi`) and need `--allow-read` and
 * `--allow-write` for those directories.
 *
 * @example
 * ```ts
 * import {
 *   applyTar,
 *   Compression,
 *   compressStream,
 *   decompressStream,
 *   emptyHeader,
 *   exportTree,
 *   readTar,
 *   TypeFlag,
 *   writeTar,
 * } from "@denostore/storage/archive";
 *
 * const motd = new TextEncoder().encode("hello\n");
 * const tar = writeTar([
 *   { header: { ...emptyHeader("etc/", TypeFlag.Dir), mode: 0o755 } },
 *   { header: { ...emptyHeader("etc/motd"), mode: 0o644, size: motd.length }, body: [motd] },
 *   { header: { ...emptyHeader("etc/.wh.old"), mode: 0o644 } }, // a whiteout
 * ]);
 * // A layer arrives compressed; the compression is detected and undone.
 * const { compression, stream } = await decompressStream(compressStream(tar, Compression.Gzip));
 * if (compression !== Compression.Gzip) throw new Error("not detected");
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   await applyTar(stream, dir, { whiteoutFormat: "aufs", noLchown: true });
 *   if (await Deno.readTextFile(`${dir}/etc/motd`) !== "hello\n") throw new Error("not applied");
 *   const names: string[] = [];
 *   for await (const entry of readTar(exportTree(dir))) names.push(entry.header.name);
 *   if (names.join() !== "etc/,etc/motd") throw new Error(`exported ${names}`);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 * @module
 */

export {
  emptyHeader,
  type SparseRegion,
  type TarHeader,
  type TarTime,
  TypeFlag,
} from "./lib/archive/tar_header.ts";
export { readTar, type ReadTarOptions, type TarEntry } from "./lib/archive/tar_reader.ts";
export {
  type TarFormat,
  type TarWriteEntry,
  type TarWriteOptions,
  TarWriter,
  writeTar,
} from "./lib/archive/tar_writer.ts";
export {
  readTarSplit,
  rebuildTar,
  type TarSplitEntry,
  TarSplitPacker,
  type TarSplitPackerOptions,
} from "./lib/archive/tar_split.ts";
export type { FileGetter, FileReader } from "./lib/archive/file_getter.ts";
// Compression detection, (de)compressing streams and their options (the pull decoders stay inside).
export {
  Compression,
  compressionName,
  compressStream,
  decompressAs,
  type DecompressOptions,
  decompressStream,
  detectCompression,
  MAGIC_LEN,
} from "./lib/archive/compression.ts";
export type { RingSize } from "./lib/archive/ring.ts";
export {
  inspectLayer,
  type InspectLayerOptions,
  type LayerStreamInfo,
} from "./lib/archive/layer_stream.ts";
export { type ApplyOptions, type ApplyResult, applyTar } from "./lib/archive/apply.ts";
export {
  type Change,
  ChangeKind,
  changesDirs,
  type ChangesDirsOptions,
  changesOverlay,
  changesSize,
} from "./lib/archive/changes.ts";
export {
  exportChanges,
  type ExportOptions,
  exportTree,
  type ExportTreeOptions,
} from "./lib/archive/export.ts";
export type { IDMap, IDMappings } from "./lib/idmap.ts";

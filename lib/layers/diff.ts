/**
 * Reading layers back as diffs. Against its own parent, a layer with a
 * tar-split is rebuilt byte for byte as the tarball that was applied
 * (file contents read from the driver); any other pair is diffed by the
 * driver. The result is re-compressed as the layer was received unless
 * the caller asks otherwise.
 *
 * @example
 * ```ts ignore
 * const tar = await diff(store, "", id, { compression: Compression.Uncompressed });
 * ```
 * @module
 */

import type { Change } from "../../drivers/driver.ts";
import { Compression, compressionName, compressStream } from "../archive/compression.ts";
import { StorageError } from "../errors.ts";
import { rebuildTar } from "../archive/tar_split.ts";
import { passOn } from "../archive/pass_on.ts";
import type { Layer } from "./layer.ts";
import { layerMappings } from "./layer.ts";
import type { LayerStore } from "./layer_store.ts";
import { typed } from "./put.ts";
import { countTar, progressCounter, type ProgressOptions } from "../progress.ts";

/**
 * Options of {@linkcode diff}. `onProgress` counts the tar before
 * compression; its total is the layer's recorded diff size when the diff is
 * the applied tarball rebuilt (`expectedSize` is not used).
 */
export interface DiffOptions extends ProgressOptions {
  /** Compression of the output; defaults to the compression the layer was applied with. */
  compression?: Compression;
}

/**
 * Resolves the pair to compare: `to` must exist; an empty `from` means
 * its parent, and an unknown `from` falls back to the parent too.
 */
function findParentAndLayer(
  s: LayerStore,
  from: string,
  to: string,
): { from: string; fromLayer?: Layer; toLayer: Layer } {
  const toLayer = s.mustLookup(to);
  if (from === "") from = toLayer.parent ?? "";
  let fromLayer: Layer | undefined;
  if (from !== "") {
    fromLayer = s.lookup(from);
    if (fromLayer) from = fromLayer.id;
    else {
      fromLayer = s.lookup(toLayer.parent ?? "");
      if (fromLayer) from = fromLayer.id;
    }
  }
  return { from, fromLayer, toLayer };
}

/** The changes of `to` against `from` ("" for its parent). */
export async function changes(s: LayerStore, from: string, to: string): Promise<Change[]> {
  const p = findParentAndLayer(s, from, to);
  return await s.driver.changes(
    p.toLayer.id,
    layerMappings(p.toLayer),
    p.from,
    layerMappings(p.fromLayer),
    p.toLayer.mountlabel ?? "",
  );
}

/** The size of the changes of `to` against `from` ("" for its parent). */
export async function diffSize(s: LayerStore, from: string, to: string): Promise<number> {
  const p = findParentAndLayer(s, from, to);
  return await s.driver.diffSize(
    p.toLayer.id,
    layerMappings(p.toLayer),
    p.from,
    layerMappings(p.fromLayer),
    p.toLayer.mountlabel ?? "",
  );
}

/**
 * A tar stream turning `from` ("" for the parent) into `to`. The stream
 * must be consumed or cancelled to release the driver's file getter. A
 * failure of the driver or of a file it reads (a file of the tar-split
 * that is not in the layer, say) is a StorageError, from the call or from
 * the stream.
 */
export async function diff(
  s: LayerStore,
  from: string,
  to: string,
  opts: DiffOptions = {},
): Promise<ReadableStream<Uint8Array>> {
  const what = `reading the diff of layer ${JSON.stringify(to)}`;
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await diffStream(s, from, to, opts);
  } catch (e) {
    throw typed(what, e);
  }
  return passOn(stream, { fail: (e) => typed(what, e) });
}

async function diffStream(
  s: LayerStore,
  from: string,
  to: string,
  opts: DiffOptions,
): Promise<ReadableStream<Uint8Array>> {
  const p = findParentAndLayer(s, from, to);
  const compression = opts.compression ?? p.toLayer.compression ?? Compression.Uncompressed;
  if (
    compression !== Compression.Uncompressed && compression !== Compression.Gzip &&
    compression !== Compression.Zstd
  ) {
    throw new StorageError(compressionName(compression), {
      detail: "unsupported compression format for diff output",
    });
  }
  const maybeCompress = (tar: ReadableStream<Uint8Array>, total?: number) => {
    const counter = progressCounter({ onProgress: opts.onProgress, expectedSize: total });
    if (counter) tar = tar.pipeThrough(countTar(counter));
    return compression === Compression.Uncompressed ? tar : compressStream(tar, compression);
  };
  const driverDiff = async () =>
    maybeCompress(
      await s.driver.diff(
        p.toLayer.id,
        layerMappings(p.toLayer),
        p.from,
        layerMappings(p.fromLayer),
        p.toLayer.mountlabel ?? "",
      ),
    );
  if (p.from !== (p.toLayer.parent ?? "")) return await driverDiff();
  let tsFile: Deno.FsFile;
  try {
    tsFile = await Deno.open(s.tarSplitPath(p.toLayer.id));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return await driverDiff();
    throw e;
  }
  let getter;
  try {
    getter = await s.driver.diffGetter(p.toLayer.id);
  } catch (e) {
    tsFile.close();
    throw e;
  }
  let closed = false;
  const release = async () => {
    if (closed) return;
    closed = true;
    await getter.close();
  };
  const tar = passOn(rebuildTar(tsFile.readable, getter), {
    end: release,
    fail: async (e) => {
      await release().catch(() => {});
      return e;
    },
    cancel: release,
  });
  return maybeCompress(tar, p.toLayer["diff-size"]);
}

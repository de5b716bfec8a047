/**
 * A chain of new layers (each the parent of the next) put under one hold of
 * the write lock, with their diffs applied concurrently where the driver
 * allows it ({@linkcode appliesWithoutParentContent}: overlay yes, vfs no).
 *
 * The crash-safety protocol stays 1.43's: every record is saved flagged
 * `incomplete` before the driver is touched, and the flags are cleared, in
 * one save, only once every layer's data, tar-split and digests are in
 * place. A failure deletes every layer of the chain; a crash leaves
 * incomplete layers that the next writer removes.
 *
 * @example
 * ```ts ignore
 * const made = await putChain(layerStore, {
 *   layers: [{ id: a, diff: baseTar }, { id: b, diff: appTar }],
 * });
 * ```
 * @module
 */

import { appliesWithoutParentContent } from "../../drivers/driver.ts";
import { ErrDuplicateID, ErrDuplicateName } from "../errors.ts";
import type { IDMap } from "../idmap.ts";
import type { ProgressOptions } from "../progress.ts";
import { copyLayer, INCOMPLETE_FLAG, type Layer } from "./layer.ts";
import type { LayerStore } from "./layer_store.ts";
import {
  createInDriver,
  deleteQuietly,
  type DiffRead,
  newRecord,
  prepare,
  put,
  type PutOptions,
  type PutResult,
  readDiff,
  recordDiff,
  typed,
} from "./put.ts";

/** Diffs applied at once by default: the machines we run on have 2 cores. */
const DEFAULT_CONCURRENCY = 2;

/** One layer of a chain: its diff, what it is called, and its progress callback. */
export interface ChainLayer extends ProgressOptions {
  /** ID of the new layer; a random one is generated when absent. */
  id?: string;
  /** Names of the new layer, unique among layers (default none). */
  names?: string[];
  /** Flags to set on the new layer. */
  flags?: Record<string, unknown>;
  /** Known sha256 digest of the compressed diff, recorded instead of computing it. */
  originalDigest?: string;
  /** Known sha256 digest of the uncompressed diff, recorded instead of computing it. */
  uncompressedDigest?: string;
  /** The layer tarball (any compression). */
  diff: ReadableStream<Uint8Array>;
}

/** What {@linkcode putChain} takes; mappings and parent are already resolved by the caller. */
export interface PutChainOptions {
  /** The layers, base first: each one's parent is the one before it. */
  layers: ChainLayer[];
  /** The first layer's parent record; absent for a base layer. */
  parent?: Layer;
  /** UID mapping recorded for every layer (empty when the driver shifts at mount time). */
  uidMap?: IDMap[];
  /** GID mapping recorded for every layer (empty when the driver shifts at mount time). */
  gidMap?: IDMap[];
  /** Diffs applied at once where the driver allows it (default 2). */
  concurrency?: number;
  /** Maps a layer's failure (by index) to the error thrown; default: unchanged. */
  onLayerError?: (index: number, error: unknown) => unknown;
}

/**
 * Creates the chain's layers and applies their diffs; returns each layer's
 * record and applied size, base first. The caller holds the write lock.
 * Every ID and name is checked before anything is made; on any failure the
 * layers made are deleted, newest first, and the other diffs cancelled.
 */
export async function putChain(s: LayerStore, opts: PutChainOptions): Promise<PutResult[]> {
  const { layers } = opts;
  await prepare(s);
  const onError = opts.onLayerError ?? ((_i: number, e: unknown) => e);
  let started = 0;
  try {
    checkFree(s, layers);
    return appliesWithoutParentContent(s.driver)
      ? await concurrently(s, opts, (n) => started = n, onError)
      : await inOrder(s, opts, (n) => started = n, onError);
  } finally {
    // Diffs never reached still hold their sources open.
    for (const l of layers.slice(started)) await l.diff.cancel().catch(() => {});
  }
}

/** Refuses an ID or name in use, or given twice in the chain, before anything is made. */
function checkFree(s: LayerStore, layers: ChainLayer[]): void {
  const ids = new Set<string>();
  const names = new Set<string>();
  const twice = { detail: "given twice in the chain" };
  for (const l of layers) {
    if (l.id) {
      if (s.byID.has(l.id)) throw new ErrDuplicateID(l.id);
      if (ids.has(l.id)) throw new ErrDuplicateID(l.id, twice);
      ids.add(l.id);
    }
    for (const name of new Set(l.names ?? [])) {
      if (s.byName.has(name)) throw new ErrDuplicateName(name);
      if (names.has(name)) throw new ErrDuplicateName(name, twice);
      names.add(name);
    }
  }
}

/** Each layer created on the one before and its diff applied, one after another (vfs). */
async function inOrder(
  s: LayerStore,
  opts: PutChainOptions,
  setStarted: (n: number) => void,
  onError: (i: number, e: unknown) => unknown,
): Promise<PutResult[]> {
  const results: PutResult[] = [];
  try {
    let parent = opts.parent;
    for (const [i, l] of opts.layers.entries()) {
      setStarted(i + 1);
      try {
        results.push(await put(s, { ...l, ...mappingsOf(opts), parent }));
      } catch (e) {
        throw onError(i, e);
      }
      parent = s.mustLookup(results[i].layer.id);
    }
    return results;
  } catch (e) {
    for (const r of results.reverse()) await deleteQuietly(s, r.layer.id);
    throw e;
  }
}

/**
 * Every record saved incomplete, every driver directory made (base first),
 * the diffs applied `concurrency` at a time, then the records finished and
 * saved at once (overlay).
 */
async function concurrently(
  s: LayerStore,
  opts: PutChainOptions,
  setStarted: (n: number) => void,
  onError: (i: number, e: unknown) => unknown,
): Promise<PutResult[]> {
  const made: Layer[] = [];
  try {
    let parent = opts.parent;
    for (const l of opts.layers) {
      parent = newRecord(s, { ...l, ...mappingsOf(opts), parent });
      made.push(parent);
    }
    await s.save();
    parent = opts.parent;
    for (const layer of made) {
      await createInDriver(s, layer, { parent });
      parent = layer;
    }
    const reads = await applyAll(s, opts, made, setStarted, onError);
    for (const [i, layer] of made.entries()) {
      recordDiff(s, layer, reads[i], opts.layers[i]);
      delete layer.flags![INCOMPLETE_FLAG];
    }
    await s.save();
    return made.map((layer, i) => ({ layer: copyLayer(layer), size: reads[i].size }));
  } catch (e) {
    for (const layer of made.reverse()) await deleteQuietly(s, layer.id);
    throw typed("putting a chain of layers", e);
  }
}

/** The diffs applied by a pool of workers; the first failure stops them taking more. */
async function applyAll(
  s: LayerStore,
  opts: PutChainOptions,
  made: Layer[],
  setStarted: (n: number) => void,
  onError: (i: number, e: unknown) => unknown,
): Promise<DiffRead[]> {
  const reads: DiffRead[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < made.length) {
      const i = next++;
      setStarted(next);
      const l = opts.layers[i];
      try {
        reads[i] = await readDiff(s, made[i], l.diff, l);
      } catch (e) {
        const what = `applying diff to layer ${JSON.stringify(made[i].id)}`;
        failure ??= { error: onError(i, typed(what, e)) };
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, made.length));
  // Workers do not throw: each waits for the diff in hand before the chain is undone.
  await Promise.all(Array.from({ length: n }, worker));
  if (failure) throw failure.error;
  return reads;
}

function mappingsOf(opts: PutChainOptions): Pick<PutOptions, "uidMap" | "gidMap"> {
  return { uidMap: opts.uidMap, gidMap: opts.gidMap };
}

/**
 * Creating layers and applying diffs to them, with the crash-safety
 * protocol of containers/storage: the record is saved flagged
 * `incomplete` before the driver is touched and the flag is cleared only
 * once everything (driver data, tar-split, digests) is in place; any
 * failure deletes what was made.
 *
 * @example
 * ```ts ignore
 * const { layer, size } = await put(layerStore, { names: ["base"], diff: tarball });
 * ```
 * @module
 */

import type { CreateOpts } from "../../drivers/driver.ts";
import type { LayerStreamInfo } from "../archive/layer_stream.ts";
import { atomicWriteFile, atomicWriteStream } from "../atomic.ts";
import { ErrDuplicateID, ErrDuplicateName, ErrLayerUnknown, StorageError } from "../errors.ts";
import type { IDMap, IDMappings } from "../idmap.ts";
import { generateID } from "../ids.ts";
import { log } from "../log.ts";
import { dedupeNames, nowRFC3339Nano } from "./encode.ts";
import { copyLayer, INCOMPLETE_FLAG, type Layer, layerMappings } from "./layer.ts";
import { addToDigestMap, type LayerStore, removeFromDigestMap } from "./layer_store.ts";
import { progressCounter, type ProgressOptions } from "../progress.ts";

/** A new layer and the size of the diff applied to it (-1 without a diff). */
export interface PutResult {
  /** A copy of the new layer's record. */
  layer: Layer;
  /** Bytes of content the driver applied, or -1 when no diff was given. */
  size: number;
}

function sameMappings(a: IDMappings, b: IDMappings): boolean {
  return JSON.stringify(a.uidMap) === JSON.stringify(b.uidMap) &&
    JSON.stringify(a.gidMap) === JSON.stringify(b.gidMap);
}

/**
 * What {@linkcode put} takes; mappings and parent are already resolved by the
 * caller. `onProgress` follows the reading of `diff`.
 */
export interface PutOptions extends ProgressOptions {
  /** ID of the new layer; a random one is generated when absent. */
  id?: string;
  /** The parent layer's record; absent for a base layer. */
  parent?: Layer;
  /** Names of the new layer, unique among layers (default none). */
  names?: string[];
  /** SELinux mount label (default ""). */
  mountLabel?: string;
  /** Per-layer driver options (e.g. size). */
  storageOpt?: Record<string, string>;
  /** UID mapping recorded for the layer (empty when the driver shifts at mount time). */
  uidMap?: IDMap[];
  /** GID mapping recorded for the layer (empty when the driver shifts at mount time). */
  gidMap?: IDMap[];
  /** A layer (child of the same parent) whose contents and digests the new layer copies. */
  templateLayer?: string;
  /** Known sha256 digest of the compressed diff, recorded instead of computing it. */
  originalDigest?: string;
  /** Known sha256 digest of the uncompressed diff, recorded instead of computing it. */
  uncompressedDigest?: string;
  /** Create a read-write (container) layer instead of a read-only one (default false). */
  writeable?: boolean;
  /** Flags to set on the new layer. */
  flags?: Record<string, unknown>;
  /** A layer tarball (any compression) applied to the new layer; none leaves it empty. */
  diff?: ReadableStream<Uint8Array>;
}

/**
 * Creates a layer on `opts.parent` (optionally as a copy of a template
 * layer) and applies `opts.diff` to it when given. The caller holds the
 * write lock.
 */
export async function put(s: LayerStore, opts: PutOptions): Promise<PutResult> {
  const { diff } = opts;
  await prepare(s);
  const layer = newRecord(s, opts);
  const id = layer.id;
  let succeeded = false;
  try {
    await s.save();
    await createInDriver(s, layer, opts);
    let size = -1;
    if (diff) {
      size = await applyDiff(s, id, diff, opts);
    } else {
      addToDigestMap(s.byCompressed, layer["compressed-diff-digest"], id);
      addToDigestMap(s.byUncompressed, layer["diff-digest"], id);
    }
    delete layer.flags![INCOMPLETE_FLAG];
    await s.save();
    succeeded = true;
    return { layer: copyLayer(layer), size };
  } catch (e) {
    throw typed(`creating layer with ID ${JSON.stringify(id)}`, e);
  } finally {
    if (!succeeded) await deleteQuietly(s, id);
  }
}

/** Checks that the store may be written and makes its directories. @internal */
export async function prepare(s: LayerStore): Promise<void> {
  s.checkWritable("create new layers");
  await Deno.mkdir(s.runDir, { recursive: true, mode: 0o700 });
  await Deno.mkdir(s.layerDir, { recursive: true, mode: 0o700 });
}

/** Deletes a layer made by a failed creation, logging (not throwing) what goes wrong. @internal */
export async function deleteQuietly(s: LayerStore, id: string): Promise<void> {
  await s.delete(id).catch((e) => {
    log(
      "error",
      `While recovering from a failure, error deleting layer ${JSON.stringify(id)}: ${e}`,
    );
  });
}

/** The ID a new layer gets: the one asked for, or a fresh random one. @internal */
export function newID(s: LayerStore, id: string | undefined): string {
  if (!id) {
    do id = generateID(); while (s.byID.has(id));
  }
  return id;
}

/**
 * Adds the record of a new layer, flagged incomplete, to the store's lists
 * and indexes (not saved): its ID and names must be free. @internal
 */
export function newRecord(s: LayerStore, opts: PutOptions): Layer {
  const { parent, mountLabel = "" } = opts;
  const id = newID(s, opts.id);
  if (s.byID.has(id)) throw new ErrDuplicateID(id);
  const names = dedupeNames(opts.names ?? []);
  for (const name of names) {
    if (s.byName.has(name)) throw new ErrDuplicateName(name);
  }
  let template: Layer | undefined;
  if (opts.templateLayer) {
    template = s.lookup(opts.templateLayer);
    if (!template) throw new ErrLayerUnknown(opts.templateLayer);
  }
  const layer: Layer = {
    id,
    names,
    parent: parent?.id ?? "",
    metadata: template?.metadata,
    mountlabel: mountLabel,
    created: nowRFC3339Nano(),
    "compressed-diff-digest": template?.["compressed-diff-digest"],
    "compressed-size": template?.["compressed-size"],
    "diff-digest": template?.["diff-digest"],
    "diff-size": template?.["diff-size"],
    compression: template?.compression,
    uidset: template?.uidset ? [...template.uidset] : undefined,
    gidset: template?.gidset ? [...template.gidset] : undefined,
    flags: { ...opts.flags, [INCOMPLETE_FLAG]: true },
    uidmap: opts.uidMap?.length ? structuredClone(opts.uidMap) : undefined,
    gidmap: opts.gidMap?.length ? structuredClone(opts.gidMap) : undefined,
    "big-data-names": [],
  };
  s.list.push(layer);
  s.idIndex.add(id);
  s.byID.set(id, layer);
  for (const name of names) s.byName.set(name, layer);
  return layer;
}

/**
 * Makes the driver's directory of a new layer (a copy of the template when
 * `opts.templateLayer` names one), in the layer's ID mappings. @internal
 */
export async function createInDriver(s: LayerStore, layer: Layer, opts: PutOptions): Promise<void> {
  const { parent, mountLabel = "", storageOpt, writeable = false } = opts;
  const id = layer.id;
  const parentID = parent?.id ?? "";
  const parentMappings = layerMappings(parent);
  const idMappings = layerMappings(layer);
  const createOpts: CreateOpts = { mountLabel, storageOpt, idMappings };
  let oldMappings: IDMappings;
  let templateTarSplit: Uint8Array | undefined;
  if (opts.templateLayer) {
    const template = s.mustLookup(opts.templateLayer);
    try {
      templateTarSplit = await Deno.readFile(s.tarSplitPath(template.id));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const templateMappings = layerMappings(template);
    await wrap(
      `creating copy of template layer ${JSON.stringify(template.id)} with ID ${
        JSON.stringify(id)
      }`,
      s.driver.createFromTemplate(
        id,
        template.id,
        templateMappings,
        parentID,
        parentMappings,
        createOpts,
        writeable,
      ),
    );
    oldMappings = templateMappings;
  } else {
    await wrap(
      `creating ${writeable ? "read-write " : ""}layer with ID ${JSON.stringify(id)}`,
      writeable
        ? s.driver.createReadWrite(id, parentID, createOpts)
        : s.driver.create(id, parentID, createOpts),
    );
    oldMappings = parentMappings;
  }
  if (!sameMappings(oldMappings, idMappings)) {
    await s.driver.updateLayerIDMap(id, oldMappings, idMappings, mountLabel);
  }
  if (templateTarSplit && templateTarSplit.length > 0) {
    await atomicWriteFile(s.tarSplitPath(id), templateTarSplit, 0o600);
  }
}

/**
 * `e` as a StorageError: a failure that is none (a file system or FFI error
 * of the driver, say) is wrapped with what was being done, so that callers
 * meet only typed errors.
 */
export function typed(what: string, e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  return new StorageError(undefined, {
    detail: `${what}: ${(e as Error)?.message ?? e}`,
    cause: e,
  });
}

async function wrap<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw typed(what, e);
  }
}

/**
 * Applies a layer tarball (any compression) to an existing layer: the
 * driver gets the decompressed tar while, in the same pass, the digests,
 * sizes, compression, owners and the tar-split are recorded (sha256
 * digests in `known` are recorded instead of the computed ones). The caller
 * holds the write lock. Returns the size the driver reports.
 */
export function applyDiff(
  s: LayerStore,
  to: string,
  diff: ReadableStream<Uint8Array>,
  known: Pick<PutOptions, "originalDigest" | "uncompressedDigest"> & ProgressOptions = {},
): Promise<number> {
  return wrap(`applying diff to layer ${JSON.stringify(to)}`, applyDiffTo(s, to, diff, known));
}

async function applyDiffTo(
  s: LayerStore,
  to: string,
  diff: ReadableStream<Uint8Array>,
  known: Pick<PutOptions, "originalDigest" | "uncompressedDigest"> & ProgressOptions,
): Promise<number> {
  s.checkWritable("modify layer contents");
  const layer = s.mustLookup(to);
  const read = await readDiff(s, layer, diff, known);
  recordDiff(s, layer, read, known);
  await s.save();
  return read.size;
}

/** What {@linkcode readDiff} learnt of a diff. @internal */
export interface DiffRead {
  /** The size the driver reports. */
  size: number;
  /** Digests, sizes, compression and owners of the diff. */
  info: LayerStreamInfo;
}

/**
 * Has the driver apply `diff` to the layer and writes its tar-split; the
 * record is left as it was (see {@linkcode recordDiff}). @internal
 */
export async function readDiff(
  s: LayerStore,
  layer: Layer,
  diff: ReadableStream<Uint8Array>,
  progress: ProgressOptions,
): Promise<DiffRead> {
  // The archive engine (compression, digests, tar-split) loads with the first diff, not with the store.
  const { inspectLayer } = await import("../archive/layer_stream.ts");
  const tarSplit: Uint8Array[] = [];
  // gzip's output chunks are its own fresh buffers: kept as they are
  const sink = new WritableStream<Uint8Array>({ write: (c) => void tarSplit.push(c) });
  const counter = progressCounter(progress);
  // The driver's apply is done with each chunk before it reads on: buffers can be reused.
  const { tar, done } = inspectLayer(diff, sink, {
    recycle: true,
    onEntry: counter && (() => counter.entry()),
    onBytes: counter && ((received) => counter.at(received)),
  });
  // The driver may stop reading at the end-of-archive blocks; the digests
  // must still cover every byte received, so we drain what it leaves.
  const reader = tar.getReader();
  const feed = new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
  }, { highWaterMark: 0 });
  let size: number;
  try {
    size = await s.driver.applyDiff(layer.id, layer.parent ?? "", {
      diff: feed,
      mappings: layerMappings(layer),
      mountLabel: layer.mountlabel ?? "",
    });
    while (!(await reader.read()).done) { /* drain */ }
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    await done.catch(() => {});
    throw e;
  }
  const info = await done;
  counter?.report();
  await atomicWriteStream(s.tarSplitPath(layer.id), ReadableStream.from(tarSplit), 0o600);
  return { size, info };
}

/**
 * Records what {@linkcode readDiff} learnt in the layer's record and the
 * digest indexes (sha256 digests in `known` instead of the computed ones);
 * not saved. @internal
 */
export function recordDiff(
  s: LayerStore,
  layer: Layer,
  { info }: DiffRead,
  known: Pick<PutOptions, "originalDigest" | "uncompressedDigest">,
): void {
  const compressed = known.originalDigest?.startsWith("sha256:")
    ? known.originalDigest
    : info.compressedDigest;
  const uncompressed = known.uncompressedDigest?.startsWith("sha256:")
    ? known.uncompressedDigest
    : info.uncompressedDigest;
  removeFromDigestMap(s.byCompressed, layer.id);
  removeFromDigestMap(s.byUncompressed, layer.id);
  addToDigestMap(s.byCompressed, compressed, layer.id);
  addToDigestMap(s.byUncompressed, uncompressed, layer.id);
  layer["compressed-diff-digest"] = compressed;
  layer["compressed-size"] = info.compressedSize;
  layer["diff-digest"] = uncompressed;
  layer["diff-size"] = info.uncompressedSize;
  // 0 (uncompressed) is what an absent field reads back as.
  if (info.compression) layer.compression = info.compression;
  else delete layer.compression;
  layer.uidset = [...new Set(info.uids)].sort((a, b) => a - b);
  layer.gidset = [...new Set(info.gids)].sort((a, b) => a - b);
}

/**
 * Creating layers and applying diffs to them, with the crash-safety
 * protocol of containers/storage: the record is saved flagged
 * `incomplete` before the driver is touched and the flag is cleared only
 * once everything (driver data, tar-split, digests) is in place; any
 * failure deletes what was made.
 *
 * @example
 * ```ts ignore
 * const { layer, size } = await put(store, undefined, undefined, ["base"], "", undefined, {}, false, undefined, tarball);
 * ```
 * @module
 */

import type { CreateOpts } from "../../drivers/driver.ts";
import { inspectLayer } from "../archive/layer_stream.ts";
import { atomicWriteFile } from "../atomic.ts";
import { ErrDuplicateID, ErrDuplicateName, ErrLayerUnknown, StorageError } from "../errors.ts";
import type { IDMappings } from "../idmap.ts";
import { generateID } from "../ids.ts";
import { dedupeNames, nowRFC3339Nano } from "./encode.ts";
import {
  copyLayer,
  INCOMPLETE_FLAG,
  type Layer,
  layerMappings,
  type LayerOptions,
} from "./layer.ts";
import { addToDigestMap, type LayerStore, removeFromDigestMap } from "./layer_store.ts";
import { concatBytes } from "../bytes.ts";

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
 * Creates a layer on `parent` (optionally as a copy of a template layer)
 * and applies `diff` to it when given. The caller holds the write lock.
 */
export async function put(
  s: LayerStore,
  id: string | undefined,
  parent: Layer | undefined,
  names: string[],
  mountLabel: string,
  storageOpt: Record<string, string> | undefined,
  more: LayerOptions,
  writeable: boolean,
  flags: Record<string, unknown> | undefined,
  diff?: ReadableStream<Uint8Array>,
): Promise<PutResult> {
  s.checkWritable("create new layers");
  await Deno.mkdir(s.runDir, { recursive: true, mode: 0o700 });
  await Deno.mkdir(s.layerDir, { recursive: true, mode: 0o700 });
  if (!id) {
    do id = generateID(); while (s.byID.has(id));
  }
  if (s.byID.has(id)) throw new ErrDuplicateID(id);
  names = dedupeNames(names);
  for (const name of names) {
    if (s.byName.has(name)) throw new ErrDuplicateName(name);
  }
  const parentID = parent?.id ?? "";
  const parentMappings = layerMappings(parent);
  let template: Layer | undefined;
  let templateTarSplit: Uint8Array | undefined;
  if (more.templateLayer) {
    template = s.lookup(more.templateLayer);
    if (!template) throw new ErrLayerUnknown(more.templateLayer);
    try {
      templateTarSplit = await Deno.readFile(s.tarSplitPath(template.id));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const layer: Layer = {
    id,
    names,
    parent: parentID,
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
    flags: { ...flags, [INCOMPLETE_FLAG]: true },
    uidmap: more.uidMap?.length ? structuredClone(more.uidMap) : undefined,
    gidmap: more.gidMap?.length ? structuredClone(more.gidMap) : undefined,
    "big-data-names": [],
  };
  s.list.push(layer);
  s.idIndex.add(id);
  s.byID.set(id, layer);
  for (const name of names) s.byName.set(name, layer);
  let succeeded = false;
  try {
    await s.save();
    const idMappings = layerMappings(layer);
    const opts: CreateOpts = { mountLabel, storageOpt, idMappings };
    let oldMappings: IDMappings;
    if (template) {
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
          opts,
          writeable,
        ),
      );
      oldMappings = templateMappings;
    } else {
      await wrap(
        `creating ${writeable ? "read-write " : ""}layer with ID ${JSON.stringify(id)}`,
        writeable
          ? s.driver.createReadWrite(id, parentID, opts)
          : s.driver.create(id, parentID, opts),
      );
      oldMappings = parentMappings;
    }
    if (!sameMappings(oldMappings, idMappings)) {
      await s.driver.updateLayerIDMap(id, oldMappings, idMappings, mountLabel);
    }
    if (templateTarSplit && templateTarSplit.length > 0) {
      await atomicWriteFile(s.tarSplitPath(id), templateTarSplit, 0o600);
    }
    let size = -1;
    if (diff) {
      size = await applyDiff(s, id, diff, more);
    } else {
      addToDigestMap(s.byCompressed, layer["compressed-diff-digest"], id);
      addToDigestMap(s.byUncompressed, layer["diff-digest"], id);
    }
    delete layer.flags![INCOMPLETE_FLAG];
    await s.save();
    succeeded = true;
    return { layer: copyLayer(layer), size };
  } finally {
    if (!succeeded) {
      await s.delete(id).catch((e) => {
        console.error(
          `While recovering from a failure, error deleting layer ${JSON.stringify(id)}: ${e}`,
        );
      });
    }
  }
}

async function wrap<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof StorageError) throw e;
    throw new StorageError(undefined, {
      detail: `${what}: ${(e as Error)?.message ?? e}`,
      cause: e,
    });
  }
}

/**
 * Applies a layer tarball (any compression) to an existing layer: the
 * driver gets the decompressed tar while, in the same pass, the digests,
 * sizes, compression, owners and the tar-split are recorded. The caller
 * holds the write lock. Returns the size the driver reports.
 */
export async function applyDiff(
  s: LayerStore,
  to: string,
  diff: ReadableStream<Uint8Array>,
  more?: LayerOptions,
): Promise<number> {
  s.checkWritable("modify layer contents");
  const layer = s.mustLookup(to);
  const tarSplit: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (c) => void tarSplit.push(c.slice()) });
  const { tar, done } = inspectLayer(diff, sink);
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
  await atomicWriteFile(s.tarSplitPath(layer.id), concatBytes(tarSplit), 0o600);
  const compressed = more?.originalDigest?.startsWith("sha256:")
    ? more.originalDigest
    : info.compressedDigest;
  const uncompressed = more?.uncompressedDigest?.startsWith("sha256:")
    ? more.uncompressedDigest
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
  await s.save();
  return size;
}

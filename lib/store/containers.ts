/**
 * Store operations on containers, with containers/storage 1.43's
 * semantics: a container is a read-write layer on its image's top layer
 * (or on a copy of it with the container's ID mappings, made once and
 * reused), a record in containers.json, and two directories of its own,
 * `<graphroot>/<driver>-containers/<id>/userdata` and the same under the
 * run root, created when first asked for.
 *
 * @example
 * ```ts ignore
 * const c = await createContainer(parts, imageID, { names: ["web"] });
 * const dir = await containerDirectory(parts, c.id);
 * await deleteContainer(parts, c.id);
 * ```
 * @module
 */

import { dirname, join, relative, resolve } from "../path.ts";
import { listDir } from "../../ffi/dirent.ts";
import { isDir, lstatNs } from "../../ffi/fs.ts";
import { geteuid } from "../../ffi/process.ts";
import { atomicWriteFile } from "../atomic.ts";
import {
  ErrContainerUnknown,
  ErrImageUnknown,
  ErrLayerUnknown,
  ErrNotAContainer,
  StorageError,
} from "../errors.ts";
import { type Container, MOUNT_LABEL_FLAG, PROCESS_LABEL_FLAG } from "../containers/container.ts";
import { type IDMap, type IDMappings, idMappingsForUser } from "../idmap.ts";
import type { Image } from "../images/image.ts";
import type { ImageStore } from "../images/image_store.ts";
import type { Layer } from "../layers/layer.ts";
import { mount, parentOwners, unmount } from "../layers/mounts.ts";
import { type IDMappingOptions, imageTopLayerForMapping } from "./images.ts";
import {
  allImageStores,
  allLayerStores,
  canUseShifting,
  containerPath,
  type Hold,
  imageHolds,
  layerHolds,
  type StoreParts,
  withLocks,
} from "./parts.ts";
import { autoUserNsMappings, IDSet, sizeForUserFiles } from "./userns.ts";

/** How to size and place an automatic user namespace, as containers/storage's AutoUserNsOptions. */
export interface AutoUserNsOptions {
  /** The exact size; otherwise computed from the image and the store's minimum. */
  size?: number;
  /** The smallest size to consider before looking at the image (default 1). */
  initialSize?: number;
  /** An /etc/passwd to size from instead of the image's. */
  passwdFile?: string;
  /** An /etc/group to size from instead of the image's. */
  groupFile?: string;
  /** UID ranges the caller maps itself. */
  additionalUIDMappings?: IDMap[];
  /** GID ranges the caller maps itself. */
  additionalGIDMappings?: IDMap[];
}

/** Options of {@linkcode createContainer}. */
export interface CreateContainerOptions extends IDMappingOptions {
  /** The container ID; random when absent. */
  id?: string;
  /** Names, unique across containers. */
  names?: string[];
  /** Free-form metadata. */
  metadata?: string;
  /** The ID of the container's new read-write layer; random when absent. */
  layerID?: string;
  /** Give the container its own range of host IDs (podman's --userns=auto). */
  autoUserNs?: boolean;
  /** How to size the automatic user namespace. */
  autoUserNsOptions?: AutoUserNsOptions;
  /** Mount the container's layer without syncing to disk (overlay "volatile"). */
  volatile?: boolean;
  /** SELinux mount label (give with `processLabel`, or neither). */
  mountLabel?: string;
  /** SELinux process label (give with `mountLabel`, or neither). */
  processLabel?: string;
  /** Flags to record on the container. */
  flags?: Record<string, unknown>;
  /** Extra options for mounting the container's layer. */
  mountOpts?: string[];
  /** Per-layer driver options for the read-write layer (e.g. size). */
  storageOpt?: Record<string, string>;
}

/** The host IDs automatic user namespaces may use: the subordinate IDs of the right user. */
async function availableIDs(p: StoreParts): Promise<{ uids: IDSet; gids: IDSet }> {
  const rootless = geteuid() !== 0;
  const user = rootless ? Deno.env.get("USER") ?? "" : p.settings.autoUsernsUser;
  let maps: IDMappings;
  try {
    maps = await idMappingsForUser(user, user);
  } catch (e) {
    throw new StorageError(user, {
      detail: "cannot read mappings for automatic user namespaces",
      cause: e,
    });
  }
  const uids = IDSet.hostIDs(maps.uidMap);
  const gids = IDSet.hostIDs(maps.gidMap);
  // Rootless, the namespace we run in maps our subordinate IDs to 1…n.
  if (!rootless) return { uids, gids };
  return { uids: new IDSet([[1, uids.size + 1]]), gids: new IDSet([[1, gids.size + 1]]) };
}

/**
 * The size an image needs: one more than the highest UID/GID its layers
 * use, or that its /etc/passwd and /etc/group name (read from a temporary
 * mount of its top layer). The caller holds our layer store for writing.
 */
async function sizeFromImage(p: StoreParts, image: Image, o: AutoUserNsOptions): Promise<number> {
  let size = 0;
  let top: Layer | undefined;
  for (let name = image.layer ?? ""; name !== "";) {
    const ls = allLayerStores(p).find((s) => s.exists(name));
    if (!ls) throw new ErrLayerUnknown(name, { detail: "cannot find layer of the image" });
    const layer = ls.get(name);
    top ??= layer;
    for (const id of [...(layer.uidset ?? []), ...(layer.gidset ?? [])]) {
      size = Math.max(size, id + 1);
    }
    name = layer.parent ?? "";
  }
  const ls = p.layerStore;
  const { put } = await import("../layers/put.ts");
  const scratch = (await put(ls, { parent: top })).layer;
  try {
    const root = await mount(ls, scratch.id, {});
    try {
      const read = (path: string) => Deno.readTextFile(path).catch(() => "");
      const passwd = await read(o.passwdFile || join(root, "etc/passwd"));
      const group = await read(o.groupFile || join(root, "etc/group"));
      size = Math.max(size, sizeForUserFiles(passwd, group));
    } finally {
      await unmount(ls, scratch.id, true);
    }
  } finally {
    await ls.delete(scratch.id);
  }
  return size;
}

/** The mappings of a new automatic user namespace (the caller holds userns.lock). */
async function autoUserNs(
  p: StoreParts,
  o: AutoUserNsOptions,
  image: Image | undefined,
): Promise<IDMappings> {
  const { uids, gids } = await availableIDs(p);
  const used = await withLocks([[p.containerStore, "read"]], () => p.containerStore.list());
  let size = o.size ?? 0;
  if (size <= 0) {
    size = Math.max(o.initialSize ?? 1, p.settings.autoNsMinSize);
    if (image) size = Math.max(size, await sizeFromImage(p, image, o));
    if (p.settings.autoNsMaxSize > 0 && size > p.settings.autoNsMaxSize) {
      throw new StorageError(undefined, {
        detail: `the container needs a user namespace with size ${size} that is bigger than ` +
          `the maximum value allowed with userns=auto ${p.settings.autoNsMaxSize}`,
      });
    }
  }
  return autoUserNsMappings({
    size,
    availableUIDs: uids,
    availableGIDs: gids,
    usedUIDs: used.flatMap((c) => c.uidmap ?? []),
    usedGIDs: used.flatMap((c) => c.gidmap ?? []),
    additionalUIDs: o.additionalUIDMappings,
    additionalGIDs: o.additionalGIDMappings,
  });
}

/** Mount and process labels: both given, or neither (then empty, as without SELinux). */
function labels(opts: CreateContainerOptions): Record<string, string> {
  const given = (key: string, explicit?: string) => {
    const v = explicit ?? opts.flags?.[key];
    return typeof v === "string" ? v : "";
  };
  const mountLabel = given(MOUNT_LABEL_FLAG, opts.mountLabel);
  const processLabel = given(PROCESS_LABEL_FLAG, opts.processLabel);
  if ((mountLabel === "") !== (processLabel === "")) {
    throw new StorageError(undefined, {
      detail: "ProcessLabel and Mountlabel must either not be specified or both specified",
    });
  }
  return { [MOUNT_LABEL_FLAG]: mountLabel, [PROCESS_LABEL_FLAG]: processLabel };
}

/**
 * Creates a container on `image` (by ID, name or prefix, in any image
 * store; none for a container without an image): its read-write layer on
 * the image's top layer (or a copy with the container's mappings) and its
 * record. If the record cannot be made, the layer is removed again.
 */
export async function createContainer(
  p: StoreParts,
  image: string | undefined,
  opts: CreateContainerOptions = {},
): Promise<Container> {
  const o: CreateContainerOptions = { ...opts };
  if (o.hostUIDMapping) o.uidMap = undefined;
  if (o.hostGIDMapping) o.gidMap = undefined;
  const label = labels(o);
  const flags = { ...o.flags, ...label };
  const mapped = o.autoUserNs || o.uidMap !== undefined || o.gidMap !== undefined;
  if (mapped) await p.usernsLock.lock();
  try {
    const holds: Hold[] = image
      ? [...layerHolds(p, "write"), ...imageHolds(p, "write")]
      : [[p.layerStore, "write"]];
    return await withLocks(holds, async () => {
      let img: Image | undefined;
      let home: ImageStore | undefined;
      if (image) {
        home = allImageStores(p).find((s) => s.exists(image));
        if (!home) throw new ErrImageUnknown(image);
        img = home.get(image);
      }
      if (o.autoUserNs) {
        const m = await autoUserNs(p, o.autoUserNsOptions ?? {}, img);
        o.uidMap = m.uidMap;
        o.gidMap = m.gidMap;
      }
      let uidMap = o.uidMap ?? [];
      let gidMap = o.gidMap ?? [];
      let top: Layer | undefined;
      if (img && home && img.layer) {
        top = await imageTopLayerForMapping(p, img, home, true, o);
        if (!o.hostUIDMapping && uidMap.length === 0) uidMap = top.uidmap ?? [];
        if (!o.hostGIDMapping && gidMap.length === 0) gidMap = top.gidmap ?? [];
      } else if (!img) {
        if (!o.hostUIDMapping && uidMap.length === 0) uidMap = p.uidMap;
        if (!o.hostGIDMapping && gidMap.length === 0) gidMap = p.gidMap;
      }
      const shifting = canUseShifting(p, uidMap, gidMap);
      const ls = p.layerStore;
      const { put } = await import("../layers/put.ts");
      const { layer } = await put(ls, {
        id: o.layerID,
        parent: top,
        mountLabel: label[MOUNT_LABEL_FLAG],
        storageOpt: o.storageOpt,
        uidMap: shifting || o.hostUIDMapping ? [] : structuredClone(uidMap),
        gidMap: shifting || o.hostGIDMapping ? [] : structuredClone(gidMap),
        writeable: true,
      });
      try {
        return await withLocks([[p.containerStore, "write"]], () =>
          p.containerStore.create({
            id: o.id,
            names: o.names,
            image: img?.id ?? "",
            layer: layer.id,
            metadata: o.metadata,
            flags,
            mountOpts: o.mountOpts,
            volatile: o.volatile,
            uidMap: o.uidMap,
            gidMap: o.gidMap,
          }));
      } catch (e) {
        await ls.delete(layer.id).catch(() => {});
        throw e;
      }
    });
  } finally {
    if (mapped) p.usernsLock.unlock();
  }
}

/** A container by ID, name, prefix or layer ID. */
export async function getContainer(p: StoreParts, idOrName: string): Promise<Container> {
  return await withLocks([[p.containerStore, "read"]], () => p.containerStore.get(idOrName));
}

/** Removes a directory tree; a missing one is fine. */
async function removeAll(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/**
 * Deletes a container: its layer, its record and both of its directories.
 * Every part is attempted; the first failure is reported.
 */
export async function deleteContainer(p: StoreParts, id: string): Promise<void> {
  const ls = p.layerStore;
  const cs = p.containerStore;
  const holds = [[ls, "write"], [p.imageStore, "write"], [cs, "write"]] as const;
  await withLocks(holds, async () => {
    if (!cs.exists(id)) throw new ErrNotAContainer(id);
    const c = cs.get(id);
    const results = await Promise.allSettled([
      ls.exists(c.layer) ? ls.delete(c.layer) : Promise.resolve(),
      cs.delete(c.id),
      removeAll(containerPath(p, "graph", c.id)),
      removeAll(containerPath(p, "run", c.id)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  });
}

/** `<root>/<driver>-containers/<id>/userdata` for the container, created if missing. */
export async function containerDir(
  p: StoreParts,
  where: "graph" | "run",
  idOrName: string,
): Promise<string> {
  const id = await withLocks(
    [[p.containerStore, "read"]],
    () => p.containerStore.lookupID(idOrName),
  );
  const dir = join(containerPath(p, where, id), "userdata");
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** `file` inside a container directory; names that would leave it are refused. */
function inside(dir: string, file: string): string {
  const path = resolve(dir, file);
  const rel = relative(dir, path);
  if (rel === "" || rel.startsWith("..")) {
    throw new StorageError(file, { detail: "not a file inside the container's directory" });
  }
  return path;
}

/** Writes a file in a container's directory (graph or run root) atomically, mode 0600. */
export async function setContainerFile(
  p: StoreParts,
  where: "graph" | "run",
  idOrName: string,
  file: string,
  data: Uint8Array,
): Promise<void> {
  const path = inside(await containerDir(p, where, idOrName), file);
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await atomicWriteFile(path, data, 0o600);
}

/** Reads a file from a container's directory (graph or run root). */
export async function containerFile(
  p: StoreParts,
  where: "graph" | "run",
  idOrName: string,
  file: string,
): Promise<Uint8Array> {
  return await Deno.readFile(inside(await containerDir(p, where, idOrName), file));
}

/**
 * Bytes of the files under `dir`, each inode counted once, directories not
 * counted; walked with byte paths, since the container's own files may have
 * names that are not UTF-8.
 */
function treeSize(dir: string): number {
  const seen = new Set<bigint>();
  let size = 0;
  const walk = (d: string) => {
    for (const e of listDir(d)) {
      const path = `${d}/${e.name}`;
      const st = lstatNs(path);
      if (isDir(st)) walk(path);
      else if (st.size > 0 && !seen.has(st.ino)) {
        seen.add(st.ino);
        size += st.size;
      }
    }
  };
  walk(dir);
  return size;
}

/** The size of a container: its layer's diff, its big data and its two directories. */
export async function containerSize(p: StoreParts, idOrName: string): Promise<number> {
  return await withLocks(layerHolds(p, "read"), async () => {
    const graphDir = await containerDir(p, "graph", idOrName);
    const runDir = await containerDir(p, "run", idOrName);
    return await withLocks([[p.containerStore, "read"]], async () => {
      const cs = p.containerStore;
      const c = cs.get(idOrName);
      const ls = allLayerStores(p).find((s) => s.exists(c.layer));
      if (!ls) throw new ErrLayerUnknown(c.layer);
      const { diffSize } = await import("../layers/diff.ts");
      let size = await diffSize(ls, "", c.layer);
      for (const key of cs.bigDataNames(c.id)) size += await cs.bigDataSize(c.id, key);
      return size + treeSize(graphDir) + treeSize(runDir);
    });
  });
}

/** Owners of the directories above the container's mount point that its mapping cannot express. */
export async function containerParentOwners(
  p: StoreParts,
  idOrName: string,
): Promise<{ uids: number[]; gids: number[] }> {
  const ls = p.layerStore;
  return await withLocks([[ls, "read"], [p.containerStore, "read"]], async () => {
    const c = p.containerStore.get(idOrName);
    if (!ls.exists(c.layer)) throw new ErrLayerUnknown(c.layer);
    return await parentOwners(ls, c.layer);
  });
}

/** The container whose layer is `idOrName` (a layer of any store, by ID, name or prefix). */
export async function containerByLayer(p: StoreParts, idOrName: string): Promise<Container> {
  return await withLocks([...layerHolds(p, "read"), [p.containerStore, "read"]], () => {
    const ls = allLayerStores(p).find((s) => s.exists(idOrName));
    if (!ls) throw new ErrLayerUnknown(idOrName);
    const c = p.containerStore.byLayer(ls.lookupID(idOrName));
    if (!c) throw new ErrContainerUnknown(idOrName, { detail: "no container uses this layer" });
    return c;
  });
}

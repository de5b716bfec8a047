/**
 * Mount reference counts of a layer store, kept in mountpoints.json under
 * mountpoints.lock so that every process (ours or containers/storage)
 * sees the same counts.
 *
 * @example
 * ```ts ignore
 * const path = await mount(store, id, {});
 * await unmount(store, id, false);
 * ```
 * @module
 */

import { dirname, resolve } from "../path.ts";
import type { MountOpts } from "../../drivers/driver.ts";
import {
  ErrLayerNotMounted,
  ErrLayerUnknown,
  ErrStoreIsReadOnly,
  StorageError,
} from "../errors.ts";
import { toContainer, toHost } from "../idmap.ts";
import { isMountpoint } from "../../ffi/mount.ts";
import type { LayerStore } from "./layer_store.ts";

/** Runs `fn` with mountpoints.lock held, reloading mount counts another process changed. */
async function withMounts<T>(
  s: LayerStore,
  write: boolean,
  fn: () => Promise<T>,
): Promise<T> {
  const ml = s.mountsLockfile!;
  if (write) await ml.lock();
  else await ml.rLock();
  try {
    if (ml.modified()) await s.loadMounts();
    return await fn();
  } finally {
    if (write) ml.touch();
    ml.unlock();
  }
}

/** How many times a layer is mounted. */
export async function mounted(s: LayerStore, id: string): Promise<number> {
  if (!s.isReadWrite()) {
    throw new ErrStoreIsReadOnly(s.mountsPath, { detail: "no mount information for layers" });
  }
  return await withMounts(s, false, () => Promise.resolve(s.mustLookup(id).mountcount ?? 0));
}

/**
 * Mounts a layer (or counts one more user of an existing mount) and
 * returns its path. Layers of read-only stores mount only with "ro".
 */
export async function mount(s: LayerStore, id: string, opts: MountOpts = {}): Promise<string> {
  if (!s.isReadWrite() && !(opts.options ?? []).includes("ro")) {
    throw new ErrStoreIsReadOnly(s.mountsPath, { detail: "not allowed to update mount locations" });
  }
  return await withMounts(s, true, async () => {
    const layer = s.mustLookup(id);
    // A mount the kernel dropped behind our back is redone below (the count still grows).
    if ((layer.mountcount ?? 0) > 0 && layer.mountpoint && await isMountpoint(layer.mountpoint)) {
      layer.mountcount = (layer.mountcount ?? 0) + 1;
      await s.saveMounts();
      return layer.mountpoint;
    }
    const mountLabel = opts.mountLabel || layer.mountlabel || "";
    const wants = opts.idMappings;
    if (wants && !s.driver.supportsShifting()) {
      const same = JSON.stringify(wants.uidMap ?? []) === JSON.stringify(layer.uidmap ?? []) &&
        JSON.stringify(wants.gidMap ?? []) === JSON.stringify(layer.gidmap ?? []);
      if (!same) {
        throw new StorageError(layer.id, { detail: "cannot mount layer: shifting not enabled" });
      }
    }
    const path = await s.driver.get(layer.id, { ...opts, mountLabel });
    if (layer.mountpoint) s.byMount.delete(layer.mountpoint);
    layer.mountpoint = resolve(path);
    layer.mountcount = (layer.mountcount ?? 0) + 1;
    s.byMount.set(layer.mountpoint, layer);
    await s.saveMounts();
    return path;
  });
}

/**
 * Drops one user of a layer's mount (all of them with `force`), unmounting
 * when none is left. `id` may also be the mount point. Returns whether the
 * layer is still mounted.
 */
export async function unmount(s: LayerStore, id: string, force: boolean): Promise<boolean> {
  if (!s.isReadWrite()) {
    throw new ErrStoreIsReadOnly(s.mountsPath, { detail: "not allowed to update mount locations" });
  }
  return await withMounts(s, true, async () => {
    const layer = s.lookup(id) ?? s.byMount.get(resolve(id));
    if (!layer) throw new ErrLayerUnknown(id);
    if (force) layer.mountcount = 1;
    if ((layer.mountcount ?? 0) > 1) {
      layer.mountcount! -= 1;
      await s.saveMounts();
      return true;
    }
    try {
      await s.driver.put(layer.id);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (layer.mountpoint) s.byMount.delete(layer.mountpoint);
    layer.mountcount = (layer.mountcount ?? 0) - 1;
    delete layer.mountpoint;
    await s.saveMounts();
    return false;
  });
}

/**
 * UIDs and GIDs owning the directories above a mapped layer's mount point
 * that its mapping cannot express (so a user namespace needs them mapped).
 */
export async function parentOwners(
  s: LayerStore,
  id: string,
): Promise<{ uids: number[]; gids: number[] }> {
  if (!s.isReadWrite()) {
    throw new ErrStoreIsReadOnly(s.mountsPath, { detail: "no mount information for layers" });
  }
  return await withMounts(s, false, async () => {
    const layer = s.mustLookup(id);
    const uidmap = layer.uidmap ?? [];
    const gidmap = layer.gidmap ?? [];
    if (uidmap.length === 0 && gidmap.length === 0) return { uids: [], gids: [] };
    if (!layer.mountpoint) throw new ErrLayerNotMounted(layer.id);
    toHost(0, uidmap);
    toHost(0, gidmap);
    const uids = new Set<number>();
    const gids = new Set<number>();
    const unmapped = (v: number, maps: typeof uidmap) => {
      try {
        toContainer(v, maps);
        return false;
      } catch {
        return true;
      }
    };
    for (let dir = dirname(layer.mountpoint); dir !== "/" && dir !== "."; dir = dirname(dir)) {
      for (const st of [await Deno.stat(dir), await Deno.lstat(dir)]) {
        if (unmapped(st.uid!, uidmap)) uids.add(st.uid!);
        if (unmapped(st.gid!, gidmap)) gids.add(st.gid!);
      }
    }
    return { uids: [...uids].sort((a, b) => a - b), gids: [...gids].sort((a, b) => a - b) };
  });
}

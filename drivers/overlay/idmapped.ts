/**
 * Shifting with ID-mapped lowers, as containers/storage 1.43 does on
 * kernels that allow overlay over ID-mapped mounts: layers are stored
 * unshifted (owned by container IDs), and a mount that asks for UID/GID
 * maps gets each distinct lower root bind-mounted under
 * `<home>/<id>/mapped/<n>` with owners translated, overlay stacked over
 * those, and the mapped mounts detached right away (overlay holds its own
 * references). The upper directory is not mapped, so files written
 * through the mount keep the writer's IDs.
 *
 * Whether the kernel can do this is probed once and cached in the run
 * home as `idmapped-lower-dir-true` / `-false` (empty files), the name the
 * reference uses, so both share the result.
 *
 * @example
 * ```ts ignore
 * const ok = await idmappedLowersSupported(home, runHome);
 * const mapped = await mapLowers(home, id, absLowers, maps);
 * try { mountOverlay(merged, flags, `lowerdir=${mapped.abs.join(":")},…`); }
 * finally { mapped.detach(); }
 * ```
 * @module
 */

import { createIDMappedMount, UserNamespace } from "../../ffi/idmap_mount.ts";
import { MNT_DETACH, mount, unmount } from "../../ffi/mount.ts";
import { geteuid } from "../../ffi/process.ts";
import { ErrPermission } from "../../lib/errors.ts";
import type { IDMappings } from "../../lib/idmap.ts";
import { readFeature, recordFeature } from "./features.ts";
import { LINK_DIR } from "./layout.ts";
import { unmountDetach } from "./mounting.ts";
import { dirname, normalize } from "../../lib/path.ts";

/** The cached feature's name: files `idmapped-lower-dir-true|false` in the run home. */
export const IDMAPPED_FEATURE = "idmapped-lower-dir";
/** Environment switch (containers/storage ≥ 1.48) turning ID-mapped shifting off. */
export const DISABLE_IDMAP_ENV = "_CONTAINERS_OVERLAY_DISABLE_IDMAP";
/** Directory, inside the layer's own directory, holding its ID-mapped lower mounts. */
export const MAPPED_DIR = "mapped";

/** Whether `_CONTAINERS_OVERLAY_DISABLE_IDMAP=yes` is set. */
export function idmapDisabledByEnv(): boolean {
  return Deno.env.get(DISABLE_IDMAP_ENV) === "yes";
}

/**
 * Whether overlay can stack over ID-mapped lowers here: only root can make
 * them (false, not recorded, otherwise); otherwise the cached answer, or a
 * probe whose answer is cached. A probe that could not run (no
 * `--allow-run`, no `unshare` binary) answers false without recording it,
 * so the cache shared with other processes keeps no verdict it never reached.
 */
export async function idmappedLowersSupported(home: string, runHome: string): Promise<boolean> {
  if (geteuid() !== 0) return false;
  const hit = await readFeature(runHome, IDMAPPED_FEATURE);
  if (hit) return hit.supported;
  let ok: boolean;
  try {
    ok = await probeIDMappedLowers(home);
  } catch (e) {
    // no verdict (a Deno permission or the unshare helper missing): answer for this process only
    if (e instanceof ErrPermission || e instanceof Deno.errors.NotFound) return false;
    ok = false;
  }
  await recordFeature(runHome, IDMAPPED_FEATURE, { supported: ok, text: "" });
  return ok;
}

/** Mounts an overlay whose only lower is an ID-mapped (identity) view, in a temp dir of `home`. */
async function probeIDMappedLowers(home: string): Promise<boolean> {
  const dir = await Deno.makeTempDir({ dir: home, prefix: "compat" });
  const [merged, lower, lowerMapped, upper, work] = [
    "merged",
    "lower",
    "lower-mapped",
    "upper",
    "work",
  ]
    .map((n) => `${dir}/${n}`);
  try {
    for (const d of [merged, lower, lowerMapped, upper, work]) await Deno.mkdir(d, { mode: 0o700 });
    const identity = [{ container_id: 0, host_id: 0, size: 1 }];
    const ns = await UserNamespace.create(identity, identity);
    try {
      createIDMappedMount(lower, lowerMapped, ns.fd);
    } finally {
      ns.close();
    }
    try {
      mount(
        "overlay",
        merged,
        "overlay",
        0,
        `lowerdir=${lowerMapped},upperdir=${upper},workdir=${work}`,
      );
      unmount(merged, MNT_DETACH);
    } finally {
      unmount(lowerMapped, MNT_DETACH);
    }
    return true;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The directory to ID-map for a lower: its parent, or the driver home for
 * `<home>/l/<link>`, so one mapped mount serves every short link. Computed
 * on the lexically cleaned path, like the reference.
 */
export function mappedMountRoot(lower: string): string {
  const parent = dirname(normalize(lower));
  return parent.endsWith(`/${LINK_DIR}`) ? dirname(parent) : parent;
}

/** Lowers rewritten to go through ID-mapped mounts; detach them once overlay is mounted. */
export interface MappedLowers {
  /** Absolute lower paths through `<home>/<id>/mapped/<n>`. */
  abs: string[];
  /** The same paths relative to the driver home (for page-size fallbacks). */
  rel: string[];
  /** Lazily unmounts the mapped mounts (overlay keeps what it uses). */
  detach(): void;
}

/**
 * Creates `<home>/<id>/mapped/<n>` ID-mapped mounts (one per distinct
 * {@linkcode mappedMountRoot}) for `lowers` with `maps`, and returns the
 * lowers rewritten through them.
 */
export async function mapLowers(
  home: string,
  id: string,
  lowers: string[],
  maps: IDMappings,
): Promise<MappedLowers> {
  const mappedDir = `${home}/${id}/${MAPPED_DIR}`;
  await Deno.mkdir(mappedDir, { recursive: true, mode: 0o700 });
  const roots = new Map<string, string>();
  const detach = () => {
    for (const target of roots.values()) unmountDetach(target);
  };
  const ns = await UserNamespace.create(maps.uidMap, maps.gidMap);
  const abs: string[] = [];
  try {
    for (const lower of lowers) {
      const source = mappedMountRoot(lower);
      let target = roots.get(source);
      if (target === undefined) {
        target = `${mappedDir}/${roots.size}`;
        try {
          createIDMappedMount(source, target, ns.fd);
        } catch (e) {
          throw new Error(
            `create mapped mount for ${JSON.stringify(source)} on ${JSON.stringify(target)}: ${
              (e as Error).message
            }`,
            { cause: e },
          );
        }
        roots.set(source, target);
      }
      // the unclean remainder keeps `l/<link>/../diff1` resolving through the link
      const tail = (lower.startsWith(`${source}/`) ? lower : normalize(lower))
        .slice(source.length + 1);
      abs.push(tail === "" ? target : `${target}/${tail}`);
    }
  } catch (e) {
    detach();
    throw e;
  } finally {
    ns.close();
  }
  const rel = abs.map((p) => p.startsWith(`${home}/`) ? p.slice(home.length + 1) : p);
  return { abs, rel, detach };
}

/** Lazily unmounts whatever is still mounted in `<home>/<id>/mapped/` (a leak of a failed get). */
export async function detachMapped(home: string, id: string): Promise<void> {
  const mappedDir = `${home}/${id}/${MAPPED_DIR}`;
  try {
    for await (const e of Deno.readDir(mappedDir)) unmountDetach(`${mappedDir}/${e.name}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * What the kernel and the backing filesystem can do for overlay, probed
 * with real test mounts inside the driver home and cached in the run home
 * exactly like containers/storage (files named `<feature>-true` or
 * `<feature>-false`, the false ones holding the reason), so our process and
 * the reference CLI share one cache:
 *
 * - `overlay`: d_type, kernel-style whiteouts, a mount with two lowers;
 * - `metacopy(<mountopt>)`: whether a chmod copies up metadata only;
 * - `native-diff(<mountopt>)`: whether the upper directory alone is a
 *   faithful diff (no opaque flag leaking on copy-up, no redirect_dir).
 *
 * @example
 * ```ts ignore
 * const fs = backingFsName(statfs(home).type); // "extfs"
 * const ok = await cachedFeature(runHome, "overlay", () => probeOverlay(home, fs));
 * ```
 * @module
 */

import { isDir, lgetxattr, lsetxattr, lstatIfExists, mknod, S_IFCHR } from "../../ffi/fs.ts";
import { MNT_DETACH, mount, unmount } from "../../ffi/mount.ts";
import { listDir, removeAll, supportsDType } from "../../ffi/dirent.ts";
import { splitMountOptions } from "./options.ts";

/** statfs f_type of overlayfs. */
export const FS_MAGIC_OVERLAY = 0x794c7630;
/** statfs f_type of FUSE filesystems (fuse-overlayfs). */
export const FS_MAGIC_FUSE = 0x65735546;
/** statfs f_type of XFS, the only filesystem with project quotas for overlay. */
export const FS_MAGIC_XFS = 0x58465342;

const fsNames = new Map<number, string>([
  [0x61756673, "aufs"],
  [0x9123683e, "btrfs"],
  [0x28cd3d45, "cramfs"],
  [0xf15f, "ecryptfs"],
  [0xef53, "extfs"],
  [0xf2f52010, "f2fs"],
  [0x47504653, "gpfs"],
  [0x72b6, "jffs2"],
  [0x3153464a, "jfs"],
  [0x6969, "nfs"],
  [FS_MAGIC_OVERLAY, "overlayfs"],
  [0x858458f6, "ramfs"],
  [0x52654973, "reiserfs"],
  [0x517b, "smb"],
  [0x73717368, "squashfs"],
  [0x01021994, "tmpfs"],
  [0xa501fcf5, "vxfs"],
  [FS_MAGIC_XFS, "xfs"],
  [0x2fc12fc1, "zfs"],
  [FS_MAGIC_FUSE, "fuse"],
  [0, "unsupported"],
]);

/** Filesystems overlay cannot use as its upper layer without a mount program. */
export const INCOMPATIBLE_FS = new Set([0x61756673, 0x2fc12fc1, FS_MAGIC_OVERLAY, 0xf15f]);

/** The name containers/storage prints for a statfs magic ("<unknown>" if none). */
export function backingFsName(magic: number): string {
  return fsNames.get(magic >>> 0) ?? "<unknown>";
}

/** A cached probe result: whether the feature is there, and the recorded reason if not. */
export interface CachedFeature {
  /** The feature is supported / in use. */
  supported: boolean;
  /** Text recorded with a negative result (the reason). */
  text: string;
}

/** Reads a cached feature result from the run home, or undefined when not probed yet. */
export async function readFeature(
  runHome: string,
  feature: string,
): Promise<CachedFeature | undefined> {
  for (const supported of [true, false]) {
    try {
      const text = await Deno.readTextFile(`${runHome}/${feature}-${supported}`);
      return { supported, text };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return undefined;
}

/** Records a probe result in the run home, where {@linkcode readFeature} finds it. */
export async function recordFeature(
  runHome: string,
  feature: string,
  result: CachedFeature,
): Promise<void> {
  await Deno.writeTextFile(`${runHome}/${feature}-${result.supported}`, result.text, {
    mode: 0o644,
  });
}

/** A probe takes milliseconds: a probe directory this old is a killed probe's. */
const LEFTOVER_AGE_MS = 60_000;

/**
 * Unmounts and removes what killed probes left under `home`: directories
 * named `prefix…` (ours, and 1.43's, which are named alike) untouched for a
 * minute, with their test mount. A probe killed between its mount and its
 * unmount otherwise leaves both for good: its feature is never cached, so
 * the next open probes again in a new directory.
 */
function clearLeftovers(home: string, prefix: string): void {
  for (const e of listDir(home)) {
    if (!e.name.startsWith(prefix)) continue;
    const dir = `${home}/${e.name}`;
    const st = lstatIfExists(dir);
    if (!st || !isDir(st) || Date.now() - st.mtime.sec * 1000 < LEFTOVER_AGE_MS) continue;
    try {
      unmount(`${dir}/merged`, MNT_DETACH);
    } catch {
      // not mounted
    }
    removeAll(dir);
  }
}

async function withTempDir<T>(
  home: string,
  prefix: string,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  clearLeftovers(home, prefix);
  const dir = await Deno.makeTempDir({ dir: home, prefix });
  try {
    return await fn(dir);
  } finally {
    try {
      unmount(`${dir}/merged`, MNT_DETACH);
    } catch {
      // not mounted: the probe failed before or already unmounted
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function mkdirs(base: string, names: string[]): Promise<void> {
  for (const n of names) await Deno.mkdir(`${base}/${n}`, { recursive: true, mode: 0o700 });
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Probes whether overlay works on `home` (over a filesystem called `fsName`):
 * d_type, kernel-style whiteouts, then a test mount with two lowers.
 * Resolves to an error message when it does not, undefined when it does.
 */
export async function probeOverlay(home: string, fsName: string): Promise<string | undefined> {
  return await withTempDir(home, "compat", async (dir) => {
    if (!supportsDType(dir)) {
      let msg =
        `overlay: the backing ${fsName} filesystem is formatted without d_type support, which leads to incorrect behavior.`;
      if (fsName === "xfs") {
        msg += " Reformat the filesystem with ftype=1 to enable d_type support.";
      }
      return msg + " Running without d_type is not supported.: driver not supported";
    }
    try {
      mknod(`${dir}/whiteout`, S_IFCHR | 0o600, 0);
    } catch (e) {
      return `unable to create kernel-style whiteout: ${errText(e)}`;
    }
    await mkdirs(dir, ["merged", "lower1", "lower2", "upper", "work"]);
    try {
      mount(
        "overlay",
        `${dir}/merged`,
        "overlay",
        0,
        `lowerdir=${dir}/lower1:${dir}/lower2,upperdir=${dir}/upper,workdir=${dir}/work`,
      );
      return undefined;
    } catch {
      // try again with one lower below, to tell an old kernel from an unusable filesystem
    }
    try {
      mount(
        "overlay",
        `${dir}/merged`,
        "overlay",
        0,
        `lowerdir=${dir}/lower1,upperdir=${dir}/upper,workdir=${dir}/work`,
      );
      return "kernel too old to provide multiple lowers feature for overlay";
    } catch {
      return `'overlay' is not supported over ${fsName} at ${JSON.stringify(home)}`;
    }
  });
}

/** Mounts a small overlay in a temp dir under `home` with `mountOpts`, runs `fn` on it. */
async function withTestMount<T>(
  home: string,
  prefix: string,
  mountOpts: string,
  layers: { lowers: string[]; upper: string },
  prepare: (dir: string) => Promise<void>,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  return await withTempDir(home, prefix, async (dir) => {
    await mkdirs(dir, [...layers.lowers, layers.upper, "work", "merged"]);
    await prepare(dir);
    const { flags, data } = splitMountOptions(mountOpts);
    let opts = `lowerdir=${
      layers.lowers.map((l) => `${dir}/${l}`).join(":")
    },upperdir=${dir}/${layers.upper},workdir=${dir}/work`;
    if (data !== "") opts = `${data},${opts}`;
    try {
      mount("overlay", `${dir}/merged`, "overlay", flags, opts);
    } catch (e) {
      throw new Error(
        `failed to mount overlay for ${prefix} with ${JSON.stringify(mountOpts)} options: ${
          errText(e)
        }`,
        { cause: e },
      );
    }
    return await fn(dir);
  });
}

/** Whether overlay mounted with `mountOpts` copies up metadata only (metacopy). */
export async function probeMetacopy(home: string, mountOpts: string): Promise<boolean> {
  return await withTestMount(
    home,
    "metacopy-check",
    mountOpts,
    { lowers: ["l1"], upper: "l2" },
    async (dir) => await Deno.writeFile(`${dir}/l1/f`, new Uint8Array(), { mode: 0o700 }),
    async (dir) => {
      await Deno.chmod(`${dir}/merged/f`, 0o555);
      return lgetxattr(`${dir}/l2/f`, "trusted.overlay.metacopy") !== null;
    },
  );
}

/**
 * Resolves to a reason when native diff (tar of the upper directory) would
 * be wrong with `mountOpts`, undefined when it is usable.
 */
export async function probeNativeDiff(
  home: string,
  mountOpts: string,
): Promise<string | undefined> {
  return await withTestMount(
    home,
    "opaque-bug-check",
    mountOpts,
    { lowers: ["l2", "l1"], upper: "l3" },
    async (dir) => {
      await mkdirs(dir, ["l1/d", "l1/d1", "l2/d"]);
      lsetxattr(`${dir}/l2/d`, "trusted.overlay.opaque", new TextEncoder().encode("y"));
    },
    async (dir) => {
      await Deno.writeFile(`${dir}/merged/d/f`, new Uint8Array(), { mode: 0o644 });
      const opaque = lgetxattr(`${dir}/l3/d`, "trusted.overlay.opaque");
      if (opaque && new TextDecoder().decode(opaque) === "y") {
        return "opaque flag erroneously copied up, consider update to kernel 4.8 or later to fix";
      }
      try {
        await Deno.rename(`${dir}/merged/d1`, `${dir}/merged/d2`);
      } catch (e) {
        // EXDEV: the kernel refuses directory renames, so no redirects can appear
        if (/EXDEV|os error 18/.test(`${(e as { code?: string }).code} ${errText(e)}`)) {
          return undefined;
        }
        throw e;
      }
      const redirect = lgetxattr(`${dir}/l3/d2`, "trusted.overlay.redirect");
      if (redirect && new TextDecoder().decode(redirect) === "d1") {
        return "kernel has CONFIG_OVERLAY_FS_REDIRECT_DIR enabled";
      }
      return undefined;
    },
  );
}

/**
 * Setting up the overlay driver on a host: parsing its options, creating
 * the driver home (`l/` inside it) and run home, probing what the kernel
 * and the backing filesystem support (cached in the run home), choosing
 * between the kernel's overlay and fuse-overlayfs (remembered in the home's
 * `.has-mount-program`, which we and the reference read), and making the
 * home a private mount.
 *
 * @example
 * ```ts ignore
 * const { opts, features } = await setUpHost({ home, runHome, options: [] });
 * console.log(features.backingFs, features.naiveDiff);
 * ```
 * @module
 */

import type { DriverConfig } from "../driver.ts";
import { ErrConfig, ErrDriverNotSupported } from "../../lib/errors.ts";
import { llistxattr, statfs } from "../../ffi/fs.ts";
import { SyscallError } from "../../ffi/errors.ts";
import { WHITEOUT_PREFIX } from "../../lib/archive/whiteout.ts";
import { type OverlayOptions, parseOverlayOptions } from "./options.ts";
import {
  backingFsName,
  FS_MAGIC_XFS,
  INCOMPATIBLE_FS,
  probeMetacopy,
  probeNativeDiff,
  probeOverlay,
  readFeature,
  recordFeature,
} from "./features.ts";
import { LINK_DIR } from "./layout.ts";
import { makePrivate } from "./mounting.ts";
import { idmapDisabledByEnv, idmappedLowersSupported } from "./idmapped.ts";
import { ProjectQuotaControl } from "./quota.ts";

const MOUNT_PROGRAM_FLAG_FILE = ".has-mount-program";

/** What the host offers overlay, as `status` reports it. */
export interface HostFeatures {
  /** Name of the filesystem under the driver home ("extfs", "xfs", …). */
  backingFs: string;
  /** Directory entries carry their type. */
  supportsDType: boolean;
  /** Overlay copies up metadata only (metacopy=on). */
  usingMetacopy: boolean;
  /** Diffs must be computed by comparing mounts instead of reading diff/. */
  naiveDiff: boolean;
  /** Project quotas (overlay.size) are available. */
  projectQuota: boolean;
  /** Sets per-layer project quotas; present where projectQuota is true. */
  quotaCtl?: ProjectQuotaControl;
  /** Overlay stacks over ID-mapped lowers, so layers can be shifted at mount time. */
  idmappedLowers: boolean;
}

/**
 * Prepares the driver home and run home, probes (or reads cached) host
 * features, and makes the home a private mount.
 * @throws {ErrConfig} for bad options; {@linkcode ErrDriverNotSupported}
 * when overlay cannot work here, naming the cause.
 */
export async function setUpHost(
  config: DriverConfig,
): Promise<{ opts: OverlayOptions; features: HostFeatures }> {
  let opts: OverlayOptions;
  try {
    opts = parseOverlayOptions(config.options);
  } catch (e) {
    throw new ErrConfig(undefined, { detail: (e as Error).message, cause: e });
  }
  for (const s of config.additionalImageStores ?? []) {
    if (!opts.imageStores.includes(s)) opts.imageStores.push(s);
  }
  if (opts.forceMask !== undefined && opts.mountProgram === "") {
    throw new ErrConfig(undefined, {
      detail: "'force_mask' is supported only with 'mount_program'",
    });
  }
  const { home, runHome } = config;
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  const magic = statfs(home).type >>> 0;
  const backingFs = backingFsName(magic);
  await Deno.mkdir(`${home}/${LINK_DIR}`, { recursive: true, mode: 0o755 });
  await Deno.mkdir(runHome, { recursive: true, mode: 0o700 });

  if (opts.mountProgram === "" && !(await nativeOverlayUsable(home, runHome, backingFs))) {
    opts.mountProgram = (await lookPath("fuse-overlayfs")) ?? "";
  }
  if (opts.mountProgram !== "") await writeMountProgramFlag(home, true);

  let usingMetacopy = false;
  let naiveDiff = true;
  if (opts.mountProgram === "") {
    if (INCOMPATIBLE_FS.has(magic)) {
      throw new ErrDriverNotSupported(undefined, {
        detail:
          `'overlay' is not supported over ${backingFs}, a mount_program is required: backing file system is unsupported for this graph driver`,
      });
    }
    const native = await overlaySupport(home, runHome, backingFs);
    if (!native.supported) throw new ErrDriverNotSupported(undefined, { detail: native.text });
    usingMetacopy = await cached(runHome, `metacopy(${opts.mountOptions})`, async () => {
      const on = await probeMetacopy(home, opts.mountOptions);
      return { supported: on, text: "" };
    });
  }

  const wantsQuota = opts.quotaSize > 0 || opts.quotaInodes > 0;
  let quotaCtl: ProjectQuotaControl | undefined;
  if (magic === FS_MAGIC_XFS) {
    try {
      quotaCtl = ProjectQuotaControl.open(home);
    } catch (e) {
      if (wantsQuota) {
        throw new ErrConfig(undefined, {
          detail:
            `storage options overlay.size and overlay.inodes not supported. Filesystem does not support Project Quota: ${
              (e as Error).message
            }`,
          cause: e,
        });
      }
    }
  } else if (wantsQuota) {
    throw new ErrConfig(undefined, {
      detail:
        `storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found ${backingFs}`,
    });
  }
  if (opts.mountProgram === "") {
    // after the quota set-up, as the reference: a refused quota leaves no native-diff record
    naiveDiff = !(await cached(runHome, `native-diff(${opts.mountOptions})`, async () => {
      const why = await probeNativeDiff(home, opts.mountOptions);
      return why === undefined ? { supported: true, text: "" } : {
        supported: false,
        text:
          `Not using native diff for overlay, this may cause degraded performance for building images: ${why}`,
      };
    }));
  }
  if (!opts.skipMountHome) await makePrivate(home);
  // The reference probes on its first SupportsShifting(); ours is synchronous, so it is
  // answered here. A mount program shifts by itself and the env switch skips the probe.
  const idmappedLowers = opts.mountProgram === "" && !idmapDisabledByEnv() &&
    await idmappedLowersSupported(home, runHome);
  const features = {
    backingFs,
    // overlay refuses filesystems without d_type above; a mount program does not need it
    supportsDType: true,
    usingMetacopy,
    naiveDiff,
    projectQuota: quotaCtl !== undefined,
    quotaCtl,
    idmappedLowers,
  };
  return { opts, features };
}

/**
 * Whether the kernel's overlay is to be used rather than a mount program,
 * decided as the reference does: never for a home recorded as mounted by a
 * mount program (the record outlives the run home's probe cache, so a store
 * once switched to fuse-overlayfs stays on it after a reboot), nor for one
 * whose files show a mount program's traces; otherwise by the probe.
 */
async function nativeOverlayUsable(
  home: string,
  runHome: string,
  backingFs: string,
): Promise<boolean> {
  let flag = "";
  try {
    flag = (await Deno.readTextFile(`${home}/${MOUNT_PROGRAM_FLAG_FILE}`)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (flag === "true") return false;
  if (flag !== "false") {
    const traces = hasMountProgramTraces(home);
    await writeMountProgramFlag(home, traces);
    if (traces) return false;
  }
  return (await overlaySupport(home, runHome, backingFs)).supported;
}

async function writeMountProgramFlag(home: string, used: boolean): Promise<void> {
  await Deno.writeTextFile(`${home}/${MOUNT_PROGRAM_FLAG_FILE}`, String(used), { mode: 0o600 });
}

/**
 * A mount program leaves `.wh.` whiteout files where the kernel makes
 * character devices, and keeps ownership and modes in user xattrs on
 * directories; the kernel's overlay would misread such layers.
 */
function hasMountProgramTraces(dir: string): boolean {
  let xattrs: string[] = [];
  try {
    xattrs = llistxattr(dir);
  } catch (e) {
    if (!(e instanceof SyscallError && e.code === "EOPNOTSUPP")) throw e;
  }
  if (xattrs.some((x) => x.startsWith("user.fuseoverlayfs.") || x.startsWith("user.containers."))) {
    return true;
  }
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.startsWith(WHITEOUT_PREFIX)) return true;
    if (e.isDirectory && hasMountProgramTraces(`${dir}/${e.name}`)) return true;
  }
  return false;
}

async function overlaySupport(
  home: string,
  runHome: string,
  backingFs: string,
): Promise<{ supported: boolean; text: string }> {
  const hit = await readFeature(runHome, "overlay");
  if (hit) return hit;
  const why = await probeOverlay(home, backingFs);
  const result = why === undefined
    ? { supported: true, text: "" }
    : { supported: false, text: `kernel does not support overlay fs: ${why}` };
  await recordFeature(runHome, "overlay", result);
  return result;
}

async function cached(
  runHome: string,
  feature: string,
  probe: () => Promise<{ supported: boolean; text: string }>,
): Promise<boolean> {
  const hit = await readFeature(runHome, feature);
  if (hit) return hit.supported;
  const r = await probe();
  await recordFeature(runHome, feature, r);
  return r.supported;
}

async function lookPath(cmd: string): Promise<string | undefined> {
  for (const d of (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    if (d === "") continue;
    try {
      const st = await Deno.stat(`${d}/${cmd}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return `${d}/${cmd}`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

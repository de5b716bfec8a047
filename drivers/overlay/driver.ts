/**
 * The overlay storage driver: each layer is a `diff` directory, stacked
 * with kernel overlayfs at mount time (see layout.ts for the on-disk form,
 * mounting.ts for how mounts are made, features.ts for host probing).
 *
 * @example
 * ```ts ignore
 * const d = await OverlayDriver.init({ home: "/var/lib/containers/storage/overlay",
 *   runHome: "/run/containers/storage/overlay", options: [] });
 * await d.create(base, "");
 * await d.createReadWrite(ctr, base);
 * const rootfs = await d.get(ctr); // …/overlay/<ctr>/merged
 * await d.put(ctr);
 * ```
 * @module
 */

import type {
  ApplyDiffOpts,
  Change,
  CreateOpts,
  Driver,
  DriverConfig,
  FileGetter,
  MountOpts,
} from "../driver.ts";
import type { IDMappings } from "../../lib/idmap.ts";
import { toHost } from "../../lib/idmap.ts";
import {
  ErrConfig,
  ErrDriverNotSupported,
  ErrLayerUnknown,
  ErrNotSupported,
} from "../../lib/errors.ts";
import { getpagesize, statfs } from "../../ffi/fs.ts";
import { applyTar } from "../../lib/archive/apply.ts";
import { changesDirs, changesOverlay, changesSize } from "../../lib/archive/changes.ts";
import { exportChanges } from "../../lib/archive/export.ts";
import {
  formatMountLabel,
  type OverlayOptions,
  parseOverlayOptions,
  splitMountOptions,
} from "./options.ts";
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
import {
  exists,
  generateLinkID,
  Layout,
  LINK_DIR,
  LOWER_FILE,
  MAX_DEPTH,
  readOptional,
} from "./layout.ts";
import {
  appendMappings,
  isOverlayMounted,
  makePrivate,
  mountOverlay,
  mountRelative,
  mountWithProgram,
  RefCounter,
  unmountDetach,
  unmountProgramMount,
} from "./mounting.ts";
import { chownByMaps, diffName, rotateDiffs } from "./idmap.ts";
import { DiffDirsGetter, directorySize, releaseAfter } from "./diff.ts";

const DEFAULT_PERMS = 0o555;
const MOUNT_PROGRAM_FLAG_FILE = ".has-mount-program";

/** Serializes operations per layer ID inside this process. */
class KeyedMutex {
  #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    const tail = prev.then(() => mine);
    this.#tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

interface Probed {
  backingFs: string;
  supportsDType: boolean;
  usingMetacopy: boolean;
  naiveDiff: boolean;
  projectQuota: boolean;
}

/** The overlay driver; build it with {@linkcode OverlayDriver.init}. */
export class OverlayDriver implements Driver {
  /** Always "overlay" (the on-disk directory name). */
  readonly name = "overlay";
  readonly #layout: Layout;
  readonly #ctr: RefCounter;
  readonly #locks = new KeyedMutex();

  private constructor(
    readonly home: string,
    readonly runHome: string,
    private readonly opts: OverlayOptions,
    private readonly probed: Probed,
    private readonly defaultMappings: IDMappings | undefined,
  ) {
    this.#layout = new Layout(home, opts.imageStores);
    const fuse = opts.mountProgram !== "";
    this.#ctr = new RefCounter((p) => isOverlayMounted(p, fuse));
  }

  /**
   * Prepares the driver home and run home, probes (or reads cached) host
   * features, and makes the home a private mount.
   * @throws {ErrConfig} for bad options; {@linkcode ErrDriverNotSupported}
   * when overlay cannot work here, naming the cause.
   */
  static async init(config: DriverConfig): Promise<OverlayDriver> {
    let opts: OverlayOptions;
    try {
      opts = parseOverlayOptions(config.options);
    } catch (e) {
      throw new ErrConfig(undefined, { cause: e }, (e as Error).message);
    }
    for (const s of config.additionalImageStores ?? []) {
      if (!opts.imageStores.includes(s)) opts.imageStores.push(s);
    }
    if (opts.forceMask !== undefined && opts.mountProgram === "") {
      throw new ErrConfig(
        undefined,
        undefined,
        "'force_mask' is supported only with 'mount_program'",
      );
    }
    const { home, runHome } = config;
    await Deno.mkdir(home, { recursive: true, mode: 0o700 });
    const magic = statfs(home).type >>> 0;
    const backingFs = backingFsName(magic);
    await Deno.mkdir(`${home}/${LINK_DIR}`, { recursive: true, mode: 0o755 });
    await Deno.mkdir(runHome, { recursive: true, mode: 0o700 });

    let native: { supported: boolean; text: string } | undefined;
    if (opts.mountProgram === "") {
      native = await OverlayDriver.#overlaySupport(home, runHome, backingFs);
      if (!native.supported) opts.mountProgram = (await lookPath("fuse-overlayfs")) ?? "";
    }
    await Deno.writeTextFile(
      `${home}/${MOUNT_PROGRAM_FLAG_FILE}`,
      String(opts.mountProgram !== ""),
      {
        mode: 0o600,
      },
    );

    let usingMetacopy = false;
    let naiveDiff = true;
    if (opts.mountProgram === "") {
      if (INCOMPATIBLE_FS.has(magic)) {
        throw new ErrDriverNotSupported(
          undefined,
          undefined,
          `'overlay' is not supported over ${backingFs}, a mount_program is required: backing file system is unsupported for this graph driver`,
        );
      }
      if (native && !native.supported) {
        throw new ErrDriverNotSupported(undefined, undefined, native.text);
      }
      usingMetacopy = await cached(runHome, `metacopy(${opts.mountOptions})`, async () => {
        const on = await probeMetacopy(home, opts.mountOptions);
        return { supported: on, text: "" };
      });
      naiveDiff = !(await cached(runHome, `native-diff(${opts.mountOptions})`, async () => {
        const why = await probeNativeDiff(home, opts.mountOptions);
        return why === undefined ? { supported: true, text: "" } : {
          supported: false,
          text:
            `Not using native diff for overlay, this may cause degraded performance for building images: ${why}`,
        };
      }));
    }

    if (opts.quotaSize > 0 || opts.quotaInodes > 0) {
      throw new ErrConfig(
        undefined,
        undefined,
        magic === FS_MAGIC_XFS
          ? "storage options overlay.size and overlay.inodes not supported. Filesystem does not support Project Quota: project quotas are not implemented by this driver"
          : `storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found ${backingFs}`,
      );
    }
    if (!opts.skipMountHome) await makePrivate(home);
    return new OverlayDriver(home, runHome, opts, {
      backingFs,
      supportsDType: true,
      usingMetacopy,
      naiveDiff,
      projectQuota: false,
    }, config.idMappings);
  }

  static async #overlaySupport(
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
    await recordFeature(runHome, "overlay", result.supported, result.text);
    return result;
  }

  /** The pairs `containers-storage status` prints for overlay. */
  status(): Promise<[string, string][]> {
    return Promise.resolve([
      ["Backing Filesystem", this.probed.backingFs],
      ["Supports d_type", String(this.probed.supportsDType)],
      ["Native Overlay Diff", String(!this.probed.naiveDiff)],
      ["Using metacopy", String(this.probed.usingMetacopy)],
    ]);
  }

  /** WorkDir, MergedDir, UpperDir and (when there are lowers) LowerDir of a layer. */
  async metadata(id: string): Promise<Record<string, string>> {
    const dir = await this.#existingDir(id);
    const md: Record<string, string> = {
      WorkDir: `${dir}/work`,
      MergedDir: this.#mergedDir(id, dir),
      UpperDir: `${dir}/diff`,
    };
    const lowers = await this.#layout.lowerDirs(id);
    if (lowers.length > 0) md.LowerDir = lowers.join(":");
    return md;
  }

  /** Detaches the private bind mount of the home. */
  cleanup(): Promise<void> {
    if (!this.opts.skipMountHome) unmountDetach(this.home);
    return Promise.resolve();
  }

  /** Creates a read-only layer; a `size` storage option is refused (read-write layers only). */
  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt && "size" in opts.storageOpt) {
      throw new ErrNotSupported(
        undefined,
        undefined,
        "--storage-opt size is only supported for ReadWrite Layers",
      );
    }
    await this.#create(id, parent, opts);
  }

  /** Creates a writable layer; storage options need project quotas, which are not available. */
  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt && Object.keys(opts.storageOpt).length > 0 && !this.probed.projectQuota) {
      throw new ErrNotSupported(
        undefined,
        undefined,
        "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
      );
    }
    await this.#create(id, parent, opts);
  }

  /** Creates a layer whose lowers are `template` and its chain, so it shows the template's content. */
  async createFromTemplate(
    id: string,
    template: string,
    _templateMappings: IDMappings | undefined,
    _parent: string,
    _parentMappings: IDMappings | undefined,
    opts: CreateOpts | undefined,
    readWrite: boolean,
  ): Promise<void> {
    if (readWrite) await this.createReadWrite(id, template, opts);
    else await this.create(id, template, opts);
  }

  async #create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    const dir = `${this.home}/${id}`;
    const maps = opts?.idMappings ?? this.defaultMappings;
    let uid = toHost(0, maps?.uidMap ?? []);
    let gid = toHost(0, maps?.gidMap ?? []);
    await Deno.mkdir(`${this.home}/${LINK_DIR}`, { recursive: true, mode: 0o755 });
    let parentDir: string | undefined;
    if (parent !== "") {
      parentDir = await this.#layout.dir(parent);
      const st = await Deno.stat(parentDir).catch((e) => {
        throw new ErrLayerUnknown(parent, { cause: e }, "parent layer directory is missing");
      });
      uid = st.uid ?? uid;
      gid = st.gid ?? gid;
    }
    await mkdirOwned(dir, 0o700, uid, gid);
    try {
      let perms = this.opts.forceMask ?? DEFAULT_PERMS;
      if (parentDir) perms = (await Deno.stat(`${parentDir}/diff`)).mode! & 0o7777;
      await mkdirOwned(`${dir}/diff`, perms, uid, gid);
      const lid = generateLinkID();
      await Deno.symlink(`../${id}/diff`, `${this.home}/${LINK_DIR}/${lid}`);
      await Deno.writeTextFile(`${dir}/link`, lid, { mode: 0o644 });
      await mkdirOwned(`${dir}/work`, 0o700, uid, gid);
      await mkdirOwned(`${dir}/merged`, 0o700, uid, gid);
      if (parent === "") {
        await mkdirOwned(`${dir}/empty`, 0o700, uid, gid);
        return;
      }
      const lower = await this.#layout.lowerFor(parent);
      if (lower !== "") {
        // Deno applies a file mode verbatim; the reference's 0666 goes through the umask
        await Deno.writeTextFile(`${dir}/${LOWER_FILE}`, lower, { mode: 0o666 & ~Deno.umask() });
      }
    } catch (e) {
      await this.#removeDirAndLink(dir);
      throw e;
    }
  }

  /** Removes a layer (its short link too), unmounting whatever is still mounted inside it. */
  async remove(id: string): Promise<void> {
    await this.#locks.run(id, async () => {
      await this.#removeDirAndLink(`${this.home}/${id}`);
    });
  }

  async #removeDirAndLink(dir: string): Promise<void> {
    const link = await readOptional(`${dir}/link`);
    if (link) await Deno.remove(`${this.home}/${LINK_DIR}/${link.trim()}`).catch(() => {});
    await detachMountsUnder(dir);
    try {
      await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if ((e as { code?: string }).code !== "EBUSY") throw e;
      await detachMountsUnder(dir);
      await Deno.remove(dir, { recursive: true });
    }
  }

  async #existingDir(id: string): Promise<string> {
    const dir = await this.#layout.dir(id);
    if (!(await exists(dir))) {
      throw new ErrLayerUnknown(id, undefined, "no overlay directory for the layer");
    }
    return dir;
  }

  #mergedDir(id: string, dir: string): string {
    // Layers of read-only image stores are mounted under our run home.
    return dir.startsWith(this.home + "/") ? `${dir}/merged` : `${this.runHome}/${id}/merged`;
  }

  /** Mounts the layer (once per process however often it is asked) and returns its merged dir. */
  async get(id: string, options: MountOpts = {}): Promise<string> {
    return await this.#locks.run(
      id,
      () => this.#get(id, options.disableShifting ?? false, options),
    );
  }

  async #get(id: string, disableShifting: boolean, options: MountOpts): Promise<string> {
    const dir = await this.#existingDir(id);
    const inStore = !dir.startsWith(this.home + "/");
    let optsList = options.options ?? [];
    if (optsList.length === 0) optsList = this.opts.mountOptions.split(",");
    else if (
      this.opts.mountOptions.split(",").includes("metacopy=on") && !optsList.includes("metacopy=on")
    ) {
      // the kernel follows metacopy xattrs only when mounted with metacopy=on
      if (this.probed.usingMetacopy) optsList = [...optsList, "metacopy=on"];
    }
    const readWrite = !inStore && !optsList.includes("ro");

    const lowerText = await readOptional(`${dir}/${LOWER_FILE}`);
    const links = lowerText ? lowerText.split(":") : [];
    if (links.length > MAX_DEPTH) throw new Error("max depth exceeded");
    const { abs, rel, perms } = await this.#resolveLowers(id, dir, links);

    const uid = toHost(0, this.defaultMappings?.uidMap ?? []);
    const gid = toHost(0, this.defaultMappings?.gidMap ?? []);
    const diffDir = `${dir}/diff`;
    if (!(await exists(diffDir))) await mkdirOwned(diffDir, perms, uid, gid);
    const merged = this.#mergedDir(id, dir);
    await Deno.mkdir(merged, { recursive: true, mode: 0o700 });
    if (!inStore) await Deno.chown(merged, uid, gid);

    if (this.#ctr.increment(merged) > 1) return merged;
    try {
      const tail = optsList.length > 0 ? `,${optsList.join(",")}` : "";
      const workDir = `${dir}/work`;
      let opts = readWrite
        ? `lowerdir=${abs.join(":")},upperdir=${diffDir},workdir=${workDir}`
        : `lowerdir=${diffDir}:${abs.join(":")}`;
      let mountData = formatMountLabel(opts + tail, options.mountLabel);
      const pageSize = getpagesize();
      if (this.opts.mountProgram !== "") {
        let { data } = splitMountOptions(mountData);
        if (!disableShifting) {
          const m = options.idMappings ?? this.defaultMappings;
          data = appendMappings(data, m?.uidMap ?? [], m?.gidMap ?? []);
        }
        if (this.opts.forceMask !== undefined) data += ",xattr_permissions=2";
        await mountWithProgram(this.opts.mountProgram, this.home, data, merged);
      } else if (mountData.length >= pageSize && !inStore) {
        opts = readWrite
          ? `lowerdir=${rel.join(":")},upperdir=${id}/diff,workdir=${id}/work`
          : `lowerdir=${id}/diff:${rel.join(":")}`;
        mountData = formatMountLabel(opts + tail, options.mountLabel);
        if (mountData.length >= pageSize) {
          throw new Error(
            `cannot mount layer, mount label ${
              JSON.stringify(options.mountLabel ?? "")
            } too large ${mountData.length} >= page size ${pageSize}`,
          );
        }
        const { flags, data } = splitMountOptions(mountData);
        this.#mountOrExplain(
          merged,
          mountData,
          () => mountRelative(this.home, `${id}/merged`, flags, data),
        );
      } else {
        const { flags, data } = splitMountOptions(mountData);
        this.#mountOrExplain(merged, mountData, () => mountOverlay(merged, flags, data));
      }
    } catch (e) {
      this.#ctr.decrement(merged);
      throw e;
    }
    return merged;
  }

  #mountOrExplain(target: string, mountData: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      throw new Error(
        `creating overlay mount to ${target}, mount_data=${JSON.stringify(mountData)}: ${
          (e as Error).message
        }`,
        { cause: e },
      );
    }
  }

  /** Absolute and home-relative lower paths (older diffN generations first), and the diff permissions. */
  async #resolveLowers(
    id: string,
    dir: string,
    links: string[],
  ): Promise<{ abs: string[]; rel: string[]; perms: number }> {
    const abs: string[] = [];
    const rel: string[] = [];
    let perms: number | undefined;
    for (let n = 1; await exists(`${dir}/${diffName(n)}`); n++) {
      perms ??= (await Deno.stat(`${dir}/${diffName(n)}`)).mode! & 0o7777;
      abs.push(`${dir}/${diffName(n)}`);
      rel.push(`${id}/${diffName(n)}`);
    }
    for (const l of links) {
      if (l === "") continue;
      let lower = `${this.home}/${l}`;
      let st = await Deno.stat(lower).catch(() => undefined);
      if (!st) {
        let found = false;
        for (const h of this.#layout.storeHomes) {
          st = await Deno.stat(`${h}/${l}`).catch(() => undefined);
          if (st) {
            lower = `${h}/${l}`;
            found = true;
            break;
          }
        }
        if (!found) {
          // short links are lost on a crash before they reach the disk: rebuild them
          await this.#layout.recreateLinks();
          st = await Deno.stat(lower).catch((e) => {
            throw new Error(
              `can't stat lower layer ${JSON.stringify(lower)}: ${(e as Error).message}`,
              { cause: e },
            );
          });
        }
      }
      perms ??= st!.mode! & 0o7777;
      abs.push(lower);
      rel.push(l);
      for (let n = 1; await exists(`${lower}/../${diffName(n)}`); n++) {
        abs.push(`${lower}/../${diffName(n)}`);
        rel.push(`${l}/../${diffName(n)}`);
      }
    }
    if (abs.length === 0) {
      abs.push(`${dir}/empty`);
      rel.push(`${id}/empty`);
    }
    return { abs, rel, perms: perms ?? this.opts.forceMask ?? DEFAULT_PERMS };
  }

  /** Drops one use of the layer's mount; the last one unmounts (lazily) and removes `merged`. */
  async put(id: string): Promise<void> {
    await this.#locks.run(id, () => this.#put(id));
  }

  async #put(id: string): Promise<void> {
    const dir = await this.#existingDir(id);
    const merged = this.#mergedDir(id, dir);
    if (this.#ctr.decrement(merged) > 0) return;
    if (this.opts.mountProgram !== "") await unmountProgramMount(merged);
    else unmountDetach(merged);
    // never recursive: a mount that is somehow still attached must not lose its files
    await Deno.remove(merged).catch(() => {});
  }

  /** Whether the layer has a directory here or in an image store. */
  async exists(id: string): Promise<boolean> {
    return await exists(await this.#layout.dir(id));
  }

  /** Whether `parent` is the layer's direct parent, so diff/ alone is its diff. */
  async #isParent(id: string, parent: string): Promise<boolean> {
    let lowers: string[];
    try {
      lowers = await this.#layout.lowerDirs(id);
    } catch {
      return false;
    }
    if (parent === "") return lowers.length === 0;
    if (lowers.length === 0) return false;
    const ld = lowers[0].slice(0, lowers[0].lastIndexOf("/"));
    return ld === await this.#layout.dir(parent);
  }

  #whiteoutFormat(): "aufs" | "overlay" {
    // mount programs usually run unprivileged, where mknod of whiteouts fails
    return this.opts.mountProgram !== "" ? "aufs" : "overlay";
  }

  /**
   * Untars a layer diff into `diff/` (overlay whiteouts); when `parent` is
   * not the layer's own parent, applies through a mount instead.
   */
  async applyDiff(id: string, parent: string, opts: ApplyDiffOpts): Promise<number> {
    const ignoreChownErrors = this.opts.ignoreChownErrors || (opts.ignoreChownErrors ?? false);
    if (!(await this.#isParent(id, parent))) {
      const fs = await this.get(id, { mountLabel: opts.mountLabel });
      try {
        const r = await applyTar(opts.diff, fs, {
          whiteoutFormat: "aufs",
          mappings: opts.mappings,
          ignoreChownErrors,
          forceMask: this.opts.forceMask ?? opts.forceMask,
        });
        return r.size;
      } finally {
        await this.put(id);
      }
    }
    const diffDir = `${await this.#existingDir(id)}/diff`;
    await applyTar(opts.diff, diffDir, {
      whiteoutFormat: this.#whiteoutFormat(),
      mappings: opts.mappings,
      ignoreChownErrors,
      forceMask: this.opts.forceMask,
    });
    return await directorySize(diffDir);
  }

  async #native(id: string, parent: string): Promise<boolean> {
    return !this.probed.naiveDiff && await this.#isParent(id, parent);
  }

  /** Mounts `id` and `parent` (if any), runs `fn`, unmounts the parent; `keep` keeps the layer mounted. */
  async #withMounts<T>(
    id: string,
    parent: string,
    mountLabel: string,
    fn: (layerFs: string, parentFs: string | undefined) => Promise<T>,
    keep = false,
  ): Promise<T> {
    const layerFs = await this.get(id, { mountLabel });
    let ok = false;
    try {
      let parentFs: string | undefined;
      if (parent !== "") parentFs = await this.get(parent, { mountLabel });
      try {
        const r = await fn(layerFs, parentFs);
        ok = true;
        return r;
      } finally {
        if (parent !== "") await this.put(parent);
      }
    } finally {
      if (!keep || !ok) await this.put(id);
    }
  }

  /** The layer's changes as a tar with AUFS whiteouts (native: from diff/; naive: mount and compare). */
  async diff(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<ReadableStream<Uint8Array>> {
    if (await this.#native(id, parent)) {
      // the tar of diff/ itself: whiteout devices and opaque markers are converted on the way out
      const diffDir = `${await this.#existingDir(id)}/diff`;
      const changes = await changesDirs(diffDir, undefined, { mappings });
      return exportChanges(diffDir, changes, { mappings, whiteoutFormat: this.#whiteoutFormat() });
    }
    const stream = await this.#withMounts(id, parent, mountLabel, async (layerFs, parentFs) => {
      const changes = await changesDirs(layerFs, parentFs, { mappings, parentMappings });
      return exportChanges(layerFs, changes, { mappings });
    }, true);
    return releaseAfter(stream, () => this.put(id));
  }

  /** The layer's changes against `parent`. */
  async changes(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<Change[]> {
    if (await this.#native(id, parent)) {
      const dir = await this.#existingDir(id);
      return await changesOverlay(`${dir}/diff`, await this.#layout.lowerDirs(id));
    }
    return await this.#withMounts(
      id,
      parent,
      mountLabel,
      (l, p) => changesDirs(l, p, { mappings, parentMappings }),
    );
  }

  /** Size of the layer's changes (native: bytes under diff/). */
  async diffSize(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
    mountLabel: string,
  ): Promise<number> {
    if (await this.#native(id, parent)) {
      return await directorySize(`${await this.#existingDir(id)}/diff`);
    }
    return await this.#withMounts(
      id,
      parent,
      mountLabel,
      async (l, p) => await changesSize(l, await changesDirs(l, p, { mappings, parentMappings })),
    );
  }

  /** Reads files from diff/, older diffN generations, then the lowers — no mount needed. */
  async diffGetter(id: string): Promise<FileGetter> {
    const dir = await this.#existingDir(id);
    const dirs = [`${dir}/diff`];
    for (let n = 1; await exists(`${dir}/${diffName(n)}`); n++) dirs.push(`${dir}/${diffName(n)}`);
    dirs.push(...await this.#layout.lowerDirs(id));
    return new DiffDirsGetter(dirs);
  }

  /** True with a mount program (it maps IDs at mount time). */
  supportsShifting(): boolean {
    if (Deno.env.get("_TEST_FORCE_SUPPORT_SHIFTING") === "yes-please") return true;
    return this.opts.mountProgram !== "";
  }

  /**
   * Re-owns the layer's files from `toContainer` to `toHost` mappings
   * through a mount (copying lower files up), then rotates diff/ so the
   * result becomes a lower and a fresh diff/ starts empty.
   */
  async updateLayerIDMap(
    id: string,
    toContainer: IDMappings,
    toHostMaps: IDMappings,
    mountLabel: string,
  ): Promise<void> {
    const dir = await this.#existingDir(id);
    const uid = toHost(0, toHostMaps.uidMap);
    const gid = toHost(0, toHostMaps.gidMap);
    const fs = await this.#locks.run(
      id,
      () => this.#get(id, true, { mountLabel, options: this.opts.mountOptions.split(",") }),
    );
    try {
      await chownByMaps(fs, toContainer, toHostMaps);
    } finally {
      await this.put(id);
    }
    let perms = this.opts.forceMask ?? DEFAULT_PERMS;
    if (this.opts.forceMask === undefined) {
      const st = await Deno.stat(`${dir}/diff`).catch(() => undefined);
      if (st) perms = st.mode! & 0o7777;
    }
    await rotateDiffs(dir, perms, uid, gid);
  }

  /** Image stores whose layers may be used as lowers. */
  additionalImageStores(): string[] {
    return [...this.opts.imageStores];
  }
}

async function mkdirOwned(path: string, mode: number, uid: number, gid: number): Promise<void> {
  await Deno.mkdir(path, { mode });
  await Deno.chown(path, uid, gid);
}

async function cached(
  runHome: string,
  feature: string,
  probe: () => Promise<{ supported: boolean; text: string }>,
): Promise<boolean> {
  const hit = await readFeature(runHome, feature);
  if (hit) return hit.supported;
  const r = await probe();
  await recordFeature(runHome, feature, r.supported, r.text);
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

/** Lazily unmounts every mount at or below `dir`, deepest first. */
async function detachMountsUnder(dir: string): Promise<void> {
  const info = await Deno.readTextFile("/proc/self/mountinfo");
  const points = info.split("\n").map((l) => l.split(" ")[4]).filter((m): m is string =>
    m !== undefined && (m === dir || m.startsWith(dir + "/"))
  ).map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .sort((a, b) => b.length - a.length);
  for (const p of points) unmountDetach(p);
}

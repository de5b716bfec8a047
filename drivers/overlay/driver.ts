/**
 * The overlay storage driver: each layer is a `diff` directory, stacked
 * with kernel overlayfs at mount time (see layout.ts for the on-disk form,
 * mounting.ts for how mounts are made, init.ts and features.ts for host
 * probing, idmapped.ts for shifting through ID-mapped lowers).
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
  ParentFreeApply,
} from "../driver.ts";
import { type IDMappings, rootPair } from "../../lib/idmap.ts";
import { ErrLayerUnknown, ErrNotSupported } from "../../lib/errors.ts";
import { getpagesize, symlink } from "../../ffi/fs.ts";
import { formatMountLabel, type OverlayOptions, splitMountOptions } from "./options.ts";
import { type HostFeatures, setUpHost } from "./init.ts";
import { parseStorageOpt } from "./quota.ts";
import { generateLinkID, Layout, LINK_DIR, LOWER_FILE, MAX_DEPTH, readOptional } from "./layout.ts";
import {
  appendMappings,
  detachMountsUnder,
  isOverlayMounted,
  mountOverlay,
  mountRelative,
  mountWithProgram,
  RefCounter,
  unmountDetach,
  unmountProgramMount,
} from "./mounting.ts";
import { KeyedMutex } from "./keyed_mutex.ts";
import { diffName, rotateDiffs } from "./idmap.ts";
import { chownPathByMaps } from "../chown.ts";
import { directorySize, releaseAfter } from "./diff.ts";
import { LayerFilesGetter } from "../../lib/archive/layer_files.ts";
import { detachMapped, idmapDisabledByEnv, mapLowers, type MappedLowers } from "./idmapped.ts";
import { pathExists } from "../../lib/path_exists.ts";

const DEFAULT_PERMS = 0o555;

/** The overlay driver; build it with {@linkcode OverlayDriver.init}. */
export class OverlayDriver implements Driver, ParentFreeApply {
  /** Always "overlay" (the on-disk directory name). */
  readonly name = "overlay";
  /**
   * A layer's diff goes into its own `diff/` (the root entry skipped), and
   * `create` takes from the parent only its directory's owner, its `diff/`'s
   * mode and its lowers, which no apply changes.
   */
  readonly appliesWithoutParentContent = true as const;
  readonly #layout: Layout;
  readonly #ctr: RefCounter;
  readonly #locks = new KeyedMutex();

  private constructor(
    readonly home: string,
    readonly runHome: string,
    private readonly opts: OverlayOptions,
    private readonly probed: HostFeatures,
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
    const { opts, features } = await setUpHost(config);
    return new OverlayDriver(config.home, config.runHome, opts, features, config.idMappings);
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

  /** Creates a read-only layer; `size` and `inodes` storage options are for read-write layers. */
  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    for (const key of ["size", "inodes"]) {
      if (opts?.storageOpt && key in opts.storageOpt) {
        throw new ErrNotSupported(undefined, {
          detail: `--storage-opt ${key} is only supported for ReadWrite Layers`,
        });
      }
    }
    await this.#create(id, parent, opts);
  }

  /**
   * Creates a writable layer; storage options (`size`, `inodes`, defaulting
   * to the driver's) need project quotas.
   */
  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt && Object.keys(opts.storageOpt).length > 0 && !this.probed.projectQuota) {
      throw new ErrNotSupported(undefined, {
        detail: "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
      });
    }
    const storageOpt = {
      size: String(this.opts.quotaSize),
      inodes: String(this.opts.quotaInodes),
      ...opts?.storageOpt,
    };
    await this.#create(id, parent, { ...opts, storageOpt });
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
    // unlike vfs, overlay refuses a mapping without container root, as 1.43 does
    let { uid, gid } = rootPair(maps ?? { uidMap: [], gidMap: [] });
    await Deno.mkdir(`${this.home}/${LINK_DIR}`, { recursive: true, mode: 0o755 });
    let parentDir: string | undefined;
    if (parent !== "") {
      parentDir = await this.#layout.dir(parent);
      const st = await Deno.stat(parentDir).catch((e) => {
        throw new ErrLayerUnknown(parent, {
          detail: "parent layer directory is missing",
          cause: e,
        });
      });
      uid = st.uid ?? uid;
      gid = st.gid ?? gid;
    }
    await mkdirOwned(dir, 0o700, uid, gid);
    try {
      // every layer gets a project (usage is tracked); limits only where asked
      this.probed.quotaCtl?.setQuota(dir, parseStorageOpt(opts?.storageOpt ?? {}));
      let perms = this.opts.forceMask ?? DEFAULT_PERMS;
      if (parentDir) perms = (await Deno.stat(`${parentDir}/diff`)).mode! & 0o7777;
      await mkdirOwned(`${dir}/diff`, perms, uid, gid);
      const lid = generateLinkID();
      symlink(`../${id}/diff`, `${this.home}/${LINK_DIR}/${lid}`);
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
    detachMountsUnder(dir);
    try {
      await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if ((e as { code?: string }).code !== "EBUSY") throw e;
      detachMountsUnder(dir);
      await Deno.remove(dir, { recursive: true });
    }
  }

  async #existingDir(id: string): Promise<string> {
    const dir = await this.#layout.dir(id);
    if (!(await pathExists(dir))) {
      throw new ErrLayerUnknown(id, { detail: "no overlay directory for the layer" });
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
    if (!this.supportsShifting() || options.disableShifting) disableShifting = true;
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
    if (options.volatile && readWrite && !optsList.includes("volatile")) {
      optsList = [...optsList.filter((o) => o !== ""), "volatile"];
      // the kernel refuses to reuse a work dir that a volatile mount left behind
      await Deno.remove(`${dir}/work/work/incompat/volatile`, { recursive: true }).catch(() => {});
    }

    const lowerText = await readOptional(`${dir}/${LOWER_FILE}`);
    const links = lowerText ? lowerText.split(":") : [];
    if (links.length > MAX_DEPTH) throw new Error("max depth exceeded");
    let { abs, rel, perms } = await this.#layout.mountLowers(
      id,
      dir,
      links,
      this.opts.forceMask ?? DEFAULT_PERMS,
    );

    const { uid, gid } = rootPair(this.defaultMappings ?? { uidMap: [], gidMap: [] });
    const diffDir = `${dir}/diff`;
    // 1.43 re-owns an existing diff dir to the driver's root at every mount
    // (MkdirAllAs chowns what exists), which is what a container sees as "/";
    // a layer of an additional image store is never written
    if (!(await pathExists(diffDir))) await mkdirOwned(diffDir, perms, uid, gid);
    else if (!inStore) await Deno.chown(diffDir, uid, gid);
    const merged = this.#mergedDir(id, dir);
    await Deno.mkdir(merged, { recursive: true, mode: 0o700 });
    if (!inStore) await Deno.chown(merged, uid, gid);

    if (this.#ctr.increment(merged) > 1) return merged;
    let mapped: MappedLowers | undefined;
    try {
      const maps = options.idMappings;
      // a mount program gets the maps as options (below) and maps the lowers itself
      if (
        !disableShifting && this.opts.mountProgram === "" && maps && maps.uidMap.length > 0 &&
        maps.gidMap.length > 0
      ) {
        ({ abs, rel } = mapped = await mapLowers(this.home, id, abs, maps));
      }
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
    } finally {
      // overlay holds its own references to the lowers it was given
      mapped?.detach();
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

  /** Drops one use of the layer's mount; the last one unmounts (lazily) and removes `merged`. */
  async put(id: string): Promise<void> {
    await this.#locks.run(id, () => this.#put(id));
  }

  async #put(id: string): Promise<void> {
    const dir = await this.#existingDir(id);
    const merged = this.#mergedDir(id, dir);
    if (this.#ctr.decrement(merged) > 0) return;
    // normally detached right after mounting; a failed mount may have left some behind
    await detachMapped(this.home, id);
    if (this.opts.mountProgram !== "") await unmountProgramMount(merged);
    else unmountDetach(merged);
    // never recursive: a mount that is somehow still attached must not lose its files
    await Deno.remove(merged).catch(() => {});
  }

  /** Whether the layer has a directory here or in an image store. */
  async exists(id: string): Promise<boolean> {
    return await pathExists(await this.#layout.dir(id));
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
    // The archive engine loads when a layer is written, not when a store opens.
    const { applyTar } = await import("../../lib/archive/apply.ts");
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
    const r = await applyTar(opts.diff, diffDir, {
      // the mount program reads AUFS whiteout files itself: they are extracted as they are
      whiteoutFormat: this.opts.mountProgram !== "" ? "keep" : "overlay",
      mappings: opts.mappings,
      ignoreChownErrors,
      forceMask: this.opts.forceMask,
      measureUsage: true,
    });
    return r.usage ?? await directorySize(diffDir);
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
    const { exportChanges, exportTree } = await import("../../lib/archive/export.ts");
    const { changesDirs } = await import("../../lib/archive/changes.ts");
    if (await this.#native(id, parent)) {
      // the tar of diff/ itself: whiteout devices and opaque markers are converted on the way out
      const diffDir = `${await this.#existingDir(id)}/diff`;
      const lowerDirs = await this.#layout.lowerDirs(id);
      return exportTree(diffDir, { mappings, whiteoutFormat: this.#whiteoutFormat(), lowerDirs });
    }
    const stream = await this.#withMounts(id, parent, mountLabel, async (layerFs, parentFs) => {
      if (parentFs === undefined) return exportTree(layerFs, { mappings });
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
    const { changesDirs, changesOverlay } = await import("../../lib/archive/changes.ts");
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
    const { changesDirs, changesSize } = await import("../../lib/archive/changes.ts");
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
    for (let n = 1; await pathExists(`${dir}/${diffName(n)}`); n++) {
      dirs.push(`${dir}/${diffName(n)}`);
    }
    dirs.push(...await this.#layout.lowerDirs(id));
    return new LayerFilesGetter(dirs);
  }

  /**
   * True with a mount program (it maps IDs at mount time) or where overlay
   * stacks over ID-mapped lowers; never with `_CONTAINERS_OVERLAY_DISABLE_IDMAP=yes`.
   */
  supportsShifting(): boolean {
    if (idmapDisabledByEnv()) return false;
    if (Deno.env.get("_TEST_FORCE_SUPPORT_SHIFTING") === "yes-please") return true;
    return this.opts.mountProgram !== "" || this.probed.idmappedLowers;
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
    const { uid, gid } = rootPair(toHostMaps);
    const fs = await this.#locks.run(
      id,
      () => this.#get(id, true, { mountLabel, options: this.opts.mountOptions.split(",") }),
    );
    try {
      await chownPathByMaps(fs, toContainer, toHostMaps);
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

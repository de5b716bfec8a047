/**
 * The vfs driver: each layer is a plain directory `<home>/dir/<id>` holding
 * a full copy of its parent plus its own changes. It needs no kernel
 * feature, so it works everywhere; diffs are computed by comparing a
 * layer's directory with its parent's.
 *
 * Options: `vfs.ignore_chown_errors=<bool>`, `vfs.imagestore=<graph roots>`;
 * anything else is refused, as containers/storage does.
 *
 * @example
 * ```ts ignore
 * import vfs from "./mod.ts";
 * const d = await vfs.init({ home: "/g/vfs", runHome: "/r/vfs", options: [] });
 * await d.create("a".repeat(64), "");
 * ```
 * @module
 */

import { join } from "../../lib/path.ts";
import { ErrDriverNotSupported } from "../../lib/errors.ts";
import { type IDMappings, rootPairOrKeep } from "../../lib/idmap.ts";
import { lchown } from "../../ffi/fs.ts";
import { chownPathByMaps } from "../chown.ts";
import type {
  ApplyDiffOpts,
  Change,
  CreateOpts,
  Driver,
  DriverConfig,
  DriverModule,
  FileGetter,
  MountOpts,
} from "../driver.ts";
import { copyTree } from "./copy.ts";

/** Go's strconv.ParseBool. */
function parseBool(key: string, v: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  throw new ErrDriverNotSupported("vfs", {
    detail: `${key}: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`,
  });
}

class VfsDriver implements Driver {
  readonly name = "vfs";
  /** homes[0] is our home; later entries are graph roots of additional image stores. */
  readonly homes: string[];
  ignoreChownErrors = false;
  readonly idMappings: IDMappings;

  constructor(config: DriverConfig) {
    this.homes = [config.home, ...(config.additionalImageStores ?? [])];
    this.idMappings = config.idMappings ?? { uidMap: [], gidMap: [] };
    for (const option of config.options) {
      const eq = option.indexOf("=");
      if (eq < 0) {
        throw new ErrDriverNotSupported("vfs", {
          detail: `unable to parse key/value option: ${option}`,
        });
      }
      const key = option.slice(0, eq).trim().toLowerCase();
      const val = option.slice(eq + 1).trim();
      switch (key) {
        case "vfs.imagestore":
        case ".imagestore":
          this.homes.push(...val.split(","));
          break;
        case "vfs.mountopt":
          throw new ErrDriverNotSupported("vfs", {
            detail: "vfs driver does not support mount options",
          });
        case "vfs.ignore_chown_errors":
        case ".ignore_chown_errors":
          this.ignoreChownErrors = parseBool(key, val);
          break;
        default:
          throw new ErrDriverNotSupported("vfs", {
            detail: `vfs driver does not support ${key} options`,
          });
      }
    }
  }

  /** The directory of a layer: ours, or one in an additional image store. */
  dir(id: string): string {
    for (let i = 0; i < this.homes.length; i++) {
      const home = i === 0 ? this.homes[0] : join(this.homes[i], "vfs");
      const candidate = join(home, "dir", id);
      try {
        if (Deno.statSync(candidate).isDirectory) return candidate;
      } catch {
        // not in this home
      }
    }
    return join(this.homes[0], "dir", id);
  }

  status(): Promise<[string, string][]> {
    return Promise.resolve([]);
  }

  metadata(_id: string): Promise<Record<string, string>> {
    return Promise.resolve({});
  }

  async cleanup(): Promise<void> {}

  create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts);
  }

  createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts);
  }

  createFromTemplate(
    id: string,
    template: string,
    _templateMappings: IDMappings | undefined,
    _parent: string,
    _parentMappings: IDMappings | undefined,
    opts: CreateOpts | undefined,
    _readWrite: boolean,
  ): Promise<void> {
    // A template is a full copy already: copying it is copying parent + diff.
    return this.#create(id, template, opts);
  }

  async #create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    if (opts?.storageOpt && Object.keys(opts.storageOpt).length > 0) {
      throw new ErrDriverNotSupported("vfs", { detail: "--storage-opt is not supported for vfs" });
    }
    const mappings = opts?.idMappings ?? this.idMappings;
    const root = rootPairOrKeep(mappings);
    const dir = join(this.homes[0], "dir", id);
    await Deno.mkdir(join(this.homes[0], "dir"), { recursive: true, mode: 0o700 });
    await Deno.mkdir(dir, { mode: 0o555 });
    try {
      if (parent !== "") {
        copyTree(this.dir(parent), dir);
      } else {
        await Deno.chmod(dir, 0o555);
        lchown(dir, root.uid, root.gid);
      }
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  async remove(id: string): Promise<void> {
    const dir = join(this.homes[0], "dir", id);
    try {
      await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  async get(id: string, opts?: MountOpts): Promise<string> {
    const options = opts?.options ?? [];
    if (options.length > 1 || (options.length === 1 && options[0] !== "ro")) {
      throw new ErrDriverNotSupported("vfs", {
        detail: "vfs driver does not support mount options",
      });
    }
    const dir = this.dir(id);
    const st = await Deno.stat(dir);
    if (!st.isDirectory) throw new Error(`${dir}: not a directory`);
    return dir;
  }

  async put(_id: string): Promise<void> {
    // Nothing is mounted: a vfs layer is just a directory.
  }

  async exists(id: string): Promise<boolean> {
    try {
      return (await Deno.stat(this.dir(id))).isDirectory;
    } catch {
      return false;
    }
  }

  async applyDiff(id: string, _parent: string, opts: ApplyDiffOpts): Promise<number> {
    const { applyTar } = await import("../../lib/archive/apply.ts");
    const dir = await this.get(id, { mountLabel: opts.mountLabel });
    const r = await applyTar(opts.diff, dir, {
      whiteoutFormat: "aufs",
      mappings: opts.mappings,
      ignoreChownErrors: this.ignoreChownErrors || opts.ignoreChownErrors,
      forceMask: opts.forceMask,
    });
    return r.size;
  }

  async #changes(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
  ): Promise<{ dir: string; changes: Change[] }> {
    const { changesDirs } = await import("../../lib/archive/changes.ts");
    const dir = await this.get(id);
    const parentDir = parent === "" ? undefined : await this.get(parent);
    return { dir, changes: await changesDirs(dir, parentDir, { mappings, parentMappings }) };
  }

  async diff(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
  ): Promise<ReadableStream<Uint8Array>> {
    const { exportChanges, exportTree } = await import("../../lib/archive/export.ts");
    // without a parent the reference tars the whole directory (its walk order, not ExportChanges')
    if (parent === "") return exportTree(await this.get(id), { mappings });
    const { dir, changes } = await this.#changes(id, mappings, parent, parentMappings);
    return exportChanges(dir, changes, { mappings });
  }

  async changes(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
  ): Promise<Change[]> {
    return (await this.#changes(id, mappings, parent, parentMappings)).changes;
  }

  async diffSize(
    id: string,
    mappings: IDMappings | undefined,
    parent: string,
    parentMappings: IDMappings | undefined,
  ): Promise<number> {
    const { changesSize } = await import("../../lib/archive/changes.ts");
    const { dir, changes } = await this.#changes(id, mappings, parent, parentMappings);
    return await changesSize(dir, changes);
  }

  async diffGetter(id: string): Promise<FileGetter> {
    const { LayerFilesGetter } = await import("../../lib/archive/layer_files.ts");
    return new LayerFilesGetter([this.dir(id)]);
  }

  supportsShifting(): boolean {
    return false;
  }

  async updateLayerIDMap(
    id: string,
    toContainerMaps: IDMappings,
    toHostMaps: IDMappings,
  ): Promise<void> {
    await chownPathByMaps(await this.get(id), toContainerMaps, toHostMaps);
  }

  additionalImageStores(): string[] {
    return this.homes.slice(1);
  }
}

/** The vfs driver module for the registry. */
const vfs: DriverModule = {
  name: "vfs",
  async init(config: DriverConfig): Promise<Driver> {
    return await Promise.resolve(new VfsDriver(config));
  },
};

export default vfs;

/**
 * Store options the way containers/storage 1.43 computes its defaults:
 * storage.conf (found in the system or per-user location, or named by
 * CONTAINERS_STORAGE_CONF), the STORAGE_DRIVER and STORAGE_OPTS
 * environment overrides, and the built-in roots for root and rootless
 * users. Table options become driver option strings such as
 * "overlay.mountopt=nodev", in the same order containers/storage emits them.
 *
 * Everything that depends on the process (uid, environment, file
 * locations) can be injected, so tests need not touch the real system.
 *
 * @example
 * ```ts
 * import { defaultStoreOptions } from "./config.ts";
 * const opts = await defaultStoreOptions({ uid: 0, env: {} });
 * console.log(opts.graphRoot, opts.graphDriverName, opts.graphDriverOptions);
 * ```
 * @module
 */

import { normalize } from "./path.ts";
import { ErrConfig, ErrInvalidIDMap } from "./errors.ts";
import { type IDMap, idMappingsForUser, parseIDMap } from "./idmap.ts";
import type { StorageConf } from "./config_file.ts";
import { geteuid } from "../ffi/process.ts";
import { pathExists } from "./path_exists.ts";

export type { OverlayConf, StorageConf, StorageConfOptions } from "./config_file.ts";

/** The system-wide file; it wins over {@linkcode VENDOR_CONFIG_FILE} when it exists. */
export const SYSTEM_CONFIG_FILE = "/etc/containers/storage.conf";
/** The file shipped by the distribution. */
export const VENDOR_CONFIG_FILE = "/usr/share/containers/storage.conf";
/** Default graph root for root. */
export const DEFAULT_GRAPH_ROOT = "/var/lib/containers/storage";
/** Default run root for root. */
export const DEFAULT_RUN_ROOT = "/run/containers/storage";

/** Options for opening a store; field meanings follow containers/storage's StoreOptions. */
export interface StoreOptions {
  /** Run-time state (mount points, locks) that is lost on reboot. */
  runRoot: string;
  /** Layers, images and containers. */
  graphRoot: string;
  /** rootless_storage_path from storage.conf, expanded. */
  rootlessStoragePath?: string;
  /** Driver name ("overlay", "vfs", …); "" when nothing chose one. */
  graphDriverName: string;
  /** Driver options such as "overlay.mountopt=nodev", in containers/storage's order. */
  graphDriverOptions: string[];
  /** Default UID mapping for new layers (remap-uids / remap-user). */
  uidMap: IDMap[];
  /** Default GID mapping for new layers (remap-gids / remap-group). */
  gidMap: IDMap[];
  /** pull_options table, passed through. */
  pullOptions?: Record<string, string>;
  /** Additional read-only image stores, from "<driver>.imagestore=" options. */
  imageStores: string[];
  /** root-auto-userns-user. */
  rootAutoNsUser?: string;
  /** auto-userns-min-size. */
  autoNsMinSize?: number;
  /** auto-userns-max-size. */
  autoNsMaxSize?: number;
  /** disable-volatile. */
  disableVolatile?: boolean;
  /** transient_store (not known to 1.43; carried for newer files). */
  transientStore?: boolean;
  /** Effective "<driver>.ignore_chown_errors" option. */
  ignoreChownErrors?: boolean;
  /** Effective "<driver>.mount_program" option. */
  mountProgram?: string;
  /** Effective "<driver>.mountopt" option. */
  mountOpt?: string;
  /** Effective "<driver>.skip_mount_home" option. */
  skipMountHome?: boolean;
  /** Effective "<driver>.force_mask" option ("shared", "private" or octal digits). */
  forceMask?: string;
  /** Effective "<driver>.size" option. */
  size?: string;
  /** The storage.conf the options came from, if one was read. */
  configFile?: string;
}

/** What {@linkcode defaultStoreOptions} may be told instead of asking the process. */
export interface DefaultStoreOptionsInput {
  /** Effective uid (default: _CONTAINERS_ROOTLESS_UID from env, else the effective UID). 0 means root. */
  uid?: number;
  /** Environment (default: the process environment). */
  env?: Record<string, string>;
  /** storage.conf to read instead of searching (wins over CONTAINERS_STORAGE_CONF). */
  configPath?: string;
  /** System file searched first for root (default /etc/containers/storage.conf). */
  systemConfigPath?: string;
  /** Fallback system file (default /usr/share/containers/storage.conf). */
  vendorConfigPath?: string;
  /** subuid file for remap-user (default /etc/subuid). */
  subuidFile?: string;
  /** subgid file for remap-group (default /etc/subgid). */
  subgidFile?: string;
}

/**
 * Returns the last value given for `key` in driver options, accepting the
 * spellings drivers accept: "<driver>.key", ".key", and "overlay2.key" for
 * overlay. Keys compare case-insensitively.
 */
export function driverOption(options: string[], driver: string, key: string): string | undefined {
  const wanted = new Set([`${driver}.${key}`, `.${key}`].map((k) => k.toLowerCase()));
  if (driver === "overlay") wanted.add(`overlay2.${key}`);
  let found: string | undefined;
  for (const o of options) {
    const eq = o.indexOf("=");
    if (eq >= 0 && wanted.has(o.slice(0, eq).trim().toLowerCase())) found = o.slice(eq + 1);
  }
  return found;
}

function driverOptionValues(options: string[], driver: string, key: string): string[] {
  const wanted = `${driver}.${key}`.toLowerCase();
  return options.filter((o) => o.toLowerCase().startsWith(`${wanted}=`))
    .map((o) => o.slice(wanted.length + 1));
}

/** Options that only a driver's own table (or the top level as fallback) sets, in 1.43's order. */
function tableDriverOptions(driver: string, o: StorageConf["storage"]["options"]): string[] {
  const out: string[] = [];
  const add = (key: string, ...values: (string | undefined)[]) => {
    const v = values.find((x) => x !== undefined && x !== "");
    if (v !== undefined) out.push(`${driver}.${key}=${v}`);
  };
  const topMask = o.force_mask ? o.force_mask.toString(8) : undefined;
  switch (driver) {
    case "aufs":
      add("mountopt", o.aufs?.mountopt, o.mountopt);
      break;
    case "btrfs":
      // 1.43 stops after min_space when it is set.
      if (o.btrfs?.min_space) return [`${driver}.min_space=${o.btrfs.min_space}`];
      add("size", o.btrfs?.size, o.size);
      break;
    case "devicemapper": {
      const t = o.thinpool ?? {};
      const dm = (name: string, key: string) => t[key] && out.push(`dm.${name}=${t[key]}`);
      dm("thinp_autoextend_percent", "autoextend_percent");
      dm("thinp_autoextend_threshold", "autoextend_threshold");
      dm("basesize", "basesize");
      dm("blocksize", "blocksize");
      dm("directlvm_device", "directlvm_device");
      dm("directlvm_device_force", "directlvm_device_force");
      dm("fs", "fs");
      dm("libdm_log_level", "log_level");
      dm("metadata_size", "metadatasize");
      dm("min_free_space", "min_free_space");
      dm("mkfsarg", "mkfsarg");
      add("mountopt", t.mountopt, o.mountopt);
      add("size", t.size, o.size);
      dm("use_deferred_deletion", "use_deferred_deletion");
      dm("use_deferred_removal", "use_deferred_removal");
      dm("xfs_nospace_max_retries", "xfs_nospace_max_retries");
      break;
    }
    case "overlay":
    case "overlay2": {
      const ov = o.overlay ?? {};
      add("ignore_chown_errors", ov.ignore_chown_errors, o.ignore_chown_errors);
      add("mount_program", ov.mount_program, o.mount_program);
      add("mountopt", ov.mountopt, o.mountopt);
      add("size", ov.size, o.size);
      add("inodes", ov.inodes);
      add("skip_mount_home", ov.skip_mount_home, o.skip_mount_home);
      add("force_mask", ov.force_mask, topMask);
      break;
    }
    case "vfs":
      add("ignore_chown_errors", o.vfs?.ignore_chown_errors, o.ignore_chown_errors);
      break;
    case "zfs":
      add("fsname", o.zfs?.fsname);
      add("mountopt", o.zfs?.mountopt, o.mountopt);
      add("size", o.zfs?.size, o.size);
      break;
  }
  return out;
}

/** Fills the convenience fields from the final driver options, so they agree with what the driver sees. */
function withEffective(opts: Omit<StoreOptions, "imageStores">): StoreOptions {
  const d = opts.graphDriverName;
  const get = (key: string) => driverOption(opts.graphDriverOptions, d, key);
  const bool = (v: string | undefined) => v === undefined ? undefined : v.toLowerCase() === "true";
  const out: StoreOptions = {
    ...opts,
    imageStores: driverOptionValues(opts.graphDriverOptions, d, "imagestore"),
  };
  const set = <K extends keyof StoreOptions>(k: K, v: StoreOptions[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("ignoreChownErrors", bool(get("ignore_chown_errors")));
  set("mountProgram", get("mount_program"));
  set("mountOpt", get("mountopt"));
  set("skipMountHome", bool(get("skip_mount_home")));
  set("forceMask", get("force_mask"));
  set("size", get("size"));
  return out;
}

/**
 * Turns a parsed storage.conf into store options, as 1.43's
 * ReloadConfigurationFile does: STORAGE_DRIVER overrides the driver,
 * "overlay2" becomes "overlay", top-level options are emitted for the
 * driver first and the driver's table (with top-level fallbacks) after
 * them, and a set STORAGE_OPTS replaces all driver options. runRoot and
 * graphRoot stay "" when the file does not set them.
 *
 * remap-user/remap-group (either one implies the other) take their ranges
 * from /etc/subuid and /etc/subgid and win over remap-uids/remap-gids. (1.43
 * itself drops the remap-user ranges again because of a bug; we honour the
 * documented meaning.)
 * @throws {ErrConfig} naming file, key and line for bad ID mappings.
 */
export async function storeOptionsFromConf(
  conf: StorageConf,
  opts: { env?: Record<string, string>; subuidFile?: string; subgidFile?: string } = {},
): Promise<StoreOptions> {
  // Loaded already by whoever parsed `conf`.
  const { configError } = await import("./config_file.ts");
  const env = opts.env ?? Deno.env.toObject();
  const s = conf.storage;
  const o = s.options;
  const rawDriver = env.STORAGE_DRIVER || s.driver || "";
  const driver = rawDriver === "overlay2" ? "overlay" : rawDriver;

  let options: string[] = [];
  const top = (key: string, v: string | undefined) => v && options.push(`${rawDriver}.${key}=${v}`);
  for (const store of o.additionalimagestores ?? []) top("imagestore", store);
  for (const store of o.additionallayerstores ?? []) top("additionallayerstore", store);
  top("size", o.size);
  top("mount_program", o.mount_program);
  top("skip_mount_home", o.skip_mount_home);
  top("ignore_chown_errors", o.ignore_chown_errors);
  if (o.force_mask) top("force_mask", o.force_mask.toString(8));
  top("mountopt", o.mountopt);
  options.push(...tableDriverOptions(driver, o));
  if (env.STORAGE_OPTS !== undefined) options = env.STORAGE_OPTS.split(",");
  if (options.length === 1 && options[0] === "") options = [];

  const idmap = (key: string) => {
    try {
      return parseIDMap(o[key as "remap-uids"] ?? "", key);
    } catch (e) {
      if (e instanceof ErrInvalidIDMap) {
        throw configError(conf, `storage.options.${key}`, { detail: e.message, cause: e });
      }
      throw e;
    }
  };
  let uidMap = idmap("remap-uids");
  let gidMap = idmap("remap-gids");
  const user = o["remap-user"] || o["remap-group"];
  const group = o["remap-group"] || o["remap-user"];
  if (user && group) {
    try {
      ({ uidMap, gidMap } = await idMappingsForUser(user, group, {
        subuid: opts.subuidFile,
        subgid: opts.subgidFile,
      }));
    } catch (e) {
      if (!(e instanceof ErrInvalidIDMap)) throw e;
      const key = o["remap-user"] ? "remap-user" : "remap-group";
      throw configError(conf, `storage.options.${key}`, { detail: e.message, cause: e });
    }
  }

  const out: Omit<StoreOptions, "imageStores"> = {
    runRoot: s.runroot ?? "",
    graphRoot: s.graphroot ?? "",
    graphDriverName: driver,
    graphDriverOptions: options,
    uidMap,
    gidMap,
    configFile: conf.file,
  };
  if (s.rootless_storage_path) out.rootlessStoragePath = s.rootless_storage_path;
  if (o.pull_options) out.pullOptions = o.pull_options;
  if (o["root-auto-userns-user"]) out.rootAutoNsUser = o["root-auto-userns-user"];
  if (o["auto-userns-min-size"]) out.autoNsMinSize = o["auto-userns-min-size"];
  if (o["auto-userns-max-size"]) out.autoNsMaxSize = o["auto-userns-max-size"];
  if (o["disable-volatile"] !== undefined) out.disableVolatile = o["disable-volatile"];
  if (s.transient_store !== undefined) out.transientStore = s.transient_store;
  return withEffective(out);
}

async function realOrClean(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    const p = normalize(path);
    return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
  }
}

/** $UID, then $VAR and ${VAR} from `env` (unset ones become ""), then symlinks resolved where the path exists. */
async function expandPath(path: string, uid: number, env: Record<string, string>): Promise<string> {
  const expanded = path.replaceAll("$UID", String(uid))
    .replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_, a, b) => env[a ?? b] ?? "");
  return await realOrClean(expanded);
}

async function homeDir(uid: number, env: Record<string, string>): Promise<string> {
  if (env.HOME) return env.HOME;
  const passwd = await Deno.readTextFile("/etc/passwd").catch(() => "");
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length >= 6 && Number(f[2]) === uid && f[5]) return f[5];
  }
  throw new ErrConfig(undefined, { detail: `cannot determine the home directory of uid ${uid}` });
}

/**
 * The per-user runtime directory: $XDG_RUNTIME_DIR, else /run/user/UID when
 * it is private to the user, else a per-user temp dir, as containers/storage
 * picks it. The directory is not created here; the store creates its run root.
 */
async function runtimeDir(uid: number, env: Record<string, string>): Promise<string> {
  if (env.XDG_RUNTIME_DIR) return env.XDG_RUNTIME_DIR;
  try {
    const st = await Deno.stat(`/run/user/${uid}`);
    if (st.uid === uid && (st.mode! & 0o700) === 0o700 && (st.mode! & 0o066) === 0) {
      return `/run/user/${uid}`;
    }
  } catch {
    // not there: fall through to the temp dir
  }
  return `${env.TMPDIR || "/tmp"}/containers-user-${uid}`;
}

const ROOTLESS_DRIVERS = new Set(["btrfs", "overlay", "overlay2", "vfs"]);

/** Rootless options derived from the system file's options, as 1.43's getRootlessStorageOpts. */
async function rootlessDefaults(
  uid: number,
  env: Record<string, string>,
  system: StoreOptions | undefined,
): Promise<StoreOptions> {
  const dataHome = env.XDG_DATA_HOME ||
    `${await realOrClean(await homeDir(uid, env))}/.local/share`;
  let driver = system && ROOTLESS_DRIVERS.has(system.graphDriverName) ? system.graphDriverName : "";
  if (env.STORAGE_DRIVER) driver = env.STORAGE_DRIVER;
  if (driver === "overlay2") driver = "overlay";
  const options: string[] = [];
  if (driver === "overlay") {
    const chown = system?.graphDriverOptions.find((o) => o.includes("ignore_chown_errors"));
    if (chown) options.push(chown);
  }
  if (driver === "") driver = "vfs";
  if (env.STORAGE_OPTS) options.push(...env.STORAGE_OPTS.split(","));
  const out: Omit<StoreOptions, "imageStores"> = {
    runRoot: `${await runtimeDir(uid, env)}/containers`,
    graphRoot: system?.rootlessStoragePath
      ? await expandPath(system.rootlessStoragePath, uid, env)
      : `${dataHome}/containers/storage`,
    graphDriverName: driver,
    graphDriverOptions: options,
    uidMap: [],
    gidMap: [],
  };
  if (system?.pullOptions) out.pullOptions = system.pullOptions;
  return withEffective(out);
}

/**
 * The storage.conf a user reads: CONTAINERS_STORAGE_CONF if set; for root
 * /etc/containers/storage.conf if it exists, else
 * /usr/share/containers/storage.conf; for other users
 * $XDG_CONFIG_HOME/containers/storage.conf or
 * $HOME/.config/containers/storage.conf.
 */
export async function defaultConfigFile(input: DefaultStoreOptionsInput = {}): Promise<string> {
  const env = input.env ?? Deno.env.toObject();
  const uid = effectiveUid(input, env);
  if (input.configPath !== undefined) return input.configPath;
  if (env.CONTAINERS_STORAGE_CONF !== undefined) return env.CONTAINERS_STORAGE_CONF;
  if (uid === 0) return await systemConfigFile(input);
  if (env.XDG_CONFIG_HOME) return `${env.XDG_CONFIG_HOME}/containers/storage.conf`;
  return `${await homeDir(uid, env)}/.config/containers/storage.conf`;
}

function effectiveUid(input: DefaultStoreOptionsInput, env: Record<string, string>): number {
  if (input.uid !== undefined) return input.uid;
  const fromEnv = env._CONTAINERS_ROOTLESS_UID;
  return fromEnv ? Number(fromEnv) : geteuid();
}

async function systemConfigFile(input: DefaultStoreOptionsInput): Promise<string> {
  const system = input.systemConfigPath ?? SYSTEM_CONFIG_FILE;
  return await pathExists(system) ? system : input.vendorConfigPath ?? VENDOR_CONFIG_FILE;
}

/**
 * The parsed file, or `undefined` when there is none; the TOML parser (an
 * npm package) loads only when there is a file to parse, so commands on a
 * machine without storage.conf start faster. A path that cannot even be
 * checked goes to the reader, which reports why.
 */
async function readConfIfThere(file: string): Promise<StorageConf | undefined> {
  if (!await pathExists(file).catch(() => true)) return undefined;
  const { readStorageConf } = await import("./config_file.ts");
  return await readStorageConf(file);
}

/**
 * The options a store opens with when the caller gives none, following
 * containers/storage 1.43's DefaultStoreOptions.
 *
 * Root reads the system file (see {@linkcode defaultConfigFile}); roots it
 * leaves unset default to /var/lib/containers/storage and
 * /run/containers/storage. A rootless user starts from defaults derived
 * from the system file ($XDG_DATA_HOME or $HOME/.local/share
 * /containers/storage, or its rootless_storage_path; $XDG_RUNTIME_DIR
 * /containers; a rootless-capable driver, else vfs); if the user's own file
 * exists it replaces them, with unset roots taken from those defaults.
 * runroot, graphroot and rootless_storage_path get $UID and $VAR expansion.
 * A missing file is not an error.
 * @throws {ErrConfig} if a file exists but is malformed or has unknown keys.
 */
export async function defaultStoreOptions(
  input: DefaultStoreOptionsInput = {},
): Promise<StoreOptions> {
  const env = input.env ?? Deno.env.toObject();
  const uid = effectiveUid(input, env);
  const load = async (file: string) => {
    const conf = await readConfIfThere(file);
    return conf && await storeOptionsFromConf(conf, {
      env,
      subuidFile: input.subuidFile,
      subgidFile: input.subgidFile,
    });
  };
  const override = input.configPath ?? env.CONTAINERS_STORAGE_CONF;
  const system = await load(override ?? await systemConfigFile(input));

  let opts: StoreOptions;
  if (uid === 0) {
    opts = system ?? withEffective({
      runRoot: "",
      graphRoot: "",
      graphDriverName: env.STORAGE_DRIVER ?? "",
      graphDriverOptions: env.STORAGE_OPTS ? env.STORAGE_OPTS.split(",") : [],
      uidMap: [],
      gidMap: [],
    });
    opts.runRoot ||= DEFAULT_RUN_ROOT;
    opts.graphRoot ||= DEFAULT_GRAPH_ROOT;
  } else {
    const base = await rootlessDefaults(uid, env, system);
    const user = await load(override ?? await defaultConfigFile({ ...input, env, uid }));
    opts = user ?? base;
    if (user) {
      user.runRoot ||= base.runRoot;
      user.graphRoot ||= user.rootlessStoragePath || base.graphRoot;
    }
  }
  opts.runRoot = await expandPath(opts.runRoot, uid, env);
  opts.graphRoot = await expandPath(opts.graphRoot, uid, env);
  if (opts.rootlessStoragePath) {
    opts.rootlessStoragePath = await expandPath(opts.rootlessStoragePath, uid, env);
  }
  return opts;
}

/**
 * Overlay driver options (`overlay.mountopt=…`, `overlay.size=…`, …) and
 * the mount-option string helpers the driver shares with the kernel:
 * splitting flags from data, and appending an SELinux mount label.
 *
 * @example
 * ```ts
 * import { parseOverlayOptions, splitMountOptions } from "./options.ts";
 * const o = parseOverlayOptions(["overlay.mountopt=nodev,metacopy=on"]);
 * const { flags, data } = splitMountOptions(o.mountOptions); // MS_NODEV, "metacopy=on"
 * ```
 * @module
 */

/** Options of the overlay driver, parsed from storage.conf / `--storage-opt`. */
export interface OverlayOptions {
  /** Read-only image stores whose `overlay/` layers may serve as lowers. */
  imageStores: string[];
  /** Quota size in bytes requested with `size=` (0 when not given). */
  quotaSize: number;
  /** Inode quota requested with `inodes=` (0 when not given). */
  quotaInodes: number;
  /** A FUSE program (e.g. fuse-overlayfs) that mounts instead of the kernel. */
  mountProgram: string;
  /** Do not bind-mount the driver home onto itself as a private mount. */
  skipMountHome: boolean;
  /** Default mount options, comma-separated, as given. */
  mountOptions: string;
  /** Keep going when chown to a mapped ID fails. */
  ignoreChownErrors: boolean;
  /** Permission bits forced on created entries (requires a mount program). */
  forceMask?: number;
}

/** Go's strconv.ParseBool, which storage.conf values follow. */
function parseBool(key: string, val: string): boolean {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(val)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(val)) return false;
  throw new Error(`overlay: invalid boolean value ${JSON.stringify(val)} for ${key}`);
}

const sizeUnits: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** Parses a size such as "10G", "512m", "1.5kb" with binary units, as go-units' RAMInBytes. */
export function parseRAMSize(val: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$/.exec(val.trim());
  if (!m) throw new Error(`invalid size: '${val}'`);
  return Math.floor(Number(m[1]) * sizeUnits[m[2].toLowerCase()]);
}

/**
 * Parses driver options. Keys may carry an `overlay.`, `overlay2.` or `.`
 * prefix; unknown keys are rejected so that typos do not go unnoticed.
 */
export function parseOverlayOptions(options: string[]): OverlayOptions {
  const o: OverlayOptions = {
    imageStores: [],
    quotaSize: 0,
    quotaInodes: 0,
    mountProgram: "",
    skipMountHome: false,
    mountOptions: "",
    ignoreChownErrors: false,
  };
  for (const option of options) {
    const eq = option.indexOf("=");
    if (eq < 0) throw new Error(`unable to parse key/value option: ${option}`);
    const key = option.slice(0, eq).trim();
    const val = option.slice(eq + 1).trim();
    const trimmed = key.toLowerCase().replace(/^overlay\./, "").replace(/^overlay2\./, "")
      .replace(/^\./, "");
    switch (trimmed) {
      case "override_kernel_check":
        break;
      case "mountopt":
        o.mountOptions = val;
        break;
      case "size":
        o.quotaSize = parseRAMSize(val);
        break;
      case "inodes":
        o.quotaInodes = Number.parseInt(val, 10);
        if (!Number.isFinite(o.quotaInodes)) throw new Error(`overlay: invalid inodes ${val}`);
        break;
      case "imagestore":
      case "additionalimagestore":
        for (const store of val === "" ? [] : val.split(",")) o.imageStores.push(checkStore(store));
        break;
      case "mount_program":
        try {
          Deno.statSync(val);
        } catch (e) {
          throw new Error(
            `overlay: can't stat program ${JSON.stringify(val)}: ${(e as Error).message}`,
            { cause: e },
          );
        }
        o.mountProgram = val;
        break;
      case "skip_mount_home":
        o.skipMountHome = parseBool(key, val);
        break;
      case "ignore_chown_errors":
        o.ignoreChownErrors = parseBool(key, val);
        break;
      case "force_mask":
        o.forceMask = val === "shared" ? 0o755 : val === "private" ? 0o700 : parseOctal(val);
        break;
      default:
        throw new Error(`overlay: Unknown option ${key}`);
    }
  }
  return o;
}

function parseOctal(val: string): number {
  if (!/^[0-7]+$/.test(val)) throw new Error(`overlay: invalid force_mask ${JSON.stringify(val)}`);
  return Number.parseInt(val, 8);
}

function checkStore(raw: string): string {
  const store = raw.replace(/\/+$/, "") || "/";
  if (!store.startsWith("/")) {
    throw new Error(
      `overlay: image path ${JSON.stringify(store)} is not absolute.  Can not be relative`,
    );
  }
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(store);
  } catch (e) {
    throw new Error(`overlay: can't stat imageStore dir ${store}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (!st.isDirectory) {
    throw new Error(`overlay: image path ${JSON.stringify(store)} must be a directory`);
  }
  return store;
}

// Mount flags as mount(8) spells them; [set, clear] pairs mirror the table
// containers/storage's pkg/mount uses to split flags from fs data.
const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  REC: 0x4000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
};

const flagTable: Record<string, { flag: number; clear: boolean }> = {
  defaults: { flag: 0, clear: false },
  ro: { flag: MS.RDONLY, clear: false },
  rw: { flag: MS.RDONLY, clear: true },
  suid: { flag: MS.NOSUID, clear: true },
  nosuid: { flag: MS.NOSUID, clear: false },
  dev: { flag: MS.NODEV, clear: true },
  nodev: { flag: MS.NODEV, clear: false },
  exec: { flag: MS.NOEXEC, clear: true },
  noexec: { flag: MS.NOEXEC, clear: false },
  sync: { flag: MS.SYNCHRONOUS, clear: false },
  async: { flag: MS.SYNCHRONOUS, clear: true },
  dirsync: { flag: MS.DIRSYNC, clear: false },
  remount: { flag: MS.REMOUNT, clear: false },
  mand: { flag: MS.MANDLOCK, clear: false },
  nomand: { flag: MS.MANDLOCK, clear: true },
  atime: { flag: MS.NOATIME, clear: true },
  noatime: { flag: MS.NOATIME, clear: false },
  diratime: { flag: MS.NODIRATIME, clear: true },
  nodiratime: { flag: MS.NODIRATIME, clear: false },
  bind: { flag: MS.BIND, clear: false },
  rbind: { flag: MS.BIND | MS.REC, clear: false },
  unbindable: { flag: MS.UNBINDABLE, clear: false },
  runbindable: { flag: MS.UNBINDABLE | MS.REC, clear: false },
  private: { flag: MS.PRIVATE, clear: false },
  rprivate: { flag: MS.PRIVATE | MS.REC, clear: false },
  shared: { flag: MS.SHARED, clear: false },
  rshared: { flag: MS.SHARED | MS.REC, clear: false },
  slave: { flag: MS.SLAVE, clear: false },
  rslave: { flag: MS.SLAVE | MS.REC, clear: false },
  relatime: { flag: MS.RELATIME, clear: false },
  norelatime: { flag: MS.RELATIME, clear: true },
  strictatime: { flag: MS.STRICTATIME, clear: false },
  nostrictatime: { flag: MS.STRICTATIME, clear: true },
};

/**
 * Splits a comma-separated option string into mount(2) flags and the data
 * string for the filesystem. Everything that is not a known flag (including
 * empty items) stays in the data, in order, like the reference does.
 */
export function splitMountOptions(options: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options.split(",")) {
    const f = flagTable[o];
    if (f && f.flag !== 0) flags = f.clear ? flags & ~f.flag : flags | f.flag;
    else data.push(o);
  }
  return { flags, data: data.join(",") };
}

/** Appends `context="<label>"` to mount data when a label is given. */
export function formatMountLabel(data: string, label: string | undefined): string {
  if (!label) return data;
  const ctx = `context=${JSON.stringify(label)}`;
  return data === "" ? ctx : `${data},${ctx}`;
}

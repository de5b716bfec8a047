/**
 * Parsing and validation of storage.conf, the TOML file containers/storage
 * reads for its defaults. Only the keys containers/storage 1.43 knows are
 * accepted; anything else, a value of the wrong type, or a TOML syntax
 * error is an {@linkcode ErrConfig} naming the file, the key and the line.
 *
 * Turning a parsed file into store options lives in config.ts.
 *
 * @example
 * ```ts
 * import { parseStorageConf } from "./config_file.ts";
 * const conf = parseStorageConf('[storage]\ndriver = "vfs"\n', "storage.conf");
 * console.log(conf.storage.driver); // "vfs"
 * ```
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { ErrConfig } from "./errors.ts";

/** `[storage.options.overlay]`. */
export interface OverlayConf {
  /** Keep going when chown to a mapped ID fails (rootless). */
  ignore_chown_errors?: string;
  /** Comma-separated options for every mount of a layer. */
  mountopt?: string;
  /** A FUSE program (e.g. fuse-overlayfs) that mounts layers instead of the kernel. */
  mount_program?: string;
  /** Default size limit of a layer (XFS project quota). */
  size?: string;
  /** Default inode limit of a layer (XFS project quota). */
  inodes?: string;
  /** Do not make the driver home a private bind mount. */
  skip_mount_home?: string;
  /** Permissions forced on layer content: "shared", "private" or octal digits. */
  force_mask?: string;
  /** Not known to 1.43; accepted so newer files load, and ignored. */
  use_composefs?: string;
}

/** `[storage.options]`; tables of drivers other than overlay and vfs are kept as plain strings. */
export interface StorageConfOptions {
  /** Read-only graph roots whose images and layers are usable. */
  additionalimagestores?: string[];
  /** Additional layer stores (not used by 1.43 without a plugin). */
  additionallayerstores?: string[];
  /** Default size limit of a layer (XFS project quota). */
  size?: string;
  /** Default UID mapping of new layers ("container:host:size"). */
  "remap-uids"?: string;
  /** Default GID mapping of new layers. */
  "remap-gids"?: string;
  /** User whose /etc/subuid ranges make the default UID mapping. */
  "remap-user"?: string;
  /** Group whose /etc/subgid ranges make the default GID mapping. */
  "remap-group"?: string;
  /** Keep going when chown to a mapped ID fails (rootless). */
  ignore_chown_errors?: string;
  /** An integer mode in 1.43; an octal digit string is accepted too. */
  force_mask?: number;
  /** A FUSE program (e.g. fuse-overlayfs) that mounts layers instead of the kernel. */
  mount_program?: string;
  /** Comma-separated options for every mount of a layer. */
  mountopt?: string;
  /** Do not make the driver home a private bind mount. */
  skip_mount_home?: string;
  /** Options for image pulls, passed through to the caller. */
  pull_options?: Record<string, string>;
  /** User whose subordinate IDs root's automatic user namespaces use. */
  "root-auto-userns-user"?: string;
  /** Smallest automatic user namespace. */
  "auto-userns-min-size"?: number;
  /** Largest automatic user namespace. */
  "auto-userns-max-size"?: number;
  /** Ignore containers' volatile flag when mounting. */
  "disable-volatile"?: boolean;
  /** `[storage.options.overlay]`. */
  overlay?: OverlayConf;
  /** `[storage.options.vfs]`. */
  vfs?: { ignore_chown_errors?: string };
  /** `[storage.options.aufs]` (no aufs driver here; kept for the file to load). */
  aufs?: { mountopt?: string };
  /** `[storage.options.btrfs]` (no btrfs driver here). */
  btrfs?: { min_space?: string; size?: string };
  /** `[storage.options.zfs]` (no zfs driver here). */
  zfs?: { mountopt?: string; fsname?: string; size?: string };
  /** `[storage.options.thinpool]` (devicemapper; not supported). */
  thinpool?: Record<string, string>;
}

/** A validated storage.conf. Boolean-like options are normalized to "true"/"false" strings. */
export interface StorageConf {
  /** The file it was read from (used in error messages). */
  file: string;
  /** Line number (1-based) of each dotted key path as written in the file. */
  lines: Map<string, number>;
  /** The `[storage]` table: roots, driver and the nested option tables. */
  storage: {
    driver?: string;
    runroot?: string;
    graphroot?: string;
    rootless_storage_path?: string;
    /** Not known to 1.43; accepted so newer files load. */
    transient_store?: boolean;
    options: StorageConfOptions;
  };
}

type Kind = "string" | "strings" | "uint32" | "bool" | "boolstr" | "mask" | "octal" | "strmap";
interface Schema {
  [key: string]: Kind | Schema;
}

const THINPOOL_KEYS = [
  "autoextend_percent",
  "autoextend_threshold",
  "basesize",
  "blocksize",
  "directlvm_device",
  "directlvm_device_force",
  "fs",
  "log_level",
  "metadatasize",
  "min_free_space",
  "mkfsarg",
  "mountopt",
  "size",
  "use_deferred_deletion",
  "use_deferred_removal",
  "xfs_nospace_max_retries",
];

const SCHEMA: Schema = {
  storage: {
    driver: "string",
    runroot: "string",
    graphroot: "string",
    rootless_storage_path: "string",
    transient_store: "bool",
    options: {
      additionalimagestores: "strings",
      additionallayerstores: "strings",
      size: "string",
      "remap-uids": "string",
      "remap-gids": "string",
      "remap-user": "string",
      "remap-group": "string",
      ignore_chown_errors: "boolstr",
      force_mask: "mask",
      mount_program: "string",
      mountopt: "string",
      skip_mount_home: "boolstr",
      pull_options: "strmap",
      "root-auto-userns-user": "string",
      "auto-userns-min-size": "uint32",
      "auto-userns-max-size": "uint32",
      "disable-volatile": "bool",
      overlay: {
        ignore_chown_errors: "boolstr",
        mountopt: "string",
        mount_program: "string",
        size: "string",
        inodes: "string",
        skip_mount_home: "boolstr",
        force_mask: "octal",
        use_composefs: "boolstr",
      },
      vfs: { ignore_chown_errors: "boolstr" },
      aufs: { mountopt: "string" },
      btrfs: { min_space: "string", size: "string" },
      zfs: { mountopt: "string", fsname: "string", size: "string" },
      thinpool: Object.fromEntries(THINPOOL_KEYS.map((k) => [k, "string" as Kind])),
    },
  },
};

const BARE_KEY = /^[A-Za-z0-9_-]+/;

/** Reads the dotted key at the start of `s`; returns its segments and the rest of the text. */
function readKey(s: string): { path: string[]; rest: string } | undefined {
  const path: string[] = [];
  let rest = s.trimStart();
  for (;;) {
    let m: RegExpMatchArray | null;
    if ((m = rest.match(BARE_KEY))) path.push(m[0]);
    else if ((m = rest.match(/^"((?:[^"\\]|\\.)*)"/))) path.push(JSON.parse(`"${m[1]}"`));
    else if ((m = rest.match(/^'([^']*)'/))) path.push(m[1]);
    else return undefined;
    rest = rest.slice(m[0].length).trimStart();
    if (!rest.startsWith(".")) return { path, rest };
    rest = rest.slice(1).trimStart();
  }
}

/**
 * Maps each key path written in the file to its line, by scanning the text:
 * TOML parsers report lines only for syntax errors, but an unknown key or a
 * bad value also deserves a line number. Keys inside inline tables are not
 * listed; lookups fall back to the enclosing key.
 */
function scanKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  let inMultiline = false;
  text.split("\n").forEach((line, i) => {
    const quotes = line.split('"""').length + line.split("'''").length - 2;
    if (inMultiline) {
      if (quotes % 2 === 1) inMultiline = false;
      return;
    }
    const header = line.match(/^\s*\[\[?(.*?)\]\]?\s*(#.*)?$/);
    if (header) {
      const key = readKey(header[1]);
      if (key) {
        table = key.path;
        const dotted = table.join(".");
        if (!lines.has(dotted)) lines.set(dotted, i + 1);
      }
      return;
    }
    const key = readKey(line);
    if (key && key.rest.startsWith("=")) {
      const dotted = [...table, ...key.path].join(".");
      if (!lines.has(dotted)) lines.set(dotted, i + 1);
    }
    if (quotes % 2 === 1) inMultiline = true;
  });
  return lines;
}

/** Line of `path`, or of its nearest enclosing key when `path` itself is not found. */
export function lineOf(lines: Map<string, number>, path: string): number | undefined {
  const parts = path.split(".");
  while (parts.length > 0) {
    const line = lines.get(parts.join("."));
    if (line !== undefined) return line;
    parts.pop();
  }
  return undefined;
}

/** Builds an ErrConfig whose message names the file, the line and the key at `path`. */
export function configError(
  conf: Pick<StorageConf, "file" | "lines">,
  path: string,
  { detail, cause }: { detail: string; cause?: unknown },
): ErrConfig {
  const line = lineOf(conf.lines, path);
  const where = line === undefined ? "" : `line ${line}: `;
  return new ErrConfig(conf.file, { detail: `${where}key "${path}": ${detail}`, cause });
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v instanceof Date) return "date";
  if (typeof v === "number" && Number.isInteger(v)) return "integer";
  if (typeof v === "number") return "float";
  return typeof v === "object" ? "table" : typeof v;
}

function checkValue(kind: Kind, v: unknown, fail: (d: string) => never): unknown {
  const want = (what: string) => fail(`expected ${what}, got ${typeName(v)}`);
  switch (kind) {
    case "string":
      return typeof v === "string" ? v : want("a string");
    case "strings":
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
        return want("an array of strings");
      }
      return v;
    case "uint32":
      if (typeof v !== "number" || !Number.isInteger(v)) return want("an integer");
      if (v < 0 || v >= 2 ** 32) return fail(`${v} is out of range for a 32-bit unsigned integer`);
      return v;
    case "bool":
      return typeof v === "boolean" ? v : want("a boolean");
    case "boolstr":
      // 1.43 declares these as strings ("true"); a TOML boolean means the same.
      if (typeof v === "boolean") return String(v);
      return typeof v === "string" ? v : want("a string or boolean");
    case "mask":
      if (typeof v === "string" && /^[0-7]+$/.test(v)) return parseInt(v, 8);
      if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0o7777) return v;
      return fail(`expected a file mode (integer such as 0o755), got ${JSON.stringify(v)}`);
    case "octal":
      if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v.toString(8);
      return typeof v === "string" ? v : want("a string");
    case "strmap":
      if (typeName(v) !== "table") return want("a table of strings");
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string") return fail(`value of "${k}" must be a string`);
      }
      return { ...(v as Record<string, string>) };
  }
}

function validate(
  value: Record<string, unknown>,
  schema: Schema,
  prefix: string,
  fail: (path: string, detail: string) => never,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    const kind = schema[key];
    if (kind === undefined) fail(path, "unknown key");
    if (typeof kind === "string") {
      out[key] = checkValue(kind, v, (d) => fail(path, d));
    } else if (typeName(v) !== "table") {
      fail(path, `expected a table, got ${typeName(v)}`);
    } else {
      out[key] = validate(v as Record<string, unknown>, kind, path, fail);
    }
  }
  return out;
}

/**
 * Parses and validates the text of a storage.conf.
 * @param file Path shown in error messages.
 * @throws {ErrConfig} on a TOML syntax error, an unknown key, or a value of the wrong type.
 */
export function parseStorageConf(text: string, file: string): StorageConf {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
    const key = [...scanKeyLines(text)].find(([, line]) => line === e.line)?.[0];
    const what = key === undefined
      ? `near ${JSON.stringify(text.split("\n")[e.line - 1]?.trim() ?? "")}`
      : `key "${key}"`;
    throw new ErrConfig(file, {
      detail: `line ${e.line}, column ${e.column}: ${what}: ${reason}`,
      cause: e,
    });
  }
  const lines = scanKeyLines(text);
  const fail = (path: string, detail: string): never => {
    throw configError({ file, lines }, path, { detail });
  };
  const checked = validate(raw, SCHEMA, "", fail) as { storage?: StorageConf["storage"] };
  const storage = checked.storage ?? { options: {} };
  storage.options ??= {};
  return { file, lines, storage };
}

/**
 * Reads and parses a storage.conf; `undefined` when the file does not exist
 * (containers/storage then falls back to built-in defaults).
 * @throws {ErrConfig} if the file cannot be read or is invalid.
 */
export async function readStorageConf(file: string): Promise<StorageConf | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new ErrConfig(file, { detail: `cannot read: ${(e as Error).message}`, cause: e });
  }
  return parseStorageConf(text, file);
}

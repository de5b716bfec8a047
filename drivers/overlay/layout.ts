/**
 * On-disk layout of the overlay driver, shared with containers/storage:
 *
 * ```text
 * <home>/<id>/diff     the layer's own files (the overlay upper directory)
 * <home>/<id>/link     the layer's short link name (26 base32 characters)
 * <home>/<id>/lower    "l/<link>:l/<link>…", parent first, at most 128 entries
 * <home>/<id>/work     overlay work directory
 * <home>/<id>/merged   mount point
 * <home>/<id>/empty    lower of a base layer (no parent)
 * <home>/l/<link>      symlink to ../<id>/diff
 * ```
 *
 * Short links keep mount data under a page; layers of read-only additional
 * image stores are found under `<store>/overlay/`.
 *
 * @example
 * ```ts ignore
 * const layout = new Layout("/var/lib/containers/storage/overlay", []);
 * const lowers = await layout.lowerDirs(id); // ["/…/overlay/<parent>/diff", …]
 * ```
 * @module
 */

/** Directory of the short links, relative to the driver home. */
export const LINK_DIR = "l";
/** Name of the file listing a layer's lowers. */
export const LOWER_FILE = "lower";
/** Most lowers a layer may have. */
export const MAX_DEPTH = 128;
/** Length of a short link name. */
export const ID_LENGTH = 26;

import { diffName } from "./idmap.ts";
import { symlink } from "../../ffi/fs.ts";
import { pathExists } from "../../lib/path_exists.ts";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** A random short link name: 26 upper-case base32 characters (17 random bytes encoded). */
export function generateLinkID(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil((ID_LENGTH * 5) / 8)));
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < ID_LENGTH) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** Reads a file as text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Resolves layer directories and their lower chains in the home and the image stores. */
export class Layout {
  /**
   * @param home The driver home, `<graphroot>/overlay`.
   * @param imageStores Graph roots of read-only additional image stores.
   */
  constructor(readonly home: string, readonly imageStores: string[]) {}

  /** `<graphroot>/overlay` of every image store. */
  get storeHomes(): string[] {
    return this.imageStores.map((s) => `${s}/overlay`);
  }

  /**
   * The directory of a layer (or of any name relative to a driver home):
   * in the home if present there, else in the first image store that has it,
   * else the home path.
   */
  async dir(id: string): Promise<string> {
    const own = `${this.home}/${id}`;
    if (await pathExists(own)) return own;
    for (const h of this.storeHomes) {
      if (await pathExists(`${h}/${id}`)) return `${h}/${id}`;
    }
    return own;
  }

  /** Whether the layer lives in a read-only image store rather than the home. */
  async inImageStore(id: string): Promise<boolean> {
    return !(await this.dir(id)).startsWith(this.home + "/");
  }

  /** The `lower` content for a child of `parent`: the parent's link, then its lowers. */
  async lowerFor(parent: string): Promise<string> {
    const parentDir = await this.dir(parent);
    await Deno.lstat(parentDir);
    const link = (await Deno.readTextFile(`${parentDir}/link`)).trim();
    const lowers = [`${LINK_DIR}/${link}`];
    const parentLower = await readOptional(`${parentDir}/${LOWER_FILE}`);
    if (parentLower) lowers.push(...parentLower.split(":"));
    if (lowers.length > MAX_DEPTH) throw new Error("max depth exceeded");
    return lowers.join(":");
  }

  /** Entries of a layer's `lower` file (`l/<link>` names), empty for a base layer. */
  async lowerLinks(id: string): Promise<string[]> {
    const text = await readOptional(`${await this.dir(id)}/${LOWER_FILE}`);
    return text ? text.split(":").filter((s) => s !== "") : [];
  }

  /**
   * Absolute `diff` directories of a layer's lowers, nearest first. Short
   * links lost (e.g. after a crash on a filesystem without journaling) are
   * recreated from each layer's `link` file.
   */
  async lowerDirs(id: string): Promise<string[]> {
    const out: string[] = [];
    for (const l of await this.lowerLinks(id)) {
      const linkPath = await this.dir(l);
      let target: string;
      try {
        target = await Deno.readLink(linkPath);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        await this.recreateLinks();
        target = await Deno.readLink(linkPath);
      }
      out.push(normalize(`${linkPath.slice(0, linkPath.lastIndexOf("/"))}/${target}`));
    }
    return out;
  }

  /**
   * Lower directories for mounting `id` (whose `lower` entries are `links`):
   * absolute paths (short links, unresolved, as the reference passes them)
   * and paths relative to the home, older `diffN` generations of the layer
   * first; plus the permissions its `diff` should get (from the first lower).
   */
  async mountLowers(
    id: string,
    dir: string,
    links: string[],
    defaultPerms: number,
  ): Promise<{ abs: string[]; rel: string[]; perms: number }> {
    const abs: string[] = [];
    const rel: string[] = [];
    let perms: number | undefined;
    for (let n = 1; await pathExists(`${dir}/${diffName(n)}`); n++) {
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
        for (const h of this.storeHomes) {
          st = await Deno.stat(`${h}/${l}`).catch(() => undefined);
          if (st) {
            lower = `${h}/${l}`;
            found = true;
            break;
          }
        }
        if (!found) {
          // short links are lost on a crash before they reach the disk: rebuild them
          await this.recreateLinks();
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
      for (let n = 1; await pathExists(`${lower}/../${diffName(n)}`); n++) {
        abs.push(`${lower}/../${diffName(n)}`);
        rel.push(`${l}/../${diffName(n)}`);
      }
    }
    if (abs.length === 0) {
      abs.push(`${dir}/empty`);
      rel.push(`${id}/empty`);
    }
    return { abs, rel, perms: perms ?? defaultPerms };
  }

  /** Recreates every missing `l/<link>` symlink of the layers in the home. */
  async recreateLinks(): Promise<void> {
    await Deno.mkdir(`${this.home}/${LINK_DIR}`, { recursive: true, mode: 0o755 });
    for await (const entry of Deno.readDir(this.home)) {
      if (entry.name === LINK_DIR || !entry.isDirectory) continue;
      let link: string;
      try {
        link = (await Deno.readTextFile(`${this.home}/${entry.name}/link`)).trim();
      } catch (e) {
        // Probe directories and half-created layers have no link file.
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      const linkPath = `${this.home}/${LINK_DIR}/${link}`;
      try {
        await Deno.lstat(linkPath);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        symlink(`../${entry.name}/diff`, linkPath);
      }
    }
  }
}

/** Normalizes "." and ".." components of an absolute path, without touching the filesystem. */
export function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

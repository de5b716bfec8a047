/**
 * Per-layer project quotas for the overlay driver on XFS, allocated like
 * containers/storage: the driver home's project ID (or, when it has none,
 * one derived from the home's inode) is the base of a range; every layer
 * directory gets the next free ID (inherited by its diff/, work/ and
 * merged/), and limits are set through a block device node
 * `<home>/backingFsBlockDev` of the home's filesystem.
 *
 * Errors carry the reference's wording, with Go's lower-case errno text,
 * because the driver passes them on verbatim.
 *
 * @example
 * ```ts ignore
 * const ctl = ProjectQuotaControl.open(home); // throws where quotas are unavailable
 * ctl.setQuota(`${home}/${id}`, parseStorageOpt({ size: "10M" }));
 * ```
 * @module
 */

import { mknod, S_IFBLK, statNs } from "../../ffi/fs.ts";
import { errnoMessage, SyscallError } from "../../ffi/errors.ts";
import {
  getProjectID,
  getProjectQuota,
  type ProjectLimits,
  type ProjectQuota,
  setProjectID,
  setProjectQuota,
} from "../../ffi/quota.ts";
import { parseRAMSize } from "./options.ts";

/** Size of the project ID range a driver home claims when it has no ID of its own. */
const IDS_PER_HOME = 10000n;
const BLOCK_DEV = "backingFsBlockDev";

/** Go's text for an errno ("function not implemented"), which the reference prints. */
function goText(e: unknown): string {
  if (e instanceof SyscallError) {
    const t = errnoMessage(e.errno);
    return t.charAt(0).toLowerCase() + t.slice(1);
  }
  return e instanceof Error ? e.message : String(e);
}

function projectIDOf(path: string): number {
  try {
    return getProjectID(path);
  } catch (e) {
    if (e instanceof SyscallError && e.syscall === "open") {
      throw new Error(`can't open dir ${path}: ${goText(e)}`, { cause: e });
    }
    throw new Error(`failed to get projid for ${path}: ${goText(e)}`, { cause: e });
  }
}

function setLimits(dev: string, projid: number, limits: ProjectLimits): void {
  try {
    setProjectQuota(dev, projid, limits);
  } catch (e) {
    throw new Error(`failed to set quota limit for projid ${projid} on ${dev}: ${goText(e)}`, {
      cause: e,
    });
  }
}

/**
 * The first project ID of a home without one: a range start spread over
 * the ID space by the home's inode (uint64 arithmetic, as the reference).
 */
export function projectIDFromInode(ino: bigint): number {
  const product = BigInt.asUintN(64, ino * IDS_PER_HOME);
  return Number(IDS_PER_HOME + product % (0xffffffffn - IDS_PER_HOME));
}

/** Parses the `size` and `inodes` storage options of a layer. */
export function parseStorageOpt(opts: Record<string, string>): ProjectLimits {
  const q = { size: 0, inodes: 0 };
  for (const [rawKey, val] of Object.entries(opts)) {
    const key = rawKey.toLowerCase();
    if (key === "size") q.size = parseRAMSize(val);
    else if (key === "inodes") {
      if (!/^\d+$/.test(val)) {
        throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(val)}: invalid syntax`);
      }
      q.inodes = Number(val);
    } else throw new Error(`unknown option ${key}`);
  }
  return q;
}

/** Project IDs and limits of the layer directories of one driver home. */
export class ProjectQuotaControl {
  readonly #quotas = new Map<string, number>();

  private constructor(readonly blockDev: string, private nextID: number) {}

  /**
   * Sets up quotas for `home`: picks the base project ID, creates the
   * block device node, proves quotas work by setting an empty limit on the
   * base ID, and records the IDs layer directories already have.
   * @throws {Error} with the reference's message when project quotas are unavailable.
   */
  static open(home: string): ProjectQuotaControl {
    let base = projectIDOf(home);
    if (base === 0) base = projectIDFromInode(statNs(home).ino);
    const dev = makeBackingFsDev(home);
    setLimits(dev, base, { size: 0, inodes: 0 });
    const ctl = new ProjectQuotaControl(dev, base + 1);
    for (const e of Deno.readDirSync(home)) {
      if (!e.isDirectory) continue;
      const path = `${home}/${e.name}`;
      const id = projectIDOf(path);
      if (id > 0) ctl.#quotas.set(path, id);
      if (ctl.nextID <= id) ctl.nextID = id + 1;
    }
    return ctl;
  }

  /**
   * Gives `dir` its own project ID (once) and sets that project's limits;
   * zero limits only track usage.
   */
  setQuota(dir: string, limits: ProjectLimits): void {
    let id = this.#quotas.get(dir);
    if (id === undefined) {
      id = this.nextID;
      try {
        setProjectID(dir, id);
      } catch (e) {
        throw new Error(`failed to set projid for ${dir}: ${goText(e)}`, { cause: e });
      }
      this.#quotas.set(dir, id);
      this.nextID++;
    }
    setLimits(this.blockDev, id, limits);
  }

  /** The project ID given to `dir`, if any. */
  projectID(dir: string): number | undefined {
    return this.#quotas.get(dir);
  }

  /** Limits and usage of the project of `dir`. */
  getQuota(dir: string): ProjectQuota {
    const id = this.#quotas.get(dir);
    if (id === undefined) throw new Error(`quota not found for path : ${dir}`);
    return getProjectQuota(this.blockDev, id);
  }
}

/** Creates `<home>/backingFsBlockDev` for the device of `home` (through a temp name + rename). */
function makeBackingFsDev(home: string): string {
  const dev = `${home}/${BLOCK_DEV}`;
  const tmp = `${dev}.tmp`;
  try {
    mknod(tmp, S_IFBLK | 0o600, statNs(home).dev);
  } catch (e) {
    throw new Error(`failed to mknod ${tmp}: ${goText(e)}`, { cause: e });
  }
  try {
    Deno.renameSync(tmp, dev);
  } catch (e) {
    throw new Error(`failed to rename ${tmp} to ${dev}: ${(e as Error).message}`, { cause: e });
  }
  return dev;
}

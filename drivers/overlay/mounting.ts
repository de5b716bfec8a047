/**
 * Mounting overlay layers: building the option string, mounting through
 * mount(2) (or a configured mount program such as fuse-overlayfs),
 * unmounting, in-process reference counts, and the private bind mount of
 * the driver home.
 *
 * When the option string with absolute lower paths does not fit in a page,
 * the mount is retried with paths relative to the driver home (`l/<link>`,
 * `<id>/diff`). The kernel resolves those against the calling process's
 * working directory; containers/storage forks a child that chdirs. Deno can
 * neither fork nor chdir one thread, so {@linkcode mountRelative} changes
 * the process cwd around the single synchronous FFI mount call and restores
 * it before returning. No JavaScript runs in between; the only exposure is
 * a relative-path file operation already running on another thread at that
 * instant, which this library never issues (all its paths are absolute).
 *
 * @example
 * ```ts ignore
 * const { flags, data } = splitMountOptions(formatMountLabel(opts, label));
 * mountOverlay(target, flags, data);
 * ```
 * @module
 */

import { statfs } from "../../ffi/fs.ts";
import {
  isMountpoint,
  MNT_DETACH,
  mount,
  mountPoints,
  MS_BIND,
  MS_PRIVATE,
  MS_REC,
  unmount,
} from "../../ffi/mount.ts";
import { FS_MAGIC_FUSE, FS_MAGIC_OVERLAY } from "./features.ts";
import type { IDMap } from "../../lib/idmap.ts";

/** Mounts overlay on `target` with absolute paths in `data`. */
export function mountOverlay(target: string, flags: number, data: string): void {
  mount("overlay", target, "overlay", flags, data);
}

/**
 * Mounts overlay on `target` (relative to `cwd`) with `data` holding paths
 * relative to `cwd`: the process cwd is `cwd` for the duration of the call.
 */
export function mountRelative(cwd: string, target: string, flags: number, data: string): void {
  const previous = Deno.cwd();
  Deno.chdir(cwd);
  try {
    mount("overlay", target, "overlay", flags, data);
  } finally {
    Deno.chdir(previous);
  }
}

/**
 * Runs a mount program (e.g. fuse-overlayfs) as containers/storage does:
 * `<program> -o <options> <target>` with the driver home as its cwd.
 */
export async function mountWithProgram(
  program: string,
  home: string,
  options: string,
  target: string,
): Promise<void> {
  const out = await new Deno.Command(program, {
    args: ["-o", options, target],
    cwd: home,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr) || "<stderr empty>";
    throw new Error(`using mount program ${program}: ${stderr}: exit status ${out.code}`);
  }
}

/**
 * Unmounts a FUSE mount with fusermount3/fusermount, falling back to a
 * lazy unmount(2) when neither is there or both fail.
 */
export async function unmountProgramMount(target: string): Promise<void> {
  for (const tool of ["fusermount3", "fusermount"]) {
    try {
      const out = await new Deno.Command(tool, {
        args: ["-u", target],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return;
    } catch {
      // tool not installed: try the next one
    }
  }
  unmountDetach(target);
}

/** Lazily unmounts `target`; not being mounted (or not existing) is not an error. */
export function unmountDetach(target: string): void {
  try {
    unmount(target, MNT_DETACH);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== "EINVAL" && code !== "ENOENT") throw e;
  }
}

/** Whether `path` is currently the root of an overlay (or FUSE) mount. */
export function isOverlayMounted(path: string, fuse: boolean): boolean {
  try {
    return statfs(path).type >>> 0 === (fuse ? FS_MAGIC_FUSE : FS_MAGIC_OVERLAY);
  } catch {
    return false;
  }
}

/**
 * Mount reference counts of this process, keyed by mount point. Counts are
 * reconciled with the kernel on every change, so a mount made or removed
 * by another process (the reference CLI, conmon) is not double-counted.
 */
export class RefCounter {
  #counts = new Map<string, number>();

  /** @param mounted Tells whether a mount point is mounted right now. */
  constructor(private readonly mounted: (path: string) => boolean) {}

  #current(path: string): number {
    const known = this.#counts.get(path);
    const live = this.mounted(path);
    if (!live) return 0;
    return known === undefined || known === 0 ? 1 : known;
  }

  /** Adds a user of `path`; returns the new count (1 means: mount it now). */
  increment(path: string): number {
    const n = this.#current(path) + 1;
    this.#counts.set(path, n);
    return n;
  }

  /** Drops a user of `path`; returns the new count (0 means: unmount it now). */
  decrement(path: string): number {
    const n = Math.max(this.#current(path) - 1, 0);
    this.#counts.set(path, n);
    return n;
  }

  /** The count as this process sees it. */
  count(path: string): number {
    return this.#current(path);
  }
}

/**
 * Makes the driver home a private mount (bind-mounting it onto itself
 * first when it is not a mount point yet), so layer mounts do not
 * propagate to other mount namespaces.
 */
export async function makePrivate(home: string): Promise<void> {
  if (!(await isMountpoint(home))) mount(home, home, "none", MS_BIND | MS_REC);
  mount("", home, "none", MS_PRIVATE);
}

/**
 * Appends ID mapping options for a mount program: `uidmapping=c:h:s:…`
 * (or `squash_to_uid=h` for a single-ID mapping), and the same for GIDs.
 */
export function appendMappings(opts: string, uidMap: IDMap[], gidMap: IDMap[]): string {
  if (uidMap.length === 0 && gidMap.length === 0) return opts;
  const fmt = (kind: "uid" | "gid", m: IDMap[]) =>
    m.length === 1 && m[0].size === 1
      ? `squash_to_${kind}=${m[0].host_id}`
      : `${kind}mapping=` + m.map((i) => `${i.container_id}:${i.host_id}:${i.size}`).join(":");
  return `${opts},${fmt("uid", uidMap)},${fmt("gid", gidMap)}`;
}

/** Lazily unmounts every mount at or below `dir`, deepest first. */
export function detachMountsUnder(dir: string): void {
  const points = mountPoints().filter((m) => m === dir || m.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const p of points) unmountDetach(p);
}

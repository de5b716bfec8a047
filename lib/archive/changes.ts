/**
 * Lists what a layer changed against its parent, as containers/storage
 * does: {@linkcode changesDirs} compares two full trees (the naive differ
 * of vfs and other copy-based drivers) by metadata — type and mode, owner
 * (compared as container IDs), device number, and for non-directories
 * size and mtime (a zero nanosecond part matches any, since tar loses
 * them), plus symlink targets, `security.capability` and `user.*` xattrs;
 * {@linkcode changesOverlay} reads an overlay upper directory, where
 * deletions are 0/0 character devices and opaque directories carry
 * `trusted.overlay.opaque=y`. A directory holding changes is listed as
 * modified before them. Children are visited in byte order of their names
 * (the reference walks a Go map, so its order varies from run to run).
 *
 * @example
 * ```ts ignore
 * import { changesDirs, changesSize } from "./changes.ts";
 * const changes = await changesDirs("/var/lib/containers/storage/vfs/dir/b", "/var/lib/containers/storage/vfs/dir/a");
 * console.log(changes, await changesSize("/var/lib/containers/storage/vfs/dir/b", changes));
 * ```
 * @module
 */

import { type Change, ChangeKind } from "./change.ts";
import { type IDMappings, toContainer } from "../idmap.ts";
import {
  isDir,
  lgetxattr,
  llistxattr,
  lstatIfExists,
  lstatNs,
  readlink,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  type StatNs,
  statNs,
} from "../../ffi/fs.ts";
import { listDir } from "../../ffi/dirent.ts";
import { compareOsStrings } from "../os_string.ts";
import { isOpaqueValue, isOverlayWhiteout, OVERLAY_OPAQUE_XATTR } from "./whiteout.ts";

export { type Change, ChangeKind };

/** Options of {@linkcode changesDirs}. */
export interface ChangesDirsOptions {
  /** ID mappings of the layer (its files are owned by mapped host IDs). */
  mappings?: IDMappings;
  /** ID mappings of the parent layer. */
  parentMappings?: IDMappings;
}

/** The names in `dir`, as bytes (lib/os_string.ts), in Go's (byte) order. */
function names(dir: string): string[] {
  return listDir(dir).map((e) => e.name).sort(compareOsStrings);
}

/** The metadata of one file that the naive differ compares beyond stat. */
interface Extra {
  capability: string | null;
  xattrs: string;
  target: string;
}

function extra(path: string, st: StatNs): Extra {
  let capability: string | null = null;
  const xattrs: string[] = [];
  try {
    const cap = lgetxattr(path, "security.capability");
    capability = cap === null ? null : Array.from(cap).join(",");
    for (const key of llistxattr(path).filter((k) => k.startsWith("user.")).sort()) {
      const v = lgetxattr(path, key);
      xattrs.push(`${key}=${v === null ? "" : Array.from(v).join(",")}`);
    }
  } catch (e) {
    if ((e as { errno?: number }).errno !== 95 /* EOPNOTSUPP */) throw e;
  }
  const target = (st.mode & S_IFMT) === S_IFLNK ? readlink(path) : "";
  return { capability, xattrs: xattrs.join("\n"), target };
}

function sameTime(a: { sec: number; nsec: number }, b: { sec: number; nsec: number }): boolean {
  return a.sec === b.sec && (a.nsec === b.nsec || a.nsec === 0 || b.nsec === 0);
}

function owner(st: StatNs, m?: IDMappings): [number, number] | null {
  if (!m) return [st.uid, st.gid];
  try {
    return [toContainer(st.uid, m.uidMap), toContainer(st.gid, m.gidMap)];
  } catch {
    return null;
  }
}

/** containers/storage's statDifferent, including its quirks (see module doc). */
function statDifferent(o: StatNs, n: StatNs, opts: ChangesDirsOptions): boolean {
  let newOwner: [number, number] = [n.uid, n.gid];
  let oldOwner: [number, number] = [o.uid, o.gid];
  const mappedNew = owner(n, opts.mappings);
  if (mappedNew) {
    newOwner = mappedNew;
    oldOwner = owner(o, opts.parentMappings) ?? oldOwner;
  }
  if (
    o.mode !== n.mode || newOwner[0] !== oldOwner[0] || newOwner[1] !== oldOwner[1] ||
    o.rdev !== n.rdev
  ) {
    return true;
  }
  // The reference tests the S_IFDIR bit alone, so block devices and sockets count as directories here.
  if ((o.mode & S_IFDIR) === 0) return !sameTime(o.mtime, n.mtime) || o.size !== n.size;
  return false;
}

/**
 * Changes of `layerDir` against `parentDir` (undefined: against an empty
 * tree, so everything is added), by walking both trees.
 */
export function changesDirs(
  layerDir: string,
  parentDir: string | undefined,
  opts: ChangesDirsOptions = {},
): Promise<Change[]> {
  const out: Change[] = [];
  const walk = (rel: string, n: StatNs, o: StatNs | null, added: boolean): void => {
    const at = out.length;
    if (o === null) {
      out.push({ path: rel, kind: ChangeKind.Add });
      added = true;
    }
    if (!isDir(n)) return;
    const base = rel === "/" ? "" : rel;
    const newNames = names(layerDir + base);
    const oldNames = o !== null && isDir(o) && parentDir !== undefined
      ? names(parentDir + base)
      : [];
    const oldSet = new Set(oldNames);
    for (const name of newNames) {
      const childRel = `${base}/${name}`;
      const nc = lstatNs(layerDir + childRel);
      let oc: StatNs | null = null;
      if (oldSet.has(name)) {
        oldSet.delete(name);
        oc = lstatIfExists(parentDir + childRel);
      }
      let childAdded = false;
      if (oc !== null) {
        // Same inode on the same device: shared, unchanged (the reference prunes it).
        if (oc.ino === nc.ino && oc.dev === nc.dev) continue;
        const ne = extra(layerDir + childRel, nc), oe = extra(parentDir + childRel, oc);
        if (
          statDifferent(oc, nc, opts) || ne.capability !== oe.capability ||
          ne.target !== oe.target ||
          ne.xattrs !== oe.xattrs
        ) {
          out.push({ path: childRel, kind: ChangeKind.Modify });
          childAdded = true;
        }
      }
      walk(childRel, nc, oc, childAdded);
    }
    for (const name of oldNames) {
      if (oldSet.has(name)) out.push({ path: `${base}/${name}`, kind: ChangeKind.Delete });
    }
    if (out.length > at && !added && rel !== "/") {
      out.splice(at, 0, { path: rel, kind: ChangeKind.Modify });
    }
  };
  const root = lstatNs(layerDir);
  const parentRoot = parentDir === undefined ? { ...root, ino: -1n } : lstatNs(parentDir);
  walk("/", root, parentRoot, true);
  return Promise.resolve(out);
}

/**
 * Changes recorded in an overlay upper directory against its lower
 * directories (`lowerDirs` top-most first), as containers/storage's
 * OverlayChanges computes them.
 */
export function changesOverlay(upperDir: string, lowerDirs: string[]): Promise<Change[]> {
  const out: Change[] = [];
  const changedDirs = new Set<string>();
  const visit = (rel: string): void => {
    for (const name of names(upperDir + rel)) {
      const childRel = `${rel}/${name}`;
      const st = lstatNs(upperDir + childRel);
      record(childRel, st);
      if (isDir(st)) visit(childRel);
    }
  };
  const record = (rel: string, st: StatNs): void => {
    let change: Change;
    if (overlayDeleted(upperDir, lowerDirs, rel, st)) {
      change = { path: rel, kind: ChangeKind.Delete };
    } else {
      change = { path: rel, kind: ChangeKind.Add };
      for (const lower of lowerDirs) {
        if (hiddenBelow(lower, rel)) break;
        const lst = lstatIfExists(lower + rel);
        if (lst === null) continue;
        if (
          isDir(lst) && isDir(st) && lst.size === st.size && lst.mode === st.mode &&
          sameTime(lst.mtime, st.mtime)
        ) {
          return; // the directory is only there because something below it changed
        }
        change.kind = ChangeKind.Modify;
        break;
      }
    }
    if (isDir(st)) changedDirs.add(rel);
    if (change.kind !== ChangeKind.Modify) {
      const parents: Change[] = [];
      for (let p = dirname(rel); p !== "/"; p = dirname(p)) {
        if (changedDirs.has(p)) continue;
        parents.unshift({ path: p, kind: ChangeKind.Modify });
        changedDirs.add(p);
      }
      out.push(...parents);
    }
    out.push(change);
  };
  visit("");
  return Promise.resolve(out);
}

function dirname(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i <= 0 ? "/" : rel.slice(0, i);
}

/** A whiteout in `lower` for `rel` or for one of its parents. */
function hiddenBelow(lower: string, rel: string): boolean {
  for (let p = rel; p !== "/"; p = dirname(p)) {
    if (whiteoutAt(lower + p)) return true;
  }
  return false;
}

/** Follows symlinks like the reference's os.Stat. */
function whiteoutAt(path: string): boolean {
  const st = statOrNull(path);
  return st !== null && isOverlayWhiteout(st);
}

function statOrNull(path: string): StatNs | null {
  try {
    return statNs(path);
  } catch {
    return null;
  }
}

function overlayDeleted(upperDir: string, lowerDirs: string[], rel: string, st: StatNs): boolean {
  if (isOverlayWhiteout(st)) return true;
  if (!isDir(st) || !isOpaqueValue(lgetxattr(upperDir + rel, OVERLAY_OPAQUE_XATTR))) return false;
  return opaqueHidesLower(lowerDirs, rel);
}

/**
 * Whether an opaque directory at `rel` ("/a/b") deletes something: the
 * top-most lower directory that has the path decides (unless it is a
 * whiteout there), and a whiteout of a parent in a lower directory means
 * nothing below it was inherited.
 */
export function opaqueHidesLower(lowerDirs: string[], rel: string): boolean {
  for (const lower of lowerDirs) {
    if (exists(lower + rel)) return !whiteoutAt(lower + rel);
    for (let p = dirname(rel); p !== "/"; p = dirname(p)) {
      if (whiteoutAt(lower + p)) return false;
    }
  }
  return false;
}

function exists(path: string): boolean {
  return statOrNull(path) !== null;
}

/**
 * Bytes the added and modified non-directories take in `dir`, counting
 * each hard-linked inode once.
 */
export function changesSize(dir: string, changes: Change[]): Promise<number> {
  let size = 0;
  const seen = new Set<bigint>();
  for (const c of changes) {
    if (c.kind === ChangeKind.Delete) continue;
    const st = lstatIfExists(dir + c.path);
    if (st === null || isDir(st)) continue;
    if (st.nlink > 1) {
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
    }
    size += st.size;
  }
  return Promise.resolve(size);
}

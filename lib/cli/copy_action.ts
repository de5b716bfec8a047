/**
 * What `copy` does (see `copy.ts` for the command): mounts the layers named,
 * tars the sources with their owners mapped from the source layer's IDs to
 * container IDs (or `--chown`'s), and untars into the target with the target
 * layer's mappings.
 *
 * @example
 * ```ts ignore
 * import { copy } from "./copy_action.ts";
 * const code = await copy(ctx); // ctx.args: ["/etc/hosts", "base:/etc/hosts"]
 * ```
 * @module
 */

import { basename, dirname, join } from "node:path";
import { applyTar } from "../archive/apply.ts";
import { exportTree } from "../archive/export.ts";
import { emptyHeader, type TarHeader, TypeFlag } from "../archive/tar_header.ts";
import { readTar } from "../archive/tar_reader.ts";
import { type TarWriteEntry, writeTar } from "../archive/tar_writer.ts";
import { WHITEOUT_PREFIX } from "../archive/whiteout.ts";
import { type IDMap, type IDMappings, toContainer, toHost } from "../idmap.ts";
import { lchown, lstatNs, S_IFMT, type StatNs, statNs } from "../../ffi/fs.ts";
import type { Context } from "./command.ts";
import { goQuote, logLine, type Sink } from "./io.ts";
import { CliError, goMessage, pathError } from "./messages.ts";
import { countTar, type ProgressCounter, progressCounter } from "../progress.ts";
import { showProgress } from "./progress.ts";

/**
 * The tar format of the copy's archives: PAX, so that times keep their
 * nanoseconds (the reference's "copy pass" headers).
 */
const COPY_PASS = { format: "pax" } as const;

/** A UID/GID pair. */
interface Owner {
  uid: number;
  gid: number;
}

/** How one copy maps owners: from the source's host IDs, to the target's. */
interface CopyIDs {
  /** The source layer's mappings (host IDs in the tree → container IDs). */
  from?: IDMappings;
  /** `--chown`: the container IDs every copy gets. */
  chown?: Owner;
  /** The target layer's mappings (container IDs → host IDs on disk). */
  to?: IDMappings;
}

/** Go's strconv.ParseUint(s, 10, 32) error text, or undefined when `s` parses. */
function parseUintProblem(s: string): string | undefined {
  if (!/^[0-9]+$/.test(s)) return `strconv.ParseUint: parsing ${goQuote(s)}: invalid syntax`;
  if (Number(s) > 0xffffffff) return `strconv.ParseUint: parsing ${goQuote(s)}: value out of range`;
  return undefined;
}

/** `--chown UID[:GID]` (GID defaults to UID); the reference's message, unterminated, on error. */
function parseChown(spec: string): Owner | string {
  const colon = spec.indexOf(":");
  const [u, g] = colon === -1 ? [spec, spec] : [spec.slice(0, colon), spec.slice(colon + 1)];
  const badUID = parseUintProblem(u);
  if (badUID) return `error ${goQuote(u)} as a numeric UID: ${badUID}`;
  const badGID = parseUintProblem(g);
  if (badGID) return `error ${goQuote(g)} as a numeric GID: ${badGID}`;
  return { uid: Number(u), gid: Number(g) };
}

/** Go's filepath.Join of a mount point and a path inside it. */
function joinInside(mountpoint: string, path: string): string {
  return join(mountpoint, path).replace(/(.)\/$/, "$1");
}

/** Host IDs of a tree with `maps` as the container IDs a copy carries; no maps: unchanged. */
function containerIDs(ids: Owner, maps: IDMappings | undefined): Owner {
  if (!maps) return ids;
  return { uid: toContainer(ids.uid, maps.uidMap), gid: toContainer(ids.gid, maps.gidMap) };
}

/**
 * The host IDs of the target's root (idtools' RootPair): container ID 0
 * mapped, or the only host ID of a one-ID mapping; -1 (unchanged) when 0 is
 * not mapped.
 */
function rootPair(to: IDMappings | undefined): Owner {
  const one = (maps: IDMap[]) => {
    if (maps.length === 1 && maps[0].size === 1) return maps[0].host_id;
    try {
      return toHost(0, maps);
    } catch {
      return -1;
    }
  };
  return to ? { uid: one(to.uidMap), gid: one(to.gidMap) } : { uid: 0, gid: 0 };
}

/**
 * Creates `path` and its missing parents with `mode` (umask applied) like
 * Go's os.MkdirAll, giving the directories it creates to `owner` when one
 * is given; an existing non-directory on the way is an error.
 */
async function mkdirAll(path: string, mode: number, owner?: Owner): Promise<void> {
  const missing: string[] = [];
  for (let p = path;; p = dirname(p)) {
    // an unreadable component is left to mkdir to report
    const st = await Deno.stat(p).catch(() => undefined);
    if (st && !st.isDirectory) throw pathError("mkdir", p, { code: "ENOTDIR" });
    if (st || p === "/") break;
    missing.unshift(p);
  }
  for (const p of missing) {
    try {
      await Deno.mkdir(p, { mode });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw pathError("mkdir", p, e);
    }
    // -1 leaves an ID as it is, as chown(2) does
    if (owner) lchown(p, owner.uid, owner.gid);
  }
}

/**
 * Untars `tar` into `dir` with the target's mappings. The reference untars
 * in a chrooted child process, so its failures read as that child's.
 */
async function untar(
  tar: ReadableStream<Uint8Array>,
  dir: string,
  to: IDMappings | undefined,
  counter: ProgressCounter | undefined,
) {
  try {
    const counted = counter ? tar.pipeThrough(countTar(counter)) : tar;
    await applyTar(counted, dir, { whiteoutFormat: "keep", mappings: to });
  } catch (e) {
    throw new CliError(`processing tar file(${goMessage(e)}): exit status 1`, { cause: e });
  }
}

/**
 * The entries of everything under `dir` as a copy carries them: exact
 * times (a layer diff keeps only seconds) and owners mapped out of the
 * source; a file whose owner cannot be mapped is left out and logged, as
 * the reference does.
 */
async function* treeEntries(dir: string, ids: CopyIDs, err: Sink): AsyncGenerator<TarWriteEntry> {
  for await (const { header: h, body } of readTar(exportTree(dir))) {
    const path = `${dir}/${h.name.replace(/\/$/, "")}`;
    try {
      const st = lstatNs(path);
      h.mtime = st.mtime;
      h.atime = st.atime;
    } catch {
      // gone since it was archived: the archived time stays
    }
    try {
      // whiteouts were made with host owners already
      const whiteout = basename(h.name).startsWith(WHITEOUT_PREFIX);
      const owner = ids.chown ?? (whiteout ? h : containerIDs(h, ids.from));
      h.uid = owner.uid;
      h.gid = owner.gid;
    } catch (e) {
      err.write(logLine("error", `Can't add file ${path} to tar: ${goMessage(e)}`));
      continue;
    }
    yield { header: h, body };
  }
}

const TYPES: Record<number, string> = {
  0o100000: TypeFlag.Reg,
  0o020000: TypeFlag.Char,
  0o060000: TypeFlag.Block,
  0o010000: TypeFlag.Fifo,
};

/** The one-entry tar of a file copied as `name`, its owner mapped out of the source. */
async function fileTar(
  src: string,
  st: StatNs,
  name: string,
  ids: CopyIDs,
): Promise<ReadableStream<Uint8Array>> {
  const typeflag = TYPES[st.mode & S_IFMT];
  if (typeflag === undefined) throw new CliError("archive/tar: sockets not supported");
  const h: TarHeader = emptyHeader(name, typeflag);
  h.mode = st.mode & 0o7777;
  const owner = ids.chown ?? containerIDs(st, ids.from);
  h.uid = owner.uid;
  h.gid = owner.gid;
  h.mtime = st.mtime;
  h.atime = st.atime;
  h.devmajor = st.rdevMajor;
  h.devminor = st.rdevMinor;
  if (typeflag !== TypeFlag.Reg) return writeTar([{ header: h }], COPY_PASS);
  h.size = st.size;
  const file = await Deno.open(src).catch((e) => Promise.reject(pathError("open", src, e)));
  return writeTar([{ header: h, body: file.readable }], COPY_PASS);
}

/**
 * Copies `src` to `dst` as the reference's CopyWithTar does: a directory's
 * contents into `dst`, or a file to `dst` (into it when `dst` ends with a
 * slash).
 */
async function copyWithTar(
  src: string,
  dst: string,
  ids: CopyIDs,
  err: Sink,
  counter?: ProgressCounter,
): Promise<void> {
  let st: StatNs;
  try {
    st = statNs(src);
  } catch (e) {
    throw pathError("stat", src, e);
  }
  if ((st.mode & S_IFMT) === 0o040000) {
    await mkdirAll(dst, 0o755, ids.chown ?? rootPair(ids.to));
    await untar(writeTar(treeEntries(src, ids, err), COPY_PASS), dst, ids.to, counter);
    return;
  }
  if (dst.endsWith("/")) dst = join(dst, basename(src));
  await mkdirAll(dirname(dst), 0o700);
  const existing = await Deno.lstat(dst).catch(() => undefined);
  if (existing?.isDirectory) {
    // paths as the chrooted untar saw them
    throw new CliError(
      `processing tar file(cannot overwrite directory ${goQuote(`/${basename(dst)}`)} ` +
        `with non-directory "/"): exit status 1`,
    );
  }
  await untar(await fileTar(src, st, basename(dst), ids), dirname(dst), ids.to, counter);
}

/** A `[layer:]path` argument resolved: the path to use and the layer's mappings, if any. */
interface Location {
  path: string;
  mappings?: IDMappings;
}

/**
 * Resolves `spec`; a `layer:path` mounts the layer (recorded in `mounted`
 * for the caller to unmount).
 */
async function locate(ctx: Context, spec: string, mounted: string[]): Promise<Location> {
  const colon = spec.indexOf(":");
  if (colon === -1) return { path: spec };
  const name = spec.slice(0, colon);
  let layer;
  try {
    layer = await ctx.store.layer(name);
  } catch (e) {
    throw new CliError(`error finding layer ${goQuote(name)}: ${goMessage(e)}`, { cause: e });
  }
  let mountpoint: string;
  try {
    mountpoint = await ctx.store.mount(layer.id, layer.mountlabel ?? "");
  } catch (e) {
    throw new CliError(`error mounting layer ${goQuote(layer.id)}: ${goMessage(e)}`, { cause: e });
  }
  mounted.push(layer.id);
  return {
    path: joinInside(mountpoint, spec.slice(colon + 1)),
    mappings: { uidMap: layer.uidmap ?? [], gidMap: layer.gidmap ?? [] },
  };
}

/** Runs `copy` (loaded by the command only when it runs: it pulls in the archive engine). */
export async function copy(ctx: Context): Promise<number> {
  let chown: Owner | undefined;
  const spec = ctx.flags.getString("chown");
  if (spec !== "") {
    const parsed = parseChown(spec);
    if (typeof parsed === "string") {
      ctx.io.err.write(parsed);
      return 1;
    }
    chown = parsed;
  }
  const mounted: string[] = [];
  const display = showProgress(ctx.io.err, { label: ctx.name });
  const counter = progressCounter(display.options);
  try {
    const target = await locate(ctx, ctx.args[ctx.args.length - 1], mounted);
    for (const srcSpec of ctx.args.slice(0, -1)) {
      const source = await locate(ctx, srcSpec, mounted);
      const ids = { from: source.mappings, chown, to: target.mappings };
      try {
        await copyWithTar(source.path, target.path, ids, display.err, counter);
      } catch (e) {
        throw new CliError(
          `error copying ${goQuote(source.path)} to ${goQuote(target.path)}: ${goMessage(e)}`,
          { cause: e },
        );
      }
    }
    return 0;
  } finally {
    display.finish();
    // the reference's deferred unmounts, newest first; their failures are not reported
    for (const id of mounted.reverse()) await ctx.store.unmount(id, false).catch(() => {});
  }
}

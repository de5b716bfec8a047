/**
 * Runs one fuzz input through our Store (putLayer, then diff) in a fresh
 * temporary store and checks what must hold whatever the input:
 *
 * - the put succeeds or fails with a StorageError: no other exception, no
 *   unhandled rejection or uncaught error ({@linkcode trapUncaught}), no
 *   hang (every step has a time limit);
 * - nothing appears outside the store: the case's directory holds only the
 *   graph and run roots, the run's directory only the case, and no
 *   generated name (they all start with "fz") appears in `/` or `/tmp`;
 *   no file of the layer is a hard link to a file outside it;
 * - after a failure no layer, directory or temporary file is left: the
 *   store's paths are those it had before the put;
 * - after a success the store is consistent (checkStore), only the layer's
 *   own files were added, and `diff` without compression returns the input
 *   byte for byte after decompression by the system's tool (which must
 *   accept the stream we accepted) — or fails with a StorageError where the
 *   reference's diff of the same input fails too: tar-split rebuilds the
 *   tarball from the files the apply kept, and cannot when a later entry
 *   removed or hid an earlier one's file (`d/f` then `d` as a symlink or
 *   file) or the body was of an entry kept as no file (a whiteout with
 *   data) — see {@linkcode referenceDiffFails}.
 * @module
 */

import { basename, join } from "node:path";
import { Store } from "../../lib/store/mod.ts";
import { StorageError } from "../../lib/errors.ts";
import { Compression } from "../../lib/archive/compression.ts";
import { layerTree, reference, referenceCli, removeTree, tempDir } from "../helpers.ts";
import { bytesOf, checkStore, listDir, storeOpts } from "../store_helpers.ts";
import { streamOf } from "../tar_fixtures.ts";
import { CANARY_PREFIX, decompress, sniff } from "./tar_gen.ts";

/** Time one step of a case may take before it counts as a hang. */
export const STEP_TIMEOUT_MS = 30_000;

/** A property of the fuzzer that did not hold. */
export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

function fail(msg: string, cause?: unknown): never {
  throw new FuzzFailure(msg, cause === undefined ? undefined : { cause });
}

/** `p`, or a FuzzFailure naming `what` when it takes longer than the step timeout. */
export async function withTimeout<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new FuzzFailure(`${what} hangs (no answer in ${STEP_TIMEOUT_MS} ms)`)),
      STEP_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Catches unhandled rejections and uncaught errors of the process (which
 * would otherwise end it) into a list; `check()` fails when any was seen
 * since the last check; `stop()` removes the handlers.
 */
export function trapUncaught(): { check: (what: string) => Promise<void>; stop: () => void } {
  const seen: unknown[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    seen.push(e.reason);
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    seen.push(e.error ?? e.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return {
    async check(what: string) {
      // let stray rejections of the case surface
      await new Promise((r) => setTimeout(r, 0));
      if (seen.length > 0) {
        const all = seen.splice(0).map((e) => (e as Error)?.stack ?? String(e));
        fail(`${what}: unhandled rejection or uncaught error:\n${all.join("\n")}`);
      }
    },
    stop() {
      globalThis.removeEventListener("unhandledrejection", onRejection);
      globalThis.removeEventListener("error", onError);
    },
  };
}

/** Entries of `dir` whose names start with the canary prefix. */
function canaries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith(CANARY_PREFIX))
    .map((n) => join(dir, n));
}

/** Generated names already in `/` and `/tmp` before the run (normally none): not escapes. */
export function canaryBaseline(): Set<string> {
  return new Set([...canaries("/"), ...canaries("/tmp")]);
}

/** What happened to one input. */
export interface Outcome {
  /** The layer was made. */
  accepted: boolean;
  /** The StorageError's message when it was not. */
  error?: string;
  /** `diff` of the layer without compression, when it was. */
  diff?: Uint8Array;
  /** Why the diff failed, when the reference's fails too. */
  diffError?: string;
  /** The layer's directory (inside the case's store) while the store exists. */
  layerDir?: string;
}

/** Where the driver keeps a layer's files. */
function contentDir(graph: string, driver: string, id: string): string {
  return driver === "vfs" ? join(graph, "vfs/dir", id) : join(graph, "overlay", id, "diff");
}

/** Output of find(1) with `args`, split at NULs; names decoded byte for byte (latin1). */
async function find(args: string[]): Promise<string[]> {
  const out = await new Deno.Command("find", { args, stderr: "piped" }).output();
  if (out.code !== 0) fail(`find ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder("latin1").decode(out.stdout).split("\0").filter((l) => l !== "").sort();
}

/**
 * Every path below a store's root (relative, with a leading '/'), but not
 * the contents of layers (their names may be any bytes, and are the
 * layer's own business).
 */
function storePaths(root: string): Promise<string[]> {
  return find([
    root,
    "-mindepth",
    "1",
    "(",
    "-path",
    `${root}/g/vfs/dir/*/*`,
    "-o",
    "-path",
    `${root}/g/overlay/*/diff/*`,
    ")",
    "-prune",
    "-o",
    "-printf",
    "/%P\\0",
  ]);
}

/**
 * Fails when a file below `dir` has more hard links than there are names
 * for it below `dir`: it is linked to a file outside the layer.
 */
async function assertNoLinksOut(dir: string): Promise<void> {
  const counts = new Map<string, number>();
  for (const line of await find([dir, "!", "-type", "d", "-links", "+1", "-printf", "%i %n\\0"])) {
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  for (const [line, names] of counts) {
    const [ino, n] = line.split(" ");
    if (Number(n) !== names) fail(`inode ${ino} in the layer has ${n} links, ${names} in it`);
  }
}

/** Files and directories of the store that its first layer makes (checkStore checks their contents). */
const STORE_FILES =
  /^\/(g\/(vfs|overlay)-layers\/layers\.json|r\/(vfs|overlay)-layers\/mountpoints\.json|g\/vfs\/dir|g\/overlay\/l)$/;

/** Options of {@linkcode runCase}. */
export interface CaseOptions {
  /** The directory of the run: each case gets a fresh store in a directory below it. */
  parent: string;
  /** The storage driver (default vfs). */
  driver?: string;
  /** Size of the chunks the input is streamed in (default 4096). */
  chunk?: number;
  /** Generated names in `/` and `/tmp` before the run. */
  baseline: Set<string>;
  /** Checks for uncaught errors (see {@linkcode trapUncaught}). */
  trap: { check: (what: string) => Promise<void> };
  /** Called with the outcome and the case's root before the store is removed (for more checks). */
  inspect?: (outcome: Outcome, root: string) => Promise<void>;
}

/**
 * Feeds `input` to putLayer of a fresh store and checks every property (see
 * the module doc); throws a FuzzFailure when one does not hold.
 */
export async function runCase(input: Uint8Array, opts: CaseOptions): Promise<Outcome> {
  const driver = opts.driver ?? "vfs";
  const root = await Deno.makeTempDir({ dir: opts.parent, prefix: "case-" });
  const graph = join(root, "g"), run = join(root, "r");
  let s: Store | undefined;
  let outcome: Outcome = { accepted: false };
  try {
    s = await Store.open(storeOpts(root, { graphDriverName: driver }));
    const before = await storePaths(root);
    try {
      const chunk = Math.max(opts.chunk ?? 4096, Math.ceil(input.length / 4000));
      const { layer } = await withTimeout(
        "putLayer",
        s.putLayer({ diff: streamOf(input, chunk) }),
      );
      outcome = { accepted: true, layerDir: contentDir(graph, driver, layer.id) };
      const diff = await withTimeout(
        "diff",
        s.diff("", layer.id, { compression: Compression.Uncompressed }).then(bytesOf),
      );
      outcome.diff = diff;
      const how = sniff(input);
      const want = await decompress(input, how);
      if (!want) fail(`we accepted a ${how} stream that the ${how} tool refuses`);
      if (!equalBytes(diff, want)) {
        fail(`diff differs from the input: ${describeDifference(diff, want)}`);
      }
      await assertNoLinksOut(outcome.layerDir!);
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      if (!(e instanceof StorageError)) {
        fail(`not a StorageError: ${(e as Error)?.stack ?? e}`, e);
      }
      if (outcome.accepted && !outcome.diff) {
        const theirs = await referenceDiffFails(input, driver);
        if (theirs === undefined) fail(`our diff fails, the reference's does not: ${e.message}`, e);
        outcome.diffError = e.message;
      } else if (outcome.accepted) {
        fail(`a StorageError after the diff: ${e.message}`, e);
      } else outcome.error = e.message;
    }
    await opts.trap.check(outcome.accepted ? "put and diff" : "failed put");
    await opts.inspect?.(outcome, root);
    await withTimeout("shutdown", s.shutdown(true));
    s = undefined;
    const check = await checkStore({ graph, run, driver });
    if (check.problems.length > 0) fail(`store problems: ${check.problems.join("; ")}`);
    if (check.tempFiles.length > 0) fail(`temporary files left: ${check.tempFiles.join(" ")}`);
    // Only the layer's own files may be new, and only when it was made.
    const layerIDs = check.layers.map((l) => l.id);
    if (layerIDs.length !== (outcome.accepted ? 1 : 0)) fail(`layers left: ${layerIDs}`);
    const own = (p: string) =>
      layerIDs.some((id) => p.includes(`/${id}`)) ||
      (driver === "overlay" && layerIDs.length > 0 && /^\/g\/overlay\/l\/[A-Z0-9]+$/.test(p)) ||
      STORE_FILES.test(p);
    const added = (await storePaths(root)).filter((p) => !before.includes(p) && !own(p));
    if (added.length > 0) fail(`paths left in the store: ${added.join(" ")}`);
  } finally {
    if (s) await s.shutdown(true).catch(() => {});
    // Outside the store: nothing new in the case's directory, the run's, / or /tmp.
    const top = await listDir(root);
    const parentNow = await listDir(opts.parent);
    const escaped = [...canaries("/"), ...canaries("/tmp")].filter((p) => !opts.baseline.has(p));
    await removeTree(root);
    for (const p of escaped) await removeTree(p);
    if (top.some((n) => n !== "g" && n !== "r")) fail(`outside the store: ${top}`);
    if (parentNow.length !== 1 || parentNow[0] !== basename(root)) {
      fail(`outside the store: ${parentNow}`);
    }
    if (escaped.length > 0) fail(`escaped the layer: ${escaped.join(" ")}`);
  }
  return outcome;
}

/** What the reference CLI did with a layer. */
export interface Theirs {
  accepted: boolean;
  /** Its error, when it refused the layer. */
  error?: string;
  /** The layer's directory in its store (gone once the call returns). */
  layerDir?: string;
  /** {@linkcode layerTree} of the layer, when asked for. */
  tree?: string;
  /** Its `diff -u` of the layer. */
  diff?: Uint8Array;
  /** Why its `diff -u` failed. */
  diffError?: string;
}

/**
 * Imports `input` with the reference CLI into a store of its own on
 * `driver`, then (when it accepts the layer) lists its tree if asked and
 * runs `diff -u`.
 */
export async function referenceImport(
  input: Uint8Array,
  driver: string,
  opts: { tree?: boolean } = {},
): Promise<Theirs> {
  if (!referenceCli) fail("the reference CLI is not installed");
  const dir = await tempDir("cs-fuzz-ref-");
  try {
    const root = { graph: join(dir, "g"), run: join(dir, "r"), driver };
    await Deno.writeFile(join(dir, "in"), input);
    let id: string;
    try {
      id = (await reference(root, ["import-layer", "-f", join(dir, "in")])).stdout.trim();
    } catch (e) {
      return { accepted: false, error: (e as Error).message };
    }
    const layerDir = driver === "vfs"
      ? join(root.graph, "vfs/dir", id)
      : join(root.graph, "overlay", id, "diff");
    const out: Theirs = { accepted: true, layerDir };
    if (opts.tree) out.tree = await layerTree(layerDir);
    try {
      await reference(root, ["diff", "-u", "-f", join(dir, "out"), id]);
      out.diff = await Deno.readFile(join(dir, "out"));
    } catch (e) {
      out.diffError = (e as Error).message;
    }
    return out;
  } finally {
    await removeTree(dir);
  }
}

/**
 * Why the reference's `diff -u` of `input` fails, or undefined when it
 * works. Fails when the reference refuses the layer (we accepted it).
 */
export async function referenceDiffFails(
  input: Uint8Array,
  driver: string,
): Promise<string | undefined> {
  const theirs = await referenceImport(input, driver);
  if (!theirs.accepted) fail(`we accept the layer, the reference refuses it: ${theirs.error}`);
  return theirs.diffError;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where two byte strings first differ, in tar blocks. */
export function describeDifference(got: Uint8Array, want: Uint8Array): string {
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  return `${got.length} bytes instead of ${want.length}, first difference at byte ${i} ` +
    `(block ${Math.floor(i / 512)}, offset ${i % 512})`;
}

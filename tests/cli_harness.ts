/**
 * Test harness for comparing our CLI with the reference `containers-storage`:
 * twin stores (one written by each tool, same explicit layer IDs) and output
 * normalisation (store paths, creation times) so outputs compare byte for byte.
 * @module
 */

import assert from "node:assert/strict";
import { referenceCli, removeTree, run, type RunResult, tempDir } from "./helpers.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

/** A store root: graph and run directories under one temporary directory. */
export interface Root {
  /** The temporary directory holding both. */
  dir: string;
  /** Graph root. */
  graph: string;
  /** Run root. */
  run: string;
  /** Storage driver the tools use on it. */
  driver: string;
}

/** Creates an empty store root for `driver`. */
export async function newRoot(prefix = "cli-", driver = "vfs"): Promise<Root> {
  const dir = await tempDir(prefix);
  return { dir, graph: `${dir}/graph`, run: `${dir}/run`, driver };
}

/** Removes a store root (unmounting what is mounted below it). */
export async function dropRoot(root: Root): Promise<void> {
  await removeTree(root.dir);
}

/** Options for one CLI run. */
export interface CsOpts {
  /** Bytes for stdin. */
  stdin?: Uint8Array;
  /** Environment additions. */
  env?: Record<string, string>;
}

/** Runs our CLI on `root` with its driver. */
export function ours(root: Root, args: string[], opts: CsOpts = {}): Promise<RunResult> {
  return run(
    Deno.execPath(),
    ["run", "-A", cli, "-g", root.graph, "-R", root.run, "-s", root.driver, ...args],
    opts,
  );
}

/** Runs the reference CLI on `root` with its driver. */
export function theirs(root: Root, args: string[], opts: CsOpts = {}): Promise<RunResult> {
  // By name, so that its argv[0] (quoted in its messages) is "containers-storage".
  return run("bash", [
    "-c",
    'exec -a containers-storage "$0" "$@"',
    referenceCli!,
    ...["-g", root.graph, "-R", root.run, "-s", root.driver, ...args],
  ], opts);
}

/** Replaces the root's paths by "ROOT" and creation times by "T". */
export function normalize(r: RunResult, root: Root): RunResult {
  const fix = (s: string) =>
    s.replaceAll(root.dir, "ROOT").replace(/"created":"[^"]*"/g, '"created":"T"');
  return { code: r.code, stdout: fix(r.stdout), stderr: fix(r.stderr) };
}

/** Runs `args` with our CLI on `a` and the reference on `b` and asserts equal (normalised) results. */
export async function sameOn(
  a: Root,
  b: Root,
  args: string[],
  opts: CsOpts = {},
): Promise<RunResult> {
  const r1 = normalize(await ours(a, args, opts), a);
  const r2 = normalize(await theirs(b, args, opts), b);
  assert.deepEqual(r1, r2, `containers-storage ${args.join(" ")}`);
  return r1;
}

/** Runs `args` with both tools on the same store and asserts identical results. */
export async function sameOnOne(root: Root, args: string[], opts: CsOpts = {}): Promise<RunResult> {
  const r1 = await ours(root, args, opts);
  const r2 = await theirs(root, args, opts);
  assert.deepEqual(r1, r2, `containers-storage ${args.join(" ")}`);
  return r1;
}

/** A small layer tarball (dirs, files, a symlink, a hardlink) made with tar(1). */
export async function makeTarball(dir: string, name: string, files: Record<string, string>) {
  const src = `${dir}/src-${name}`;
  await Deno.mkdir(src, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await Deno.mkdir(`${src}/${path}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${src}/${path}`, content);
  }
  const tar = `${dir}/${name}.tar`;
  const r = await run("tar", ["-C", src, "--sort=name", "-cf", tar, "."]);
  assert.equal(r.code, 0, r.stderr);
  return tar;
}

/** Fixed layer IDs, so both stores hold the same layers. */
export const ID = {
  base: "1".repeat(63) + "a",
  mid: "2".repeat(63) + "b",
  top: "3".repeat(63) + "c",
  extra: "4".repeat(63) + "d",
};

/** Fixed image IDs, for the same reason. */
export const IMAGE_ID = {
  one: "5".repeat(63) + "e",
  two: "6".repeat(63) + "f",
};

/** Fixed container IDs, for the same reason. */
export const CONTAINER_ID = {
  one: "7".repeat(63) + "a",
  two: "8".repeat(63) + "b",
};

const FIXED_IDS = new Set([
  ...Object.values(ID),
  ...Object.values(IMAGE_ID),
  ...Object.values(CONTAINER_ID),
]);

/**
 * A normaliser for the IDs a tool chose at random (64 hex digits, other
 * than the fixed ones above): each becomes "<ID0>", "<ID1>"… in order of
 * first appearance, the same on every call. Twin stores fed the same
 * commands make their random IDs in the same order, so their outputs then
 * compare.
 */
export function randomIDs(): (s: string) => string {
  const seen = new Map<string, string>();
  return (s) =>
    s.replace(/\b[0-9a-f]{64}\b/g, (id) => {
      if (FIXED_IDS.has(id)) return id;
      if (!seen.has(id)) seen.set(id, `<ID${seen.size}>`);
      return seen.get(id)!;
    });
}

/** One command of a twin-store run. */
export interface Step {
  /** The command line after the global flags. */
  args: string[];
  /** Text for stdin. */
  stdin?: string;
  /** The output is a Go map iteration (random order): compare its lines as sets. */
  unordered?: boolean;
}

/** A step from its command line. */
export function step(...args: string[]): Step {
  return { args };
}

/** Twin stores, one written by each tool, with their random-ID normalisers. */
export class Twins {
  readonly #ids = [randomIDs(), randomIDs()];

  /**
   * @param a Our store.
   * @param b The reference's store.
   */
  constructor(readonly a: Root, readonly b: Root) {}

  #fix(r: RunResult, root: Root, ids: (s: string) => string, unordered: boolean): RunResult {
    const fix = (s: string) => {
      const text = ids(s.replaceAll(root.dir, "ROOT"))
        .replace(/"created":"[^"]*"/g, '"created":"T"')
        .replace(/^time="[^"]*"/gm, "time=T");
      return unordered ? text.split("\n").sort().join("\n") : text;
    };
    return { code: r.code, stdout: fix(r.stdout), stderr: fix(r.stderr) };
  }

  /**
   * Runs each step with our CLI on `a` and the reference on `b`; asserts
   * equal normalised results. Steps that change nothing may run
   * `concurrently` (a few at a time); their results are still normalised
   * in order, so random IDs are numbered the same way.
   */
  async run(steps: Step[], { concurrently = false } = {}): Promise<void> {
    const both = (s: Step) => {
      const opts = { stdin: s.stdin === undefined ? undefined : new TextEncoder().encode(s.stdin) };
      return Promise.all([ours(this.a, s.args, opts), theirs(this.b, s.args, opts)]);
    };
    const results: [RunResult, RunResult][] = [];
    const width = concurrently ? 4 : 1;
    for (let i = 0; i < steps.length; i += width) {
      results.push(...await Promise.all(steps.slice(i, i + width).map(both)));
    }
    steps.forEach((s, i) => {
      const [r1, r2] = results[i];
      assert.deepEqual(
        this.#fix(r1, this.a, this.#ids[0], !!s.unordered),
        this.#fix(r2, this.b, this.#ids[1], !!s.unordered),
        `containers-storage ${s.args.join(" ")}`,
      );
    });
  }

  /** Asserts that the reference lists the same layers, images and containers in both stores. */
  async sameContent(): Promise<void> {
    for (const what of ["layers", "images", "containers"]) {
      const r1 = await theirs(this.a, [what, "-j"]);
      const r2 = await theirs(this.b, [what, "-j"]);
      assert.deepEqual(
        this.#fix(r1, this.a, this.#ids[0], false),
        this.#fix(r2, this.b, this.#ids[1], false),
        `${what} as the reference reads them`,
      );
    }
  }
}

/**
 * The big-data commands of `kind` ("image" or "container") on the object
 * `name` (`id` its ID; `bare` one without data), error paths included:
 * the writes (items "manifest" = "hello", "config" and "A/b c" from
 * `file`), then the reads; `out` is a file `get-…-data -f` may create.
 */
export function bigDataSteps(
  kind: string,
  o: { name: string; id: string; bare: string; file: string; out: string },
): { writes: Step[]; reads: Step[] } {
  const [set, list, get] = [`set-${kind}-data`, `list-${kind}-data`, `get-${kind}-data`];
  const [size, digest] = [`${get}-size`, `${get}-digest`];
  const writes: Step[] = [
    { args: [set, o.name, "manifest"], stdin: "hello" },
    { args: [set, o.name, "config"], stdin: "cfg" },
    step(set, "-f", o.file, o.id.slice(0, 12), "A/b c"),
    { args: [set, o.name, ""], stdin: "x" },
    { args: [set, "nope", "k"], stdin: "x" },
    step(set, "-f", "/nonexistent/data", o.name, "k"),
  ];
  const reads: Step[] = [
    step(list, o.name),
    step(list, "-j", o.name),
    step(list, "-j", o.bare),
    step(list, "nope"),
    step(get, o.name, "manifest"),
    step(get, o.name, "A/b c"),
    step(get, "-f", o.out, o.name, "nokey"),
    step(get, o.name, "no/key"),
    step(get, o.name, ""),
    step(get, "nope", "k"),
    step(size, o.name, "config"),
    step(size, o.name, "nokey"),
    step(size, o.name, ""),
    step(size, "nope", "k"),
    step(digest, o.name, "manifest"),
    step(digest, o.name, "A/b c"),
    step(digest, o.name, "nokey"),
    step(digest, o.name, ""),
    step(digest, "nope", "k"),
  ];
  return { writes, reads };
}

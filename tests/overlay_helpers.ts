/**
 * Helpers shared by the overlay driver tests: mountinfo lookups, a
 * comparable description of a directory tree, a PATH without
 * fuse-overlayfs, and assertion shorthands over node:assert.
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { lookPath, removeTree, tempDir } from "./helpers.ts";

/**
 * fuse-overlayfs as found on PATH, or undefined. When the kernel's overlay
 * cannot be used here, the driver (ours and the reference) mounts with it.
 */
export const fuseOverlayfs: string | undefined = lookPath("fuse-overlayfs");

/**
 * Runs `fn` with PATH naming one directory that links every executable of
 * the current PATH except `tool`, so the driver, and the reference CLI the
 * test runs meanwhile, behave as on a machine where `tool` is not installed.
 */
export async function withoutOnPath<T>(tool: string, fn: () => Promise<T>): Promise<T> {
  const saved = Deno.env.get("PATH");
  const bin = await tempDir("cstest-path-");
  try {
    const linked = new Set([tool]); // the first directory that has a program wins, as in a lookup
    for (const dir of (saved ?? "").split(":")) {
      if (dir === "") continue;
      let names: string[];
      try {
        names = [...Deno.readDirSync(dir)].map((e) => e.name);
      } catch {
        continue; // a PATH entry that does not exist
      }
      for (const name of names) {
        if (linked.has(name) || lookPath(name, [dir]) === undefined) continue;
        linked.add(name);
        Deno.symlinkSync(`${dir}/${name}`, `${bin}/${name}`);
      }
    }
    Deno.env.set("PATH", bin);
    return await fn();
  } finally {
    if (saved === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", saved);
    await removeTree(bin);
  }
}

/** One /proc/self/mountinfo entry, reduced to what the tests look at. */
export interface MountInfo {
  /** Mount point. */
  target: string;
  /** Per-mount options (ro, nodev, …). */
  mountOptions: string;
  /** Filesystem type. */
  fstype: string;
  /** Superblock options (overlay's lowerdir=…, upperdir=…). */
  options: string;
}

/** The mounts whose mount point is exactly `path`. */
export function mountedAt(path: string): MountInfo[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter((l) => l !== "").map(
    (l) => {
      const f = l.split(" ");
      const sep = f.indexOf("-");
      return { target: f[4], mountOptions: f[5], fstype: f[sep + 1], options: f[sep + 3] };
    },
  ).filter((m) => m.target === path);
}

/**
 * Describes every entry below `root` (relative path → type, mode, owner,
 * size, content digest or link target), for comparing merged views.
 */
export async function treeOf(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string) => {
    const names = [...Deno.readDirSync(rel ? `${root}/${rel}` : root)].map((e) => e.name).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const p = `${root}/${r}`;
      const st = Deno.lstatSync(p);
      let what = `${(st.mode! & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymlink) what = `link ${Deno.readLinkSync(p)} ${what}`;
      else if (st.isDirectory) what = `dir ${what}`;
      else if (st.isFile) {
        what = `file ${st.size} ${
          createHash("sha256").update(Deno.readFileSync(p)).digest("hex")
        } ${what}`;
      } else what = `other ${st.mode!.toString(8)} ${st.rdev} ${what}`;
      out.set(r, what);
      if (st.isDirectory) await visit(r);
    }
  };
  await visit("");
  return out;
}

/** Deep equality. */
export const assertEquals: <T>(actual: unknown, expected: T, msg?: string) => void = (a, e, m) =>
  assert.deepStrictEqual(a, e, m);

/** Asserts that `s` matches `re`. */
export function assertMatch(s: string, re: RegExp): void {
  assert.match(s, re);
}

/**
 * Asserts that `fn` rejects, optionally with an instance of `cls` whose
 * message contains `includes`; returns the error.
 */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: new (...a: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (cls) assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    if (includes) {
      assert.ok(
        String((e as Error).message).includes(includes),
        `"${(e as Error).message}" lacks "${includes}"`,
      );
    }
    return e as Error;
  }
  assert.fail("expected a rejection, nothing was thrown");
}

/** Asserts truthiness. */
export function assertTrue(v: unknown, msg?: string): asserts v {
  assert.ok(v, msg);
}

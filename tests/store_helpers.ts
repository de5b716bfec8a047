/**
 * Helpers shared by the layer store, vfs, interop, crash and concurrency
 * tests: store options for a temp root, stream/digest utilities and the
 * small assertion wrappers those tests use.
 * @module
 */

import nodeAssert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { StoreOptions } from "../lib/config.ts";
import { Store } from "../lib/store/mod.ts";
import { removeTree, tempDir } from "./helpers.ts";

/** Store options for a vfs store under `root` (`root/g`, `root/r`). */
export function storeOpts(root: string, extra: Partial<StoreOptions> = {}): StoreOptions {
  return {
    graphRoot: join(root, "g"),
    runRoot: join(root, "r"),
    graphDriverName: "vfs",
    graphDriverOptions: [],
    uidMap: [],
    gidMap: [],
    imageStores: [],
    ...extra,
  };
}

/** All bytes of a stream. */
export async function bytesOf(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** "sha256:<hex>" of bytes. */
export function sha(b: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(b).digest("hex");
}

/** Truthiness assertion. */
export function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg);
}

/** Deep equality assertion. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts that `fn` rejects, optionally with an instance of `cls`; returns the error. */
// deno-lint-ignore no-explicit-any
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  cls?: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new Error(`expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`);
    }
    return e as E;
  }
  throw new Error(`expected a rejection${cls ? ` with ${cls.name}` : ""}`);
}

/** Names of the entries of a directory (empty when it does not exist). */
export async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Opens a fresh store with `driver` in a temp dir, runs `fn`, then shuts it down and removes it. */
export async function withStore(
  driver: string,
  fn: (s: Store, root: string) => Promise<void>,
): Promise<void> {
  const root = await tempDir(`store-${driver}-`);
  const s = await Store.open(storeOpts(root, { graphDriverName: driver }));
  try {
    await fn(s, root);
  } finally {
    await s.shutdown(true).catch(() => {});
    await removeTree(root);
  }
}

/**
 * A chain of layer tarballs for the batch-put tests: a base, a layer that
 * whites out a file and makes a directory opaque, one with a hard link and a
 * symlink, and more files on top; every other layer gzip-compressed.
 * `files` sets how many small files each layer adds (more for the crash
 * tests, where a put must last long enough to be killed midway).
 *
 * @example
 * ```ts ignore
 * const chain = chainTars({ files: 200 });
 * await store.putLayers({ layers: chain.map((t, i) => ({ id: CHAIN_IDS[i], diff: streamOf(t) })) });
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { buildTar, type FixtureEntry } from "./tar_fixtures.ts";

/** Layers in the chain. */
export const CHAIN_LENGTH = 4;

/** Fixed IDs of the chain's layers, base first. */
export const CHAIN_IDS: string[] = Array.from(
  { length: CHAIN_LENGTH },
  (_, i) => createHash("sha256").update(`chain layer ${i}`).digest("hex"),
);

function filesUnder(dir: string, layer: number, files: number): FixtureEntry[] {
  const entries: FixtureEntry[] = [{ name: `${dir}/`, type: "5", mtime: 1_600_000_000 }];
  for (let f = 0; f < files; f++) {
    entries.push({
      name: `${dir}/f${f}`,
      data: `layer ${layer} file ${f}\n`.repeat(1 + (f % 50)),
      mtime: 1_600_000_000 + f,
      uid: f % 3,
      gid: f % 5,
    });
  }
  return entries;
}

/** The chain's tarballs, base first (layers 1 and 3 gzip-compressed). */
export function chainTars(opts: { files?: number } = {}): Uint8Array[] {
  const files = opts.files ?? 50;
  const layers: FixtureEntry[][] = [
    [...filesUnder("a", 0, files), ...filesUnder("b", 0, files)],
    [
      { name: "a/.wh.f0", data: "" },
      { name: "b/", type: "5", mtime: 1_600_000_100 },
      { name: "b/.wh..wh..opq", data: "" },
      ...filesUnder("c", 1, files),
    ],
    [
      ...filesUnder("d", 2, files),
      { name: "d/hard", type: "1", link: "d/f1" },
      { name: "d/sym", type: "2", link: "../a/f2" },
    ],
    [...filesUnder("a/e", 3, files), { name: "c/.wh.f1", data: "" }],
  ];
  const tars = layers.map(buildTar);
  return tars.map((t, i) => i % 2 === 1 ? new Uint8Array(gzipSync(t)) : t);
}

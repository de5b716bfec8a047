/**
 * The bench's generated workload: a rootfs-like tree (many small files, some
 * medium, a few large; directories, symlinks, hard links), built from a
 * fixed seed so every run and machine gets the same tree.
 *
 * @example
 * ```ts ignore
 * import { generate } from "./generate.ts";
 * const stats = generate("/tmp/tree", { bytes: 64 << 20, files: 3000 });
 * ```
 * @module
 */

const MB = 1024 * 1024;

/** Deterministic PRNG (mulberry32) so every run builds the same tree. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What {@linkcode generate} made. */
export interface TreeStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
}

/** Writes the tree under `root`: about `bytes` of file data in `files` files. */
export function generate(
  root: string,
  { bytes: targetBytes, files: targetFiles }: { bytes: number; files: number },
): TreeStats {
  const rand = rng(42);
  // Seeded bytes that compress about as well as binaries do (text-like runs and noise).
  const pool = new Uint8Array(8 * MB);
  for (let i = 0; i < pool.length; i++) {
    pool[i] = (i & 4096) ? Math.floor(rand() * 256) : 97 + Math.floor(rand() * 16);
  }
  const stats: TreeStats = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0 };
  const dirs: string[] = [];
  for (
    const top of [
      "bin",
      "etc",
      "lib",
      "usr/bin",
      "usr/lib",
      "usr/share/doc",
      "usr/share/locale",
      "var/lib",
    ]
  ) {
    for (let i = 0; i < 40; i++) {
      const d = `${top}/d${i}${i % 3 === 0 ? `/sub${i}` : ""}`;
      Deno.mkdirSync(`${root}/${d}`, { recursive: true });
      dirs.push(d);
    }
  }
  stats.dirs = dirs.length;
  const big = Math.floor(targetBytes * 0.45); // a few large files carry ~45% of the bytes
  const bigCount = 12;
  const smallBudget = targetBytes - big;
  const smallCount = targetFiles - bigCount;
  const files: string[] = [];
  const write = (path: string, size: number) => {
    const f = Deno.openSync(path, { write: true, create: true, truncate: true });
    let left = size;
    while (left > 0) {
      const off = Math.floor(rand() * (pool.length - Math.min(left, MB)));
      const n = Math.min(left, MB);
      let w = 0;
      while (w < n) w += f.writeSync(pool.subarray(off + w, off + n));
      left -= n;
    }
    f.close();
    stats.files++;
    stats.bytes += size;
  };
  for (let i = 0; i < bigCount; i++) {
    write(`${root}/${dirs[i * 7]}/large${i}.bin`, Math.floor(big / bigCount));
  }
  const mean = smallBudget / smallCount;
  for (let i = 0; i < smallCount; i++) {
    // Log-uniform-ish sizes around the mean: many tiny files, some of a few hundred KB.
    const size = Math.floor(mean * Math.exp((rand() - 0.5) * 4) / 1.8);
    const p = `${root}/${dirs[Math.floor(rand() * dirs.length)]}/f${i}${
      i % 5 === 0 ? ".so.1" : ""
    }`;
    write(p, size);
    files.push(p);
  }
  for (let i = 0; i < 300; i++) {
    const d = dirs[Math.floor(rand() * dirs.length)];
    Deno.symlinkSync(`../${i % 2 ? "lib" : "etc"}/target${i}`, `${root}/${d}/link${i}`);
    stats.symlinks++;
  }
  for (let i = 0; i < 100 && i * 13 < files.length; i++) {
    Deno.linkSync(files[i * 13], `${files[i * 13]}.hard`);
    stats.hardlinks++;
  }
  return stats;
}

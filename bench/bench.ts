/**
 * Benchmark of the archive engine (`deno task bench`): generates a
 * rootfs-like tree (≥ 5,000 files, ≥ 150 MB: mixed sizes, directories,
 * symlinks, hard links), tars it with GNU tar, then times on the same data
 * in the same run:
 * - our apply (applyTar) alone, and with the store's single pass
 *   (decompress-detect + digests + tar-split recording, inspectLayer);
 * - our rebuild of the tarball from tar-split + the applied files
 *   (checked byte-identical by sha256);
 * - GNU `tar -x` and `tar -c` of the same tree;
 * - when the reference CLI is installed, `containers-storage import-layer`
 *   and `diff -u` of the same tarball with the vfs driver.
 * Peak RSS is sampled during our phases.
 *
 * Environment: BENCH_MB (default 160), BENCH_FILES (default 6000), BENCH_DIR (temp parent).
 * @module
 */

import { createHash } from "node:crypto";
import { applyTar } from "../lib/archive/apply.ts";
import { openFileStream } from "../lib/archive/file_stream.ts";
import { inspectLayer } from "../lib/archive/layer_stream.ts";
import { REBUILD_CHUNK, rebuildTar } from "../lib/archive/tar_split.ts";

const MB = 1024 * 1024;
const targetBytes = Number(Deno.env.get("BENCH_MB") ?? 160) * MB;
const targetFiles = Number(Deno.env.get("BENCH_FILES") ?? 6000);

/** Deterministic PRNG (mulberry32) so every run builds the same tree. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface TreeStats {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  bytes: number;
}

/** Writes the tree: many small files, some medium, a few large, like a distro rootfs. */
function generate(root: string): TreeStats {
  const rand = rng(42);
  const pool = new Uint8Array(8 * MB);
  for (let i = 0; i < pool.length; i += 65536) crypto.getRandomValues(pool.subarray(i, i + 65536));
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
  for (let i = 0; i < 100; i++) {
    Deno.linkSync(files[i * 13], `${files[i * 13]}.hard`);
    stats.hardlinks++;
  }
  return stats;
}

/** Samples RSS while `fn` runs; returns its duration (s) and the peak RSS (bytes). */
async function measure(fn: () => Promise<unknown>): Promise<{ s: number; rss: number }> {
  let rss = Deno.memoryUsage().rss;
  const timer = setInterval(() => (rss = Math.max(rss, Deno.memoryUsage().rss)), 20);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  rss = Math.max(rss, Deno.memoryUsage().rss);
  return { s: (performance.now() - t0) / 1000, rss };
}

async function sh(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return (performance.now() - t0) / 1000;
}

async function shOut(cmd: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout).trim();
}

async function sha256(stream: ReadableStream<Uint8Array>): Promise<string> {
  const h = createHash("sha256");
  for await (const c of stream) h.update(c);
  return h.digest("hex");
}

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      Deno.statSync(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

function vmHWM(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : 0;
}

const tmp = await Deno.makeTempDir({ dir: Deno.env.get("BENCH_DIR"), prefix: "cs-bench-" });
const rows: string[][] = [];
try {
  const src = `${tmp}/src`;
  Deno.mkdirSync(src);
  console.error(`generating ~${targetBytes / MB} MB, ${targetFiles} files in ${src} …`);
  const stats = generate(src);
  const tarPath = `${tmp}/layer.tar`;
  const tarC = await sh("tar", ["-cf", tarPath, "-C", src, "."]);
  const tarBytes = Deno.statSync(tarPath).size;
  const entries = stats.files + stats.dirs + stats.symlinks + stats.hardlinks;
  const mbOf = tarBytes / MB;
  const row = (what: string, s: number, rss?: number) =>
    rows.push([
      what,
      s.toFixed(2),
      (mbOf / s).toFixed(0),
      (entries / s).toFixed(0),
      rss === undefined ? "-" : (rss / MB).toFixed(0),
    ]);
  await sh("sync", []);

  row("GNU tar -c", tarC);
  Deno.mkdirSync(`${tmp}/gnu`);
  await sh("sync", []);
  row("GNU tar -x", await sh("tar", ["-xf", tarPath, "-C", `${tmp}/gnu`]));

  const baseRss = Deno.memoryUsage().rss;
  Deno.mkdirSync(`${tmp}/ours`);
  await sh("sync", []);
  const apply = await measure(async () => {
    const f = await Deno.open(tarPath);
    await applyTar(f.readable, `${tmp}/ours`, { whiteoutFormat: "aufs" });
  });
  row("our applyTar", apply.s, apply.rss);

  Deno.mkdirSync(`${tmp}/ours2`);
  await sh("sync", []);
  const splitPath = `${tmp}/layer.tar-split.gz`;
  const store = await measure(async () => {
    const f = await Deno.open(tarPath);
    const sink = await Deno.create(splitPath);
    const { tar, done } = inspectLayer(f.readable, sink.writable);
    await applyTar(tar, `${tmp}/ours2`, { whiteoutFormat: "aufs" });
    await tar.cancel().catch(() => {});
    const info = await done;
    if (info.uncompressedSize !== tarBytes) throw new Error("inspectLayer size mismatch");
  });
  row("our apply + digests + tar-split", store.s, store.rss);

  await sh("sync", []);
  let got = "";
  const rebuild = await measure(async () => {
    const getter = {
      get: (name: string) => Promise.resolve(openFileStream(`${tmp}/ours2/${name}`)),
      close: () => Promise.resolve(),
    };
    // One reused buffer, as a consumer that writes each chunk out before the next would.
    const r = rebuildTar((await Deno.open(splitPath)).readable, getter).getReader({ mode: "byob" });
    const h = createHash("sha256");
    let buf = new Uint8Array(REBUILD_CHUNK);
    for (let c; !(c = await r.read(buf)).done; buf = new Uint8Array(c.value.buffer)) {
      h.update(c.value);
    }
    got = h.digest("hex");
  });
  // Hashed only now: its garbage would otherwise count in the rebuild's peak RSS.
  const want = await sha256((await Deno.open(tarPath)).readable);
  if (got !== want) throw new Error(`rebuild differs: ${got} != ${want}`);
  row("our tar-split rebuild (sha256 ok)", rebuild.s, rebuild.rss);
  row("sha256sum of the tar", await sh("sha256sum", [tarPath]));

  // The same operations through each tool's front door, on the same tarball,
  // gzip-compressed as registries serve layers: our CLI and the reference CLI.
  const gzPath = `${tmp}/layer.tar.gz`;
  await sh("sh", ["-c", `gzip -1 -c ${tarPath} > ${gzPath}`]);
  const refCli = which("containers-storage");
  const ourCli = [Deno.execPath(), "run", "-A", new URL("../cli.ts", import.meta.url).pathname];
  const driver = Deno.uid() === 0 ? "overlay" : "vfs";
  const tools: [string, string[]][] = [["our CLI", ourCli]];
  if (refCli && Deno.uid() === 0) tools.push(["reference", [refCli]]);
  for (const [who, argv] of tools) {
    const root = `${tmp}/${who.replace(" ", "-")}`;
    const cs = [...argv.slice(1), "-g", `${root}/g`, "-R", `${root}/r`, "-s", driver];
    await sh("sync", []);
    const t0 = performance.now();
    const id = (await shOut(argv[0], [...cs, "import-layer", "-f", gzPath])).split("\n").pop()!;
    row(`${who} import-layer .tar.gz (${driver})`, (performance.now() - t0) / 1000);
    await sh("sync", []);
    row(
      `${who} diff -u (${driver})`,
      await sh(argv[0], [...cs, "diff", "-u", "-f", `${root}/d.tar`, id]),
    );
    if (await sha256((await Deno.open(`${root}/d.tar`)).readable) !== want) {
      throw new Error(`${who}: diff -u is not the imported tarball`);
    }
    await sh(argv[0], [...cs, "delete-layer", id]);
    await sh(argv[0], [...cs, "shutdown"]).catch(() => 0);
    await new Deno.Command("umount", { args: [`${root}/g/${driver}`], stderr: "null" }).output();
  }

  console.log(
    `\ntree: ${stats.files} files (${stats.hardlinks} more hard links), ${stats.dirs} dirs, ${stats.symlinks} symlinks, ` +
      `${(stats.bytes / MB).toFixed(0)} MB of file data; tar ${
        mbOf.toFixed(0)
      } MB, ${entries} entries`,
  );
  const head = ["operation", "seconds", "MB/s", "entries/s", "peak RSS MB"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(
    `RSS before our phases ${(baseRss / MB).toFixed(0)} MB; process VmHWM ${
      (vmHWM() / MB).toFixed(0)
    } MB ` +
      `(includes tree generation).`,
  );
} finally {
  await Deno.remove(tmp, { recursive: true });
}

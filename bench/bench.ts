/**
 * `deno task bench`: our CLI against the reference `containers-storage`, side
 * by side on the same data in one run, each operation `BENCH_RUNS` times
 * (default 5) with the two tools taking turns; median, min and max of the
 * wall time and the peak RSS of each, and the ratio ours/reference. On the
 * overlay and vfs drivers (`BENCH_DRIVERS`), on two workloads:
 * - a generated tree (seeded; `BENCH_MB`, default 32, `BENCH_FILES`, default
 *   2000): import-layer of the .tar.gz, .tar.zst and .tar; diff -u;
 *   applydiff; mount and unmount; create-container on an image; delete-image
 *   with its layers collected; a 20-layer chain mounted; listing layers,
 *   images and containers on a store of 2,000 layers, 500 images and 200
 *   containers (on the drivers after the first, to keep the run under 10
 *   minutes: the .tar.gz import, diff -u, applydiff, create-container and
 *   the listings);
 * - a real distro rootfs when `BENCH_ROOTFS=path.tar` names one (see README:
 *   debootstrap): import-layer of its .tar.gz, .tar.zst and .tar (on the first
 *   driver; the .tar.gz on the others), diff -u; and a 1 GiB layer (it plus an
 *   800 MiB file) for the peak RSS.
 * Then `copy-image` of a multi-layer OCI layout into an overlay store against
 * `skopeo copy` (bench/copy_image.ts; `BENCH_COPY=0` skips it; the rootfs,
 * split into layers, when `BENCH_ROOTFS` is set).
 * And the floors of the machine: gzip -dc, igzip -dc, sha256sum, GNU tar -x
 * and -c, Deno's own start-up. Before each import its layer file is dropped
 * from the page cache (the executables stay cached).
 *
 * All imports run before anything is deleted, and imported layers stay
 * until the end: on ext4 without a journal (our VMs' root file system), an
 * inode freed in the last minute (six, while its table block is dirty) is
 * skipped one by one when a new file is created (the kernel's
 * `recently_deleted`), which added ~2 s of kernel time to an import that
 * followed a delete — to both tools alike, pulling every ratio towards 1.
 *
 * Prints a Markdown table and writes it to `bench/results/<date>.md`. Run it
 * as root (overlay, dropping caches); without the reference CLI only our
 * column is filled.
 *
 * @module
 */

import { writeBigStore } from "./big_store.ts";
import { benchCopyImage } from "./copy_image.ts";
import { generate } from "./generate.ts";
import { evict, run, type Sample, type Summary, summary } from "./measure.ts";

const MB = 1024 * 1024;
let RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 5);
const DRIVERS = (Deno.env.get("BENCH_DRIVERS") ?? "overlay,vfs").split(",");
const ROOTFS = Deno.env.get("BENCH_ROOTFS");
const started = performance.now();

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface Tool {
  name: "ours" | "reference";
  argv: string[];
}

const tools: Tool[] = [{
  name: "ours",
  argv: [Deno.execPath(), "run", "-A", new URL("../cli.ts", import.meta.url).pathname],
}];
const ref = which("containers-storage");
if (ref) tools.push({ name: "reference", argv: [ref] });

/** One line of the table. */
interface Row {
  workload: string;
  op: string;
  driver: string;
  ours?: Summary;
  reference?: Summary;
}
const rows: Row[] = [];
const floors: { what: string; sum: Summary }[] = [];

const tmp = await Deno.makeTempDir({
  dir: Deno.env.get("BENCH_DIR") ?? "/var/tmp",
  prefix: "bench-",
});

/** A store per tool and driver: the CLI's argv with its roots. */
function cs(tool: Tool, driver: string, tag: string): string[] {
  const root = `${tmp}/${tag}-${tool.name}-${driver}`;
  return [...tool.argv, "-g", `${root}/g`, "-R", `${root}/r`, "-s", driver];
}

function lastLine(s: string): string {
  return s.split("\n").pop()!.trim();
}

/**
 * Times `op` for every tool, RUNS times, the tools taking turns (the first
 * one alternates). `prepare` runs untimed before each timed run and gives
 * the argv; `after` cleans up untimed.
 */
async function bench(
  row: Omit<Row, "ours" | "reference">,
  prepare: (tool: Tool) => Promise<{ argv: string[]; stdout?: string; evict?: string }>,
  after?: (tool: Tool, sample: Sample) => Promise<void>,
): Promise<void> {
  const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 ? [...tools].reverse() : tools;
    for (const tool of order) {
      const p = await prepare(tool);
      // every run starts with nothing left to write back (the imports leave gigabytes dirty)
      if (p.evict) await evict(p.evict);
      else await new Deno.Command("sync").output();
      const sample = await run(p.argv, { stdout: p.stdout });
      samples.get(tool.name)!.push(sample);
      await after?.(tool, sample);
    }
  }
  const r: Row = { ...row };
  for (const t of tools) r[t.name] = summary(samples.get(t.name)!);
  rows.push(r);
  const o = r.ours!, f = r.reference;
  console.error(
    `${row.workload} ${row.op} (${row.driver}): ours ${o.med.toFixed(3)} s` +
      (f ? `, reference ${f.med.toFixed(3)} s, ratio ${(o.med / f.med).toFixed(2)}` : "") +
      ` [${((performance.now() - started) / 1000).toFixed(0)} s]`,
  );
}

async function once(argv: string[]): Promise<string> {
  return (await run(argv)).stdout;
}

/** Imports of one tarball (in each compression given) and diff -u, on one driver. */
async function importAndDiff(
  workload: string,
  tag: string,
  files: { gz: string; zst?: string; tar: string },
  driver: string,
): Promise<Map<string, string>> {
  const kept = new Map<string, string>();
  const formats: [string, string][] = files.zst
    ? [["gzip", files.gz], ["zstd", files.zst], ["uncompressed", files.tar]]
    : [["gzip", files.gz]];
  for (const [what, file] of formats) {
    // The layers stay until the bench ends (see the module doc: no deletes before imports).
    await bench({ workload, op: `import-layer (${what})`, driver }, (tool) =>
      Promise.resolve({
        argv: [...cs(tool, driver, tag), "import-layer", "-f", file],
        evict: file,
      }), (tool, sample) => {
      if (what === "gzip" && !kept.has(tool.name)) kept.set(tool.name, lastLine(sample.stdout));
      return Promise.resolve();
    });
  }
  const out = (tool: Tool) => `${tmp}/${tag}-${tool.name}-${driver}.diff.tar`;
  await bench({ workload, op: "diff -u", driver }, (tool) =>
    Promise.resolve({
      argv: [...cs(tool, driver, tag), "diff", "-u", "-f", out(tool), kept.get(tool.name)!],
    }));
  for (const tool of tools) {
    const same = await new Deno.Command("cmp", { args: ["-s", out(tool), files.tar] }).output();
    if (!same.success) throw new Error(`${tool.name}: diff -u is not the imported tarball`);
    Deno.removeSync(out(tool));
  }
  return kept;
}

/** mount and unmount of `layers` (one per tool). */
async function mountUnmount(
  workload: string,
  driver: string,
  store: (tool: Tool) => string[],
  layers: Map<string, string>,
) {
  await bench(
    { workload, op: "mount", driver },
    (tool) => Promise.resolve({ argv: [...store(tool), "mount", layers.get(tool.name)!] }),
    async (tool) => {
      await once([...store(tool), "unmount", layers.get(tool.name)!]);
    },
  );
  await bench({ workload, op: "unmount", driver }, async (tool) => {
    await once([...store(tool), "mount", layers.get(tool.name)!]);
    return { argv: [...store(tool), "unmount", layers.get(tool.name)!] };
  });
}

/** The operations on layers, images and containers of the generated workload. */
async function storeOps(
  workload: string,
  tag: string,
  tar: string,
  driver: string,
  layers: Map<string, string>,
) {
  const store = (tool: Tool) => cs(tool, driver, tag);
  const target = new Map<string, string>();
  await bench({ workload, op: "applydiff", driver }, async (tool) => {
    target.set(tool.name, lastLine(await once([...store(tool), "create-layer"])));
    return { argv: [...store(tool), "applydiff", "-f", tar, target.get(tool.name)!], evict: tar };
  }, async (tool) => {
    await once([...store(tool), "delete-layer", target.get(tool.name)!]);
  });
  // The start-up-bound operations on the first driver only (time); the copy that
  // create-container makes on vfs is measured on every driver.
  const full = driver === DRIVERS[0];
  if (full) await mountUnmount(workload, driver, store, layers);
  const images = new Map<string, string>();
  for (const tool of tools) {
    images.set(
      tool.name,
      lastLine(await once([...store(tool), "create-image", "-n", "bench", layers.get(tool.name)!])),
    );
  }
  await bench(
    { workload, op: "create-container", driver },
    (tool) =>
      Promise.resolve({ argv: [...store(tool), "create-container", images.get(tool.name)!] }),
    async (
      tool,
      sample,
    ) => {
      await once([...store(tool), "delete-container", lastLine(sample.stdout)]);
    },
  );
  if (!full) return;
  await bench({ workload, op: "delete-image (3 layers collected)", driver }, async (tool) => {
    let parent: string[] = [];
    for (let k = 0; k < 3; k++) {
      parent = [lastLine(await once([...store(tool), "create-layer", ...parent]))];
    }
    const img = lastLine(await once([...store(tool), "create-image", parent[0]]));
    return { argv: [...store(tool), "delete-image", img] };
  });
  const tops = new Map<string, string>();
  for (const tool of tools) {
    let parent: string[] = [];
    for (let k = 0; k < 20; k++) {
      parent = [lastLine(await once([...store(tool), "create-layer", ...parent]))];
    }
    tops.set(tool.name, parent[0]);
  }
  await bench(
    { workload, op: "mount a 20-layer chain", driver },
    (tool) => Promise.resolve({ argv: [...store(tool), "mount", tops.get(tool.name)!] }),
    async (tool) => {
      await once([...store(tool), "unmount", tops.get(tool.name)!]);
    },
  );
}

/**
 * Peak RSS on a 1 GiB layer (`base` plus an 800 MiB file): import of its
 * .tar.gz and diff -u, `BENCH_BIG_RUNS` times (default 1): the numbers that
 * show memory flat in layer size.
 */
async function gigabyteLayer(base: string, driver: string) {
  const dir = `${tmp}/big-src/bench-big`;
  Deno.mkdirSync(dir, { recursive: true });
  await run(["head", "-c", "800M", "/dev/urandom"], { stdout: `${dir}/big.bin` });
  const tar = `${tmp}/gigabyte.tar`;
  await run(["cp", base, tar]);
  await run(["tar", "--numeric-owner", "-rf", tar, "-C", `${tmp}/big-src`, "bench-big"]);
  await Deno.remove(`${tmp}/big-src`, { recursive: true });
  const gz = `${tmp}/gigabyte.tar.gz`;
  await run([which("igzip") ? "igzip" : "gzip", "-1", "-c", tar], { stdout: gz });
  const workload = `1 GiB layer (${(Deno.statSync(tar).size / MB).toFixed(0)} MB tar)`;
  const saved = RUNS;
  RUNS = Number(Deno.env.get("BENCH_BIG_RUNS") ?? 1);
  try {
    await importAndDiff(workload, "gig", { gz, tar }, driver);
  } finally {
    RUNS = saved;
  }
  for (const tool of tools) await run([...cs(tool, driver, "gig"), "shutdown"]).catch(() => {});
  await Deno.remove(tar);
  await Deno.remove(gz);
}

/** Listing on the big store (2,000 layers, 500 images, 200 containers). */
async function listings(driver: string) {
  const workload = "2,000-layer store";
  for (const tool of tools) {
    await once([...cs(tool, driver, "big"), "layers"]); // creates the store's directories
    writeBigStore(`${tmp}/big-${tool.name}-${driver}/g`, driver);
  }
  for (const what of ["layers", "images", "containers"]) {
    await bench(
      { workload, op: what, driver },
      (tool) => Promise.resolve({ argv: [...cs(tool, driver, "big"), what] }),
    );
  }
}

/** The machine's floors on `tar` (uncompressed) and its .gz. */
async function measureFloors(tar: string, gz: string) {
  const floor = async (what: string, argv: () => Promise<string[]>, stdout?: string) => {
    const samples: Sample[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      samples.push(await run(await argv(), { stdout }));
    }
    floors.push({ what, sum: summary(samples) });
  };
  await floor("gzip -dc", () => Promise.resolve(["gzip", "-dc", gz]), "/dev/null");
  if (which("igzip")) {
    await floor("igzip -dc (ISA-L)", () => Promise.resolve(["igzip", "-dc", gz]), "/dev/null");
  }
  await floor("sha256sum of the tar", () => Promise.resolve(["sha256sum", tar]));
  const x = `${tmp}/floor-x`;
  let n = 0;
  await floor("GNU tar -x", async () => {
    await Deno.remove(x, { recursive: true }).catch(() => {});
    Deno.mkdirSync(x);
    await evict(tar);
    return ["tar", "--numeric-owner", "--xattrs", "-xf", tar, "-C", x];
  });
  await floor("GNU tar -c", async () => {
    await Deno.remove(`${tmp}/floor-${n}.tar`).catch(() => {});
    return ["tar", "--numeric-owner", "--xattrs", "-cf", `${tmp}/floor-${++n}.tar`, "-C", x, "."];
  });
  await Deno.remove(x, { recursive: true });
  const script = `${tmp}/hello.ts`;
  Deno.writeTextFileSync(script, "console.log(1);\n");
  await floor(
    "deno run of a one-line script",
    () => Promise.resolve([Deno.execPath(), "run", script]),
  );
}

/** CPU, cores, memory, kernel, Deno and the reference's version. */
async function machine(): Promise<string> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const mem = Number(Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s*(\d+)/)?.[1]) /
    1024 / 1024;
  const refVersion = ref
    ? await once(["dpkg-query", "-W", "-f", "${Version}", "containers-storage"]).catch(() => "?")
    : "not installed";
  return `${cpu}, ${navigator.hardwareConcurrency} cores, ${
    mem.toFixed(0)
  } GiB RAM; Linux ${Deno.osRelease()}; ` +
    `Deno ${Deno.version.deno}; reference containers-storage ${refVersion}; ${RUNS} runs each`;
}

function cell(s?: Summary): string {
  return s ? `${s.med.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)})` : "–";
}

/** The table; `extraRows` are rows already formatted (the image copy's). */
function table(header: string, extraRows: string): string {
  const lines = [
    header,
    "",
    "| workload | operation | driver | ours s, median (min–max) | reference s | ours/ref | ours peak RSS MB | ref peak RSS MB |",
    "|---|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const ratio = r.ours && r.reference ? (r.ours.med / r.reference.med).toFixed(2) : "–";
    lines.push(
      `| ${r.workload} | ${r.op} | ${r.driver} | ${cell(r.ours)} | ${
        cell(r.reference)
      } | ${ratio} | ${r.ours?.rssMB.toFixed(0) ?? "–"} | ${
        r.reference?.rssMB.toFixed(0) ?? "–"
      } |`,
    );
  }
  if (extraRows) lines.push(extraRows.trimEnd());
  lines.push("", "Floors of the machine on the same data:", "");
  lines.push("| floor | s, median (min–max) | peak RSS MB |", "|---|---:|---:|");
  for (const f of floors) lines.push(`| ${f.what} | ${cell(f.sum)} | ${f.sum.rssMB.toFixed(0)} |`);
  return lines.join("\n") + "\n";
}

/** `tar` with its .gz (gzip -6, or the one beside it) and .zst (zstd -3). */
async function compressed(tar: string, name: string) {
  let gz = `${tmp}/${name}.tar.gz`;
  const zst = `${tmp}/${name}.tar.zst`;
  // a .tar.gz made beside the tar (as README says) is used as it is
  const beside = tar.replace(/\.tar$/, ".tar.gz");
  const exists = (() => {
    try {
      return Deno.statSync(beside).isFile;
    } catch {
      return false;
    }
  })();
  if (beside !== tar && exists) gz = beside;
  else await run(["gzip", "-c", tar], { stdout: gz });
  await run(["zstd", "-q", "-c", tar], { stdout: zst });
  return { tar, gz, zst };
}

try {
  const src = `${tmp}/src`;
  const bytes = Number(Deno.env.get("BENCH_MB") ?? 32) * MB;
  const files = Number(Deno.env.get("BENCH_FILES") ?? 2000);
  console.error(`generating ${bytes / MB} MB in ${files} files …`);
  const stats = generate(src, { bytes, files });
  const genTar = `${tmp}/generated.tar`;
  await run(["tar", "--numeric-owner", "-cf", genTar, "-C", src, "."]);
  await Deno.remove(src, { recursive: true });
  const generated = await compressed(genTar, "generated");
  const workloads: [string, typeof generated][] = [[
    `generated (${stats.files} files, ${(Deno.statSync(genTar).size / MB).toFixed(0)} MB tar)`,
    generated,
  ]];
  let rootfs: typeof generated | undefined;
  if (ROOTFS) {
    rootfs = await compressed(ROOTFS, "rootfs");
    workloads.push([
      `rootfs ${ROOTFS.split("/").pop()} (${(Deno.statSync(ROOTFS).size / MB).toFixed(0)} MB tar)`,
      rootfs,
    ]);
  }
  // Every import first, then what deletes (see the module doc).
  const generatedLayers = new Map<string, Map<string, string>>();
  for (const driver of DRIVERS) {
    for (const [i, [workload, files]] of workloads.entries()) {
      const tag = i === 0 ? "gen" : "rootfs";
      // every format on the first driver; on the others the .tar.gz (time)
      const formats = driver !== DRIVERS[0] ? { ...files, zst: undefined } : files;
      const layers = await importAndDiff(workload, tag, formats, driver);
      if (i === 0) generatedLayers.set(driver, layers);
    }
    if (rootfs && driver === DRIVERS[0] && Deno.env.get("BENCH_BIG") !== "0") {
      await gigabyteLayer(rootfs.tar, driver);
    }
  }
  for (const driver of DRIVERS) {
    const [workload, files] = workloads[0];
    await storeOps(workload, "gen", files.tar, driver, generatedLayers.get(driver)!);
    await listings(driver);
    for (const tool of tools) {
      for (const w of ["gen", "rootfs", "big"]) {
        await run([...cs(tool, driver, w), "shutdown"]).catch(() => {});
      }
    }
  }
  // skopeo copy as the reference; the real rootfs split into layers when there is one
  let copyRows = "";
  if (Deno.env.get("BENCH_COPY") !== "0") {
    console.error("copy-image against skopeo copy …");
    if (ROOTFS && !Deno.env.get("BENCH_IMAGE_ROOTFS")) Deno.env.set("BENCH_IMAGE_ROOTFS", ROOTFS);
    copyRows = await benchCopyImage();
  }
  await measureFloors(rootfs?.tar ?? generated.tar, rootfs?.gz ?? generated.gz);
  const header = `## ${
    new Date().toISOString().slice(0, 10)
  }: ours vs reference\n\nMachine: ${await machine()}.`;
  const md = table(header, copyRows);
  console.log(md);
  const dir = new URL("./results/", import.meta.url);
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(new URL(`${new Date().toISOString().slice(0, 10)}.md`, dir), md);
  console.error(`bench took ${((performance.now() - started) / 1000).toFixed(0)} s`);
} finally {
  for (const d of Deno.readDirSync(tmp)) {
    if (!d.isDirectory) continue;
    for (const sub of ["overlay", "vfs"]) {
      await new Deno.Command("umount", {
        args: ["-R", `${tmp}/${d.name}/g/${sub}`],
        stderr: "null",
      })
        .output();
    }
  }
  await Deno.remove(tmp, { recursive: true });
}

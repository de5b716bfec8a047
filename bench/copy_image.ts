/**
 * Bench of image copies: an OCI layout of a multi-layer image (the bench's
 * generated tree under a different top directory in each layer, gzip)
 * copied into a fresh overlay store by our `copy-image` and by
 * `skopeo copy oci:… containers-storage:…` in the same run, the two taking
 * turns, caches dropped before each copy; the store is removed untimed
 * between runs. `BENCH_RUNS` (default 3) runs each, `BENCH_IMAGE_MB`
 * (default 64) MB of files in all over `BENCH_IMAGE_LAYERS` (default 4)
 * layers; with `BENCH_IMAGE_ROOTFS` (a root file system's tar) that tree
 * split into the layers instead. Ours runs twice: the CLI, which unpacks
 * two layers at once, and the library with the layers one by one.
 *
 * `benchCopyImage()` returns Markdown rows in the bench table's columns
 * (workload, operation, driver, ours, reference, ratio, peak RSS of each);
 * run standalone (`deno run -A bench/copy_image.ts`, as root) it prints
 * them under the table's header.
 *
 * @module
 */

import { basename, join } from "node:path";
import { createHash } from "node:crypto";
import { generate } from "./generate.ts";
import { dropCaches, run, type Sample, type Summary, summary } from "./measure.ts";

const MB = 1024 * 1024;
const cli = new URL("../cli.ts", import.meta.url).pathname;
const copyModule = new URL("../lib/image_copy/copy.ts", import.meta.url).href;

function which(name: string): string | undefined {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/usr/sbin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function sha(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of (await Deno.open(path)).readable) {
    h.update(chunk);
    size += chunk.length;
  }
  return { digest: "sha256:" + h.digest("hex"), size };
}

/**
 * A root file system's top-level entries (and /usr's) split into `layers`
 * groups of about equal size, each group a list of tar arguments: its
 * entries, after their parent directories without recursion.
 */
async function splitRootfs(root: string, layers: number): Promise<string[][]> {
  const units: string[] = [];
  for (const e of [...Deno.readDirSync(root)].map((e) => e.name).sort()) {
    if (e !== "usr") units.push(e);
    else {for (const u of [...Deno.readDirSync(join(root, "usr"))].map((u) => u.name)) {
        units.push(`usr/${u}`);
      }}
  }
  const du = await new Deno.Command("du", { args: ["-sb", ...units], cwd: root }).output();
  const sizes = new Map(
    new TextDecoder().decode(du.stdout).trim().split("\n").map((l) => {
      const [n, path] = l.split("\t");
      return [path, Number(n)] as const;
    }),
  );
  const groups = Array.from({ length: layers }, () => ({ size: 0, units: [] as string[] }));
  for (const u of [...units].sort((a, b) => sizes.get(b)! - sizes.get(a)!)) {
    const g = groups.reduce((a, b) => b.size < a.size ? b : a);
    g.size += sizes.get(u)!;
    g.units.push(u);
  }
  return groups.map((g) => {
    const parents = g.units.some((u) => u.startsWith("usr/")) ? ["usr"] : [];
    return ["--no-recursion", ...parents, "--recursion", ...g.units.sort()];
  });
}

/**
 * Writes the OCI layout (gzip layers) of `layers` layers under `dir`: the
 * root file system of the tar `rootfs` split among them, or else generated
 * trees, one under a different top directory in each layer.
 */
export async function writeLayout(
  tmp: string,
  dir: string,
  layers: number,
  bytes: number,
  rootfs?: string,
) {
  const src = join(tmp, "src");
  let parts: string[][];
  if (rootfs) {
    await Deno.mkdir(src);
    await run(["tar", "--numeric-owner", "-xf", rootfs, "-C", src]);
    parts = await splitRootfs(src, layers);
  } else {
    generate(src, { bytes: bytes / layers, files: 3000 / layers });
    parts = Array.from({ length: layers }, (_, i) => [`--transform=s,^\\.,./layer${i},`, "."]);
  }
  const blobs = join(dir, "blobs/sha256");
  await Deno.mkdir(blobs, { recursive: true });
  const diffIDs: string[] = [];
  const descs = [];
  for (let i = 0; i < layers; i++) {
    const tar = join(tmp, `layer${i}.tar`);
    await run(["tar", "--numeric-owner", "-cf", tar, "-C", src, ...parts[i]]);
    diffIDs.push((await sha(tar)).digest);
    await run(["gzip", "-n", "-f", tar]);
    const d = await sha(`${tar}.gz`);
    await Deno.rename(`${tar}.gz`, join(blobs, d.digest.slice(7)));
    descs.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...d });
  }
  await run(["rm", "-rf", src]);
  const enc = new TextEncoder();
  const put = async (b: Uint8Array) => {
    const digest = "sha256:" + createHash("sha256").update(b).digest("hex");
    await Deno.writeFile(join(blobs, digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const config = await put(enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIDs },
  })));
  const manifest = await put(enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: descs,
  })));
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": "latest" },
      }],
    }),
  );
}

function cell(s?: Summary): string {
  return s ? `${s.med.toFixed(3)} (${s.min.toFixed(3)}–${s.max.toFixed(3)})` : "–";
}

/**
 * Copies the generated image into fresh overlay stores with ours and with
 * skopeo (when installed), and returns the Markdown row of each operation.
 */
export async function benchCopyImage(): Promise<string> {
  const runs = Number(Deno.env.get("BENCH_RUNS") ?? 3);
  const layers = Number(Deno.env.get("BENCH_IMAGE_LAYERS") ?? 4);
  const bytes = Number(Deno.env.get("BENCH_IMAGE_MB") ?? 64) * MB;
  const rootfs = Deno.env.get("BENCH_IMAGE_ROOTFS");
  const skopeo = which("skopeo");
  const tmp = await Deno.makeTempDir({
    dir: Deno.env.get("BENCH_DIR") ?? "/var/tmp",
    prefix: "bench-copy-image-",
  });
  try {
    const layout = join(tmp, "oci");
    await writeLayout(tmp, layout, layers, bytes, rootfs);
    const blobsMB = [...Deno.readDirSync(join(layout, "blobs/sha256"))]
      .reduce((n, e) => n + Deno.statSync(join(layout, "blobs/sha256", e.name)).size, 0) / MB;
    const store = join(tmp, "store");
    const g = join(store, "g"), r = join(store, "r");
    await Deno.mkdir(join(tmp, "t"));
    await Deno.writeTextFile(
      join(tmp, "storage.conf"),
      `[storage]\ndriver = "overlay"\ngraphroot = "${g}"\nrunroot = "${r}"\n`,
    );
    await Deno.writeTextFile(
      join(tmp, "policy.json"),
      '{"default":[{"type":"insecureAcceptAnything"}]}',
    );
    const ref = `containers-storage:[overlay@${g}+${r}]localhost/bench:1`;
    // The library with the layers unpacked one after another, for the gain of doing two at once.
    const oneByOne = `import { copyImage } from ${JSON.stringify(copyModule)};\n` +
      `await copyImage(${JSON.stringify(`oci:${layout}:latest`)}, ${JSON.stringify(ref)}, ` +
      `{ layerConcurrency: 1 });`;
    const tools: { name: string; argv: string[] }[] = [{
      name: "ours",
      argv: [Deno.execPath(), "run", "-A", cli, "copy-image", `oci:${layout}:latest`, ref],
    }, {
      name: "one by one",
      argv: [Deno.execPath(), "eval", oneByOne],
    }];
    if (skopeo) {
      tools.push({
        name: "reference",
        argv: [
          "env",
          `CONTAINERS_STORAGE_CONF=${join(tmp, "storage.conf")}`,
          `TMPDIR=${join(tmp, "t")}`,
          skopeo,
          "--policy",
          join(tmp, "policy.json"),
          "copy",
          "--quiet",
          `oci:${layout}:latest`,
          ref,
        ],
      });
    }
    // containers/storage leaves its overlay home mounted on itself (private).
    const clean = () => run(["sh", "-c", `umount "${g}/overlay" 2>/dev/null; rm -rf "${store}"`]);
    const samples = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
    for (let i = 0; i < runs; i++) {
      for (const tool of i % 2 ? [...tools].reverse() : tools) {
        await clean();
        await dropCaches();
        samples.get(tool.name)!.push(await run(tool.argv));
      }
    }
    await clean();
    const theirs = skopeo ? summary(samples.get("reference")!) : undefined;
    const workload = rootfs
      ? `${basename(rootfs)} rootfs, ${blobsMB.toFixed(0)} MB gzip`
      : `image ${bytes / MB} MB`;
    const row = (name: string, what: string) => {
      const ours = summary(samples.get(name)!);
      const ratio = theirs ? (ours.med / theirs.med).toFixed(2) : "–";
      const op =
        `${what} oci: → containers-storage: (${layers} gzip layers; reference: skopeo copy)`;
      return `| ${workload} | ${op} | overlay | ${cell(ours)} | ${cell(theirs)} | ${ratio} | ${
        ours.rssMB.toFixed(0)
      } | ${theirs?.rssMB.toFixed(0) ?? "–"} |\n`;
    };
    return row("ours", "copy-image (2 layers unpacked at once)") +
      row("one by one", "copyImage, layers one by one");
  } finally {
    await run(["rm", "-rf", tmp]);
  }
}

if (import.meta.main) {
  console.log(
    "| workload | operation | driver | ours s, median (min–max) | reference s | ours/ref | ours peak RSS MB | ref peak RSS MB |\n" +
      "|---|---|---|---:|---:|---:|---:|---:|\n" + await benchCopyImage(),
  );
}

/**
 * The `copy-image` CLI command (an extension listed under "Extensions:" in
 * the program's help) and the library's progress callback: an OCI layout
 * into the CLI's store (the reference CLI then lists the image and reads its
 * big data), out again as a zstd OCI archive and back into a layout; bad
 * flags and a corrupted layer refused with exit code 1 and a message naming
 * the blob; onProgress follows every layer to the total.
 * @module
 */

import { join } from "node:path";
import { copyImage, type CopyProgress } from "../lib/image_copy/copy.ts";
import { Store } from "../lib/store/mod.ts";
import {
  isRoot,
  lookPath,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  run,
  tempDir,
} from "./helpers.ts";
import { dropRoot, newRoot, ours } from "./cli_harness.ts";
import { assert, assertEquals, sha, storeOpts } from "./store_helpers.ts";
import { fixtureSkip, hostLayers, writeFixtureLayout } from "./oci_image_fixture.ts";

const skip = !isRoot ? notRootReason : fixtureSkip;
if (skip) console.log(`copy-image CLI tests ${skip}`);
const dec = new TextDecoder();
const script = lookPath("script");
const cli = new URL("../cli.ts", import.meta.url).pathname;

Deno.test({
  name: "copy-image CLI: layout → store (the reference lists it) → zstd OCI archive → layout; " +
    "bad flags and a corrupted layer exit 1 naming the problem",
  ignore: skip !== undefined,
  fn: async (t) => {
    const root = await newRoot("copy-image-cli-", "overlay");
    try {
      const tars = await hostLayers();
      const oci = await writeFixtureLayout(join(root.dir, "oci"), tars);
      const id = sha(oci.config).slice(7);
      const tty = await writeFixtureLayout(join(root.dir, "tty"), tars);
      await t.step("into the store", async () => {
        const r = await ours(root, [
          "copy-image",
          `oci:${oci.dir}:latest`,
          "containers-storage:cli:1",
        ]);
        assertEquals([r.code, r.stderr, r.stdout], [0, "", `${id}\n`]);
        if (!referenceCli) return;
        const images = JSON.parse((await reference(root, ["images", "-j"])).stdout);
        assertEquals(images.map((i: { id: string }) => i.id), [id]);
        assertEquals(images[0].names, ["docker.io/library/cli:1"]);
        const m = await reference(root, ["get-image-data", id, "manifest"]);
        assertEquals(m.stdout, dec.decode(oci.manifest));
      });
      await t.step("out as a zstd OCI archive, and back into a layout", async () => {
        const file = join(root.dir, "out.tar");
        const r = await ours(root, [
          "copy-image",
          "--compress",
          "zstd",
          "containers-storage:cli:1",
          `oci-archive:${file}:v1`,
        ]);
        assertEquals(r.code, 0, r.stderr);
        assert(/^sha256:[0-9a-f]{64}\n$/.test(r.stdout), r.stdout);
        const layout = join(root.dir, "back");
        const back = await ours(root, ["copy-image", `oci-archive:${file}:v1`, `oci:${layout}`]);
        assertEquals(back.stdout, r.stdout, "the manifest is copied as it is");
        const index = JSON.parse(await Deno.readTextFile(join(layout, "index.json")));
        const manifest = JSON.parse(
          await Deno.readTextFile(join(layout, "blobs/sha256", index.manifests[0].digest.slice(7))),
        );
        assertEquals(
          manifest.layers.map((l: { mediaType: string }) => l.mediaType),
          tars.map(() => "application/vnd.oci.image.layer.v1.tar+zstd"),
        );
      });
      await t.step("--platform picks from an index, --name names the image", async () => {
        const idx = await writeFixtureLayout(join(root.dir, "idx"), tars, { index: true });
        const index = JSON.parse(dec.decode(idx.index!));
        const arm = index.manifests.find((m: { platform: { architecture: string } }) =>
          m.platform.architecture === "arm64"
        );
        const blob = (d: string) => Deno.readFile(join(idx.dir, "blobs/sha256", d.slice(7)));
        const armConfig = JSON.parse(dec.decode(await blob(arm.digest))).config.digest;
        const r = await ours(root, [
          "copy-image",
          "--platform",
          "linux/arm64/v8",
          "--name",
          "localhost/arm:1",
          `oci:${idx.dir}:latest`,
          "containers-storage:ignored",
        ]);
        assertEquals([r.code, r.stdout], [0, `${armConfig.slice(7)}\n`], r.stderr);
        const miss = await ours(root, [
          "copy-image",
          "--platform",
          "linux/riscv64",
          `oci:${idx.dir}:latest`,
          "containers-storage:x",
        ]);
        assertEquals(miss.code, 1);
        assert(miss.stderr.includes("no image for platform linux/riscv64"), miss.stderr);
        if (!referenceCli) return;
        const images = JSON.parse((await reference(root, ["images", "-j"])).stdout);
        const named = images.find((i: { names?: string[] }) =>
          i.names?.includes("localhost/arm:1")
        );
        assertEquals(named?.id, armConfig.slice(7));
      });
      await t.step({
        name: "on a terminal, each layer's progress is drawn on stderr and erased",
        // a fresh store, so that every layer is read
        ignore: !script,
        fn: async () => {
          const q = (s: string) => `'${s}'`;
          const g3 = join(root.dir, "g3"), r3 = join(root.dir, "r3");
          const cmd = `${q(Deno.execPath())} run -A ${q(cli)} -g ${q(g3)} -R ${q(r3)} ` +
            `-s overlay copy-image oci:${q(tty.dir)}:latest containers-storage:tty ` +
            `> ${q(join(root.dir, "tty.out"))}`;
          const r = await run(script!, ["-qec", cmd, "/dev/null"], { env: { TERM: "dumb" } });
          assertEquals(r.code, 0, r.stdout);
          for (const n of [1, 2, 3]) {
            assert(
              new RegExp(`\\r\\x1b\\[Kcopy-image: layer ${n}/3 .*: [0-9.]+ [KMG]?i?B of `)
                .test(r.stdout),
              JSON.stringify(r.stdout.slice(0, 400)),
            );
          }
          assert(r.stdout.endsWith("\r\x1b[K"), JSON.stringify(r.stdout.slice(-80)));
          assertEquals(
            await Deno.readTextFile(join(root.dir, "tty.out")),
            `${sha(tty.config).slice(7)}\n`,
          );
        },
      });
      await t.step("bad input exits 1 naming it", async () => {
        const bad = await ours(root, [
          "copy-image",
          "--compress",
          "lz4",
          "containers-storage:cli:1",
          `oci:${join(root.dir, "x")}`,
        ]);
        assertEquals(bad.code, 1);
        assert(bad.stderr.includes("--compress must be one of gzip, zstd, none"), bad.stderr);
        const unknown = await ours(root, ["copy-image", "ftp:x", `oci:${join(root.dir, "x")}`]);
        assertEquals(unknown.code, 1);
        assert(unknown.stderr.includes("unknown transport"), unknown.stderr);
        const d = sha(oci.blobs[1]);
        const path = join(oci.dir, "blobs/sha256", d.slice(7));
        const b = await Deno.readFile(path);
        b[b.length - 2000] ^= 1;
        await Deno.writeFile(path, b);
        // into another store: in this one, the layers are there and would not be read
        const g2 = join(root.dir, "g2");
        const r2 = join(root.dir, "r2");
        const other = `containers-storage:[overlay@${g2}+${r2}]c:2`;
        const r = await ours(root, ["copy-image", `oci:${oci.dir}:latest`, other]);
        assertEquals(r.code, 1);
        assert(r.stderr.includes(`invalid image: "${d}"`), r.stderr);
        const left = JSON.parse(await Deno.readTextFile(join(g2, "overlay-layers/layers.json")));
        assertEquals(left, [], "no layer left in the other store");
      });
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name: "copyImage onProgress: every layer reported, to the layer's size and the total",
  ignore: skip !== undefined,
  fn: async () => {
    const root = await tempDir("copy-image-progress-");
    const store = await Store.open(storeOpts(root, { graphDriverName: "overlay" }));
    try {
      const oci = await writeFixtureLayout(join(root, "oci"), await hostLayers());
      for (const dst of ["store", "layout"]) {
        const seen: CopyProgress[] = [];
        await copyImage(
          `oci:${oci.dir}`,
          dst === "store"
            ? { transport: "containers-storage", store, name: "p" }
            : `oci:${join(root, "copy")}`,
          { onProgress: (p) => seen.push(p), compression: "none" },
        );
        const total = oci.blobs.reduce((a, b) => a + b.length, 0);
        for (const [i, blob] of oci.blobs.entries()) {
          const last = seen.filter((p) => p.layer === i).at(-1);
          assert(last, `layer ${i} reported (${dst})`);
          assertEquals([last.bytes, last.total, last.layers], [blob.length, blob.length, 3]);
          if (dst === "store") assert(last.entries > 0, "the store counts entries");
        }
        assertEquals(seen.at(-1)!.totalBytes, total);
        assertEquals(seen.at(-1)!.totalSize, total);
      }
    } finally {
      await store.shutdown(true);
      await removeTree(root);
    }
  },
});

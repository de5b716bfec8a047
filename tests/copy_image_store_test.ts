/**
 * copyImage into the store and out of it, against skopeo 1.9 and podman
 * 4.3 (containers/image 5.23) on a three-layer OCI layout built from the
 * host (gzip, uncompressed and zstd layers; whiteouts of a file and a
 * directory, an opaque directory):
 *
 * - the records we write (images.json, layers.json but for creation times,
 *   big data files) equal skopeo's for the same layout, with and without an
 *   index; copying again is a no-op;
 * - podman lists the image, creates a container on it and runs it (it
 *   prints the image's /etc/os-release); skopeo exports it with the same
 *   diff_ids and inspects the same config;
 * - an image skopeo stored is exported by us to an OCI layout, an OCI
 *   archive and a docker archive that skopeo inspects and copies, with
 *   byte-identical uncompressed layers.
 * @module
 */

import { gunzipSync, zstdDecompressSync } from "node:zlib";
import { join } from "node:path";
import { copyImage } from "../lib/image_copy/copy.ts";
import { Store } from "../lib/store/mod.ts";
import { isRoot, notRootReason, removeTree, tempDir } from "./helpers.ts";
import { assert, assertEquals, bytesOf, listDir, sha, storeOpts } from "./store_helpers.ts";
import {
  catScript,
  podman,
  podmanCmd,
  rootsOf,
  runc,
  skopeo,
  skopeoCmd,
  skopeoCopy,
  storageRef,
  tool,
  toolEnv,
} from "./oci_tools.ts";
import { fixtureSkip, hostLayers, OS_RELEASE, writeFixtureLayout } from "./oci_image_fixture.ts";

const skip = !isRoot ? notRootReason : !skopeo ? "skipped: skopeo is not installed" : fixtureSkip;
if (skip) console.log(`copy-image store tests ${skip}`);
const podmanSkip = !podman
  ? "skipped: podman is not installed"
  : !runc
  ? "skipped: runc is not installed"
  : undefined;

const NAME = "localhost/copied:latest";
const dec = new TextDecoder();

/** The files of a store that an image copy writes, creation times of layers blanked. */
async function records(graph: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  out["images.json"] = await Deno.readTextFile(join(graph, "overlay-images/images.json"));
  const layers = JSON.parse(await Deno.readTextFile(join(graph, "overlay-layers/layers.json")));
  out["layers.json"] = JSON.stringify(layers.map((l: object) => ({ ...l, created: "" })));
  for (const id of await listDir(join(graph, "overlay-images"))) {
    if (!/^[0-9a-f]{64}$/.test(id)) continue;
    for (const f of await listDir(join(graph, "overlay-images", id))) {
      out[`${id}/${f}`] = sha(await Deno.readFile(join(graph, "overlay-images", id, f)));
    }
  }
  return out;
}

/** Layer tars of an OCI layout's image (decompressed), and its config bytes. */
async function layoutImage(dir: string): Promise<{ tars: Uint8Array[]; config: Uint8Array }> {
  const blob = (d: string) => Deno.readFile(join(dir, "blobs/sha256", d.slice(7)));
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  const manifest = JSON.parse(dec.decode(await blob(index.manifests[0].digest)));
  const tars = [];
  for (const l of manifest.layers) {
    const b = await blob(l.digest);
    assertEquals(sha(b), l.digest);
    tars.push(
      l.mediaType.endsWith("+gzip")
        ? new Uint8Array(gunzipSync(b))
        : l.mediaType.endsWith("+zstd")
        ? new Uint8Array(zstdDecompressSync(b))
        : b,
    );
  }
  return { tars, config: await blob(manifest.config.digest) };
}

for (const index of [false, true]) {
  Deno.test({
    name: `copyImage oci:${index ? " (through an index)" : ""} → store: ` +
      "records identical to skopeo's, a second copy is a no-op" +
      (index ? "" : "; podman runs it, skopeo exports and inspects it"),
    ignore: skip !== undefined,
    fn: async (t) => {
      const root = await tempDir("copy-image-");
      try {
        const tars = await hostLayers();
        const oci = await writeFixtureLayout(join(root, "oci"), tars, { index });
        const theirs = rootsOf(join(root, "theirs"), "overlay");
        const theirDir = join(root, "tools-theirs");
        const theirEnv = await toolEnv(theirDir, theirs);
        await skopeoCopy(
          theirDir,
          theirEnv,
          `oci:${oci.dir}:latest`,
          storageRef(join(root, "theirs"), "overlay", NAME),
        );

        const ours = rootsOf(join(root, "ours"), "overlay");
        const result = await copyImage(
          `oci:${oci.dir}:latest`,
          storageRef(join(root, "ours"), "overlay", NAME),
        );
        assertEquals(result.imageID, sha(oci.config).slice(7));
        assertEquals(result.reusedLayers, 0);
        const want = await records(theirs.graph);
        assertEquals(await records(ours.graph), want);

        const again = await copyImage(
          `oci:${oci.dir}:latest`,
          storageRef(join(root, "ours"), "overlay", NAME),
        );
        assertEquals(again.reusedLayers, 3);
        assertEquals(await records(ours.graph), want, "a second copy changes nothing");

        if (index) return;
        const dir = join(root, "tools");
        const env = await toolEnv(dir, ours);
        await t.step(
          "skopeo exports it with the same diff_ids and inspects the same config",
          async () => {
            const out = join(root, "exported");
            await skopeoCopy(
              dir,
              env,
              storageRef(join(root, "ours"), "overlay", NAME),
              `oci:${out}:x`,
            );
            const img = await layoutImage(out);
            assertEquals(img.tars.map(sha), tars.map(sha));
            assertEquals(img.config, oci.config);
            const inspected = await skopeoCmd(
              dir,
              env,
              "inspect",
              "--config",
              "--raw",
              storageRef(join(root, "ours"), "overlay", NAME),
            );
            assertEquals(inspected.stdout, dec.decode(oci.config));
          },
        );
        await t.step({
          name: "podman lists it, creates a container on it and runs it",
          ignore: podmanSkip !== undefined,
          fn: async () => {
            const { global, runFlags } = podmanCmd(dir, ours);
            const pm = (...args: string[]) => tool(podman!, [...global, ...args], env);
            const listed = JSON.parse((await pm("images", "--format", "json")).stdout);
            assertEquals(listed.map((i: { Id: string }) => i.Id), [result.imageID]);
            assert(listed[0].Names.includes(NAME), JSON.stringify(listed[0]));
            const id = (await pm("create", ...runFlags, NAME, "/bin/sh")).stdout.trim();
            await pm("rm", id);
            const ran = await pm(
              "run",
              "--rm",
              ...runFlags,
              NAME,
              "/bin/sh",
              "-c",
              `${catScript("/etc/os-release")}; ` +
                `test -e /etc/base-only || echo no-base-only; ` +
                `test -e /usr/share/zoneinfo/Africa || echo no-africa; ` +
                `test -e /opt/app/old.txt || echo no-old; ` +
                `test -e /opt/app/sub || echo no-sub; ` +
                `test -e /usr/share/zoneinfo/UTC && echo utc`,
            );
            assertEquals(ran.stdout, OS_RELEASE + "no-base-only\nno-africa\nno-old\nno-sub\nutc\n");
          },
        });
      } finally {
        await removeTree(root);
      }
    },
  });
}

Deno.test({
  name:
    "copyImage out of the store: an image skopeo stored, to an OCI layout (gzip, zstd, none), " +
    "an OCI archive and a docker archive that skopeo inspects and copies, layers byte for byte",
  ignore: skip !== undefined,
  fn: async (t) => {
    const root = await tempDir("copy-image-out-");
    try {
      const tars = await hostLayers();
      const oci = await writeFixtureLayout(join(root, "oci"), tars);
      const theirs = rootsOf(join(root, "theirs"), "overlay");
      const dir = join(root, "tools");
      const env = await toolEnv(dir, theirs);
      await skopeoCopy(
        dir,
        env,
        `oci:${oci.dir}:latest`,
        storageRef(join(root, "theirs"), "overlay", NAME),
      );
      const store = await Store.open(
        storeOpts(join(root, "theirs"), { graphDriverName: "overlay" }),
      );
      try {
        const src = { transport: "containers-storage" as const, store, name: NAME };
        for (const compression of ["gzip", "zstd", "none"] as const) {
          await t.step(`oci: layout, ${compression}`, async () => {
            const out = join(root, `layout-${compression}`);
            await copyImage(src, `oci:${out}:v1`, { compression });
            const img = await layoutImage(out);
            assertEquals(img.tars, tars);
            assertEquals(img.config, oci.config);
            const raw = await skopeoCmd(dir, env, "inspect", "--raw", `oci:${out}:v1`);
            const m = JSON.parse(raw.stdout);
            const suffix = { gzip: "+gzip", zstd: "+zstd", none: "" }[compression];
            assert(
              m.layers.every((l: { mediaType: string }) => l.mediaType.endsWith(`tar${suffix}`)),
            );
            const cfg = await skopeoCmd(dir, env, "inspect", "--config", "--raw", `oci:${out}:v1`);
            assertEquals(cfg.stdout, dec.decode(oci.config));
            // and skopeo copies it into a store of its own
            await skopeoCopy(
              dir,
              env,
              `oci:${out}:v1`,
              `oci:${join(root, "via-skopeo-" + compression)}:x`,
            );
          });
        }
        await t.step("oci-archive:", async () => {
          const file = join(root, "image.oci.tar");
          await copyImage(src, `oci-archive:${file}:v2`);
          const insp = JSON.parse(
            (await skopeoCmd(dir, env, "inspect", `oci-archive:${file}:v2`)).stdout,
          );
          assertEquals(insp.Layers.length, 3);
          const unpacked = join(root, "from-archive");
          await skopeoCopy(dir, env, `oci-archive:${file}:v2`, `oci:${unpacked}:x`);
          assertEquals((await layoutImage(unpacked)).tars, tars);
        });
        await t.step("docker-archive:", async () => {
          const file = join(root, "image.docker.tar");
          await copyImage(src, `docker-archive:${file}`, { name: "localhost/docker:v3" });
          const insp = JSON.parse(
            (await skopeoCmd(dir, env, "inspect", `docker-archive:${file}`)).stdout,
          );
          assertEquals(insp.Layers, tars.map(sha));
          const cfg = await skopeoCmd(
            dir,
            env,
            "inspect",
            "--config",
            "--raw",
            `docker-archive:${file}`,
          );
          assertEquals(cfg.stdout, dec.decode(oci.config));
          const unpacked = join(root, "from-docker");
          // skopeo finds the image by the name we recorded
          await skopeoCopy(
            dir,
            env,
            `docker-archive:${file}:localhost/docker:v3`,
            `oci:${unpacked}:x`,
          );
          assertEquals((await layoutImage(unpacked)).tars, tars);
        });
        assertEquals(
          await bytesOf(await store.diff("", (await store.image(NAME)).layer!, { compression: 0 })),
          tars[2],
        );
      } finally {
        await store.shutdown(true);
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "copyImage docker-archive: and oci-archive: made by skopeo → store: records identical " +
    "to skopeo's copy of the same archive (Docker schema 2 generated as containers/image does)",
  ignore: skip !== undefined,
  fn: async (t) => {
    const root = await tempDir("copy-image-archives-");
    try {
      // skopeo refuses zstd layers in docker archives
      const oci = await writeFixtureLayout(join(root, "oci"), await hostLayers(), {
        compressions: ["gzip", "none"],
      });
      const dir = join(root, "tools");
      const env = await toolEnv(dir, rootsOf(join(root, "unused"), "overlay"));
      const archives = {
        "docker-archive": `docker-archive:${join(root, "d.tar")}:localhost/arch:v1`,
        "oci-archive": `oci-archive:${join(root, "o.tar")}:v1`,
      };
      for (const [kind, ref] of Object.entries(archives)) {
        await t.step(kind, async () => {
          await skopeoCopy(dir, env, `oci:${oci.dir}:latest`, ref);
          const theirs = join(root, `theirs-${kind}`);
          const ours = join(root, `ours-${kind}`);
          await skopeoCopy(dir, env, ref, storageRef(theirs, "overlay", NAME));
          await copyImage(ref, storageRef(ours, "overlay", NAME));
          assertEquals(
            await records(rootsOf(ours, "overlay").graph),
            await records(rootsOf(theirs, "overlay").graph),
          );
        });
      }
    } finally {
      await removeTree(root);
    }
  },
});

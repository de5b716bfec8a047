/**
 * Interop with the real tools built on containers/storage 1.43: skopeo 1.9
 * and podman 4.3. The test builds an OCI image layout itself (no network):
 * one layer holding the host's /bin/sh, the libraries `ldd /bin/sh` names
 * and an /etc/os-release of its own, with config, manifest and index
 * written with their digests.
 *
 * - skopeo copies it into a fresh store (overlay with an uncompressed
 *   layer, vfs with a gzip one); our Store finds the image under the
 *   config digest and its name, its config and manifest big data byte for
 *   byte, its layer's diff byte for byte, and a container on it mounts with
 *   the files.
 * - the other way: our Store alone makes the same image the way skopeo
 *   stores one, and the files it writes (images.json, layers.json but for
 *   the creation time, big data files) equal skopeo's byte for byte; then
 *   skopeo exports it to an OCI layout with the same layer, podman lists
 *   it, creates a container on it (which our Store sees) and runs its
 *   shell, which prints the image's /etc/os-release.
 *
 * The tools are pointed at files of the test (storage.conf, registries.conf,
 * containers.conf, policy.json, runtime and temporary directories), so the
 * machine's or the user's configuration does not change what they do.
 * @module
 */

import { gunzipSync, gzipSync } from "node:zlib";
import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { isRoot, lookPath, notRootReason, removeTree, run, tempDir } from "./helpers.ts";
import {
  catScript,
  podman,
  podmanCmd,
  rootsOf,
  runc,
  skopeo,
  skopeoCopy,
  storageRef,
  tool,
  TOOL_PATH,
  toolEnv,
} from "./oci_tools.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, bytesOf, listDir, sha, storeOpts } from "./store_helpers.ts";

const ldd = lookPath("ldd", TOOL_PATH);

const skip = !isRoot
  ? notRootReason
  : !skopeo
  ? "skipped: skopeo is not installed"
  : !ldd
  ? "skipped: ldd is not installed (needed to copy /bin/sh with its libraries)"
  : undefined;
if (skip) console.log(`real tools interop tests ${skip}`);
const podmanSkip = !podman
  ? "skipped: podman is not installed"
  : !runc
  ? "skipped: runc is not installed"
  : undefined;

const enc = new TextEncoder();
const hex = (b: Uint8Array) => sha(b).slice("sha256:".length);
const OS_RELEASE = `NAME="denostore test image"\nID=denostore\nVERSION_ID="${Date.now()}"\n`;

/**
 * A rootfs from the host: /bin/sh, the libraries `ldd /bin/sh` lists (at
 * the paths it names, with the content of the files they resolve to) and
 * our /etc/os-release.
 */
async function rootfsEntries(): Promise<FixtureEntry[]> {
  const out = await run(ldd!, ["/bin/sh"]);
  const libs = [...out.stdout.matchAll(/(\/[^\s]+) \(0x/g)].map((m) => m[1]);
  const files: [string, Uint8Array, number][] = [
    ["bin/sh", await Deno.readFile(await Deno.realPath("/bin/sh")), 0o755],
    ["etc/os-release", enc.encode(OS_RELEASE), 0o644],
  ];
  for (const lib of libs) {
    files.push([lib.slice(1), await Deno.readFile(await Deno.realPath(lib)), 0o755]);
  }
  const dirs = new Set<string>();
  for (const [path] of files) {
    const parts = path.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/") + "/");
  }
  return [
    ...[...dirs].sort().map((name) => ({ name, type: "5" })),
    ...files.map(([name, data, mode]) => ({ name, data, mode })),
  ];
}

/** An OCI image layout on disk and the bytes and digests that went into it. */
interface OciImage {
  dir: string;
  /** The layer tar, uncompressed. */
  tar: Uint8Array;
  /** The layer blob as stored (the tar, or gzip of it). */
  blob: Uint8Array;
  config: Uint8Array;
  manifest: Uint8Array;
  /** The config's "created", which skopeo gives the image. */
  created: string;
}

/** Writes an OCI layout with one image ("latest") whose only layer is `tar`. */
async function writeLayout(dir: string, tar: Uint8Array, gzip: boolean): Promise<OciImage> {
  const blob = gzip ? new Uint8Array(gzipSync(tar)) : tar;
  const created = "2024-05-06T07:08:09Z";
  const config = enc.encode(JSON.stringify({
    created,
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [sha(tar)] },
    history: [{ created, created_by: "denostore interop test" }],
  }));
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: sha(config),
      size: config.length,
    },
    layers: [{
      mediaType: `application/vnd.oci.image.layer.v1.tar${gzip ? "+gzip" : ""}`,
      digest: sha(blob),
      size: blob.length,
    }],
  }));
  await Deno.mkdir(join(dir, "blobs/sha256"), { recursive: true });
  for (const b of [blob, config, manifest]) {
    await Deno.writeFile(join(dir, "blobs/sha256", hex(b)), b);
  }
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sha(manifest),
        size: manifest.length,
        annotations: { "org.opencontainers.image.ref.name": "latest" },
      }],
    }),
  );
  return { dir, tar, blob, config, manifest, created };
}

for (const [driver, gzip] of [["overlay", false], ["vfs", true]] as const) {
  Deno.test({
    name: `skopeo copy oci: → containers-storage (${driver}, ${
      gzip ? "gzip" : "uncompressed"
    } layer): our Store reads the image, its big data, its layer, and mounts a container on it`,
    ignore: skip !== undefined,
    fn: async () => {
      const root = await tempDir(`tools-${driver}-`);
      try {
        const entries = await rootfsEntries();
        const oci = await writeLayout(join(root, "oci"), buildTar(entries), gzip);
        const store = rootsOf(join(root, "store"), driver);
        const env = await toolEnv(join(root, "tools"), store);
        await skopeoCopy(
          join(root, "tools"),
          env,
          `oci:${oci.dir}:latest`,
          storageRef(join(root, "store"), driver, "localhost/name:tag"),
        );

        const s = await Store.open(storeOpts(join(root, "store"), { graphDriverName: driver }));
        try {
          const id = hex(oci.config);
          const image = await s.image(id);
          assertEquals(image.id, id);
          assertEquals(image.names, ["localhost/name:tag"]);
          assertEquals((await s.image("localhost/name:tag")).id, id);
          assertEquals(image.digest, sha(oci.manifest));
          assertEquals(await s.imageBigData(id, sha(oci.config)), oci.config);
          assertEquals(await s.imageBigData(id, "manifest"), oci.manifest);
          assertEquals(await s.imageBigData(id, `manifest-${sha(oci.manifest)}`), oci.manifest);
          assertEquals(await s.imageBigDataDigest(id, "manifest"), sha(oci.manifest));
          assertEquals((await s.imagesByDigest(sha(oci.manifest))).map((i) => i.id), [id]);

          const layer = await s.layer(image.layer!);
          assertEquals(layer.id, hex(oci.tar), "the first layer's ID is its diff ID");
          assertEquals(layer["diff-digest"], sha(oci.tar));
          assertEquals(layer["compressed-diff-digest"], sha(oci.blob));
          assertEquals(layer.compression ?? 0, gzip ? 2 : 0);
          assertEquals(await bytesOf(await s.diff("", layer.id, { compression: 0 })), oci.tar);

          const c = await s.createContainer(id, { names: ["reader"] });
          const dir = await s.mount(c.id);
          try {
            assertEquals(await Deno.readTextFile(join(dir, "etc/os-release")), OS_RELEASE);
            assertEquals(
              sha(await Deno.readFile(join(dir, "bin/sh"))),
              sha(await Deno.readFile(await Deno.realPath("/bin/sh"))),
            );
            const tops = new Set(entries.map((e) => String(e.name).split("/")[0]));
            assertEquals(await listDir(dir), [...tops].sort());
          } finally {
            await s.unmount(c.id);
          }
          await s.deleteContainer(c.id);
          assertEquals(await s.deleteImage(id), [layer.id]);
          assertEquals(await s.layers(), []);
        } finally {
          await s.shutdown(true);
        }
      } finally {
        await removeTree(root);
      }
    },
  });
}

Deno.test({
  name: "an image made by our Store as skopeo stores one: skopeo exports it, podman lists, " +
    "creates and runs it",
  ignore: skip !== undefined,
  fn: async (t) => {
    const root = await tempDir("tools-ours-");
    try {
      const oci = await writeLayout(join(root, "oci"), buildTar(await rootfsEntries()), false);
      const name = "localhost/ours:latest";
      const configHex = hex(oci.config);
      const manifestHex = hex(oci.manifest);

      // What skopeo writes for this image, in a store of its own.
      const theirs = rootsOf(join(root, "theirs"), "overlay");
      const theirEnv = await toolEnv(join(root, "tools-theirs"), theirs);
      await skopeoCopy(
        join(root, "tools-theirs"),
        theirEnv,
        `oci:${oci.dir}:latest`,
        storageRef(join(root, "theirs"), "overlay", name),
      );

      // The same with our Store alone.
      const ours = rootsOf(join(root, "ours"), "overlay");
      const opts = storeOpts(join(root, "ours"), { graphDriverName: "overlay" });
      let s = await Store.open(opts);
      const { layer } = await s.putLayer({ id: hex(oci.tar), diff: streamOf(oci.tar, 65536) });
      await s.createImage(layer.id, {
        id: configHex,
        names: [name],
        namesHistory: [name], // skopeo sets the names after creating the image
        digest: sha(oci.manifest),
        metadata: JSON.stringify({ "signatures-sizes": { [sha(oci.manifest)]: [] } }),
        created: oci.created,
        bigData: [
          { key: sha(oci.config), data: oci.config },
          { key: `manifest-${sha(oci.manifest)}`, data: oci.manifest },
          { key: "manifest", data: oci.manifest },
          { key: `signature-${manifestHex}`, data: new Uint8Array() },
        ],
      });
      await s.shutdown(false);

      const read = (r: { graph: string }, path: string) => Deno.readTextFile(join(r.graph, path));
      assertEquals(
        await read(ours, "overlay-images/images.json"),
        await read(theirs, "overlay-images/images.json"),
      );
      const layerRecord = async (r: { graph: string }) => {
        const [l] = JSON.parse(await read(r, "overlay-layers/layers.json"));
        return { ...l, created: "" };
      };
      assertEquals(await layerRecord(ours), await layerRecord(theirs));
      const bigDataDir = (r: { graph: string }) => join(r.graph, "overlay-images", configHex);
      const files = await listDir(bigDataDir(theirs));
      assertEquals(await listDir(bigDataDir(ours)), files);
      assertEquals(files.length, 4);
      for (const f of files) {
        assertEquals(
          await Deno.readFile(join(bigDataDir(ours), f)),
          await Deno.readFile(join(bigDataDir(theirs), f)),
          f,
        );
      }

      const dir = join(root, "tools");
      const env = await toolEnv(dir, ours);
      await t.step("skopeo exports it to an OCI layout with the same layer", async () => {
        const out = join(root, "out");
        await skopeoCopy(
          dir,
          env,
          storageRef(join(root, "ours"), "overlay", name),
          `oci:${out}:latest`,
        );
        const blob = (digest: string) => Deno.readFile(join(out, "blobs/sha256", digest.slice(7)));
        const index = JSON.parse(await Deno.readTextFile(join(out, "index.json")));
        const manifest = JSON.parse(
          new TextDecoder().decode(await blob(index.manifests[0].digest)),
        );
        assertEquals(manifest.config.digest, sha(oci.config));
        assertEquals(await blob(manifest.config.digest), oci.config);
        assertEquals(manifest.layers.length, 1);
        const exported = await blob(manifest.layers[0].digest);
        assertEquals(sha(exported), manifest.layers[0].digest);
        const tar = manifest.layers[0].mediaType.endsWith("+gzip")
          ? new Uint8Array(gunzipSync(exported))
          : exported;
        assertEquals(sha(tar), layer["diff-digest"], "the exported layer's diff ID is ours");
        assertEquals(tar, oci.tar);
      });

      await t.step({
        name: "podman lists it, creates a container on it and runs it",
        ignore: podmanSkip !== undefined,
        fn: async () => {
          const { global, runFlags } = podmanCmd(dir, ours);
          const pm = (...args: string[]) => tool(podman!, [...global, ...args], env);
          const listed = JSON.parse((await pm("images", "--format", "json")).stdout);
          assertEquals(listed.map((i: { Id: string }) => i.Id), [configHex]);
          assert(listed[0].Names.includes(name), JSON.stringify(listed[0]));
          assertEquals(listed[0].Digest, sha(oci.manifest));

          const created = (await pm(
            "create",
            ...runFlags,
            "--name",
            "by-podman",
            name,
            "/bin/sh",
            "-c",
            catScript("/etc/os-release"),
          )).stdout.trim();
          s = await Store.open(opts);
          const c = await s.container(created);
          assertEquals(c.image, configHex);
          assertEquals((await s.layer(c.layer)).parent, layer.id);
          await s.shutdown(false);
          await pm("rm", "by-podman");

          const ran = await pm(
            "run",
            "--rm",
            ...runFlags,
            name,
            "/bin/sh",
            "-c",
            catScript("/etc/os-release"),
          );
          assertEquals(ran.stdout, OS_RELEASE);

          s = await Store.open(opts);
          assertEquals(await s.containers(), []);
          assertEquals((await s.images()).map((i) => i.id), [configHex]);
          await s.shutdown(false);
        },
      });

      // And our Store still deletes it, with its layer.
      s = await Store.open(opts);
      assertEquals(await s.deleteImage(configHex), [layer.id]);
      await s.shutdown(true);
      assertEquals(JSON.parse(await read(ours, "overlay-layers/layers.json")), []);
    } finally {
      await removeTree(root);
    }
  },
});

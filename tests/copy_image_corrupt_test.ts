/**
 * copyImage refuses corrupted images with an ErrInvalidImage naming the
 * blob (or file) and the reason, and leaves the store exactly as it was
 * (same files, same contents; layers made before the failure are removed
 * again): a flipped byte in an uncompressed and in a gzip layer, a wrong
 * diff_id, a manifest naming a missing blob, a blob cut short, a malformed
 * manifest and index, an unsupported media type, truncated OCI and docker
 * archives, an index without the platform asked for.
 * @module
 */

import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { copyImage } from "../lib/image_copy/copy.ts";
import { ErrInvalidImage } from "../lib/image_copy/errors.ts";
import { Store } from "../lib/store/mod.ts";
import { isRoot, notRootReason, removeTree, tempDir } from "./helpers.ts";
import { assert, assertEquals, assertRejects, listDir, sha, storeOpts } from "./store_helpers.ts";
import {
  fixtureSkip,
  hostLayers,
  type OciFixture,
  writeFixtureLayout,
} from "./oci_image_fixture.ts";

const skip = !isRoot ? notRootReason : fixtureSkip;
if (skip) console.log(`copy-image corruption tests ${skip}`);

const enc = new TextEncoder();
const blobPath = (dir: string, digest: string) => join(dir, "blobs/sha256", digest.slice(7));

/** Every path under `dir` with its type and (files but lock files) content hash. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      const r = rel + e.name;
      const st = await Deno.lstat(p);
      if (st.isDirectory) {
        out[r] = "dir";
        await walk(p, r + "/");
      } else if (st.isSymlink) {
        out[r] = "-> " + await Deno.readLink(p);
      } else if (e.name.endsWith("lock")) {
        out[r] = "lock";
      } else if (st.isFile) {
        out[r] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
      } else {
        out[r] = "special";
      }
    }
  };
  await walk(dir, "");
  return out;
}

/** Rewrites index.json to name `manifest` (written as a blob). */
async function pointAt(dir: string, manifest: Uint8Array, mediaType?: string): Promise<void> {
  await Deno.writeFile(blobPath(dir, sha(manifest)), manifest);
  await Deno.writeTextFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: mediaType ?? "application/vnd.oci.image.manifest.v1+json",
        digest: sha(manifest),
        size: manifest.length,
        annotations: { "org.opencontainers.image.ref.name": "latest" },
      }],
    }),
  );
}

/** A copy of the layout with its manifest JSON changed by `edit`. */
async function editManifest(
  oci: OciFixture,
  edit: (m: Record<string, any>) => void,
): Promise<void> {
  const m = JSON.parse(new TextDecoder().decode(oci.manifest));
  edit(m);
  await pointAt(oci.dir, enc.encode(JSON.stringify(m)));
}

interface Case {
  name: string;
  /** Breaks the layout (a copy of the good one); returns the reference to copy and what the error must name. */
  breakIt: (oci: OciFixture, root: string) => Promise<{ src: string; names: string; says: RegExp }>;
}

const flip = async (path: string, at: number) => {
  const b = await Deno.readFile(path);
  b[at] ^= 0xff;
  await Deno.writeFile(path, b);
};

const CASES: Case[] = [
  {
    name: "a flipped byte in an uncompressed layer",
    breakIt: async (oci) => {
      const d = sha(oci.blobs[1]);
      // a byte of a file's content, so the tar stays well-formed
      const at = new TextDecoder("latin1").decode(oci.blobs[1]).indexOf("deep\n");
      await flip(blobPath(oci.dir, d), at);
      return { src: `oci:${oci.dir}:latest`, names: d, says: /digest mismatch/ };
    },
  },
  {
    name: "a flipped byte in a gzip layer",
    breakIt: async (oci) => {
      const d = sha(oci.blobs[0]);
      await flip(blobPath(oci.dir, d), Math.floor(oci.blobs[0].length / 2));
      return { src: `oci:${oci.dir}:latest`, names: d, says: /./ };
    },
  },
  {
    name: "a flipped byte in the zstd top layer",
    breakIt: async (oci) => {
      const d = sha(oci.blobs[2]);
      await flip(blobPath(oci.dir, d), oci.blobs[2].length - 10);
      return { src: `oci:${oci.dir}:latest`, names: d, says: /./ };
    },
  },
  {
    name: "a wrong diff_id",
    breakIt: async (oci) => {
      const config = JSON.parse(new TextDecoder().decode(oci.config));
      config.rootfs.diff_ids[2] = sha(enc.encode("something else"));
      const bytes = enc.encode(JSON.stringify(config));
      await Deno.writeFile(blobPath(oci.dir, sha(bytes)), bytes);
      await editManifest(oci, (m) => {
        m.config.digest = sha(bytes);
        m.config.size = bytes.length;
      });
      return {
        src: `oci:${oci.dir}:latest`,
        names: sha(oci.blobs[2]),
        says: /is not the config's diff_id/,
      };
    },
  },
  {
    name: "a manifest naming a missing blob",
    breakIt: async (oci) => {
      const d = sha(oci.blobs[2]);
      await Deno.remove(blobPath(oci.dir, d));
      return { src: `oci:${oci.dir}:latest`, names: d, says: /blob missing/ };
    },
  },
  {
    name: "a layer blob cut short",
    breakIt: async (oci) => {
      const d = sha(oci.blobs[1]);
      await Deno.writeFile(blobPath(oci.dir, d), oci.blobs[1].subarray(0, 5000));
      return { src: `oci:${oci.dir}:latest`, names: d, says: /is 5000 bytes/ };
    },
  },
  {
    name: "a config that is not the one named",
    breakIt: async (oci) => {
      const d = sha(oci.config);
      await flip(blobPath(oci.dir, d), 3);
      return { src: `oci:${oci.dir}:latest`, names: d, says: /config digest mismatch/ };
    },
  },
  {
    name: "a malformed manifest",
    breakIt: async (oci) => {
      const bad = enc.encode('{"schemaVersion":2,"layers":');
      await pointAt(oci.dir, bad);
      return { src: `oci:${oci.dir}:latest`, names: sha(bad), says: /not valid JSON/ };
    },
  },
  {
    name: "a manifest without layers",
    breakIt: async (oci) => {
      await editManifest(oci, (m) => delete m.layers);
      return { src: `oci:${oci.dir}:latest`, names: "", says: /no layers list/ };
    },
  },
  {
    name: "an unsupported layer media type",
    breakIt: async (oci) => {
      await editManifest(oci, (m) => m.layers[1].mediaType = "application/x-bzip3");
      return {
        src: `oci:${oci.dir}:latest`,
        names: sha(oci.blobs[1]),
        says: /unsupported layer media type/,
      };
    },
  },
  {
    name: "an unsupported manifest media type",
    breakIt: async (oci) => {
      await editManifest(oci, (m) => m.mediaType = "application/vnd.example+json");
      return { src: `oci:${oci.dir}:latest`, names: "", says: /unsupported manifest media type/ };
    },
  },
  {
    name: "a malformed index",
    breakIt: async (oci) => {
      const bad = enc.encode('{"schemaVersion":2,"manifests":[{"digest":"sha256:12"}]}');
      await pointAt(oci.dir, bad, "application/vnd.oci.image.index.v1+json");
      return { src: `oci:${oci.dir}:latest`, names: "", says: /not a sha256 digest/ };
    },
  },
  {
    name: "an index without the platform asked for",
    breakIt: async (oci) => {
      const index = enc.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: sha(oci.manifest),
          size: oci.manifest.length,
          platform: { os: "linux", architecture: "s390x" },
        }],
      }));
      await pointAt(oci.dir, index, "application/vnd.oci.image.index.v1+json");
      return { src: `oci:${oci.dir}:latest`, names: sha(index), says: /no image for platform/ };
    },
  },
  {
    name: "a truncated OCI archive",
    breakIt: async (oci, root) => {
      const file = join(root, "image.tar");
      await copyImage(`oci:${oci.dir}:latest`, `oci-archive:${file}:latest`);
      const b = await Deno.readFile(file);
      await Deno.writeFile(file, b.subarray(0, Math.floor(b.length * 0.6)));
      return { src: `oci-archive:${file}:latest`, names: file, says: /cannot read the archive/ };
    },
  },
  {
    name: "a truncated docker archive",
    breakIt: async (oci, root) => {
      const file = join(root, "docker.tar");
      await copyImage(`oci:${oci.dir}:latest`, `docker-archive:${file}:localhost/x:y`);
      const b = await Deno.readFile(file);
      await Deno.writeFile(file, b.subarray(0, Math.floor(b.length * 0.6)));
      return { src: `docker-archive:${file}`, names: file, says: /cannot read the archive/ };
    },
  },
];

Deno.test({
  name: "copyImage refuses corrupted images, naming the blob and the reason, store unchanged",
  ignore: skip !== undefined,
  fn: async (t) => {
    const root = await tempDir("copy-image-bad-");
    try {
      const tars = await hostLayers();
      const good = await writeFixtureLayout(join(root, "good"), tars);
      // A store holding another image, so that layers made before a failure
      // are removed from a store that has layers and images of its own.
      const base = await writeFixtureLayout(join(root, "base"), tars.slice(2));
      const store = await Store.open(
        storeOpts(join(root, "store"), { graphDriverName: "overlay" }),
      );
      const dst = { transport: "containers-storage" as const, store, name: "localhost/bad:1" };
      try {
        await copyImage(`oci:${base.dir}:latest`, { ...dst, name: "localhost/base:1" });
        await store.shutdown(false);
        const before = await snapshot(join(root, "store"));
        const probe = await Deno.makeTempDir();
        await Deno.remove(probe);
        const tmp = dirname(probe);
        const extracted = async () => {
          const out = [];
          for await (const e of Deno.readDir(tmp)) {
            if (e.name.startsWith("image-archive-")) out.push(e.name);
          }
          return out.sort();
        };
        const extractedBefore = await extracted();
        for (const c of CASES) {
          await t.step(c.name, async () => {
            const dir = join(root, "case");
            await removeTree(dir);
            await Deno.mkdir(dir);
            await new Deno.Command("cp", { args: ["-a", good.dir, join(dir, "oci")] }).output();
            const oci = { ...good, dir: join(dir, "oci") };
            const { src, names, says } = await c.breakIt(oci, dir);
            const e = await assertRejects(() => copyImage(src, dst), ErrInvalidImage);
            assert(says.test(e.message), e.message);
            if (names) assertEquals(e.id, names, e.message);
            await store.shutdown(false);
            assertEquals(await snapshot(join(root, "store")), before);
            assertEquals(await extracted(), extractedBefore, "no extracted archive is left");
          });
        }
      } finally {
        await store.shutdown(true);
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "copyImage to a layout or archive refuses a corrupted image leaving nothing behind: " +
    "no new directory or file, an existing layout unchanged",
  ignore: fixtureSkip !== undefined,
  fn: async () => {
    const root = await tempDir("copy-image-bad-out-");
    try {
      const tars = await hostLayers();
      const good = await writeFixtureLayout(join(root, "good"), tars.slice(1));
      const existing = join(root, "existing");
      await copyImage(`oci:${good.dir}:latest`, `oci:${existing}:kept`);
      const before = await snapshot(existing);
      const bad = await writeFixtureLayout(join(root, "bad"), tars);
      const d = sha(bad.blobs[2]);
      await flip(blobPath(bad.dir, d), bad.blobs[2].length - 10);
      for (
        const dst of [
          `oci:${existing}:new`,
          `oci:${join(root, "fresh")}:x`,
          `oci-archive:${join(root, "a.tar")}`,
          `docker-archive:${join(root, "d.tar")}`,
        ]
      ) {
        const e = await assertRejects(
          () => copyImage(`oci:${bad.dir}:latest`, dst, { compression: "gzip" }),
          ErrInvalidImage,
        );
        assertEquals(e.id, d, e.message);
      }
      assertEquals(await snapshot(existing), before);
      assertEquals((await listDir(root)).sort(), ["bad", "existing", "good"]);
    } finally {
      await removeTree(root);
    }
  },
});

/**
 * Additional read-only image stores (`<driver>.imagestore=`), the way a
 * fleet shares one pre-populated store: the reference CLI writes store A
 * (two layers, an image with names, metadata and a big data item); our
 * Store opens store B with A as an image store, on overlay and on vfs. A's
 * image and layers are visible (after B's own, marked read-only), readable
 * (big data, the layer's diff byte for byte), refused for writing, and a
 * container of ours on A's image mounts with A's files — which the
 * reference CLI, given the same option, sees too. Every file under A is
 * unchanged byte for byte afterwards; lock files keep their length.
 * @module
 */

import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import {
  isRoot,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  tempDir,
  writeStorageConf,
} from "./helpers.ts";
import { treeOf } from "./overlay_helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";
import { assertEquals, assertRejects, bytesOf, listDir, sha, storeOpts } from "./store_helpers.ts";

const ignore = !isRoot || !referenceCli;
if (ignore) {
  console.log(
    `additional image store tests ${
      isRoot ? "skipped: reference CLI not installed" : notRootReason
    }`,
  );
}

const enc = new TextEncoder();

const BASE = buildTar([
  { name: "etc/", type: "5" },
  { name: "etc/os-release", data: "ID=shared\n" },
  { name: "etc/gone", data: "removed by the top layer\n" },
  { name: "usr/", type: "5" },
  { name: "usr/bin/", type: "5" },
  { name: "usr/bin/tool", data: "#!/bin/sh\necho tool\n", mode: 0o755, uid: 7, gid: 8 },
]);
const TOP = buildTar([
  { name: "etc/", type: "5" },
  { name: "etc/.wh.gone" },
  { name: "etc/motd", data: "from the top layer\n", mode: 0o600 },
  { name: "usr/", type: "5" },
  { name: "usr/bin/", type: "5" },
  { name: "usr/bin/link", type: "2", link: "tool" },
]);
const DATA = enc.encode("big data item of the shared image\n");

/**
 * Every entry under `root` (type, mode, owner, size, content digest); lock
 * files are described by their size alone, since taking a lock may rewrite
 * the last-writer token but never changes the length.
 */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [path, what] of await treeOf(root)) {
    const f = what.split(" ");
    out[path] = path.endsWith(".lock") ? `${f[0]} ${f[1]} lock` : what;
  }
  return out;
}

for (const driver of ["overlay", "vfs"]) {
  Deno.test({
    name:
      `additional image store (${driver}): the reference's image is usable by us, its files untouched`,
    ignore,
    fn: async () => {
      const root = await tempDir(`ais-${driver}-`);
      const a = { graph: join(root, "A/g"), run: join(root, "A/r"), driver };
      const b = { graph: join(root, "B/g"), run: join(root, "B/r"), driver };
      try {
        // Store A, by the reference CLI.
        const envA = await writeStorageConf(join(root, "a.conf"), a);
        const cs = async (...args: string[]) =>
          (await reference(a, args, { env: envA })).stdout.trim().split(/\s+/)[0];
        await Deno.writeFile(join(root, "base.tar"), BASE);
        await Deno.writeFile(join(root, "top.tar"), TOP);
        await Deno.writeFile(join(root, "data"), DATA);
        const l1 = await cs("import-layer", "-n", "base", "-f", join(root, "base.tar"));
        const l2 = await cs("import-layer", "-n", "top", "-f", join(root, "top.tar"), l1);
        const imageID = await cs(
          "create-image",
          "-n",
          "localhost/shared:1",
          "-n",
          "shared-alias",
          "-m",
          "shared metadata",
          l2,
        );
        await cs("set-image-data", "-f", join(root, "data"), imageID, "mykey");
        const before = await snapshot(join(root, "A"));

        // Store B, ours, with A as an additional image store and an image of its own.
        const opts = storeOpts(join(root, "B"), {
          graphDriverName: driver,
          imageStores: [a.graph],
        });
        let s = await Store.open(opts);
        const { layer: ourLayer } = await s.putLayer({
          names: ["our-layer"],
          diff: streamOf(buildTar([{ name: "ours", data: "ours" }])),
        });
        const ourImage = await s.createImage(ourLayer.id, { names: ["our-image"] });
        await s.shutdown(false);
        s = await Store.open(opts);

        // Visible: ours first, then A's, which are read-only.
        const images = await s.images();
        assertEquals(images.map((i) => [i.id, i.readonly ?? false]), [
          [ourImage.id, false],
          [imageID, true],
        ]);
        const layers = await s.layers();
        assertEquals(layers.map((l) => [l.id, l.readonly ?? false]), [
          [ourLayer.id, false],
          [l1, true],
          [l2, true],
        ]);
        const image = await s.image("localhost/shared:1");
        assertEquals(image.id, imageID);
        assertEquals(image.names, ["localhost/shared:1", "shared-alias"]);
        assertEquals(image.layer, l2);
        assertEquals(image.metadata, "shared metadata");
        assertEquals(image.readonly, true);
        assertEquals((await s.image("shared-alias")).id, imageID);
        assertEquals(await s.listImageBigData(imageID), ["mykey"]);
        assertEquals(await s.imageBigData(imageID, "mykey"), DATA);
        assertEquals(await s.imageBigDataDigest(imageID, "mykey"), sha(DATA));
        assertEquals((await s.layer("top")).parent, l1);
        assertEquals((await s.layer(l2)).readonly, true);
        assertEquals(await bytesOf(await s.diff("", l2, { compression: 0 })), TOP);
        assertEquals(await bytesOf(await s.diff("", l1, { compression: 0 })), BASE);

        // Never written: every change to A's image or layers is refused.
        await assertRejects(() => s.deleteImage(imageID));
        await assertRejects(() => s.setImageBigData(imageID, "other", DATA));
        await assertRejects(() => s.setMetadata(imageID, "changed"));
        await assertRejects(() => s.deleteLayer(l2));
        await assertRejects(() => s.applyDiff(l2, streamOf(TOP)));

        // A container of ours on A's image.
        const c = await s.createContainer("localhost/shared:1", { names: ["ctr"] });
        assertEquals(c.image, imageID);
        assertEquals((await s.layer(c.layer)).parent, l2);
        const dir = await s.mount(c.id);
        assertEquals(await Deno.readTextFile(join(dir, "etc/os-release")), "ID=shared\n");
        assertEquals(await Deno.readTextFile(join(dir, "etc/motd")), "from the top layer\n");
        assertEquals(await listDir(join(dir, "etc")), ["motd", "os-release"]);
        assertEquals(await Deno.readLink(join(dir, "usr/bin/link")), "tool");
        const tool = await Deno.stat(join(dir, "usr/bin/tool"));
        assertEquals([tool.uid, tool.gid, tool.mode! & 0o7777], [7, 8, 0o755]);
        await Deno.writeTextFile(join(dir, "etc/written"), "by the container\n");
        await Deno.remove(join(dir, "etc/os-release"));
        await s.unmount(c.id);
        await s.shutdown(false);
        assertEquals(await snapshot(join(root, "A")), before);

        // The reference, given the same image store, sees our container on A's image.
        const envB = await writeStorageConf(join(root, "b.conf"), b);
        const refB = (...args: string[]) =>
          reference(b, ["--storage-opt", `${driver}.imagestore=${a.graph}`, ...args], {
            env: envB,
          });
        const listed = JSON.parse((await refB("containers", "-j")).stdout);
        assertEquals(listed.map((x: { id: string }) => x.id), [c.id]);
        const refDir = (await refB("mount", "ctr")).stdout.trim();
        try {
          assertEquals(await Deno.readTextFile(join(refDir, "etc/written")), "by the container\n");
          assertEquals(await listDir(join(refDir, "etc")), ["motd", "written"]);
        } finally {
          await refB("unmount", "ctr");
        }

        // Deleting our container leaves A as it was, and A's image still usable.
        s = await Store.open(opts);
        await s.deleteContainer(c.id);
        assertEquals((await s.layers()).map((l) => l.id), [ourLayer.id, l1, l2]);
        await s.deleteImage(ourImage.id);
        assertEquals((await s.images()).map((i) => i.id), [imageID]);
        // New names for A's image go to a copy of its record in B, as 1.43 does it.
        await s.addNames(imageID, ["more"]);
        const renamed = await s.image("more");
        assertEquals([renamed.id, renamed.readonly ?? false], [imageID, false]);
        assertEquals(renamed.layer, l2);
        await s.shutdown(false);
        assertEquals(await snapshot(join(root, "A")), before);
        assertEquals(
          JSON.parse((await reference(a, ["images", "-j"], { env: envA })).stdout)
            .map((i: { id: string }) => i.id),
          [imageID],
        );
      } finally {
        await removeTree(root);
      }
    },
  });
}

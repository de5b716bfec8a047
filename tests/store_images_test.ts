/**
 * Images through the Store: creation on layers of any store, names across
 * images, big data and digests, lookups by digest and top layer, sizes,
 * read-only mounts, and deletion with the layer garbage collection of
 * containers/storage 1.43 — checked against the reference CLI doing the
 * same on the same graph of layers.
 * @module
 */

import { join } from "node:path";
import {
  ErrDuplicateName,
  ErrImageUnknown,
  ErrImageUsedByContainer,
  ErrLayerUnknown,
  ErrLayerUsedByImage,
  ErrNotAnImage,
  ErrNotSupported,
} from "../lib/errors.ts";
import { isRoot, reference, referenceCli, withStore } from "./helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, assertRejects, sha } from "./store_helpers.ts";

const enc = new TextEncoder();

function layerTar(name: string): ReadableStream<Uint8Array> {
  return streamOf(buildTar([{ name: `./${name}`, data: `${name}\n` }]));
}

Deno.test({
  name: "store images: create, names, big data, digests, lookups, size and metadata",
  ignore: !isRoot,
  fn: () =>
    withStore("vfs", async (s) => {
      const { layer: base } = await s.putLayer({ names: ["base"], diff: layerTar("a") });
      const { layer: top } = await s.putLayer({ parent: base.id, diff: layerTar("b") });
      const manifest = enc.encode('{"schemaVersion":2,"layers":[]}');
      const config = enc.encode('{"rootfs":{}}');
      const img = await s.createImage("base", {
        names: ["one", "two"],
        metadata: "md",
        created: new Date("2026-01-02T03:04:05.5Z"),
        bigData: [{ key: "sha256:cfg", data: config }, { key: "manifest", data: manifest }],
        namesHistory: ["old"],
      });
      assertEquals(img.layer, base.id, "a layer name resolves to its ID");
      assertEquals(img.created, "2026-01-02T03:04:05.5Z");
      assertEquals(img.digest, sha(manifest), "digest filled from the manifest item");
      assertEquals(img["names-history"], ["old"]);
      assertEquals(await s.imageBigData("two", "sha256:cfg"), config);
      assertEquals(await s.imageBigDataSize(img.id, "manifest"), manifest.length);
      assertEquals(await s.imageBigDataDigest(img.id, "sha256:cfg"), sha(config));
      assertEquals(await s.listImageBigData(img.id), ["sha256:cfg", "manifest"]);
      await assertRejects(() => s.imageBigData(img.id, "none"), Deno.errors.NotFound);
      assertEquals((await s.imagesByDigest(sha(manifest))).map((i) => i.id), [img.id]);
      assertEquals(await s.imagesByDigest(sha(config)), []);
      await assertRejects(() => s.createImage(top.id, { names: ["one"] }), ErrDuplicateName);
      await assertRejects(() => s.createImage("nosuch"), ErrLayerUnknown);
      const second = await s.createImage(top.id, { names: ["three"] });
      assertEquals((await s.imagesByTopLayer(base.id)).map((i) => i.id), [img.id]);
      assertEquals((await s.imagesByTopLayer(top.id)).map((i) => i.id), [second.id]);
      // Sizes: the layer diffs (tar sizes) of the chain plus the big data.
      const sizeOf = async (id: string) => (await s.layer(id))["diff-size"]!;
      assertEquals(
        await s.imageSize(img.id),
        await sizeOf(base.id) + manifest.length + config.length,
      );
      assertEquals(await s.imageSize(second.id), await sizeOf(base.id) + await sizeOf(top.id));
      // Any-kind operations find images after layers.
      assertEquals(await s.lookup("one"), img.id);
      assertEquals(await s.metadata("one"), "md");
      await s.setMetadata("one", "new");
      assertEquals((await s.image(img.id)).metadata, "new");
      await s.addNames("two", ["four"]);
      assertEquals(await s.names(img.id), ["one", "two", "four"]);
      await s.setNames(second.id, ["two"]);
      assertEquals(await s.names(img.id), ["one", "four"], "a name moves between images");
      // Only names given after creation enter the history, as in 1.43.
      assertEquals((await s.image(second.id))["names-history"], ["two"]);
      assert(await s.exists("four"));
      await assertRejects(() => s.image("two-nope"), ErrImageUnknown);
      // An image with no layers at all.
      const empty = await s.createImage(undefined, { names: ["empty"] });
      assertEquals(empty.layer, undefined);
      assertEquals(await s.imageSize(empty.id), 0);
      await assertRejects(() => s.deleteLayer(second.layer!), ErrLayerUsedByImage);
    }),
});

Deno.test({
  name: "store images: read-only image mounts on overlay refuse rw and count like layers",
  ignore: !isRoot,
  fn: () =>
    withStore("overlay", async (s) => {
      const { layer } = await s.putLayer({ diff: layerTar("file") });
      const img = await s.createImage(layer.id, { names: ["ro"] });
      await assertRejects(() => s.mountImage("ro", ["rw"]), ErrNotSupported);
      const path = await s.mountImage("ro", ["nodev"]);
      assertEquals(await Deno.readTextFile(join(path, "file")), "file\n");
      const err = await assertRejects(() => Deno.writeTextFile(join(path, "x"), "x"));
      assertEquals((err as { code?: string }).code, "EROFS");
      assertEquals(await s.mountImage(img.id), path);
      assertEquals(await s.mounted(layer.id), 2);
      assertEquals(await s.unmountImage("ro"), true);
      assertEquals(await s.unmountImage("ro"), false);
      await assertRejects(() => s.mountImage("nosuch"), ErrImageUnknown);
    }),
});

/**
 * Layers a1←a2←a3 (image A on a3), a2←b3 (image B on b3), a2←c3 (a plain
 * child); images C on a2 and D on a1. Deleting images one by one must
 * collect exactly the layers the reference collects.
 */
async function buildGraph(
  make: {
    layer: (name: string, parent?: string) => Promise<void>;
    image: (name: string, layer: string) => Promise<void>;
  },
): Promise<void> {
  await make.layer("a1");
  await make.layer("a2", "a1");
  await make.layer("a3", "a2");
  await make.layer("b3", "a2");
  await make.layer("c3", "a2");
  await make.image("A", "a3");
  await make.image("B", "b3");
  await make.image("C", "a2");
}

Deno.test({
  name: "store images: deleteImage removes the layers nothing else uses, exactly as the reference",
  ignore: !isRoot || !referenceCli,
  fn: () =>
    withStore("vfs", async (s, root) => {
      const ref = { graph: join(root, "ref/g"), run: join(root, "ref/r"), driver: "vfs" };
      const refNames = new Map<string, string>();
      await buildGraph({
        layer: async (name, parent) => {
          const out = await reference(ref, [
            "create-layer",
            "-n",
            name,
            ...(parent ? [parent] : []),
          ]);
          refNames.set(out.stdout.split("\n")[0], name);
        },
        image: async (name, layer) =>
          void await reference(ref, ["create-image", "-n", name, layer]),
      });
      const ourNames = new Map<string, string>();
      await buildGraph({
        layer: async (name, parent) => {
          const l = await s.createLayer({ names: [name], parent });
          ourNames.set(l.id, name);
        },
        image: async (name, layer) => void await s.createImage(layer, { names: [name] }),
      });
      const { id: user } = await s.createContainer("B");
      await assertRejects(() => s.deleteImage("B"), ErrImageUsedByContainer);
      await s.deleteContainer(user);
      await assertRejects(() => s.deleteImage("nosuch"), ErrNotAnImage);
      for (const image of ["A", "C", "B"]) {
        // A dry run reports without deleting anything.
        const dry = await s.deleteImage(image, false);
        assert(await s.exists(image));
        const ours = (await s.deleteImage(image)).map((id) => ourNames.get(id));
        assertEquals(dry.map((id) => ourNames.get(id)), ours);
        const out = JSON.parse((await reference(ref, ["delete-image", "-j", image])).stdout);
        const theirs = (out[image]["deleted-layers"] ?? []).map((id: string) => refNames.get(id));
        assertEquals(ours, theirs, `layers removed with image ${image}`);
        const left = (await s.layers()).map((l) => l.names![0]).sort();
        const refLeft = JSON.parse((await reference(ref, ["layers", "-j"])).stdout)
          .map((l: { names: string[] }) => l.names[0]).sort();
        assertEquals(left, refLeft, `layers left after deleting ${image}`);
      }
      // c3 is nobody's image but still a child of a2: the chain under it stays.
      assertEquals((await s.layers()).map((l) => l.names![0]), ["a1", "a2", "c3"]);
    }),
});

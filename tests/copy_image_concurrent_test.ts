/**
 * Two copies of one image into one store at the same time (two Store
 * instances on the same roots, as two processes would be): both succeed,
 * the store has the image once, each layer once, and the image record is
 * the one a single copy writes.
 * @module
 */

import { join } from "node:path";
import { copyImage } from "../lib/image_copy/copy.ts";
import { Store } from "../lib/store/mod.ts";
import { isRoot, notRootReason, removeTree, tempDir } from "./helpers.ts";
import { assertEquals, sha, storeOpts } from "./store_helpers.ts";
import { fixtureSkip, hostLayers, writeFixtureLayout } from "./oci_image_fixture.ts";

const skip = !isRoot ? notRootReason : fixtureSkip;
if (skip) console.log(`copy-image concurrency test ${skip}`);

Deno.test({
  name: "copyImage: two copies of one image into one store at once both succeed, " +
    "leaving the image and its layers once",
  ignore: skip !== undefined,
  fn: async () => {
    const root = await tempDir("copy-image-twice-");
    const opts = storeOpts(join(root, "store"), { graphDriverName: "overlay" });
    const [a, b] = [await Store.open(opts), await Store.open(opts)];
    try {
      const tars = await hostLayers();
      const oci = await writeFixtureLayout(join(root, "oci"), tars);
      const copy = (store: Store) =>
        copyImage(`oci:${oci.dir}:latest`, {
          transport: "containers-storage",
          store,
          name: "localhost/twice:1",
        });
      const results = await Promise.all([copy(a), copy(b)]);
      assertEquals(results[0].layerIDs, results[1].layerIDs);
      const images = await a.images();
      assertEquals(images.map((i) => [i.id, i.names]), [[
        sha(oci.config).slice(7),
        ["localhost/twice:1"],
      ]]);
      assertEquals((await a.layers()).map((l) => l.id).sort(), [...results[0].layerIDs!].sort());
      assertEquals(
        (await a.layers()).map((l) => l["diff-digest"]).sort(),
        tars.map(sha).sort(),
      );
    } finally {
      await a.shutdown(true);
      await b.shutdown(true);
      await removeTree(root);
    }
  },
});

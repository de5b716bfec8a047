/**
 * Driver registry names: `overlay2` is an alias of overlay, as in
 * containers/storage — the driver calls itself "overlay" but lives in
 * `<graphRoot>/overlay2`, where the reference puts it too.
 */
import { driverConfig, driverNames, loadDriver } from "../drivers/registry.ts";
import { isRoot, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import { assert, assertEquals } from "./store_helpers.ts";

Deno.test("registry: overlay2 is a known driver name", () => {
  assert(driverNames().includes("overlay2"));
});

Deno.test({
  name: "registry: overlay2 loads the overlay driver at <graphRoot>/overlay2, like the reference",
  ignore: !isRoot,
}, async () => {
  const root = await tempDir("registry-");
  try {
    const config = driverConfig("overlay2", {
      graphRoot: `${root}/g`,
      runRoot: `${root}/r`,
      options: [],
    });
    assertEquals(config.home, `${root}/g/overlay2`);
    const driver = await loadDriver("overlay2", config);
    try {
      assertEquals(driver.name, "overlay");
      await driver.create("l1", "", {});
      assert((await Deno.stat(`${root}/g/overlay2/l1/diff`)).isDirectory);
    } finally {
      await driver.cleanup();
    }
    if (referenceCli) {
      const ref = { graph: `${root}/ref/g`, run: `${root}/ref/r`, driver: "overlay2" };
      const id = (await reference(ref, ["create-layer"])).stdout.trim();
      assert((await Deno.stat(`${root}/ref/g/overlay2/${id}/diff`)).isDirectory);
    }
  } finally {
    await removeTree(root);
  }
});

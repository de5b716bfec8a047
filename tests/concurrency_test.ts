/**
 * Several processes writing one store at once — two Deno children and the
 * reference CLI — lose nothing: every layer, name, parent and metadata each
 * of them wrote is there afterwards, and the mount table stays consistent.
 * @module
 */

import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { buildTar } from "./tar_fixtures.ts";
import { assert, assertEquals, listDir, storeOpts } from "./store_helpers.ts";

const CHILD = new URL("./store_child.ts", import.meta.url).pathname;
const N = 8;

Deno.test({
  name: "two processes applying layers to one store at the same time lose nothing",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("concurrent-");
    try {
      const children = ["p1", "p2"].map((prefix) =>
        run(Deno.execPath(), ["run", "-A", CHILD, "many", root, prefix, String(N)])
      );
      // The reference CLI joins in while they run, when it is installed.
      const refIDs: string[] = [];
      if (referenceCli) {
        const tarPath = join(root, "ref.tar");
        await Deno.mkdir(root, { recursive: true });
        await Deno.writeFile(
          tarPath,
          buildTar([{ name: "ref/", type: "5" }, { name: "ref/x", data: "x" }]),
        );
        for (let i = 0; i < 3; i++) {
          const out = await reference({
            graph: join(root, "g"),
            run: join(root, "r"),
            driver: "vfs",
          }, [
            "import-layer",
            "-n",
            `ref-${i}`,
            "-f",
            tarPath,
          ]);
          refIDs.push(out.stdout.trim().split(/\s+/)[0]);
        }
      }
      for (const r of await Promise.all(children)) assertEquals(r.stdout.trim(), "done", r.stderr);
      const s = await Store.open(storeOpts(root));
      const layers = await s.layers();
      assertEquals(layers.length, 2 * N + refIDs.length);
      for (const prefix of ["p1", "p2"]) {
        let parent: string | undefined;
        for (let i = 0; i < N; i++) {
          const l = await s.layer(`${prefix}-${i}`);
          assertEquals(l.parent, parent);
          assertEquals(l.metadata, `${prefix} ${i}`);
          assert(l["diff-digest"]);
          const dir = await s.mount(l.id);
          assertEquals(await Deno.readTextFile(join(dir, prefix, `f${i}`)), `${prefix} ${i}\n`);
          assertEquals((await listDir(join(dir, prefix))).length, i + 1);
          await s.unmount(l.id, false);
          parent = l.id;
        }
      }
      for (const id of refIDs) assert(await s.exists(id));
      assertEquals((await listDir(join(root, "g/vfs/dir"))).length, layers.length);
      await s.shutdown(false);
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "concurrent mounts from this process and the reference keep one shared count",
  ignore: !isRoot || !referenceCli,
  fn: async () => {
    const root = await tempDir("concurrent-mounts-");
    try {
      const s = await Store.open(storeOpts(root));
      const l = await s.createLayer({ writeable: true });
      const ref = { graph: join(root, "g"), run: join(root, "r"), driver: "vfs" };
      await Promise.all([
        ...Array.from({ length: 10 }, () => s.mount(l.id)),
        reference(ref, ["mount", l.id]),
        reference(ref, ["mount", l.id]),
      ]);
      assertEquals(await s.mounted(l.id), 12);
      await Promise.all(Array.from({ length: 11 }, () => s.unmount(l.id, false)));
      assertEquals(await s.mounted(l.id), 1);
      await reference(ref, ["unmount", l.id]);
      assertEquals(await s.mounted(l.id), 0);
      await s.shutdown(false);
    } finally {
      await removeTree(root);
    }
  },
});

/**
 * Four processes churning one vfs store for 30 s: three Deno children (our
 * Store) and the reference `containers-storage` CLI, each creating and
 * deleting layers, images and containers under names of its own. When they
 * are done, nothing is lost and nothing is left over: every JSON file
 * parses, every object created and not deleted is there under its name and
 * ID (seen by us and by the reference), nothing deleted is, no directory or
 * file lacks its record, no container lacks its layer, no image its top
 * layer, no layer is unreferenced, and each surviving container still holds
 * the file written into it through a mount.
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
  run,
  type RunResult,
  tempDir,
  writeStorageConf,
} from "./helpers.ts";
import { assert, assertEquals, checkStore, storeOpts } from "./store_helpers.ts";

const CHILD = new URL("./store_child.ts", import.meta.url).pathname;
/** How long the processes churn. */
const SECONDS = 30;

const ignore = !isRoot || !referenceCli;
if (ignore) {
  console.log(
    `store concurrency test ${isRoot ? "skipped: reference CLI not installed" : notRootReason}`,
  );
}

/** One change a process reported having made. */
interface Change {
  op: "create" | "delete";
  kind: "layer" | "image" | "container";
  name: string;
  id: string;
}

/** The reference CLI's share: create-layer/-image/-container, then delete some of them. */
async function referenceChurn(
  ref: { graph: string; run: string; driver: string },
  env: Record<string, string>,
  deadline: number,
): Promise<Change[]> {
  const out: Change[] = [];
  const cs = async (...args: string[]) =>
    (await reference(ref, args, { env })).stdout.trim().split(/\s+/)[0];
  for (let i = 0; Date.now() < deadline; i++) {
    const layer: Change = { op: "create", kind: "layer", name: `ref-l${i}`, id: "" };
    layer.id = await cs("create-layer", "-n", layer.name);
    out.push(layer);
    const image: Change = { op: "create", kind: "image", name: `ref-i${i}`, id: "" };
    image.id = await cs("create-image", "-n", image.name, layer.name);
    out.push(image);
    const container: Change = { op: "create", kind: "container", name: `ref-c${i}`, id: "" };
    container.id = await cs("create-container", "-n", container.name, image.name);
    out.push(container);
    if (i % 2 === 1) {
      await cs("delete-container", container.name);
      out.push({ ...container, op: "delete" });
    }
    if (i % 4 === 3) {
      await cs("delete-image", image.name);
      out.push({ ...image, op: "delete" }, { ...layer, op: "delete" });
    }
  }
  return out;
}

Deno.test({
  name: "4 processes (3 of ours, the reference CLI) churning one store for 30 s lose nothing",
  ignore,
  fn: async () => {
    const root = await tempDir("churn-");
    const ref = { graph: join(root, "g"), run: join(root, "r"), driver: "vfs" };
    let children: Promise<RunResult>[] = [];
    try {
      const env = await writeStorageConf(join(root, "storage.conf"), ref);
      // The store exists before anyone races to create it.
      await (await Store.open(storeOpts(root))).shutdown(false);
      const deadline = Date.now() + SECONDS * 1000;
      children = ["p1", "p2", "p3"].map((prefix) =>
        run(Deno.execPath(), ["run", "-A", CHILD, "churn", root, prefix, String(deadline)])
      );
      const changes = await referenceChurn(ref, env, deadline);
      for (const r of await Promise.all(children)) {
        const lines = r.stdout.trim().split("\n");
        assertEquals(lines.at(-1), "done", `a child failed: ${r.stdout.slice(-500)} ${r.stderr}`);
        changes.push(...lines.slice(0, -1).map((l) => JSON.parse(l) as Change));
      }
      // What should be there: created and not deleted, per kind, by name.
      const expected = { layer: new Map(), image: new Map(), container: new Map() } as Record<
        Change["kind"],
        Map<string, string>
      >;
      const deleted: Change[] = [];
      for (const c of changes) {
        if (c.op === "create") expected[c.kind].set(c.name, c.id);
        else {
          assertEquals(expected[c.kind].get(c.name), c.id, `deleted ${c.kind} ${c.name}`);
          expected[c.kind].delete(c.name);
          deleted.push(c);
        }
      }
      const created = changes.filter((c) => c.op === "create");
      console.log(
        `${created.length} objects created, ${deleted.length} deleted by ${
          new Set(created.map((c) => c.name.split("-")[0])).size
        } processes`,
      );
      for (const prefix of ["p1", "p2", "p3", "ref"]) {
        assert(created.some((c) => c.name.startsWith(`${prefix}-`)), `${prefix} created nothing`);
      }
      assert(deleted.some((c) => c.kind === "image"), "no image was deleted");

      // The files, read directly.
      const check = await checkStore(ref);
      assertEquals(check.problems, []);
      assertEquals(check.tempFiles, []);
      assertEquals(check.unreferencedLayers, []);
      const named = (records: { names?: string[]; id: string }[]) =>
        new Map(records.flatMap((r) => (r.names ?? []).map((n) => [n, r.id] as const)));
      assertEquals(named(check.layers), expected.layer);
      assertEquals(named(check.images), expected.image);
      assertEquals(named(check.containers), expected.container);
      assertEquals(check.containers.length, expected.container.size);

      // Our Store sees the same, and each surviving container holds its file.
      const s = await Store.open(storeOpts(root));
      try {
        for (const kind of ["layer", "image", "container"] as const) {
          for (const [name, id] of expected[kind]) assertEquals((await s[kind](name)).id, id);
        }
        for (const c of deleted) assert(!(await s.exists(c.id)), `${c.kind} ${c.name} is back`);
        for (const [name, id] of expected.container) {
          if (name.startsWith("ref-")) continue;
          const dir = await s.mount(id);
          assertEquals(await Deno.readTextFile(join(dir, "owner")), name);
          await s.unmount(id);
        }
        for (const l of await s.layers()) assertEquals(l.mountcount ?? 0, 0, `${l.id} mounted`);
      } finally {
        await s.shutdown(true);
      }

      // And so does the reference.
      for (const kind of ["layers", "images", "containers"] as const) {
        const listed = JSON.parse((await reference(ref, [kind, "-j"], { env })).stdout);
        const want = kind === "layers" ? check.layers : kind === "images" ? check.images : check
          .containers;
        assertEquals(
          listed.map((r: { id: string }) => r.id).sort(),
          want.map((r: { id: string }) => r.id).sort(),
        );
      }
    } finally {
      await Promise.allSettled(children); // when the reference failed, they still churn
      await removeTree(root);
    }
  },
});

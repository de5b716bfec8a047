/**
 * Interop with the reference `containers-storage` CLI on the vfs driver,
 * both ways: a store we populate is listed, mounted, diffed and deleted by
 * the reference; a store the reference populates is read, mounted, diffed
 * and extended by us. Layer files must be what the reference writes.
 * @module
 */

import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { encodeLayers } from "../lib/layers/encode.ts";
import { isRoot, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, bytesOf, listDir, sha, storeOpts } from "./store_helpers.ts";

const ignore = !isRoot || !referenceCli;

const BASE = buildTar([
  { name: "./", type: "5" },
  { name: "./bin/", type: "5" },
  { name: "./bin/tool", data: "#!/bin/sh\necho hi\n", mode: 0o4755 },
  { name: "./bin/link", type: "1", link: "./bin/tool" },
  { name: "./bin/sym", type: "2", link: "tool" },
  { name: "./dev/", type: "5" },
  { name: "./dev/null", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
  { name: "./etc/", type: "5" },
  { name: "./etc/conf", data: "a=1\n", uid: 33, gid: 44, mtime: 1600000000.25 },
  { name: "./etc/xattr", data: "x", xattrs: { "user.k": "v" } },
]);
const MID = buildTar([
  { name: "./etc/", type: "5" },
  { name: "./etc/conf", data: "a=2\n" },
  { name: "./etc/.wh.xattr", data: "" },
  { name: "./opt/", type: "5" },
  { name: "./opt/big", data: new Uint8Array(300000).fill(7) },
]);
const TOP = buildTar([
  { name: "./etc/", type: "5" },
  { name: "./etc/.wh..wh..opq", data: "" },
  { name: "./etc/only", data: "only\n" },
]);

function refOf(root: string) {
  return { graph: join(root, "g"), run: join(root, "r"), driver: "vfs" };
}

Deno.test({
  name: "interop: a store populated by us is listed, mounted, diffed and deleted by the reference",
  ignore,
  fn: async () => {
    const root = await tempDir("interop-ours-");
    try {
      const s = await Store.open(storeOpts(root));
      const base = (await s.putLayer({ names: ["base"], diff: streamOf(gzipSync(BASE)) }))
        .layer;
      const mid =
        (await s.putLayer({ parent: base.id, names: ["mid", "middle"], diff: streamOf(MID) }))
          .layer;
      const top = (await s.putLayer({
        parent: mid.id,
        writeable: true,
        flags: { f: "v" },
        diff: streamOf(TOP),
      }))
        .layer;
      const empty = await s.createLayer({ parent: top.id, names: ["empty"], writeable: true });
      await s.setMetadata(mid.id, "mid metadata");
      await s.setLayerBigData(base.id, "manifest", new TextEncoder().encode("{}"));
      await s.setLayerBigData(base.id, "Big Key", new TextEncoder().encode("big"));
      const ref = refOf(root);

      const listed = JSON.parse((await reference(ref, ["layers", "-j"])).stdout);
      assertEquals(listed.map((l: { id: string }) => l.id), [base.id, mid.id, top.id, empty.id]);
      assertEquals(listed[1].names, ["mid", "middle"]);
      assertEquals(listed[1].parent, base.id);
      assertEquals(listed[2].flags, { f: "v" });
      assertEquals(
        (await reference(ref, ["metadata", "-q", mid.id])).stdout.trim(),
        "mid metadata",
      );
      assertEquals((await reference(ref, ["list-layer-data", base.id])).stdout.trim().split("\n"), [
        "manifest",
        "Big Key",
      ]);
      assertEquals((await reference(ref, ["get-layer-data", base.id, "Big Key"])).stdout, "big");

      // Mount counts are shared.
      const path = (await reference(ref, ["mount", empty.id])).stdout.trim();
      assertEquals(path, join(root, "g/vfs/dir", empty.id));
      assertEquals(await s.mounted(empty.id), 1);
      assertEquals(await s.mount(empty.id), path);
      assertEquals(await s.mounted(empty.id), 2);
      await reference(ref, ["unmount", empty.id]);
      assertEquals(await s.mounted(empty.id), 1);
      await s.unmount(empty.id, false);
      assertEquals(await s.mounted(empty.id), 0);
      assertEquals(await Deno.readTextFile(join(path, "etc/only")), "only\n");
      assertEquals(await listDir(join(path, "etc")), ["only"]);

      // Diffs rebuilt by the reference from our tar-split are the tarballs we applied.
      for (const [id, tar] of [[base.id, BASE], [mid.id, MID], [top.id, TOP]] as const) {
        const out = join(root, `${id}.tar`);
        await reference(ref, ["diff", "-u", "-f", out, id]);
        assertEquals(sha(await Deno.readFile(out)), sha(tar), `diff of ${id}`);
      }
      const ours = (await s.changes("", mid.id)).map((c) => `${c.kind} ${c.path}`).sort();
      const theirs = (await reference(ref, ["changes", mid.id])).stdout.trim().split("\n")
        .map((l) =>
          l.replace(/^Modify/, "0").replace(/^Add/, "1").replace(/^Delete/, "2").replace(/"/g, "")
        ).sort();
      assertEquals(ours, theirs);
      assertEquals(
        String(await s.diffSize("", mid.id)),
        (await reference(ref, ["diffsize", mid.id])).stdout.trim(),
      );
      await s.shutdown(false);

      for (const id of [empty.id, top.id, mid.id, base.id]) {
        await reference(ref, ["delete-layer", id]);
      }
      assertEquals((await reference(ref, ["layers", "-j"])).stdout.trim(), "[]");
      assertEquals(await listDir(join(root, "g/vfs/dir")), []);
      assertEquals(await listDir(join(root, "g/vfs-layers")), ["layers.json", "layers.lock"]);
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "interop: a store populated by the reference is read, mounted, diffed and extended by us",
  ignore,
  fn: async () => {
    const root = await tempDir("interop-ref-");
    try {
      const ref = refOf(root);
      await Deno.mkdir(join(root, "t"), { recursive: true });
      await Deno.writeFile(join(root, "t/base.tar.gz"), gzipSync(BASE));
      await Deno.writeFile(join(root, "t/mid.tar"), MID);
      const idOf = (out: { stdout: string }) => out.stdout.trim().split(/\s+/)[0];
      const base = idOf(
        await reference(ref, ["import-layer", "-n", "base", "-f", join(root, "t/base.tar.gz")]),
      );
      const mid = idOf(
        await reference(ref, [
          "create-layer",
          "-n",
          "mid",
          "--uidmap",
          "0:100000:65536",
          "--gidmap",
          "0:100000:65536",
          base,
        ]),
      );
      await reference(ref, ["applydiff", "-f", join(root, "t/mid.tar"), mid]);
      await reference(ref, ["set-metadata", "-m", "from <ref>", mid]);
      await reference(ref, ["add-names", "-n", "m2", mid]);
      await Deno.writeTextFile(join(root, "t/data"), "payload");
      await reference(ref, ["set-layer-data", "-f", join(root, "t/data"), base, "Key.One"]);

      // Our encoder reproduces the reference's layers.json byte for byte.
      const text = await Deno.readTextFile(join(root, "g/vfs-layers/layers.json"));
      assertEquals(encodeLayers(JSON.parse(text)), text);

      const s = await Store.open(storeOpts(root));
      const layers = await s.layers();
      assertEquals(layers.map((l) => l.id), [base, mid]);
      const m = await s.layer("m2");
      assertEquals(m.names, ["mid", "m2"]);
      assertEquals(m.metadata, "from <ref>");
      assertEquals(m.uidmap, [{ container_id: 0, host_id: 100000, size: 65536 }]);
      assertEquals((await s.layer(base)).compression, 2);
      assertEquals(
        new TextDecoder().decode(await bytesOf(await s.layerBigData(base, "Key.One"))),
        "payload",
      );

      // Mapped layer: files owned by host IDs; our diff maps them back.
      const path = await s.mount(mid);
      assertEquals((await Deno.lstat(join(path, "etc/conf"))).uid, 100000);
      assertEquals(await s.mounted(mid), 1);
      await s.unmount(mid, false);
      assertEquals(sha(await bytesOf(await s.diff("", base, { compression: 0 }))), sha(BASE));
      assertEquals(sha(await bytesOf(await s.diff("", mid))), sha(MID));

      // Extend it; the reference reads what we added.
      const top = (await s.putLayer({ parent: mid, names: ["top"], diff: streamOf(TOP) })).layer;
      assertEquals(top.uidmap, [{ container_id: 0, host_id: 100000, size: 65536 }]);
      await s.setMetadata(base, "ours");
      await s.shutdown(false);
      const listed = JSON.parse((await reference(ref, ["layers", "-j"])).stdout);
      assertEquals(listed.map((l: { id: string }) => l.id), [base, mid, top.id]);
      assertEquals((await reference(ref, ["metadata", "-q", base])).stdout.trim(), "ours");
      await reference(ref, ["diff", "-u", "-f", join(root, "t/top.out"), "top"]);
      assertEquals(sha(await Deno.readFile(join(root, "t/top.out"))), sha(TOP));
      const after = await Deno.readTextFile(join(root, "g/vfs-layers/layers.json"));
      assertEquals(encodeLayers(JSON.parse(after)), after);
      assert(after.includes(`"names":["top"],"parent":"${mid}"`));
    } finally {
      await removeTree(root);
    }
  },
});

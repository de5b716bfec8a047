/**
 * Containers through the Store: creation on images (with mapped copies of
 * the top layer when the driver cannot shift IDs, reused afterwards),
 * labels, mounts, directories and their files, sizes, deletion, automatic
 * user namespaces, and containers shared both ways with the reference CLI.
 * @module
 */

import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import {
  ErrContainerUnknown,
  ErrDuplicateName,
  ErrImageUnknown,
  ErrLayerUsedByContainer,
  ErrNotAContainer,
  ErrParentIsContainer,
  StorageError,
} from "../lib/errors.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir, withStore } from "./helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, assertRejects, listDir, storeOpts } from "./store_helpers.ts";

const enc = new TextEncoder();
const MAP = [{ container_id: 0, host_id: 100000, size: 65536 }];

/** A base layer with a file owned by 2000:2000 and a passwd naming UID 1500, and an image on it. */
async function baseImage(s: Store, name = "img"): Promise<string> {
  const { layer } = await s.putLayer({
    diff: streamOf(buildTar([
      { name: "./etc/", type: "5" },
      { name: "./etc/passwd", data: "root:x:0:0::/root:/bin/sh\napp:x:1500:1500::/:/bin/sh\n" },
      { name: "./data", data: "d", uid: 2000, gid: 2000 },
    ])),
  });
  return (await s.createImage(layer.id, { names: [name] })).id;
}

Deno.test({
  name: "store containers: create, labels, mount, directories, files, size and delete",
  ignore: !isRoot,
  fn: () =>
    withStore("vfs", async (s, root) => {
      const image = await baseImage(s);
      const c = await s.createContainer("img", { names: ["web"], metadata: "m" });
      assertEquals(c.image, image);
      assertEquals(c.flags, { MountLabel: "", ProcessLabel: "" });
      const layer = await s.layer(c.layer);
      assertEquals(layer.parent, (await s.image(image)).layer);
      assertEquals((await s.container(c.layer)).id, c.id, "found by its layer");
      assertEquals((await s.containerByLayer(c.layer)).id, c.id);
      await assertRejects(() => s.createContainer("img", { names: ["web"] }), ErrDuplicateName);
      await assertRejects(() => s.createContainer("nosuch"), ErrImageUnknown);
      await assertRejects(
        () => s.createContainer("img", { mountLabel: "system_u:object_r:x:s0" }),
        StorageError,
      );
      await assertRejects(() => s.createLayer({ parent: c.layer }), ErrParentIsContainer);
      await assertRejects(() => s.deleteLayer(c.layer), ErrLayerUsedByContainer);
      // Mounting by container name mounts its layer.
      const path = await s.mount("web");
      assertEquals(await Deno.readTextFile(join(path, "data")), "d");
      await Deno.writeTextFile(join(path, "new"), "12345");
      assertEquals(await s.mounted("web"), 1);
      assertEquals(await s.unmount("web"), false);
      // Directories are made when asked for; files stay inside them.
      const dir = await s.containerDirectory("web");
      assertEquals(dir, join(root, "g/vfs-containers", c.id, "userdata"));
      const runDir = await s.containerRunDirectory(c.id);
      assertEquals(runDir, join(root, "r/vfs-containers", c.id, "userdata"));
      await s.setContainerDirectoryFile("web", "sub/config.json", enc.encode("{}"));
      await s.setContainerRunDirectoryFile("web", "pid", enc.encode("42"));
      assertEquals(await s.fromContainerDirectory(c.id, "sub/config.json"), enc.encode("{}"));
      assertEquals(await s.fromContainerRunDirectory("web", "pid"), enc.encode("42"));
      await assertRejects(() => s.setContainerDirectoryFile("web", "../escape", enc.encode("")));
      await assertRejects(() => s.fromContainerDirectory("web", "/etc/passwd"));
      await s.setContainerBigData("web", "state", enc.encode("abc"));
      assertEquals(await s.listContainerBigData("web"), ["state"]);
      assertEquals(await s.containerBigData("web", "state"), enc.encode("abc"));
      assertEquals(await s.containerBigDataSize("web", "state"), 3);
      // Layer diff (5) + big data (3) + the two directories' files (2 + 2).
      assertEquals(await s.containerSize("web"), 5 + 3 + 2 + 2);
      // A file a runtime wrote under a name that is not UTF-8 counts too.
      const odd = await run("sh", ["-c", `printf abc > "$0/$(printf '\\377')"`, runDir]);
      assertEquals(odd.code, 0, odd.stderr);
      assertEquals(await s.containerSize("web"), 5 + 3 + 2 + 2 + 3);
      assertEquals(await s.names(c.id), ["web"]);
      assertEquals(await s.metadata("web"), "m");
      const bare = await s.createContainer(undefined, { names: ["bare"] });
      assertEquals((await s.layer(bare.layer)).parent ?? "", "");
      await s.deleteContainer("web");
      await assertRejects(() => s.container("web"), ErrContainerUnknown);
      await assertRejects(() => s.deleteContainer("web"), ErrNotAContainer);
      await assertRejects(() => s.layer(c.layer));
      assertEquals(await listDir(join(root, "g/vfs-containers", c.id)), []);
      assertEquals(await listDir(join(root, "r/vfs-containers")), []);
      // Delete (no checks) takes the container's layer and record too.
      await s.delete("bare");
      assertEquals(await s.containers(), []);
      assertEquals((await s.layers()).length, 1);
    }),
});

Deno.test({
  name:
    "store containers: on vfs a mapped copy of the top layer is made once, reused, and collected",
  ignore: !isRoot,
  fn: () =>
    withStore("vfs", async (s) => {
      const image = await baseImage(s);
      const a = await s.createContainer(image, { uidMap: MAP, gidMap: MAP });
      const mapped = (await s.image(image))["mapped-layers"] ?? [];
      assertEquals(mapped.length, 1);
      assertEquals((await s.layer(a.layer)).parent, mapped[0]);
      assertEquals(a.uidmap, MAP);
      const copy = await s.layer(mapped[0]);
      assertEquals(copy.uidmap, MAP);
      // The copy's files are owned by the mapped host IDs.
      const path = await s.mount(a.id);
      assertEquals((await Deno.stat(join(path, "data"))).uid, 102000);
      await s.unmount(a.id);
      const b = await s.createContainer(image, { uidMap: MAP, gidMap: MAP });
      assertEquals((await s.layer(b.layer)).parent, mapped[0], "the copy is reused");
      assertEquals((await s.image(image))["mapped-layers"], mapped);
      const plain = await s.createContainer(image);
      assertEquals((await s.layer(plain.layer)).parent, (await s.image(image)).layer);
      for (const c of [a, b, plain]) await s.deleteContainer(c.id);
      const removed = await s.deleteImage(image);
      assertEquals(removed[0], mapped[0], "mapped copies go first");
      assertEquals((await s.layers()).length, 0);
    }),
});

Deno.test({
  name: "store containers: on overlay the driver shifts IDs at mount time instead of copying",
  ignore: !isRoot,
  fn: () =>
    withStore("overlay", async (s) => {
      const image = await baseImage(s);
      const c = await s.createContainer(image, {
        uidMap: MAP,
        gidMap: MAP,
        volatile: true,
        mountOpts: ["nodev"],
      });
      assertEquals(c.flags?.MountOpts, ["nodev"]);
      assertEquals((await s.image(image))["mapped-layers"], undefined);
      assertEquals(c.flags?.Volatile, true);
      const path = await s.mount(c.id);
      assertEquals((await Deno.stat(join(path, "data"))).uid, 102000);
      const mountinfo = await Deno.readTextFile("/proc/self/mountinfo");
      const line = mountinfo.split("\n").find((l) => l.split(" ")[4] === path) ?? "";
      assert(/volatile/.test(line) && /nodev/.test(line), `container mount options: ${line}`);
      await Deno.writeTextFile(join(path, "x"), "x");
      assertEquals(await s.unmount(c.id), false);
      // Mounting again after a volatile mount works (the kernel's marker is cleared).
      await s.mount(c.id);
      assertEquals(await Deno.readTextFile(join(path, "x")), "x");
      await s.unmount(c.id, true);
    }),
});

Deno.test({
  name:
    "store containers: automatic user namespaces come from the containers user's subordinate IDs",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("store-userns-");
    try {
      const s = await Store.open(storeOpts(root));
      await baseImage(s);
      await s.shutdown(true);
      const subuid = join(root, "subuid");
      await Deno.writeTextFile(subuid, "other:10000:5000\ncontainers:200000:5000\n");
      const child = new URL("./userns_child.ts", import.meta.url).pathname;
      const inNamespace = (args: string[]) =>
        run("unshare", [
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          `mount --bind "$0" /etc/subuid && mount --bind "$0" /etc/subgid && exec "$@"`,
          subuid,
          Deno.execPath(),
          "run",
          "-A",
          child,
          root,
          "vfs",
          ...args,
        ]);
      const r = await inNamespace(["img", "2"]);
      const [first, second] = JSON.parse(r.stdout);
      // Sized from the layers' owners (2000) and /etc/passwd (1500): 2001 IDs; min 1024.
      assertEquals(first.uidmap, [{ container_id: 0, host_id: 200000, size: 2001 }]);
      assertEquals(first.gidmap, first.uidmap);
      assertEquals(second.uidmap, [{ container_id: 0, host_id: 202001, size: 2001 }]);
      const tooBig = await inNamespace(["img", "1", "4000"]);
      assert(/could not find enough available IDs/.test(tooBig.stdout), tooBig.stdout);
      const s2 = await Store.open(storeOpts(root));
      assertEquals((await s2.containers()).length, 2, "the failed one left nothing behind");
      // vfs cannot shift: each namespace got its own mapped copy of the top layer.
      assertEquals((await s2.image("img"))["mapped-layers"]?.length, 2);
      assertEquals((await s2.layers()).length, 5);
      await s2.shutdown(true);
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "store containers: shared both ways with the reference CLI",
  ignore: !isRoot || !referenceCli,
  fn: () =>
    withStore("overlay", async (s, root) => {
      const ref = { graph: join(root, "g"), run: join(root, "r"), driver: "overlay" };
      const image = await baseImage(s);
      const ours = await s.createContainer(image, { names: ["ours"], metadata: "hi" });
      await s.setContainerBigData("ours", "k", enc.encode("v"));
      const listed = JSON.parse((await reference(ref, ["containers", "-j"])).stdout);
      assertEquals(listed.map((c: { names: string[] }) => c.names), [["ours"]]);
      assertEquals((await reference(ref, ["get-container-data", "ours", "k"])).stdout, "v");
      const refMount = (await reference(ref, ["mount", "ours"])).stdout.trim();
      await Deno.writeTextFile(join(refMount, "from-ref"), "r");
      await reference(ref, ["unmount", "ours"]);
      assertEquals((await s.changes("", ours.layer)).map((c) => c.path), ["/from-ref"]);
      // The reference's container on our image, read, mounted and deleted by us.
      const out = await reference(ref, ["create-container", "-n", "theirs", "img"]);
      const theirs = out.stdout.split("\n")[0];
      const c = await s.container("theirs");
      assertEquals(c.id, theirs);
      assertEquals(c.image, image);
      const path = await s.mount("theirs");
      assertEquals(await Deno.readTextFile(join(path, "data")), "d");
      await s.unmount("theirs");
      await s.deleteContainer("theirs");
      await reference(ref, ["delete-container", "ours"]);
      assertEquals(await s.containers(), []);
      assertEquals(JSON.parse((await reference(ref, ["layers", "-j"])).stdout).length, 1);
    }),
});

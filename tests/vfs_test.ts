/**
 * The vfs driver on its own (full copies that keep every attribute,
 * whiteouts applied on a copy, diffs, ID remapping, options) and the
 * driver registry (unknown drivers, priority, prior drivers), plus the
 * Store's up-front Deno permission check.
 * @module
 */

import { join } from "node:path";
import vfs from "../drivers/vfs/mod.ts";
import { driverConfig, loadDriver, pickDriver } from "../drivers/registry.ts";
import type { Driver } from "../drivers/driver.ts";
import { ErrDriverNotSupported } from "../lib/errors.ts";
import {
  lgetxattr,
  lsetxattr,
  lstatNs,
  makedev,
  mknod,
  S_IFCHR,
  S_IFIFO,
  utimensat,
} from "../ffi/fs.ts";
import { isRoot, removeTree, run, tempDir } from "./helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";
import { assert, assertEquals, assertRejects, bytesOf, listDir } from "./store_helpers.ts";

const A = "a".repeat(64), B = "b".repeat(64), C = "c".repeat(64);

async function withVfs(options: string[], fn: (d: Driver, home: string) => Promise<void>) {
  const root = await tempDir("vfs-");
  try {
    const home = join(root, "vfs");
    await fn(await vfs.init({ home, runHome: join(root, "run/vfs"), options }), home);
  } finally {
    await removeTree(root);
  }
}

Deno.test({
  name:
    "vfs: a child is a full copy keeping hardlinks, xattrs, owners, modes, devices and ns times",
  ignore: !isRoot,
  fn: () =>
    withVfs([], async (d, home) => {
      await d.create(A, "");
      assertEquals((await Deno.stat(join(home, "dir", A))).mode! & 0o7777, 0o555);
      const p = join(home, "dir", A);
      await Deno.writeTextFile(join(p, "f"), "content");
      await Deno.link(join(p, "f"), join(p, "hl"));
      await Deno.symlink("f", join(p, "sym"));
      await Deno.mkdir(join(p, "d"));
      await Deno.chmod(join(p, "f"), 0o4750);
      await Deno.chown(join(p, "d"), 1234, 5678);
      lsetxattr(join(p, "f"), "user.k", new TextEncoder().encode("v"));
      lsetxattr(join(p, "d"), "trusted.overlay.opaque", new TextEncoder().encode("y"));
      mknod(join(p, "d/null"), S_IFCHR | 0o666, makedev(1, 3));
      await Deno.chmod(join(p, "d/null"), 0o666); // past the umask
      mknod(join(p, "fifo"), S_IFIFO | 0o600, 0);
      await Deno.chmod(join(p, "fifo"), 0o620);
      utimensat(join(p, "f"), { sec: 1000, nsec: 123456789 }, { sec: 2000, nsec: 987654321 }, true);
      utimensat(join(p, "sym"), { sec: 10, nsec: 1 }, { sec: 20, nsec: 2 }, true);
      utimensat(join(p, "d"), { sec: 30, nsec: 3 }, { sec: 40, nsec: 4 }, true);
      await d.create(B, A);
      const q = join(home, "dir", B);
      const [sf, qf] = [lstatNs(join(p, "f")), lstatNs(join(q, "f"))];
      assertEquals(qf.mode, sf.mode);
      assertEquals(qf.mtime, { sec: 2000, nsec: 987654321 });
      assertEquals(qf.atime, { sec: 1000, nsec: 123456789 });
      assertEquals(lstatNs(join(q, "hl")).ino, qf.ino);
      assert(qf.ino !== sf.ino);
      assertEquals(await Deno.readLink(join(q, "sym")), "f");
      assertEquals(lstatNs(join(q, "sym")).mtime, { sec: 20, nsec: 2 });
      const qd = lstatNs(join(q, "d"));
      assertEquals([qd.uid, qd.gid, qd.mtime], [1234, 5678, { sec: 40, nsec: 4 }]);
      assertEquals(new TextDecoder().decode(lgetxattr(join(q, "f"), "user.k")!), "v");
      assertEquals(
        new TextDecoder().decode(lgetxattr(join(q, "d"), "trusted.overlay.opaque")!),
        "y",
      );
      const dev = lstatNs(join(q, "d/null"));
      assertEquals([dev.mode, dev.rdevMajor, dev.rdevMinor], [S_IFCHR | 0o666, 1, 3]);
      assertEquals(lstatNs(join(q, "fifo")).mode, S_IFIFO | 0o620);
      assertEquals(lstatNs(q).mode, lstatNs(p).mode);
      // The copy is independent.
      await Deno.writeTextFile(join(q, "f"), "changed");
      assertEquals(await Deno.readTextFile(join(p, "f")), "content");
    }),
});

Deno.test({
  name: "vfs: applyDiff carries AUFS whiteouts out on the copy, diff/changes/diffSize/diffGetter",
  ignore: !isRoot,
  fn: () =>
    withVfs([], async (d, home) => {
      await d.create(A, "");
      await d.applyDiff(A, "", {
        diff: streamOf(buildTar([
          { name: "a/", type: "5" },
          { name: "a/x", data: "x" },
          { name: "a/y", data: "y" },
          { name: "b/", type: "5" },
          { name: "b/z", data: "z" },
        ])),
      });
      await d.create(B, A);
      const size = await d.applyDiff(B, A, {
        diff: streamOf(buildTar([
          { name: "a/.wh.x", data: "" },
          { name: "b/.wh..wh..opq", data: "" },
          { name: "b/new", data: "new!" },
        ])),
      });
      assert(size >= 4);
      assertEquals(await listDir(join(home, "dir", B, "a")), ["y"]);
      assertEquals(await listDir(join(home, "dir", B, "b")), ["new"]);
      assertEquals(await listDir(join(home, "dir", A, "a")), ["x", "y"]);
      const changes = (await d.changes(B, undefined, A, undefined, "")).map((c) =>
        `${c.kind}${c.path}`
      ).sort();
      assertEquals(changes, ["0/a", "0/b", "1/b/new", "2/a/x", "2/b/z"]);
      assertEquals(await d.diffSize(B, undefined, A, undefined, ""), 4);
      const tar = await bytesOf(await d.diff(B, undefined, A, undefined, ""));
      const names = new TextDecoder().decode(tar);
      assert(names.includes("a/.wh.x") && names.includes("b/new"), "whiteouts exported");
      const getter = await d.diffGetter(B);
      assertEquals(new TextDecoder().decode(await bytesOf(await getter.get("./b/new"))), "new!");
      await getter.close();
      assertEquals(await d.status(), []);
      assertEquals(await d.metadata(A), {});
      assert(await d.exists(A));
      await d.remove(B);
      await d.remove(B);
      assert(!(await d.exists(B)));
    }),
});

Deno.test({
  name: "vfs: updateLayerIDMap re-owns files and keeps set-id bits and capabilities",
  ignore: !isRoot,
  fn: () =>
    withVfs([], async (d, home) => {
      await d.create(A, "");
      const p = join(home, "dir", A);
      await Deno.writeTextFile(join(p, "suid"), "x");
      await Deno.chown(join(p, "suid"), 5, 6);
      await Deno.chmod(join(p, "suid"), 0o6755);
      lsetxattr(
        join(p, "suid"),
        "security.capability",
        new Uint8Array([1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      );
      const id = { uidMap: [], gidMap: [] };
      const mapped = {
        uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
        gidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      };
      await d.updateLayerIDMap(A, id, mapped, "");
      const st = lstatNs(join(p, "suid"));
      assertEquals([st.uid, st.gid, st.mode & 0o7777], [100005, 100006, 0o6755]);
      assert(lgetxattr(join(p, "suid"), "security.capability") !== null);
      assertEquals(lstatNs(p).uid, 0, "the layer's top directory keeps its owner, as in 1.43");
      await d.updateLayerIDMap(A, mapped, id, "");
      assertEquals(lstatNs(join(p, "suid")).uid, 5);
    }),
});

Deno.test({
  name: "vfs: options and refusals",
  ignore: !isRoot,
  fn: async () => {
    const cfg = (options: string[]) => ({
      home: "/tmp/nonexistent-vfs",
      runHome: "/tmp/x",
      options,
    });
    for (
      const [opt, words] of [
        ["overlay.mountopt=nodev", "vfs driver does not support overlay.mountopt options"],
        ["vfs.mountopt=nodev", "vfs driver does not support mount options"],
        ["vfs.ignore_chown_errors=maybe", "invalid syntax"],
        ["novalue", "unable to parse"],
      ]
    ) {
      const e = await assertRejects(() => vfs.init(cfg([opt])), ErrDriverNotSupported);
      assert(e.message.includes(words), e.message);
    }
    const d = await vfs.init(cfg(["vfs.ignore_chown_errors=true", "vfs.imagestore=/a,/b"]));
    assertEquals(d.additionalImageStores(), ["/a", "/b"]);
    assert(!d.supportsShifting());
    await withVfs([], async (d) => {
      await assertRejects(
        () => d.create(A, "", { storageOpt: { size: "1G" } }),
        ErrDriverNotSupported,
      );
      await d.create(A, "");
      assert((await d.get(A, { options: ["ro"] })).endsWith(A));
      await assertRejects(() => d.get(A, { options: ["nodev"] }), ErrDriverNotSupported);
      await assertRejects(() => d.get(C), Deno.errors.NotFound);
      await d.put(A);
    });
  },
});

Deno.test({
  name: "vfs: a layer of an additional image store is found and copied from there",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("vfs-ais-");
    try {
      const shared = await vfs.init({
        home: join(root, "shared/vfs"),
        runHome: join(root, "r"),
        options: [],
      });
      await shared.create(A, "");
      await Deno.writeTextFile(join(root, "shared/vfs/dir", A, "s"), "shared");
      const d = await vfs.init({
        home: join(root, "own/vfs"),
        runHome: join(root, "r"),
        options: [],
        additionalImageStores: [join(root, "shared")],
      });
      assertEquals(await d.get(A), join(root, "shared/vfs/dir", A));
      await d.create(B, A);
      assertEquals(await Deno.readTextFile(join(root, "own/vfs/dir", B, "s")), "shared");
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "registry: unknown driver, explicit choice, prior driver, priority order",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("registry-");
    try {
      const roots = { graphRoot: join(root, "g"), runRoot: join(root, "r"), options: [] };
      const e = await assertRejects(
        () => loadDriver("bogus", driverConfig("bogus", roots)),
        ErrDriverNotSupported,
      );
      assert(e.message.includes("bogus"));
      assertEquals((await pickDriver(roots, "vfs")).name, "vfs");
      // A graph root already holding vfs layers keeps using vfs.
      await Deno.mkdir(join(root, "g/vfs/dir"), { recursive: true });
      assertEquals((await pickDriver(roots)).name, "vfs");
      // Two drivers with data: refuse to guess.
      await Deno.mkdir(join(root, "g/overlay/l"), { recursive: true });
      await assertRejects(() => pickDriver(roots), ErrDriverNotSupported);
      // A fresh root: the first usable in priority order (overlay on this kernel).
      const fresh = { graphRoot: join(root, "g2"), runRoot: join(root, "r2"), options: [] };
      const picked = await pickDriver(fresh);
      assertEquals(picked.name, "overlay");
      await picked.cleanup();
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "Store.open names the missing Deno permission",
  fn: async () => {
    const root = await tempDir("perm-");
    try {
      const child = new URL("./store_child.ts", import.meta.url).pathname;
      const noFfi = await run(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        child,
        "open",
        root,
      ]);
      assert(
        noFfi.stdout.includes("ErrPermission") && noFfi.stdout.includes("--allow-ffi"),
        noFfi.stdout + noFfi.stderr,
      );
      const noWrite = await run(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-ffi",
        "--allow-env",
        child,
        "open",
        root,
      ]);
      assert(
        noWrite.stdout.includes(`--allow-write=${join(root, "g")}`),
        noWrite.stdout + noWrite.stderr,
      );
    } finally {
      await removeTree(root);
    }
  },
});

/**
 * Overlay interop with the reference `containers-storage` CLI (1.43): the
 * same layer tarballs applied by both show the same merged tree; layers
 * the reference created are mounted and diffed by our driver as the
 * reference does; mounts are not doubled or lost when both processes use
 * the same layer. Real mounts as root.
 * @module
 */

import overlay from "../drivers/overlay/mod.ts";
import { Store } from "../lib/store/mod.ts";
import type { StoreOptions } from "../lib/config.ts";
import { lsetxattr, mknod, S_IFCHR } from "../ffi/fs.ts";
import { isRoot, notRootReason, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { assertEquals, assertTrue as assert, mountedAt, treeOf } from "./overlay_helpers.ts";

const ignore = !isRoot || !referenceCli;
if (ignore) {
  console.log(
    `overlay interop tests ${isRoot ? "skipped: reference CLI not installed" : notRootReason}`,
  );
}

/** Ten layers exercising whiteouts, opaque dirs, links, modes and owners. */
function chain(): FixtureEntry[][] {
  const layers: FixtureEntry[][] = [[
    { name: "etc/", type: "5" },
    { name: "etc/passwd", data: "root:x:0:0\n" },
    { name: "etc/hosts", data: "127.0.0.1 localhost\n", mode: 0o600 },
    { name: "opt/", type: "5", mode: 0o750, uid: 7, gid: 8 },
    { name: "opt/a/", type: "5" },
    { name: "opt/a/one", data: "1" },
    { name: "opt/a/two", data: "2" },
    { name: "bin/", type: "5" },
    { name: "bin/sh", data: "#!shell", mode: 0o755 },
    // the link header carries the target's mode: the reference chmods the shared inode to it
    { name: "bin/bash", type: "1", link: "bin/sh", mode: 0o755 },
    { name: "lib", type: "2", link: "usr/lib" },
  ]];
  for (let i = 1; i < 10; i++) {
    const l: FixtureEntry[] = [{ name: `layer${i}`, data: `layer ${i}`, uid: i, gid: 100 + i }];
    if (i % 3 === 1) {
      l.push({ name: "opt/", type: "5", mode: 0o750, uid: 7, gid: 8 }, { name: "opt/.wh.a" });
    }
    if (i % 3 === 2) {
      l.push(
        { name: "opt/", type: "5", mode: 0o750, uid: 7, gid: 8 },
        { name: "opt/a/", type: "5" },
        { name: "opt/a/.wh..wh..opq" },
        { name: `opt/a/fresh${i}`, data: `fresh ${i}` },
      );
    }
    if (i % 3 === 0) {
      l.push({ name: `.wh.layer${i - 1}` }, { name: "etc/", type: "5" }, { name: "etc/.wh.hosts" });
    }
    if (i === 5) {
      l.push({ name: "etc/", type: "5" }, { name: "etc/.wh..wh..opq" }, {
        name: "etc/only",
        data: "only",
      });
    }
    if (i === 9) {
      l.push({ name: "bin/", type: "5" }, { name: "bin/sh", data: "#!new shell", mode: 0o700 });
    }
    layers.push(l);
  }
  return layers;
}

function refRoot(root: string) {
  return { graph: `${root}/ref/g`, run: `${root}/ref/r`, driver: "overlay" };
}

const id = (n: number) => n.toString(16).padStart(64, "0");

Deno.test({
  name: "overlay interop: a chain of 10 layers with whiteouts and opaque dirs merges identically",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    const driver = await overlay.init({
      home: `${root}/ours/overlay`,
      runHome: `${root}/ours-run/overlay`,
      options: [],
    });
    try {
      let refParent: string | undefined;
      let ourParent = "";
      const layers = chain();
      for (let i = 0; i < layers.length; i++) {
        const tar = buildTar(layers[i]);
        Deno.writeFileSync(`${root}/l${i}.tar`, tar);
        const args = ["import-layer", "-f", `${root}/l${i}.tar`];
        if (refParent) args.push(refParent);
        refParent = (await reference(ref, args)).stdout.trim();
        await driver.create(id(i + 1), ourParent);
        await driver.applyDiff(id(i + 1), ourParent, { diff: streamOf(tar) });
        ourParent = id(i + 1);
      }
      const refMount = (await reference(ref, ["mount", refParent!])).stdout.trim();
      const ourMount = await driver.get(ourParent);
      try {
        const theirs = await treeOf(refMount);
        const ours = await treeOf(ourMount);
        assertEquals(Object.fromEntries(ours), Object.fromEntries(theirs));
        assert(theirs.has("etc/only") && !theirs.has("etc/passwd") && theirs.has("opt/a/fresh8"));
      } finally {
        await driver.put(ourParent);
        await reference(ref, ["unmount", refParent!]);
      }
    } finally {
      await driver.cleanup();
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "overlay interop: our driver mounts the reference's layers and shares mounts without doubling them",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    try {
      let parent: string | undefined;
      const layers = chain().slice(0, 4);
      for (let i = 0; i < layers.length; i++) {
        Deno.writeFileSync(`${root}/l${i}.tar`, buildTar(layers[i]));
        const args = ["import-layer", "-f", `${root}/l${i}.tar`];
        if (parent) args.push(parent);
        parent = (await reference(ref, args)).stdout.trim();
      }
      const top = parent!;
      const refMount = (await reference(ref, ["mount", top])).stdout.trim();
      const theirs = await treeOf(refMount);
      const driver = await overlay.init({
        home: `${ref.graph}/overlay`,
        runHome: `${ref.run}/overlay`,
        options: [],
      });
      try {
        // the reference holds the mount: we join it instead of stacking a second one
        const ours = await driver.get(top);
        assertEquals(ours, refMount);
        assertEquals(mountedAt(ours).length, 1);
        assertEquals(Object.fromEntries(await treeOf(ours)), Object.fromEntries(theirs));
        await driver.put(top);
        assertEquals(mountedAt(ours).length, 1, "our put leaves the reference's mount alone");
        await reference(ref, ["unmount", top]);
        assertEquals(mountedAt(ours).length, 0);
        // and the reverse: our own mount of the reference's layer shows the same tree
        const again = await driver.get(top);
        assertEquals(Object.fromEntries(await treeOf(again)), Object.fromEntries(theirs));
        await driver.put(top);
        assertEquals(mountedAt(again).length, 0);
      } finally {
        await driver.cleanup();
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "overlay interop: native diff of a layer without tar-split is byte-identical to the reference's",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    try {
      Deno.writeFileSync(`${root}/base.tar`, buildTar(chain()[0]));
      const base = (await reference(ref, ["import-layer", "-f", `${root}/base.tar`])).stdout.trim();
      const top = (await reference(ref, ["create-layer", base])).stdout.trim();
      const diff = `${ref.graph}/overlay/${top}/diff`;
      // changes as a container would leave them in the upper directory
      Deno.mkdirSync(`${diff}/etc`, { mode: 0o755 });
      Deno.writeTextFileSync(`${diff}/etc/passwd`, "root:x:0:0\nme:x:1:1\n");
      mknod(`${diff}/etc/hosts`, S_IFCHR, 0);
      Deno.mkdirSync(`${diff}/opt`, { mode: 0o750 });
      Deno.chownSync(`${diff}/opt`, 7, 8);
      Deno.mkdirSync(`${diff}/opt/a`);
      lsetxattr(`${diff}/opt/a`, "trusted.overlay.opaque", new TextEncoder().encode("y"));
      Deno.writeTextFileSync(`${diff}/opt/a/new`, "new");
      Deno.symlinkSync("/etc/passwd", `${diff}/pw`);
      for (const p of ["etc/passwd", "etc/hosts", "etc", "opt/a/new", "opt/a", "opt", ""]) {
        Deno.utimeSync(`${diff}/${p}`, 1700000000, 1700000000);
      }
      await reference(ref, ["diff", "-u", "-f", `${root}/theirs.tar`, top]);
      const driver = await overlay.init({
        home: `${ref.graph}/overlay`,
        runHome: `${ref.run}/overlay`,
        options: [],
      });
      try {
        const ours = new Uint8Array(
          await new Response(await driver.diff(top, undefined, base, undefined, "")).arrayBuffer(),
        );
        const theirs = Deno.readFileSync(`${root}/theirs.tar`);
        assertEquals(await headers(ours), await headers(theirs));
        assert(ours.every((b, i) => b === theirs[i]), "diff bytes differ");
      } finally {
        await driver.cleanup();
      }
    } finally {
      await removeTree(root);
    }
  },
});

/** The headers of a tarball, for a readable comparison before the byte check. */
async function headers(tar: Uint8Array): Promise<unknown[]> {
  const { readTar } = await import("../lib/archive/tar_reader.ts");
  const out: unknown[] = [];
  for await (const e of readTar(streamOf(tar))) out.push(e.header);
  return out;
}

function storeOptions(root: string): StoreOptions {
  return {
    graphRoot: `${root}/ref/g`,
    runRoot: `${root}/ref/r`,
    graphDriverName: "overlay",
    graphDriverOptions: [],
    uidMap: [],
    gidMap: [],
    imageStores: [],
  } as unknown as StoreOptions;
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assert(a.length === b.length && a.every((x, i) => x === b[i]), `${what}: bytes differ`);
}

Deno.test({
  name:
    "overlay interop: layers our store applies are diffed byte-identically and mounted alike by the reference",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    const store = await Store.open(storeOptions(root));
    try {
      const tars = chain().slice(0, 6).map((l) => buildTar(l));
      const ids: string[] = [];
      for (const tar of tars) {
        const { layer } = await store.putLayer({ parent: ids.at(-1) ?? "", diff: streamOf(tar) });
        ids.push(layer.id);
      }
      for (let i = 0; i < ids.length; i++) {
        await reference(ref, ["diff", "-u", "-f", `${root}/d${i}.tar`, ids[i]]);
        sameBytes(Deno.readFileSync(`${root}/d${i}.tar`), tars[i], `reference diff of layer ${i}`);
      }
      const top = ids.at(-1)!;
      const ours = await store.mount(top);
      const oursTree = Object.fromEntries(await treeOf(ours));
      await store.unmount(top, false);
      const theirs = (await reference(ref, ["mount", top])).stdout.trim();
      assertEquals(Object.fromEntries(await treeOf(theirs)), oursTree);
      await reference(ref, ["unmount", top]);
      assertEquals(mountedAt(theirs).length, 0);
    } finally {
      await store.shutdown(true).catch(() => {}); // reports mounted layers by throwing
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "overlay interop: layers the reference imports are diffed byte-identically and mounted alike by us",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    try {
      const tars = chain().slice(0, 6).map((l) => buildTar(l));
      const ids: string[] = [];
      for (let i = 0; i < tars.length; i++) {
        Deno.writeFileSync(`${root}/l${i}.tar`, tars[i]);
        const args = ["import-layer", "-f", `${root}/l${i}.tar`];
        if (ids.length > 0) args.push(ids.at(-1)!);
        ids.push((await reference(ref, args)).stdout.trim());
      }
      const top = ids.at(-1)!;
      const theirs = (await reference(ref, ["mount", top])).stdout.trim();
      const theirsTree = Object.fromEntries(await treeOf(theirs));
      await reference(ref, ["unmount", top]);
      const store = await Store.open(storeOptions(root));
      try {
        for (let i = 0; i < ids.length; i++) {
          sameBytes(await bytesOf(await store.diff("", ids[i])), tars[i], `our diff of layer ${i}`);
        }
        const ours = await store.mount(top);
        assertEquals(Object.fromEntries(await treeOf(ours)), theirsTree);
        await store.unmount(top, false);
        assertEquals(mountedAt(ours).length, 0);
      } finally {
        await store.shutdown(true).catch(() => {}); // reports mounted layers by throwing
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name:
    "overlay interop: mount counts stay right when we and the reference mount and unmount alternately",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-ovl-interop-");
    const ref = refRoot(root);
    const store = await Store.open(storeOptions(root));
    try {
      const { layer } = await store.putLayer({ diff: streamOf(buildTar(chain()[0])) });
      const base = layer.id;
      const ctr = (await store.createLayer({ parent: base, writeable: true })).id;
      // the count both processes share: mountpoints.json in the run root
      const sharedCount = () => {
        const mp = JSON.parse(Deno.readTextFileSync(`${ref.run}/overlay-layers/mountpoints.json`));
        return (mp as { id: string; count: number }[]).find((m) => m.id === ctr)?.count ?? 0;
      };
      const merged = await store.mount(ctr);
      assertEquals(await store.mounted(ctr), 1);
      assertEquals((await reference(ref, ["mount", ctr])).stdout.trim(), merged);
      assertEquals(mountedAt(merged).length, 1, "the reference joins our mount");
      assertEquals(await store.mounted(ctr), 2);
      assertEquals(await store.unmount(ctr, false), true);
      assertEquals(mountedAt(merged).length, 1, "still mounted for the reference");
      await store.mount(ctr);
      assertEquals(await store.mounted(ctr), 2);
      await reference(ref, ["unmount", ctr]);
      assertEquals(mountedAt(merged).length, 1, "still mounted for us");
      assertEquals(sharedCount(), 1);
      assertEquals(await store.unmount(ctr, false), false);
      assertEquals(mountedAt(merged).length, 0);
      assertEquals(await store.mounted(ctr), 0);
      // and starting from the reference's side
      await reference(ref, ["mount", ctr]);
      assertEquals(await store.mount(ctr), merged);
      assertEquals(mountedAt(merged).length, 1);
      await reference(ref, ["unmount", ctr]);
      assertEquals(mountedAt(merged).length, 1);
      await store.unmount(ctr, false);
      assertEquals(mountedAt(merged).length, 0);
    } finally {
      await store.shutdown(true).catch(() => {}); // reports mounted layers by throwing
      await removeTree(root);
    }
  },
});

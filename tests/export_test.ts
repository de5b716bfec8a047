/**
 * exportChanges and exportTree: byte-identical to the reference CLI's
 * `diff -u` of a vfs layer (naive differ, with and without a parent) and of
 * an overlay layer (native diff: walk order, whiteout conversion), plus
 * whiteouts for deletions, hard links, ID mapping and a round trip through
 * applyTar.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { changesDirs } from "../lib/archive/changes.ts";
import { exportChanges, exportTree } from "../lib/archive/export.ts";
import vfs from "../drivers/vfs/mod.ts";
import { applyTar } from "../lib/archive/apply.ts";
import { readTar } from "../lib/archive/tar_reader.ts";
import { ChangeKind } from "../lib/archive/change.ts";
import { lstatNs, S_IFCHR } from "../ffi/fs.ts";
import { streamOf } from "./tar_fixtures.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir } from "./helpers.ts";

async function sh(cwd: string, script: string): Promise<void> {
  const r = await run("bash", ["-euc", script], { cwd });
  assert.equal(r.code, 0, r.stderr);
}

async function bytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Headers (whiteout mtimes blanked: they are the export time) and body digests of a tar. */
async function describe(tar: Uint8Array): Promise<unknown[]> {
  const out: unknown[] = [];
  const stream = streamOf(tar);
  for await (const { header, body } of readTar(stream)) {
    const h = createHash("sha256");
    for await (const c of body) h.update(c);
    const wh = header.name.split("/").pop()!.startsWith(".wh.");
    out.push({ ...header, mtime: wh ? 0 : header.mtime, body: h.digest("hex") });
  }
  return out;
}

Deno.test({
  name: "export: byte-identical to the reference's diff of a vfs layer",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("export-ref-");
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "vfs" };
  try {
    await Deno.mkdir(`${tmp}/src`);
    await sh(
      `${tmp}/src`,
      `mkdir -p etc/sub usr/bin var; echo h > etc/hostname; echo x > etc/sub/a
      ln -s ../etc/hostname usr/bin/l; mkfifo fifo; echo v > var/log; tar -cf ../base.tar .`,
    );
    const base = (await reference(store, ["import-layer", "-f", `${tmp}/base.tar`])).stdout.trim();
    const top = (await reference(store, ["create-layer", base])).stdout.trim();
    const mnt = (await reference(store, ["mount", top])).stdout.trim();
    await sh(
      mnt,
      `echo changed >> etc/hostname; mkdir -p newdir/deeper; echo n > newdir/f; chown 1000:1000 newdir/f
      ln newdir/f newdir/g; setfattr -n user.x -v y newdir; setfattr -n user.a -v 1 newdir/f
      mknod newdir/blk b 8 1; mknod newdir/chr c 4 5; ln -sfn /abs/target newdir/sl; chmod 4755 etc/hostname
      head -c 70000 /dev/urandom > newdir/deeper/${
        "long".repeat(30)
      }; touch -d '2021-05-06 07:08:09.987' newdir/f
      mkdir tmp; chmod 1777 tmp`,
    );
    await reference(store, ["unmount", top]);
    await reference(store, ["diff", "-u", "-f", `${tmp}/theirs.tar`, top]);
    const dir = `${tmp}/g/vfs/dir/${top}`;
    const ours = await bytes(
      exportChanges(dir, await changesDirs(dir, `${tmp}/g/vfs/dir/${base}`)),
    );
    const theirs = await Deno.readFile(`${tmp}/theirs.tar`);
    assert.equal(ours.length, theirs.length);
    assert.ok(ours.every((b, i) => b === theirs[i]), "tarballs differ");

    // With deletions the whiteouts carry the export time: equal up to that.
    const mnt2 = (await reference(store, ["mount", top])).stdout.trim();
    await sh(mnt2, "rm -r etc/sub fifo var/log");
    await reference(store, ["unmount", top]);
    await reference(store, ["diff", "-u", "-f", `${tmp}/theirs2.tar`, top]);
    const ours2 = await bytes(
      exportChanges(dir, await changesDirs(dir, `${tmp}/g/vfs/dir/${base}`)),
    );
    const d1 = await describe(ours2),
      d2 = await describe(await Deno.readFile(`${tmp}/theirs2.tar`));
    assert.deepEqual(d1, d2);
    assert.ok(d1.some((e) => (e as { name: string }).name === "etc/.wh.sub"));
  } finally {
    await removeTree(tmp);
  }
});

Deno.test(
  { name: "export: whiteouts, hard links, mapped owners, sorted order", ignore: !isRoot },
  async () => {
    const tmp = await tempDir("export-");
    try {
      await sh(
        tmp,
        "mkdir -p d; echo a > d/z; ln d/z d/a; chown -R 100000:100000 d; echo b > m; chown 100007:100008 m; touch rootowned",
      );
      const changes = [
        { path: "/m", kind: ChangeKind.Modify },
        { path: "/gone/file", kind: ChangeKind.Delete },
        { path: "/d/z", kind: ChangeKind.Add },
        { path: "/d/a", kind: ChangeKind.Add },
        { path: "/d", kind: ChangeKind.Add },
        { path: "/vanished", kind: ChangeKind.Add },
        { path: "/rootowned", kind: ChangeKind.Add },
      ];
      const mappings = {
        uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
        gidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      };
      const entries = await describe(await bytes(exportChanges(tmp, changes, { mappings }))) as {
        name: string;
        typeflag: string;
        linkname: string;
        uid: number;
        gid: number;
        mode: number;
        size: number;
      }[];
      assert.deepEqual(entries.map((e) => [e.name, e.typeflag, e.linkname]), [
        ["d/", "5", ""],
        ["d/a", "0", ""],
        ["d/z", "1", "d/a"],
        ["gone/.wh.file", "0", ""],
        ["m", "0", ""],
      ]);
      const m = entries[4];
      assert.deepEqual([m.uid, m.gid], [7, 8]);
      const wh = entries[3];
      assert.deepEqual([wh.mode, wh.size, wh.uid], [0, 0, 0]);
    } finally {
      await removeTree(tmp);
    }
  },
);

Deno.test({
  name: "exportTree overlay: byte-identical to the reference's native diff (walk order, whiteouts)",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("export-ovl-");
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "overlay" };
  try {
    await sh(tmp, "mkdir -p src/opq src/gone; echo o > src/opq/old; tar -C src -cf base.tar .");
    const base = (await reference(store, ["import-layer", "-f", `${tmp}/base.tar`])).stdout.trim();
    const top = (await reference(store, ["create-layer", base])).stdout.trim();
    const up = `${tmp}/g/overlay/${top}/diff`;
    // a.b and a-c sort between a and a/x by full path, after a/… in the walk; wh1 and
    // a/wh2 are one hard-linked whiteout inode; opq hides a lower dir, fresh hides nothing
    await sh(
      up,
      `mkdir -p a/sub opq fresh; echo x > a.b; echo y > a/x; echo z > a-c; mknod wh1 c 0 0; ln wh1 a/wh2
      setfattr -n trusted.overlay.opaque -v y opq; setfattr -n trusted.overlay.opaque -v y fresh
      chown 5:6 opq; chmod 2750 opq; echo n > opq/new; touch -h -d @1700000000 * a/* opq/*`,
    );
    await reference(store, ["diff", "-u", "-f", `${tmp}/theirs.tar`, top]);
    const ours = await bytes(
      exportTree(up, { whiteoutFormat: "overlay", lowerDirs: [`${tmp}/g/overlay/${base}/diff`] }),
    );
    const theirs = await Deno.readFile(`${tmp}/theirs.tar`);
    const d = await describe(ours) as { name: string; linkname: string; mtime: unknown }[];
    assert.deepEqual(d, await describe(theirs));
    assert.deepEqual(d.map((e) => e.name), [
      "a/",
      "a/sub/",
      "a/.wh.wh2",
      "a/x",
      "a-c",
      "a.b",
      "fresh/",
      "opq/",
      "opq/.wh..wh..opq",
      "opq/new",
      ".wh.wh1",
    ]);
    assert.equal(d[10].linkname, "a/wh2");
    assert.ok(ours.length === theirs.length && ours.every((b, i) => b === theirs[i]));

    // Applying it back in overlay format recreates the whiteouts and the opaque xattr.
    await Deno.mkdir(`${tmp}/back`);
    await applyTar(streamOf(ours), `${tmp}/back`, { whiteoutFormat: "overlay" });
    const wh = lstatNs(`${tmp}/back/a/wh2`);
    assert.equal(wh.mode & 0o170000, S_IFCHR);
    assert.equal(wh.rdev, 0n);
    const opq = await run("getfattr", ["-n", "trusted.overlay.opaque", "--only-values", "opq"], {
      cwd: `${tmp}/back`,
    });
    assert.equal(opq.stdout, "y");
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "export vfs: a layer without parent is tarred in walk order, with one sorted by path",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("export-order-");
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "vfs" };
  try {
    const base = (await reference(store, ["create-layer"])).stdout.trim();
    await sh(
      `${tmp}/g/vfs/dir/${base}`,
      "mkdir a; echo x > a.b; echo y > a/x; echo q > a/.wh.q; touch -d @1700000000 a a.b a/x a/.wh.q",
    );
    const top = (await reference(store, ["create-layer", base])).stdout.trim();
    await sh(
      `${tmp}/g/vfs/dir/${top}`,
      "mkdir b; echo 1 > b/x; echo 2 > b.c; rm a/x; touch -d @1700000000 a b b/x b.c",
    );
    await reference(store, ["diff", "-u", "-f", `${tmp}/base.tar`, base]);
    await reference(store, ["diff", "-u", "-f", `${tmp}/top.tar`, top]);
    const driver = await vfs.init({ home: `${tmp}/g/vfs`, runHome: `${tmp}/r/vfs`, options: [] });
    try {
      const ours = await bytes(await driver.diff(base, undefined, "", undefined, ""));
      const theirs = await Deno.readFile(`${tmp}/base.tar`);
      const names = (await describe(ours)).map((e) => (e as { name: string }).name);
      assert.deepEqual(names, ["a/", "a/.wh.q", "a/x", "a.b"]);
      assert.ok(ours.length === theirs.length && ours.every((b, i) => b === theirs[i]));
      const d = await describe(await bytes(await driver.diff(top, undefined, base, undefined, "")));
      assert.deepEqual(d, await describe(await Deno.readFile(`${tmp}/top.tar`)));
      assert.deepEqual(d.map((e) => (e as { name: string }).name), [
        "a/",
        "a/.wh.x",
        "b/",
        "b.c",
        "b/x",
      ]);
    } finally {
      await driver.cleanup();
    }
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "export + apply: a diff applied onto the parent reproduces the layer",
  ignore: !isRoot,
}, async () => {
  const tmp = await tempDir("export-rt-");
  try {
    await sh(
      tmp,
      `mkdir -p a/etc a/gone; echo 1 > a/etc/x; echo g > a/gone/f; touch -d '2020-01-01' a/etc/x a/etc a/gone/f a/gone
      cp -a a b; cp -a a c; echo 2 > b/etc/x; rm -r b/gone; mkdir b/new; echo n > b/new/f; ln -s new/f b/link`,
    );
    const changes = await changesDirs(`${tmp}/b`, `${tmp}/a`);
    assert.ok(changes.some((c) => c.kind === ChangeKind.Delete));
    await applyTar(exportChanges(`${tmp}/b`, changes), `${tmp}/c`, { whiteoutFormat: "aufs" });
    // Tar keeps whole seconds only: compare with nanoseconds dropped.
    await sh(tmp, "find b c -exec touch -h -d @0 {} + ; touch -h -d @0 b c");
    const left = await run("bash", ["-c", "cd b && find . -printf '%p %M %U %G %s %l\\n' | sort"], {
      cwd: tmp,
    });
    const right = await run(
      "bash",
      ["-c", "cd c && find . -printf '%p %M %U %G %s %l\\n' | sort"],
      { cwd: tmp },
    );
    assert.equal(right.stdout, left.stdout);
  } finally {
    await removeTree(tmp);
  }
});

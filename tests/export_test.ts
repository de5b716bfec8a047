/**
 * exportChanges: byte-identical to the reference CLI's `diff -u` of a vfs
 * layer (naive differ), whiteouts for deletions, hard links, ID mapping,
 * overlay whiteout conversion, and a round trip through applyTar.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { changesDirs } from "../lib/archive/changes.ts";
import { exportChanges } from "../lib/archive/export.ts";
import { applyTar } from "../lib/archive/apply.ts";
import { readTar } from "../lib/archive/tar_reader.ts";
import { ChangeKind } from "../drivers/driver.ts";
import { lsetxattr, lstatNs, mknod, S_IFCHR } from "../ffi/fs.ts";
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
  name: "export overlay: devices become .wh. files, opaque dirs get .wh..wh..opq",
  ignore: !isRoot,
}, async () => {
  const tmp = await tempDir("export-ovl-");
  try {
    await sh(tmp, "mkdir -p up/etc up/opq; echo q > up/opq/f");
    mknod(`${tmp}/up/etc/passwd`, S_IFCHR, 0);
    lsetxattr(`${tmp}/up/opq`, "trusted.overlay.opaque", new TextEncoder().encode("y"));
    const changes = [
      { path: "/etc", kind: ChangeKind.Modify },
      { path: "/etc/passwd", kind: ChangeKind.Add },
      { path: "/opq", kind: ChangeKind.Add },
      { path: "/opq/f", kind: ChangeKind.Add },
    ];
    const tar = await bytes(exportChanges(`${tmp}/up`, changes, { whiteoutFormat: "overlay" }));
    const names = (await describe(tar)).map((e) => (e as { name: string; typeflag: string }).name);
    assert.deepEqual(names, ["etc/", "etc/.wh.passwd", "opq/", "opq/.wh..wh..opq", "opq/f"]);

    // Applying it back in overlay format recreates the same upper directory.
    await Deno.mkdir(`${tmp}/back`);
    await applyTar(streamOf(tar), `${tmp}/back`, { whiteoutFormat: "overlay" });
    const wh = lstatNs(`${tmp}/back/etc/passwd`);
    assert.equal(wh.mode & 0o170000, S_IFCHR);
    assert.equal(wh.rdev, 0n);
    const opq = await run("getfattr", [
      "-n",
      "trusted.overlay.opaque",
      "--only-values",
      `${tmp}/back/opq`,
    ]);
    assert.equal(opq.stdout, "y");
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

/**
 * changesDirs / changesOverlay / changesSize: metadata rules of the naive
 * differ, overlay whiteouts and opaque directories, and the same change
 * list as the reference CLI's `changes` for a vfs layer.
 */
import assert from "node:assert/strict";
import {
  type Change,
  ChangeKind,
  changesDirs,
  changesOverlay,
  changesSize,
} from "../lib/archive/changes.ts";
import { lsetxattr, mknod, S_IFCHR, utimensat } from "../ffi/fs.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir } from "./helpers.ts";

const KIND = ["Modify", "Add", "Delete"];

function fmt(changes: Change[]): string[] {
  return changes.map((c) => `${KIND[c.kind]} ${JSON.stringify(c.path)}`);
}

async function sh(cwd: string, script: string): Promise<void> {
  const r = await run("bash", ["-euc", script], { cwd });
  assert.equal(r.code, 0, r.stderr);
}

/** Two copies of a small tree (cp -a keeps times), then `modify` runs in the second. */
async function pair(modify: string): Promise<{ tmp: string; a: string; b: string }> {
  const tmp = await tempDir("changes-");
  const a = `${tmp}/a`, b = `${tmp}/b`;
  await Deno.mkdir(a);
  await sh(
    a,
    `mkdir -p etc/sub usr/bin; echo root > etc/passwd; echo x > etc/sub/f; ln -s ../etc/passwd usr/bin/l
    echo d > usr/bin/data; touch -d '2020-01-01 00:00:00' etc/passwd etc/sub/f usr/bin/data etc/sub etc usr/bin usr`,
  );
  await sh(tmp, "cp -a a b");
  await sh(b, modify);
  return { tmp, a, b };
}

Deno.test({ name: "changes: identical copies have no changes", ignore: !isRoot }, async () => {
  const { tmp, a, b } = await pair("true");
  try {
    assert.deepEqual(await changesDirs(b, a), []);
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changes: add, modify, delete, parents listed first, deletions after",
  ignore: !isRoot,
}, async () => {
  const { tmp, a, b } = await pair(
    "echo more >> etc/passwd; rm etc/sub/f; mkdir -p new/deep; echo n > new/deep/file; rm -r usr/bin",
  );
  try {
    assert.deepEqual(fmt(await changesDirs(b, a)), [
      'Modify "/etc"',
      'Modify "/etc/passwd"',
      'Modify "/etc/sub"',
      'Delete "/etc/sub/f"',
      'Add "/new"',
      'Add "/new/deep"',
      'Add "/new/deep/file"',
      'Modify "/usr"',
      'Delete "/usr/bin"',
    ]);
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changes: metadata rules (mode, owner, xattrs, symlink target, ns times)",
  ignore: !isRoot,
}, async () => {
  const { tmp, a, b } = await pair(
    `chmod 600 etc/sub/f; chown 5:5 usr/bin/data; setfattr -n user.k -v v etc/passwd
     ln -sfn ../etc/sub/f usr/bin/l; touch -h -d '2020-01-01 00:00:00' usr/bin/l`,
  );
  try {
    // Directory mtimes alone are not changes; a zero nanosecond part matches any.
    utimensat(`${b}/etc`, { sec: 5, nsec: 0 }, { sec: 1577836800, nsec: 0 }, true);
    await sh(a, "touch -d '2020-01-01 00:00:00.5' usr/bin/data");
    const got = fmt(await changesDirs(b, a));
    assert.deepEqual(got, [
      'Modify "/etc"',
      'Modify "/etc/passwd"',
      'Modify "/etc/sub"',
      'Modify "/etc/sub/f"',
      'Modify "/usr"',
      'Modify "/usr/bin"',
      'Modify "/usr/bin/data"',
      'Modify "/usr/bin/l"',
    ]);
    // Owners are compared as container IDs when mappings are given.
    const ownerOnly = await pair("chown 100005:100005 usr/bin/data");
    try {
      const m = {
        uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
        gidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      };
      await sh(ownerOnly.a, "chown 5:5 usr/bin/data");
      await sh(ownerOnly.a, "touch -d '2020-01-01 00:00:00' usr/bin/data usr/bin");
      await sh(ownerOnly.b, "touch -d '2020-01-01 00:00:00' usr/bin/data usr/bin");
      assert.deepEqual(await changesDirs(ownerOnly.b, ownerOnly.a, { mappings: m }), []);
      assert.equal((await changesDirs(ownerOnly.b, ownerOnly.a)).length, 3);
    } finally {
      await removeTree(ownerOnly.tmp);
    }
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changes: no parent means everything is added; changesSize counts hard links once",
  ignore: !isRoot,
}, async () => {
  const { tmp, b } = await pair("head -c 1000 /dev/zero > big; ln big big2; mkfifo pipe");
  try {
    const changes = await changesDirs(b, undefined);
    assert.ok(changes.every((c) => c.kind === ChangeKind.Add));
    assert.equal(changes.length, 11);
    assert.equal(await changesSize(b, changes), 1000 + 5 + 2 + 2 + 13);
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changesOverlay: whiteout devices, opaque directories, lower lookups",
  ignore: !isRoot,
}, async () => {
  const tmp = await tempDir("changes-ovl-");
  try {
    const lower = `${tmp}/lower`, upper = `${tmp}/upper`;
    await sh(
      tmp,
      `mkdir -p lower/etc lower/opq lower/keep upper/etc upper/opq upper/newdir upper/keep
      echo 1 > lower/etc/passwd; echo 2 > lower/opq/old; echo u > upper/etc/passwd; echo n > upper/newdir/f
      echo q > upper/opq/fresh; touch -d '2020-01-01' lower/keep upper/keep lower/etc upper/etc`,
    );
    mknod(`${upper}/etc/shadow`, S_IFCHR, 0);
    lsetxattr(`${upper}/opq`, "trusted.overlay.opaque", new TextEncoder().encode("y"));
    // /etc's mtime moved when the whiteout was created in it, so it is modified itself.
    assert.deepEqual(fmt(await changesOverlay(upper, [lower])), [
      'Modify "/etc"',
      'Modify "/etc/passwd"',
      'Delete "/etc/shadow"',
      'Add "/newdir"',
      'Add "/newdir/f"',
      'Delete "/opq"',
      'Add "/opq/fresh"',
    ]);
    // A directory identical to the lower one is not listed; with no lowers everything is added.
    assert.ok(!fmt(await changesOverlay(upper, [lower])).includes('Modify "/keep"'));
    assert.deepEqual(fmt(await changesOverlay(`${upper}/newdir`, [])), ['Add "/f"']);
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changes: same list as the reference CLI (vfs)",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("changes-ref-");
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "vfs" };
  try {
    await Deno.mkdir(`${tmp}/src`);
    await sh(
      `${tmp}/src`,
      `mkdir -p etc/sub usr/bin var/empty; echo h > etc/hostname; echo x > etc/sub/a
      ln etc/hostname etc/hard; ln -s ../etc/hostname usr/bin/l; mkfifo fifo; mknod dev0 c 1 3
      setfattr -n user.foo -v bar etc/sub/a; tar -cf ../base.tar .`,
    );
    const base = (await reference(store, ["import-layer", "-f", `${tmp}/base.tar`])).stdout.trim();
    const top = (await reference(store, ["create-layer", base])).stdout.trim();
    const mnt = (await reference(store, ["mount", top])).stdout.trim();
    await sh(
      mnt,
      `echo changed >> etc/hostname; rm etc/sub/a; mkdir newdir; echo n > newdir/f; chown 7:8 newdir/f
      ln newdir/f newdir/g; setfattr -n user.x -v y newdir; mknod newdir/blk b 8 1; rm fifo; rm -r var
      setfattr -n user.foo -v changed etc/sub 2>/dev/null || true; chmod 700 usr/bin`,
    );
    await reference(store, ["unmount", top]);
    const theirs = (await reference(store, ["changes", top])).stdout.trim().split("\n").sort();
    const ours = fmt(await changesDirs(`${tmp}/g/vfs/dir/${top}`, `${tmp}/g/vfs/dir/${base}`))
      .sort();
    assert.deepEqual(ours, theirs);
    const size = (await reference(store, ["diffsize", top])).stdout.trim();
    const changes = await changesDirs(`${tmp}/g/vfs/dir/${top}`, `${tmp}/g/vfs/dir/${base}`);
    assert.equal(String(await changesSize(`${tmp}/g/vfs/dir/${top}`, changes)), size);
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name: "changesOverlay: same list as the reference CLI (overlay)",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("changes-ovlref-");
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "overlay" };
  try {
    await Deno.mkdir(`${tmp}/src`);
    await sh(
      `${tmp}/src`,
      `mkdir -p etc/sub usr/bin; echo h > etc/hostname; echo x > etc/sub/a; echo b > usr/bin/b
      mkfifo fifo; tar -cf ../base.tar .`,
    );
    const base = (await reference(store, ["import-layer", "-f", `${tmp}/base.tar`])).stdout.trim();
    const top = (await reference(store, ["create-layer", base])).stdout.trim();
    const mnt = (await reference(store, ["mount", top])).stdout.trim();
    await sh(
      mnt,
      "echo x >> etc/hostname; rm etc/sub/a; rm -r usr; mkdir usr; echo n > usr/new; mkdir nd; echo 1 > nd/f; rm fifo",
    );
    await reference(store, ["unmount", top]);
    const theirs = (await reference(store, ["changes", top])).stdout.trim().split("\n").sort();
    const ours = fmt(
      await changesOverlay(`${tmp}/g/overlay/${top}/diff`, [`${tmp}/g/overlay/${base}/diff`]),
    ).sort();
    assert.deepEqual(ours, theirs);
    assert.ok(theirs.includes('Delete "/usr"'), "the opaque directory is reported deleted");
  } finally {
    await removeTree(tmp);
  }
});

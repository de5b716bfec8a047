/**
 * applyTar: every entry type, metadata, ownership mapping, force-mask,
 * nanosecond times and both whiteout formats, checked on the real file
 * system; plus a comparison with the reference CLI applying the same tar.
 */
import assert from "node:assert/strict";
import { applyTar } from "../lib/archive/apply.ts";
import { ErrBadArchive, ErrUnmappedID } from "../lib/errors.ts";
import { lgetxattr, lstatNs } from "../ffi/fs.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { isRoot, reference, referenceCli, removeTree, run, tempDir } from "./helpers.ts";

const dec = new TextDecoder();

async function applyInto(
  entries: FixtureEntry[],
  opts: Parameters<typeof applyTar>[2] = { whiteoutFormat: "aufs" },
  dir?: string,
): Promise<{ dir: string; size: number }> {
  dir ??= await tempDir("apply-");
  const { size } = await applyTar(streamOf(buildTar(entries), 700), dir, opts);
  return { dir, size };
}

function xattr(path: string, name: string): string | null {
  const v = lgetxattr(path, name);
  return v === null ? null : dec.decode(v);
}

Deno.test(
  { name: "apply: files, dirs, symlinks, hard links, sizes", ignore: !isRoot },
  async () => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    const { dir, size } = await applyInto([
      { name: "./etc/", type: "5" },
      { name: "./etc/hostname", data: "box\n" },
      { name: "./big", data: big },
      { name: "./etc/link", type: "2", link: "../big" },
      { name: "./etc/hard", type: "1", link: "./etc/hostname" },
      { name: "./noparent/deep/file", data: "x" },
    ]);
    try {
      assert.equal(size, 4 + 300_000 + 1);
      assert.equal(await Deno.readTextFile(`${dir}/etc/hostname`), "box\n");
      assert.deepEqual(await Deno.readFile(`${dir}/big`), big);
      assert.equal(await Deno.readLink(`${dir}/etc/link`), "../big");
      const a = lstatNs(`${dir}/etc/hostname`), b = lstatNs(`${dir}/etc/hard`);
      assert.equal(a.ino, b.ino);
      assert.equal(a.nlink, 2);
      // Parents missing from the tar are created 0755.
      assert.equal(lstatNs(`${dir}/noparent/deep`).mode & 0o7777, 0o755);
    } finally {
      await removeTree(dir);
    }
  },
);

Deno.test({ name: "apply: devices, FIFOs, special mode bits", ignore: !isRoot }, async () => {
  const { dir } = await applyInto([
    { name: "dev/null", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "dev/sda", type: "4", devmajor: 8, devminor: 0, mode: 0o660 },
    { name: "run/fifo", type: "6", mode: 0o600 },
    { name: "bin/su", data: "#!", mode: 0o4755, uid: 0 },
    { name: "bin/wall", data: "#!", mode: 0o2755, gid: 5 },
    { name: "tmp", type: "5", mode: 0o1777 },
  ]);
  try {
    const c = lstatNs(`${dir}/dev/null`);
    assert.equal(c.mode, 0o020666);
    assert.deepEqual([c.rdevMajor, c.rdevMinor], [1, 3]);
    const b = lstatNs(`${dir}/dev/sda`);
    assert.equal(b.mode, 0o060660);
    assert.deepEqual([b.rdevMajor, b.rdevMinor], [8, 0]);
    assert.equal(lstatNs(`${dir}/run/fifo`).mode, 0o010600);
    assert.equal(lstatNs(`${dir}/bin/su`).mode, 0o104755);
    const w = lstatNs(`${dir}/bin/wall`);
    assert.equal(w.mode, 0o102755, "setgid survives the chown to gid 5");
    assert.equal(w.gid, 5);
    assert.equal(lstatNs(`${dir}/tmp`).mode, 0o041777);
  } finally {
    await removeTree(dir);
  }
});

Deno.test(
  { name: "apply: xattrs, including security.capability after chown", ignore: !isRoot },
  async () => {
    const cap = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    const { dir } = await applyInto([
      { name: "d", type: "5", xattrs: { "user.dir": "1" } },
      {
        name: "d/ping",
        data: "x",
        uid: 7,
        mode: 0o755,
        xattrs: { "user.a": "b", "security.capability": cap },
      },
    ]);
    try {
      assert.equal(xattr(`${dir}/d`, "user.dir"), "1");
      assert.equal(xattr(`${dir}/d/ping`, "user.a"), "b");
      const got = lgetxattr(`${dir}/d/ping`, "security.capability");
      assert.ok(got !== null, "capability kept although the file was chowned");
      assert.equal(lstatNs(`${dir}/d/ping`).uid, 7);
    } finally {
      await removeTree(dir);
    }
  },
);

Deno.test({
  name: "apply: nanosecond times, directories after contents, symlinks",
  ignore: !isRoot,
}, async () => {
  const { dir } = await applyInto([
    { name: "d/", type: "5", mtime: 1000.123456789, atime: 2000.5 },
    { name: "d/f", data: "x", mtime: 3000.000000001, atime: 10 },
    { name: "d/l", type: "2", link: "f", mtime: 4000.75, atime: 5000.25 },
    { name: "e/", type: "5", mtime: 6000 },
  ]);
  try {
    const d = lstatNs(`${dir}/d`);
    assert.deepEqual(d.mtime, { sec: 1000, nsec: 123456789 });
    assert.deepEqual(d.atime, { sec: 2000, nsec: 500000000 });
    const f = lstatNs(`${dir}/d/f`);
    assert.deepEqual(f.mtime, { sec: 3000, nsec: 1 });
    assert.deepEqual(f.atime, f.mtime, "an atime before the mtime is raised to the mtime");
    const l = lstatNs(`${dir}/d/l`);
    assert.deepEqual(l.mtime, { sec: 4000, nsec: 750000000 });
    assert.deepEqual(l.atime, { sec: 5000, nsec: 250000000 });
    // Without an atime record a directory gets the epoch, like containers/storage.
    assert.deepEqual(lstatNs(`${dir}/e`).atime, { sec: 0, nsec: 0 });
    assert.deepEqual(lstatNs(`${dir}/e`).mtime, { sec: 6000, nsec: 0 });
  } finally {
    await removeTree(dir);
  }
});

Deno.test(
  { name: "apply: ownership mapped container→host; unmapped IDs fail", ignore: !isRoot },
  async () => {
    const mappings = {
      uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      gidMap: [{ container_id: 0, host_id: 200000, size: 65536 }],
    };
    const { dir } = await applyInto([
      { name: "a", type: "5", uid: 0, gid: 0 },
      { name: "a/f", data: "x", uid: 33, gid: 44 },
      { name: "a/l", type: "2", link: "f", uid: 1, gid: 2 },
    ], { whiteoutFormat: "aufs", mappings });
    try {
      const a = lstatNs(`${dir}/a`), f = lstatNs(`${dir}/a/f`), l = lstatNs(`${dir}/a/l`);
      assert.deepEqual([a.uid, a.gid], [100000, 200000]);
      assert.deepEqual([f.uid, f.gid], [100033, 200044]);
      assert.deepEqual(
        [l.uid, l.gid],
        [100001, 200002],
        "symlinks are lchowned, not their targets",
      );
      await assert.rejects(
        applyTar(streamOf(buildTar([{ name: "x", data: "", uid: 70000 }])), dir, {
          whiteoutFormat: "aufs",
          mappings,
        }),
        (e) => e instanceof ErrUnmappedID && /x/.test(e.message),
      );
    } finally {
      await removeTree(dir);
    }
  },
);

Deno.test({ name: "apply: noLchown keeps the caller's ownership", ignore: !isRoot }, async () => {
  const { dir } = await applyInto([{ name: "f", data: "x", uid: 5, gid: 6 }], {
    whiteoutFormat: "aufs",
    noLchown: true,
  });
  try {
    assert.deepEqual([lstatNs(`${dir}/f`).uid, lstatNs(`${dir}/f`).gid], [0, 0]);
  } finally {
    await removeTree(dir);
  }
});

/**
 * Copies the local modules `entry` imports (per `deno info`) into `dest`,
 * keeping their paths relative to the checkout, so that a process that
 * cannot read the checkout (a clone under a 0700 directory) can import them.
 * @returns the path of the copied entry module
 */
async function copyModuleGraph(entry: string, dest: string): Promise<string> {
  const repo = new URL("..", import.meta.url).pathname;
  const info = await run(Deno.execPath(), ["info", "--json", `${repo}${entry}`]);
  assert.equal(info.code, 0, info.stderr);
  for (const { specifier, local } of JSON.parse(info.stdout).modules) {
    assert.ok(local?.startsWith(repo), `${specifier} is not a module of the checkout`);
    const to = `${dest}/${local.slice(repo.length)}`;
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(local, to);
  }
  return `${dest}/${entry}`;
}

Deno.test({
  name: "apply: ignoreChownErrors when lchown is refused (unprivileged)",
  ignore: !isRoot,
}, async () => {
  // Run the apply as nobody: lchown to uid 0 fails with EPERM there. Everything
  // nobody reads is put under /tmp (TMPDIR may be private, as pam_tmpdir makes it):
  // the modules, the tar, DENO_DIR, and the deno binary when nobody cannot run ours.
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "apply-nobody-" });
  try {
    await Deno.chmod(dir, 0o777);
    const denoDir = `${dir}/denodir`;
    await Deno.mkdir(denoDir);
    await Deno.chmod(denoDir, 0o777);
    const tarPath = `${dir}/in.tar`;
    await Deno.writeFile(
      tarPath,
      buildTar([{ name: "out/f", data: "hello", uid: 0, gid: 0, mode: 0o640 }]),
    );
    await Deno.chmod(tarPath, 0o644);
    const applyPath = await copyModuleGraph("lib/archive/apply.ts", `${dir}/src`);
    const asNobody = (args: string[]) =>
      run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ...args], {
        env: { DENO_DIR: denoDir, HOME: denoDir },
      });
    let deno = Deno.execPath();
    if ((await asNobody([deno, "--version"])).code !== 0) {
      deno = `${dir}/deno`;
      await Deno.copyFile(Deno.execPath(), deno);
      await Deno.chmod(deno, 0o755);
    }
    const script = (ignore: boolean) =>
      `import { applyTar } from "${applyPath}";
       const f = await Deno.open("${tarPath}");
       await Deno.mkdir("${dir}/t${ignore}");
       try { await applyTar(f.readable, "${dir}/t${ignore}", { whiteoutFormat: "aufs", ignoreChownErrors: ${ignore} }); console.log("ok"); }
       catch (e) { console.log("fail", e.code ?? e.name); }`;
    const runAsNobody = (ignore: boolean) =>
      asNobody([deno, "eval", "--no-config", script(ignore)]);
    const ok = await runAsNobody(true);
    assert.equal(ok.stdout.trim(), "ok", ok.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/ttrue/out/f`), "hello");
    assert.equal(lstatNs(`${dir}/ttrue/out/f`).mode & 0o7777, 0o640);
    const bad = await runAsNobody(false);
    assert.equal(bad.stdout.trim(), "fail EPERM", bad.stderr);
  } finally {
    await removeTree(dir);
  }
});

Deno.test(
  { name: "apply: forceMask keeps the real owner and mode in an xattr", ignore: !isRoot },
  async () => {
    const { dir } = await applyInto([
      { name: "d", type: "5", mode: 0o750, uid: 3, gid: 4 },
      { name: "d/f", data: "x", mode: 0o4711, uid: 5, gid: 6 },
      { name: "d/null", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "d/l", type: "2", link: "f" },
    ], { whiteoutFormat: "aufs", forceMask: 0o700 });
    try {
      assert.equal(lstatNs(`${dir}/d`).mode, 0o040700);
      assert.equal(xattr(`${dir}/d`, "user.containers.override_stat"), "3:4:0750");
      assert.equal(lstatNs(`${dir}/d/f`).mode, 0o100700);
      assert.equal(xattr(`${dir}/d/f`, "user.containers.override_stat"), "5:6:04711");
      assert.equal(lstatNs(`${dir}/d/f`).uid, 5);
      // Devices are stored as regular files under force_mask.
      assert.equal(lstatNs(`${dir}/d/null`).mode, 0o100700);
      assert.equal(xattr(`${dir}/d/null`, "user.containers.override_stat"), "0:0:0666");
      assert.equal(await Deno.readLink(`${dir}/d/l`), "f");
    } finally {
      await removeTree(dir);
    }
  },
);

/** A lower tree to apply whiteouts onto. */
async function lower(): Promise<string> {
  const { dir } = await applyInto([
    { name: "keep", data: "k" },
    { name: "gone", data: "g" },
    { name: "gonedir/sub/f", data: "f" },
    { name: "opq/old1", data: "1" },
    { name: "opq/olddir/x", data: "x" },
    { name: "opq/same/lowerfile", data: "l" },
  ]);
  return dir;
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "apply aufs: whiteouts delete files and trees, opaque clears lower content",
  ignore: !isRoot,
}, async () => {
  const dir = await lower();
  try {
    await applyInto(
      [
        { name: ".wh.gone", data: "" },
        { name: ".wh.gonedir", data: "" },
        { name: "opq/", type: "5" },
        { name: "opq/new", data: "n" },
        { name: "opq/same/", type: "5" },
        { name: "opq/same/upper", data: "u" },
        { name: "opq/.wh..wh..opq", data: "" },
        { name: "nothere/.wh.missing", data: "" },
        { name: ".wh..wh.plnk/123.456", data: "aufs bookkeeping" },
      ],
      { whiteoutFormat: "aufs" },
      dir,
    );
    assert.ok(exists(`${dir}/keep`));
    assert.ok(!exists(`${dir}/gone`));
    assert.ok(!exists(`${dir}/gonedir`));
    assert.ok(!exists(`${dir}/opq/old1`));
    assert.ok(!exists(`${dir}/opq/olddir`));
    assert.ok(exists(`${dir}/opq/new`), "entries of this layer survive its opaque marker");
    assert.ok(exists(`${dir}/opq/same/upper`));
    assert.ok(
      !exists(`${dir}/opq/same/lowerfile`),
      "lower content inside a re-created dir is cleared",
    );
    assert.ok(!exists(`${dir}/opq/.wh..wh..opq`));
    assert.ok(!exists(`${dir}/.wh.gone`));
    assert.ok(!exists(`${dir}/.wh..wh.plnk/123.456`));
    assert.ok(exists(`${dir}/.wh..wh.plnk`), "bookkeeping's parent is created, as by 1.43");
    assert.ok(
      [...Deno.readDirSync(dir)].every((e) => !e.name.startsWith(".storage-plnk")),
      "the kept hard-link sources are removed",
    );
    assert.ok(exists(`${dir}/nothere`), "a whiteout's parent is created like any parent");
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "apply overlay: whiteouts become 0/0 char devices, opaque becomes an xattr",
  ignore: !isRoot,
}, async () => {
  const dir = await tempDir("apply-ovl-");
  try {
    await Deno.mkdir(`${dir}/opq`);
    await Deno.writeTextFile(`${dir}/opq/upperfile`, "stays");
    await applyInto([
      { name: "etc/.wh.passwd", data: "", uid: 10, gid: 20 },
      { name: "opq/", type: "5" },
      { name: "opq/.wh..wh..opq", data: "" },
      { name: ".wh.var", data: "" },
    ], {
      whiteoutFormat: "overlay",
      mappings: { uidMap: [{ container_id: 0, host_id: 1000, size: 100 }], gidMap: [] },
    }, dir);
    const w = lstatNs(`${dir}/etc/passwd`);
    assert.equal(w.mode, 0o020000);
    assert.deepEqual([w.rdevMajor, w.rdevMinor], [0, 0]);
    assert.deepEqual([w.uid, w.gid], [1010, 20], "whiteouts are owned by the mapped IDs");
    assert.equal(lstatNs(`${dir}/var`).mode, 0o020000);
    assert.equal(xattr(`${dir}/opq`, "trusted.overlay.opaque"), "y");
    assert.ok(exists(`${dir}/opq/upperfile`), "overlay opaque leaves the directory's files alone");
    assert.ok(!exists(`${dir}/etc/.wh.passwd`));
    assert.ok(!exists(`${dir}/opq/.wh..wh..opq`));
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "apply: replacing entries (file over dir, dir over file, dir merge)",
  ignore: !isRoot,
}, async () => {
  const { dir } = await applyInto([
    { name: "a/x", data: "1" },
    { name: "b", data: "file" },
    { name: "c/keep", data: "k" },
  ]);
  try {
    await applyInto(
      [
        { name: "a", data: "now a file" },
        { name: "b/", type: "5" },
        { name: "b/in", data: "i" },
        { name: "c/", type: "5", mode: 0o700 },
        { name: "c/new", data: "n" },
      ],
      { whiteoutFormat: "aufs" },
      dir,
    );
    assert.equal(await Deno.readTextFile(`${dir}/a`), "now a file");
    assert.equal(await Deno.readTextFile(`${dir}/b/in`), "i");
    assert.ok(exists(`${dir}/c/keep`) && exists(`${dir}/c/new`));
    assert.equal(lstatNs(`${dir}/c`).mode & 0o7777, 0o700);
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "apply: invalid whiteout names and unknown types are ErrBadArchive",
  ignore: !isRoot,
}, async () => {
  for (const name of ["a/.wh..", "a/.wh.", ".wh.."]) {
    const dir = await tempDir("apply-bad-");
    try {
      await assert.rejects(
        applyInto([{ name, data: "" }], { whiteoutFormat: "aufs" }, dir),
        (e) => {
          return e instanceof ErrBadArchive && e.message.includes(name);
        },
      );
    } finally {
      await removeTree(dir);
    }
  }
  const dir = await tempDir("apply-bad-");
  try {
    await assert.rejects(
      applyInto([{ name: "weird", type: "Z" }], { whiteoutFormat: "aufs" }, dir),
      (e) => e instanceof ErrBadArchive && /weird/.test(e.message) && /type/.test(e.message),
    );
  } finally {
    await removeTree(dir);
  }
});

/** `find` listing of a tree: path, type+mode, owner, size, mtime, link target, rdev. */
async function listing(dir: string): Promise<string> {
  const r = await run("find", [".", "-printf", "%p %M %U:%G %s %T@ %l %D\\n"], { cwd: dir });
  return r.stdout.split("\n").filter((l) => l && !l.startsWith(". ")).map((l) => {
    // Directory sizes depend on the history of the directory, not on the tar.
    const f = l.split(" ");
    if (f[1].startsWith("d")) f[3] = "-";
    f[6] = "";
    return f.join(" ");
  }).sort().join("\n");
}

Deno.test({
  name: "apply: same tree as the reference CLI for a GNU tar layer",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("apply-ref-");
  try {
    const src = `${tmp}/src`;
    await Deno.mkdir(`${src}/etc/sub`, { recursive: true });
    await Deno.writeTextFile(`${src}/etc/passwd`, "root:x:0:0\n");
    await Deno.writeTextFile(`${src}/etc/sub/${"n".repeat(120)}`, "long name");
    await Deno.symlink("../etc/passwd", `${src}/etc/sub/link`);
    await Deno.link(`${src}/etc/passwd`, `${src}/etc/hard`);
    await Deno.mkdir(`${src}/tmp`, { mode: 0o1777 });
    await Deno.chmod(`${src}/tmp`, 0o1777);
    await Deno.writeFile(`${src}/suid`, new Uint8Array(5000));
    await Deno.chmod(`${src}/suid`, 0o4755);
    await Deno.chown(`${src}/suid`, 12, 34);
    await run("mknod", [`${src}/null`, "c", "1", "3"]);
    await run("mkfifo", [`${src}/fifo`]);
    await run("setfattr", ["-n", "user.k", "-v", "v", `${src}/etc/passwd`]);
    await run("touch", [
      "-h",
      "-d",
      "2001-02-03 04:05:06.123456789",
      `${src}/etc/sub/link`,
      `${src}/etc`,
    ]);
    const tarPath = `${tmp}/layer.tar`;
    const t = await run("tar", ["--xattrs", "--format=posix", "-cf", tarPath, "-C", src, "."]);
    assert.equal(t.code, 0, t.stderr);

    const ours = `${tmp}/ours`;
    await Deno.mkdir(ours);
    const f = await Deno.open(tarPath);
    await applyTar(f.readable, ours, { whiteoutFormat: "aufs" });

    const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver: "vfs" };
    const id = (await reference(store, ["import-layer", "-f", tarPath])).stdout.trim().split("\n")
      .pop()!;
    const theirs = `${tmp}/g/vfs/dir/${id}`;
    assert.equal(await listing(ours), await listing(theirs));
    const fx = await run("getfattr", ["-d", "etc/passwd"], { cwd: ours });
    assert.match(fx.stdout, /user.k="v"/);
  } finally {
    await removeTree(tmp);
  }
});

/** Applies `entries` with applyTar and with the reference (import-layer), returning both trees. */
async function bothApply(
  tmp: string,
  entries: FixtureEntry[],
  whiteoutFormat: "aufs" | "keep",
  driver: "vfs" | "overlay",
  globalArgs: string[] = [],
): Promise<{ ours: string; theirs: string }> {
  const tarPath = `${tmp}/layer.tar`;
  await Deno.writeFile(tarPath, buildTar(entries));
  const ours = `${tmp}/ours`;
  await Deno.mkdir(ours);
  await applyTar(streamOf(await Deno.readFile(tarPath)), ours, { whiteoutFormat });
  const store = { graph: `${tmp}/g`, run: `${tmp}/r`, driver };
  const id = (await reference(store, [...globalArgs, "import-layer", "-f", tarPath])).stdout.trim();
  const theirs = driver === "vfs" ? `${tmp}/g/vfs/dir/${id}` : `${tmp}/g/overlay/${id}/diff`;
  return { ours, theirs };
}

Deno.test({
  name:
    "apply: a hard link's header sets the shared inode's mode, owner and times, as the reference",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("apply-hl-");
  try {
    const { ours, theirs } = await bothApply(
      tmp,
      [
        { name: "bin/", type: "5", mtime: 1600000000 },
        { name: "bin/sh", data: "#!sh", mode: 0o755, mtime: 1600000000 },
        {
          name: "bin/bash",
          type: "1",
          link: "bin/sh",
          mode: 0o4600,
          uid: 5,
          gid: 6,
          mtime: 1700000000,
        },
        { name: "bin/s", type: "2", link: "sh", mode: 0o777, mtime: 1600000000 },
        // a hard link to a symlink: owner yes, but no chmod and no times (they would follow it)
        {
          name: "bin/slink",
          type: "1",
          link: "bin/s",
          mode: 0o600,
          uid: 7,
          gid: 8,
          mtime: 1700000000,
        },
      ],
      "aufs",
      "vfs",
    );
    const sh = lstatNs(`${ours}/bin/sh`);
    assert.deepEqual([sh.mode & 0o7777, sh.uid, sh.gid, sh.mtime.sec], [0o4600, 5, 6, 1700000000]);
    const s = lstatNs(`${ours}/bin/s`);
    assert.deepEqual([s.uid, s.gid, s.mtime.sec], [7, 8, 1600000000]);
    assert.equal(await listing(ours), await listing(theirs));
  } finally {
    await removeTree(tmp);
  }
});

Deno.test({
  name:
    "apply keep: whiteout files extracted as they are, as the reference's overlay with a mount program",
  ignore: !isRoot || !referenceCli,
}, async () => {
  const tmp = await tempDir("apply-keep-");
  try {
    const entries: FixtureEntry[] = [
      { name: "./", type: "5", mode: 0o700, mtime: 1600000000 },
      { name: "etc/", type: "5", mtime: 1600000000 },
      { name: "etc/.wh.passwd", mode: 0o600, uid: 3, gid: 3, mtime: 1600000000 },
      { name: "opt/", type: "5", mtime: 1600000000 },
      { name: "opt/.wh..wh..opq", mode: 0, mtime: 1600000000 },
      { name: ".wh..wh.plnk/", type: "5", mode: 0o700, mtime: 1600000000 },
      { name: ".wh..wh.plnk/x", data: "x", mode: 0o600, mtime: 1600000000 },
      { name: "opt/f", data: "f", mtime: 1600000000 },
    ];
    const { ours, theirs } = await bothApply(tmp, entries, "keep", "overlay", [
      "--storage-opt",
      "overlay.mount_program=/bin/true",
    ]);
    assert.equal(xattr(`${ours}/opt`, "trusted.overlay.opaque"), null);
    assert.equal(await Deno.readTextFile(`${ours}/.wh..wh.plnk/x`), "x");
    assert.equal(await listing(ours), await listing(theirs));
    // like Unpack, the root entry is skipped
    assert.notEqual((await Deno.stat(ours)).mode! & 0o777, 0o700);
  } finally {
    await removeTree(tmp);
  }
});

/** A default ACL (user::rwx, group::r-x, other::---) as the kernel stores it in the xattr. */
function defaultAcl(): Uint8Array {
  const entries: [number, number][] = [[0x01, 0o7], [0x04, 0o5], [0x20, 0]];
  const v = new DataView(new ArrayBuffer(4 + entries.length * 8));
  v.setUint32(0, 2, true);
  entries.forEach(([tag, perm], i) => {
    v.setUint16(4 + i * 8, tag, true);
    v.setUint16(6 + i * 8, perm, true);
    v.setUint32(8 + i * 8, 0xffffffff, true);
  });
  return new Uint8Array(v.buffer);
}

Deno.test(
  {
    name:
      "apply: files, directories and symlinks created with their final owner and mode skip the chown/chmod, and only those: setgid dirs, default ACLs, special bits, other owners, a loose mode",
    ignore: !isRoot,
  },
  async () => {
    const enc = new TextEncoder();
    const entries: FixtureEntry[] = [
      { name: "plain/", type: "5", mode: 0o755 },
      { name: "plain/f644", data: "a", mode: 0o644 },
      { name: "plain/f666", data: "a", mode: 0o666 }, // the umask would take group and other write
      { name: "plain/suid", data: "a", mode: 0o4755 },
      { name: "plain/user", data: "a", mode: 0o640, uid: 1000, gid: 1001 },
      { name: "sgid/", type: "5", mode: 0o2775, gid: 50 },
      { name: "sgid/f", data: "a", mode: 0o644 }, // would get group 50 from the directory
      { name: "sgid/implicit/f", data: "a", mode: 0o644 },
      {
        name: "acl/",
        type: "5",
        mode: 0o755,
        rawXattrs: [[enc.encode("system.posix_acl_default"), defaultAcl()]],
      },
      { name: "acl/f", data: "a", mode: 0o644 }, // the ACL would make it 0640
      { name: "acl/sub/", type: "5", mode: 0o755 }, // inherits the default ACL
      { name: "acl/sub/f", data: "a", mode: 0o644 },
      { name: "top", data: "a", mode: 0o600 },
      { name: "plain/d1777/", type: "5", mode: 0o1777 },
      { name: "plain/d775/", type: "5", mode: 0o775 },
      { name: "plain/duser/", type: "5", mode: 0o755, uid: 1000, gid: 1000 },
      { name: "sgid/d/", type: "5", mode: 0o755 },
      { name: "plain/ln", type: "2", link: "f644" },
      { name: "plain/uln", type: "2", link: "f644", uid: 1000, gid: 1001 },
      { name: "sgid/ln", type: "2", link: "f" },
    ];
    const want = (path: string, mode: number, uid = 0, gid = 0) => ({ path, mode, uid, gid });
    const expected = [
      want("plain/f644", 0o644),
      want("plain/f666", 0o666),
      want("plain/suid", 0o4755),
      want("plain/user", 0o640, 1000, 1001),
      want("sgid/f", 0o644),
      want("sgid/implicit/f", 0o644),
      want("acl/f", 0o644),
      want("acl/sub/f", 0o644),
      want("top", 0o600),
      want("plain", 0o755),
      want("sgid", 0o2775, 0, 50),
      want("plain/d1777", 0o1777),
      want("plain/d775", 0o775),
      want("plain/duser", 0o755, 1000, 1000),
      want("sgid/d", 0o755),
      want("plain/ln", 0o777),
      want("plain/uln", 0o777, 1000, 1001),
      want("sgid/ln", 0o777),
    ];
    const check = (dir: string, what: string) => {
      for (const e of expected) {
        const st = lstatNs(`${dir}/${e.path}`);
        assert.deepEqual(
          { path: e.path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid },
          e,
          `${what}: ${e.path}`,
        );
      }
    };
    const { dir } = await applyInto(entries, { whiteoutFormat: "overlay" });
    try {
      check(dir, "empty target");
    } finally {
      await removeTree(dir);
    }
    // A setgid target: its group would go to every file made in it.
    const sgidRoot = await tempDir("apply-sgid-root-");
    try {
      Deno.chownSync(sgidRoot, 0, 50);
      Deno.chmodSync(sgidRoot, 0o2755);
      await applyInto(entries, { whiteoutFormat: "overlay" }, sgidRoot);
      check(sgidRoot, "setgid target");
    } finally {
      await removeTree(sgidRoot);
    }
  },
);

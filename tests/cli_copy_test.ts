/**
 * `copy` against the reference `containers-storage`: the same copies (from
 * the host and between layers, with and without ID mappings and --chown,
 * onto existing files and directories, failing ones) on twin stores must
 * print the same and leave the same trees: types, modes, owners, link
 * targets, hard links, xattrs, contents and the copied times to the
 * nanosecond.
 */
import assert from "node:assert/strict";
import { isRoot, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import {
  CONTAINER_ID,
  dropRoot,
  ID,
  IMAGE_ID,
  newRoot,
  ours,
  type Root,
  step,
  theirs,
  Twins,
} from "./cli_harness.ts";
import { lgetxattr, llistxattr, lsetxattr, lstatNs } from "../ffi/fs.ts";

const ignore = !referenceCli || !isRoot;

/**
 * A source tree with every kind of entry, owners, setuid, an xattr and past
 * times, in `dir` (outside both stores, so that both tools get one path),
 * and beside it a file owned by an ID no test mapping covers.
 */
async function sourceTree(dir: string): Promise<string> {
  const src = `${dir}/src`;
  const sh = `
    set -e
    mkdir -p ${src}/sub ${src}/empty
    echo one > ${src}/f1
    echo two > ${src}/sub/f2
    echo wh > ${src}/.wh.kept
    chown 5:6 ${src}/f1
    chmod 4755 ${src}/sub/f2
    ln -s f1 ${src}/link
    ln ${src}/f1 ${src}/hard
    mkfifo ${src}/fifo
    mknod ${src}/null c 1 3
    for p in f1 sub/f2 .wh.kept link fifo null sub empty; do
      touch -h -d '2001-02-03 04:05:06.123456789' ${src}/$p
    done
    mkdir ${dir}/alien && echo a > ${dir}/alien/a && chown 5000 ${dir}/alien/a
  `;
  const r = await run("sh", ["-c", sh]);
  assert.equal(r.code, 0, r.stderr);
  lsetxattr(`${src}/sub/f2`, "user.note", new TextEncoder().encode("hi"));
  return src;
}

/** Directories made by a copy carry its time; only times before this come from the source. */
const PAST = Date.UTC(2020, 0, 1) / 1000;

const KERNEL_XATTRS = ["trusted.overlay.uuid", "trusted.overlay.origin"];

/** One line per entry under `dir`: what a copy must reproduce. */
function tree(dir: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string) => {
    const path = rel === "" ? dir : `${dir}/${rel}`;
    const st = lstatNs(path);
    const type = (st.mode & 0o170000).toString(8);
    const isDir = type === "40000";
    const time = !isDir || st.mtime.sec < PAST ? `${st.mtime.sec}.${st.mtime.nsec}` : "now";
    // the kernel's marks on overlay upper directories hold random uuids and file handles
    const names = llistxattr(path).filter((k) => !KERNEL_XATTRS.includes(k)).sort();
    const xattrs = names.map((k) =>
      `${k}=${new TextDecoder().decode(lgetxattr(path, k) ?? undefined)}`
    );
    const link = type === "120000" ? Deno.readLinkSync(path) : "";
    const body = type === "100000" ? Deno.readTextFileSync(path) : "";
    lines.push(
      [rel, type, (st.mode & 0o7777).toString(8), `${st.uid}:${st.gid}`, time, link, st.nlink]
        .concat(xattrs, [JSON.stringify(body)]).join(" "),
    );
    if (!isDir) return;
    for (const name of [...Deno.readDirSync(path)].map((e) => e.name)) {
      walk(rel ? `${rel}/${name}` : name);
    }
  };
  walk("");
  return lines.sort();
}

/** Where a layer's files are, per driver. */
function layerDir(root: Root, id: string): string {
  return root.driver === "vfs" ? `${root.graph}/vfs/dir/${id}` : `${root.graph}/overlay/${id}/diff`;
}

Deno.test({
  name:
    "cli copy: files and directories into layers, from the host and from layers, as the reference does",
  ignore,
  async fn() {
    const a = await newRoot("cli-copy-ours-");
    const b = await newRoot("cli-copy-ref-");
    const host = await tempDir("cli-copy-src-");
    try {
      const twins = new Twins(a, b);
      const src = await sourceTree(host);
      const alien = `${host}/alien`;
      await twins.run([
        step("create-layer", "-i", ID.base, "-n", "plain"),
        step(
          "create-layer",
          "-i",
          ID.mid,
          "-n",
          "mapped",
          "--uidmap",
          "0:1000:100",
          "--gidmap",
          "0:2000:100",
        ),
        step("copy", src, "plain:/dst"),
        step("copy", src, "plain:/dst"),
        step("copy", `${src}/f1`, "plain:/f1copy"),
        step("copy", `${src}/f1`, `${src}/sub`, "plain:/multi"),
        step("copy", "--chown", "7:8", `${src}/f1`, "plain:/chowned"),
        step("copy", "--chown", "9", `${src}/sub`, "plain:/chowned2"),
        step("copy", src, "mapped:/dst"),
        step("copy", "plain:/dst/f1", "mapped:/fromplain"),
        step("copy", "mapped:/dst", "plain:/frommapped"),
        step("copy", "--chown", "7:8", `${src}/f1`, "mapped:/chowned"),
        step("copy", "--chown", "7:8", src, "mapped:/chowneddir"),
        step("copy", `${src}/f1`, "plain:/n1/n2/f"),
        step("copy", src, "plain:/d1/d2/d3"),
        step("copy", `${src}/f1`, "mapped:/n1/n2/f"),
        step("copy", src, "mapped:/d1/d2/d3"),
        step("copy", `${src}/f1`, "plain:"),
        step("copy", "plain:/dst", "plain:/dst2"),
        // failures: onto a directory, under a file, unmappable owners, unknown layers and paths
        step("copy", `${src}/f1`, "plain:/dst"),
        step("copy", src, "plain:/f1copy"),
        step("copy", src, "plain:/f1copy/deeper"),
        step("copy", alien, "mapped:/alien"),
        step("copy", `${alien}/a`, "mapped:/aliena"),
        step("copy", `${host}/nonexistent`, "plain:/x"),
        step("copy", src, "nope:/x"),
        step("copy", "nope:/x", "plain:/x"),
        step("copy", "--chown", "x:8", `${src}/f1`, "plain:/c"),
        step("copy", "--chown", "7:y", `${src}/f1`, "plain:/c"),
        step("copy", "--chown", "7:4294967296", `${src}/f1`, "plain:/c"),
        step("copy", "--chown", ":8", `${src}/f1`, "plain:/c"),
        step("mounted", "plain", "mapped"),
      ]);
      // a file owned outside the source layer's mapping is left out, with a logged error
      const r = await run("chown", ["0:0", `${layerDir(a, ID.mid)}/dst/f1`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await run("chown", ["0:0", `${layerDir(b, ID.mid)}/dst/f1`])).code, 0);
      await twins.run([step("copy", "mapped:/dst", "plain:/unmappable")]);
      for (const id of [ID.base, ID.mid]) {
        assert.deepEqual(tree(layerDir(a, id)), tree(layerDir(b, id)), `layer ${id}`);
      }
      // a host directory as the target, with a trailing slash for a file
      const [ha, hb] = [`${a.dir}/host/`, `${b.dir}/host/`];
      assert.deepEqual(
        await ours(a, ["copy", `${src}/f1`, ha]),
        await theirs(b, ["copy", `${src}/f1`, hb]),
      );
      assert.deepEqual(tree(ha), tree(hb));
    } finally {
      await dropRoot(a);
      await dropRoot(b);
      await removeTree(host);
    }
  },
});

Deno.test({
  name:
    "cli copy: overlay: into an image's layer and a container's, then read back by the other tool",
  ignore,
  async fn() {
    const a = await newRoot("cli-copy-ours-", "overlay");
    const b = await newRoot("cli-copy-ref-", "overlay");
    const host = await tempDir("cli-copy-src-");
    try {
      const twins = new Twins(a, b);
      const src = await sourceTree(host);
      await twins.run([
        step("create-layer", "-i", ID.base, "-n", "base"),
        step("copy", src, "base:/etc"),
        step(
          "create-layer",
          "-i",
          ID.mid,
          "-n",
          "mid",
          "--uidmap",
          "0:1000:100",
          "--gidmap",
          "0:2000:100",
          "base",
        ),
        step("copy", `${src}/sub`, "mid:/etc"),
        step("create-image", "-i", IMAGE_ID.one, "-n", "img", "mid"),
        step("create-container", "-i", CONTAINER_ID.one, "-n", "ctr", "img"),
        step("mounted", "base", "mid"),
      ]);
      // the container's layer has a random ID: each tool copies into its own store's
      const layerOf = async (root: Root) =>
        JSON.parse((await theirs(root, ["containers", "-j"])).stdout)[0].layer as string;
      const [la, lb] = [await layerOf(a), await layerOf(b)];
      const copied = ["copy", "--chown", "3:4", "mid:/etc"];
      assert.deepEqual(
        await ours(a, [...copied, `${la}:/copied`]),
        await theirs(b, [...copied, `${lb}:/copied`]),
      );
      for (const [x, y] of [[ID.base, ID.base], [ID.mid, ID.mid], [la, lb]]) {
        assert.deepEqual(tree(layerDir(a, x)), tree(layerDir(b, y)), `layer ${x}`);
      }
      // what one tool copied, the other reads through its own mount
      for (const [root, tool] of [[a, theirs], [b, ours]] as const) {
        const m = await tool(root, ["mount", "ctr"]);
        assert.equal(m.code, 0, m.stderr);
        const mountpoint = m.stdout.trim();
        assert.equal(await Deno.readTextFile(`${mountpoint}/etc/f1`), "one\n");
        assert.equal(await Deno.readTextFile(`${mountpoint}/copied/f2`), "two\n");
        const u = await tool(root, ["unmount", "ctr"]);
        assert.equal(u.code, 0, u.stderr);
      }
    } finally {
      await dropRoot(a);
      await dropRoot(b);
      await removeTree(host);
    }
  },
});

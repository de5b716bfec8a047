/**
 * The layer commands of our CLI against the reference `containers-storage`
 * (vfs driver): read commands on one store must print the same bytes, and
 * mutations run on twin stores (same explicit IDs) must print the same and
 * leave stores that the reference lists the same.
 */
import assert from "node:assert/strict";
import { isRoot, pathsBelow, referenceCli, run, sha256File } from "./helpers.ts";
import {
  dropRoot,
  ID,
  makeTarball,
  newRoot,
  normalize,
  ours,
  type Root,
  sameOn,
  sameOnOne,
  theirs,
} from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;

async function fixtures(dir: string) {
  return {
    l1: await makeTarball(dir, "l1", { "a.txt": "hello\n", "d/b": "x\n", "d/e/f": "deep\n" }),
    l2: await makeTarball(dir, "l2", { "a.txt": "changed\n", "n/new": "new\n" }),
    l3: await makeTarball(dir, "l3", { "z": "zz\n" }),
    md: await Deno.writeTextFile(`${dir}/md.txt`, "from a file\n").then(() => `${dir}/md.txt`),
  };
}

/** Populates a store with the reference: three layers with names, metadata, mappings, big data. */
async function populate(root: Root, f: Awaited<ReturnType<typeof fixtures>>, tool = theirs) {
  const ok = async (args: string[], stdin?: Uint8Array) => {
    const r = await tool(root, args, { stdin });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
  };
  await ok(["import-layer", "-i", ID.base, "-n", "base", "-f", f.l1]);
  await ok([
    "create-layer",
    "-i",
    ID.mid,
    "-n",
    "mid",
    "--uidmap",
    "0:1000:100",
    "--gidmap",
    "0:2000:100",
    ID.base,
  ]);
  await ok(
    ["import-layer", "-i", ID.top, "-n", "top", "-n", "top2", ID.base],
    await Deno.readFile(f.l2),
  );
  await ok(["set-metadata", "-m", "hello\n", "base"]);
  await ok(["set-layer-data", "-f", f.md, "base", "k1"]);
  await ok(["set-layer-data", "base", "A/b"], new TextEncoder().encode("data"));
}

Deno.test({
  name: "cli layers: a store written by the reference reads the same with both tools",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      const f = await fixtures(root.dir);
      await populate(root, f);
      const cases = [
        ["layers"],
        ["layers", "-j"],
        ["layers", "-t"],
        ["layers", "--tree", "--json=false"],
        ["layer", "base", "mid", "top"],
        ["layer", "-j", "base", "nope"],
        ["layer", "nope"],
        ["layer-parent-owners", "-j", "base", "top"],
        ["exists", "base"],
        ["exists", "-j", "base", "nope", "top2"],
        ["exists", "-q", "nope"],
        ["exists", "-l", ID.mid.slice(0, 12)],
        ["exists", "-i", "base"],
        ["exists", "-c", "base"],
        ["get-names", "top"],
        ["get-names", "-j", ID.top],
        ["get-names", "-j", "mid"],
        ["get-names", "nope"],
        ["metadata", "base", "mid", "nope"],
        ["metadata", "-q", "base", "mid"],
        ["metadata", "-j", "base", "mid", "nope"],
        ["list-layer-data", "base"],
        ["list-layer-data", "-j", "base"],
        ["list-layer-data", "-j", "mid"],
        ["list-layer-data", "nope"],
        ["get-layer-data", "base", "k1"],
        ["get-layer-data", "base", "A/b"],
        ["get-layer-data", ID.base, "nokey"],
        ["get-layer-data", "nope", "k1"],
        ["diffsize", ID.base],
        ["diffsize", ID.top],
        ["diffsize", ID.top, ID.mid],
        ["diffsize", "nope"],
        ["changes", "-j", ID.mid],
        ["changes", ID.mid],
        ["changes", "nope"],
        ["mounted", ID.base],
        ["mounted", "-j", ID.base, "nope"],
        ["status"],
        ["status", "-j"],
      ];
      for (const args of cases) await sameOnOne(root, args);
      // The reference lists changes in Go map order (random): compare as sets.
      for (const args of [["changes", ID.base], ["changes", "-j", ID.top]]) {
        const [a, b] = [await ours(root, args), await theirs(root, args)];
        const lines = (s: string) =>
          (args[1] === "-j" ? JSON.parse(s).map(JSON.stringify) : s.split("\n")).sort();
        assert.deepEqual(lines(a.stdout), lines(b.stdout), args.join(" "));
        assert.deepEqual([a.code, a.stderr], [b.code, b.stderr]);
      }
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name: "cli layers: diff reproduces the imported tarballs byte for byte",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      const f = await fixtures(root.dir);
      await populate(root, f);
      for (const [id, tar] of [[ID.base, f.l1], [ID.top, f.l2]]) {
        const out = `${root.dir}/out.tar`;
        const r = await ours(root, ["diff", "-u", "-f", out, id]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await sha256File(out), await sha256File(tar));
        const gz = `${root.dir}/out.tar.gz`;
        assert.equal((await ours(root, ["diff", "--gzip", "--file", gz, id])).code, 0);
        const gunzip = await new Deno.Command("gunzip", { args: ["-c", gz], stdout: "piped" })
          .output();
        assert.deepEqual(gunzip.stdout, await Deno.readFile(tar));
        const stdout = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "cli.ts", "-g", root.graph, "-R", root.run, "-s", "vfs", "diff", id],
          cwd: new URL("..", import.meta.url).pathname,
          stdout: "piped",
        }).output();
        assert.deepEqual(stdout.stdout, await Deno.readFile(tar));
      }
      for (const args of [["diff", "-x", ID.base], ["diff", "-b", ID.base], ["diff", "nope"]]) {
        await sameOnOne(root, args);
      }
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name: "cli layers: mutations on twin stores print the same and leave the same stores",
  ignore,
  async fn() {
    const a = await newRoot("cli-ours-");
    const b = await newRoot("cli-ref-");
    try {
      const f = await fixtures(a.dir);
      const l2 = await Deno.readFile(f.l2);
      const l3 = await Deno.readFile(f.l3);
      const steps: [string[], Uint8Array?][] = [
        [["import-layer", "-i", ID.base, "-n", "base", "-f", f.l1]],
        [["import-layer", "-j", "-i", ID.mid, "--name", "mid", "base"], l2],
        [["create-layer", "-i", ID.top, "-n", "top", "-l", "label", "mid"]],
        [[
          "create-layer",
          "-j",
          "-r",
          "-i",
          ID.extra,
          "--uidmap",
          "0:1000:10",
          "--gidmap",
          "0:2000:10",
          "top",
        ]],
        [["create-layer", "-i", ID.top]],
        [["create-layer", "nope"]],
        [["create-layer", "--uidmap", "0:1"]],
        [["create-layer", "--hostuidmap", "--uidmap", "0:1:1"]],
        [["create-layer", "--hostgidmap", "--subgidmap", "u"]],
        [["import-layer", "-f", "/nonexistent/x.tar"]],
        [["add-names", "-n", "alias", "base"]],
        [["add-names", "-j", "-n", "a2", "-n", "a3", "base"]],
        [["set-names", "-n", "x", "-n", "y", "top"]],
        [["set-names", "-j", "-n", "top", "x"]],
        [["add-names", "-n", "q", "nope"]],
        [["get-names", "base"]],
        [["set-metadata", "-m", "md", "base"]],
        [["set-metadata", "--metadata-file", f.md, "mid"]],
        [["set-metadata", "base"]],
        [["set-metadata", "-f", "/nonexistent/md", "base"]],
        [["set-metadata", "-m", "x", "nope"]],
        [["metadata", "base", "mid", "top"]],
        [["set-layer-data", "base", "k1"], l3],
        [["set-layer-data", "-f", f.md, "base", "k2"]],
        [["set-layer-data", "base", ""], l3],
        [["set-layer-data", "nope", "k"], l3],
        [["list-layer-data", "base"]],
        [["get-layer-data", "base", "k2"]],
        [["applydiff", "-f", f.l3, ID.top]],
        [["applydiff", ID.extra], l3],
        [["applydiff", "nope"], l3],
        [["diffsize", ID.top]],
        [["changes", ID.extra]],
        [["mount", ID.top]],
        [["mounted", ID.top]],
        [["mount", "-j", ID.top, ID.mid]],
        [["unmount", ID.top]],
        [["unmount", "-j", ID.top]],
        [["mounted", "-j", ID.top]],
        [["umount", ID.top, ID.mid]],
        [["unmount", "-f", ID.top]],
        [["mount", "nope"]],
        [["mount", "-j", "nope"]],
        [["unmount", "nope"]],
        [["mounted", "nope"]],
        [["delete-layer", ID.base]],
        [["delete-layer", "-j", "nope", ID.extra]],
        [["delete", "nope"]],
        [["delete", ID.top]],
        [["layers", "-t"]],
        [["shutdown", "-j"]],
        [["shutdown"]],
        [["wipe", "-j"]],
        [["layers", "-j"]],
        [["wipe"]],
      ];
      for (const [args, stdin] of steps) {
        await sameOn(a, b, args, { stdin });
        // What we wrote must read back the same through the reference.
        const la = normalize(await theirs(a, ["layers", "-j"]), a);
        const lb = normalize(await theirs(b, ["layers", "-j"]), b);
        assert.deepEqual(la, lb, `layers after ${args.join(" ")}`);
      }
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

Deno.test({
  name: "cli layers: a store written by us is read, extended and deleted by the reference",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      const f = await fixtures(root.dir);
      await populate(root, f, ours);
      const out = `${root.dir}/out.tar`;
      assert.equal((await theirs(root, ["diff", "-u", "-f", out, ID.top])).code, 0);
      assert.equal(await sha256File(out), await sha256File(f.l2));
      assert.equal((await theirs(root, ["create-layer", "-i", ID.extra, ID.top])).code, 0);
      await sameOnOne(root, ["layers", "-j"]);
      await sameOnOne(root, ["get-layer-data", "base", "A/b"]);
      for (const id of [ID.extra, ID.top, ID.mid, ID.base]) {
        const r = await theirs(root, ["delete-layer", id]);
        assert.equal(r.code, 0, r.stderr);
      }
      await sameOnOne(root, ["layers"]);
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name:
    "cli layers: text that is no tar, plain or compressed, fails with Go's words and leaves nothing",
  ignore,
  async fn() {
    const a = await newRoot("cli-ours-");
    const b = await newRoot("cli-ref-");
    try {
      const line = "this is plain text, not a tar archive\n";
      // Go's archive/tar reads a header block: less than 512 bytes stop inside it, more
      // are a block that fails the header checks.
      const texts = {
        short: [line, "unexpected EOF"],
        long: [line.repeat(40), "archive/tar: invalid tar header"],
      };
      const inputs: [string, string][] = [];
      for (const [size, [text, words]] of Object.entries(texts)) {
        const plain = `${a.dir}/${size}.txt`;
        await Deno.writeTextFile(plain, text);
        inputs.push([plain, words]);
        for (
          const [tool, ext] of [["gzip", "gz"], ["bzip2", "bz2"], ["xz", "xz"], ["zstd", "zst"]]
        ) {
          const r = await run("sh", ["-c", `${tool} -c < "$0" > "$0.${ext}"`, plain]);
          assert.equal(r.code, 0, r.stderr);
          inputs.push([`${plain}.${ext}`, words]);
        }
      }
      for (const root of [a, b]) {
        const tool = root === a ? ours : theirs;
        const r = await tool(root, ["create-layer", "-i", ID.base, "-n", "base"]);
        assert.equal(r.code, 0, r.stderr);
      }
      const before = [a, b].map((root) => [pathsBelow(root.graph), pathsBelow(root.run)]);
      // each input through one command, alternating, so that both commands meet every format
      // and both failures (each start of our CLI costs a third of a second)
      for (const [i, [file, words]] of inputs.entries()) {
        const args = i % 2 === 0
          ? ["applydiff", "-f", file, ID.base]
          : ["import-layer", "-f", file];
        const what = `${args[0]} ${file.slice(a.dir.length + 1)}`;
        const [mine, ref] = await Promise.all([ours(a, args), theirs(b, args)]);
        assert.equal(ref.code, 1, what);
        assert.ok(
          (ref.stdout + ref.stderr).includes(words),
          `${what}: reference said ${ref.stderr}`,
        );
        assert.equal(mine.code, 1, what);
        assert.ok(mine.stderr.includes(words), `${what}: we said ${mine.stderr}`);
      }
      assert.deepEqual(
        [a, b].map((root) => [pathsBelow(root.graph), pathsBelow(root.run)]),
        before,
      );
      const la = normalize(await theirs(a, ["layers", "-j"]), a);
      const lb = normalize(await theirs(b, ["layers", "-j"]), b);
      assert.deepEqual(la, lb);
      assert.equal((await ours(a, ["diffsize", ID.base])).stdout, "0\n");
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

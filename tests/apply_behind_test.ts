/**
 * What the apply does behind its back (lib/archive/write_behind.ts,
 * lib/archive/usage_tally.ts): large files written on Deno's pool end up
 * with their bytes, owner, mode, xattrs and times, also when hard links
 * name them; a failure in the middle of a large file leaves nothing
 * written once the apply has settled; the usage tally equals a walk of the
 * tree, or gives up.
 */
import assert from "node:assert/strict";
import { applyTar } from "../lib/archive/apply.ts";
import { directorySize } from "../drivers/overlay/diff.ts";
import { lgetxattr, lstatNs } from "../ffi/fs.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { isRoot, layerTree, removeTree, sha256File, tempDir } from "./helpers.ts";
import { sha256 } from "./archive_fixture.ts";

/** Bytes of a large file, different for each `seed`. */
function big(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 7 + seed) % 253);
}

/** Files above the write-behind size, links to them, small files between, and a whiteout. */
function layer(): FixtureEntry[] {
  return [
    { name: "./usr/", type: "5" },
    { name: "./usr/bin/", type: "5" },
    ...[0, 1, 2, 3, 4, 5].map((i) => ({
      name: `./usr/bin/tool${i}`,
      data: big(70_000 + i * 400_000, i),
      mode: i % 2 ? 0o4755 : 0o640,
      uid: 1000 + i,
      gid: 2000 + i,
      mtime: 1_600_000_000 + i + 0.25,
      xattrs: { "user.tool": `t${i}` },
    })),
    // a link's header sets the shared inode's metadata, after the file's own
    { name: "./usr/bin/tool1-link", type: "1", link: "./usr/bin/tool1", mode: 0o700, uid: 7 },
    ...Array.from({ length: 50 }, (_, i) => ({ name: `./etc/f${i}`, data: "x".repeat(i) })),
    { name: "./usr/bin/.wh.nothing", data: "" },
  ];
}

Deno.test({
  name: "apply behind: large files get their bytes and metadata, links after their targets",
  ignore: !isRoot,
  fn: async () => {
    const entries = layer();
    for (const chunk of [700, 65536]) {
      const dir = await tempDir("apply-behind-");
      try {
        await applyTar(streamOf(buildTar(entries), chunk), dir, { whiteoutFormat: "overlay" });
        for (const [i, e] of entries.slice(2, 8).entries()) {
          const path = `${dir}/usr/bin/tool${i}`;
          assert.equal(await sha256File(path), await sha256(e.data as Uint8Array), path);
          const st = lstatNs(path);
          assert.equal(new TextDecoder().decode(lgetxattr(path, "user.tool")!), `t${i}`);
          if (i === 1) {
            // the link's header won: its mode and owner, its mtime (0, the fixture's default)
            assert.deepEqual([st.mode & 0o7777, st.uid, st.nlink], [0o700, 7, 2]);
            continue;
          }
          assert.deepEqual(
            [st.mode & 0o7777, st.uid, st.gid, st.mtime.sec, st.mtime.nsec],
            [i % 2 ? 0o4755 : 0o640, 1000 + i, 2000 + i, 1_600_000_000 + i, 250_000_000],
            path,
          );
        }
      } finally {
        await removeTree(dir);
      }
    }
  },
});

Deno.test("apply behind: input failing inside a large file rejects, and nothing is written after", async () => {
  const tar = buildTar([
    { name: "./a", data: big(3_000_000, 1) },
    { name: "./b", data: big(3_000_000, 2) },
  ]);
  const failure = new Error("network gone");
  let sent = 0;
  const input = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= 4_500_000) return c.error(failure);
      c.enqueue(tar.slice(sent, sent + 65536));
      sent += 65536;
    },
  });
  const dir = await tempDir("apply-behind-fail-");
  try {
    const e = await applyTar(input, dir, { whiteoutFormat: "aufs" }).catch((e) => e);
    assert.equal(e, failure);
    const now = await layerTree(dir);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await layerTree(dir), now, "the tree changed after the apply settled");
    assert.equal(Deno.statSync(`${dir}/a`).size, 3_000_000);
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "apply behind: the usage tally equals a walk of the tree, or gives up",
  ignore: !isRoot,
  fn: async () => {
    const usage = async (entries: FixtureEntry[], before?: (dir: string) => void) => {
      const dir = await tempDir("apply-usage-");
      try {
        before?.(dir);
        const r = await applyTar(streamOf(buildTar(entries)), dir, {
          whiteoutFormat: "overlay",
          measureUsage: true,
        });
        return { tallied: r.usage, walked: await directorySize(dir) };
      } finally {
        await removeTree(dir);
      }
    };
    const whole = await usage([
      ...layer(),
      { name: "./dev/null", type: "3", devmajor: 1, devminor: 3 },
      { name: "./run/fifo", type: "6" },
      { name: "./usr/share/é-ünicode", type: "2", link: "../bin/tool-é" },
    ]);
    assert.ok(whole.tallied !== undefined && whole.tallied > 2_000_000);
    assert.equal(whole.tallied, whole.walked);
    // a whiteout of nothing removes nothing: the tally goes on
    const wh = await usage([{ name: "./a", data: "12345" }, { name: "./.wh.b", data: "" }]);
    assert.deepEqual(wh, { tallied: 5, walked: 5 });
    // what the layer itself made and then removes or replaces: a walk decides
    for (
      const entries of [
        [{ name: "./a", data: "12345" }, { name: "./.wh.a", data: "" }],
        [{ name: "./a", data: "12345" }, { name: "./a", data: "1" }],
        [{ name: "./d/", type: "5" }, { name: "./d/f", data: "12" }, { name: "./d", data: "1" }],
        [{ name: "./a", data: "1" }, { name: "./h", type: "1", link: "./a" }, {
          name: "./.wh.a",
          data: "",
        }],
      ] as FixtureEntry[][]
    ) {
      const r = await usage(entries);
      assert.equal(r.tallied, undefined, JSON.stringify(entries.map((e) => e.name)));
    }
    // a target that is not empty is walked
    const full = await usage(
      [{ name: "./a", data: "1" }],
      (dir) => Deno.writeTextFileSync(`${dir}/old`, "old"),
    );
    assert.deepEqual(full, { tallied: undefined, walked: 4 });
  },
});

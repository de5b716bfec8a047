/**
 * Re-owning a layer created with ID mappings other than its parent's, on
 * vfs and on overlay that cannot shift IDs at mount time: our CLI and the
 * reference, each on its own store, must leave the same owners, modes,
 * capabilities and hard links below the new layer's root. Owners outside
 * the new mapping become 65534, except one equal to the host ID of root; a
 * parent's 0:0 owner outside the parent's mapping counts as container root;
 * a hard-linked file is re-owned once (re-owning it again through its
 * second name was our "host ID has no container ID in the mapping").
 * @module
 */

import assert from "node:assert/strict";
import { lgetxattr, lstatNs } from "../ffi/fs.ts";
import { isRoot, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { buildTar } from "./tar_fixtures.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;
// a version 2 capability set holding CAP_NET_BIND_SERVICE
const CAP = "\x01\x00\x00\x02\x00\x04\x00\x00" + "\x00".repeat(12);

/** Owners inside and outside 0:1000:100 / 0:2000:100, and what chown(2) must not lose. */
const parentTar = buildTar([
  { name: "root", data: "r", uid: 0, gid: 0 },
  { name: "in", data: "i", uid: 5, gid: 5 },
  { name: "root-host-ids", data: "x", uid: 1000, gid: 2000 },
  { name: "mixed", data: "m", uid: 1000, gid: 7 },
  { name: "d", type: "5", uid: 200, gid: 300 },
  { name: "d/out", data: "o", uid: 70000, gid: 80000 },
  { name: "suid", data: "s", mode: 0o4755, uid: 5, gid: 5 },
  { name: "sgid-out", data: "g", mode: 0o2755, uid: 200, gid: 300 },
  { name: "cap", data: "c", uid: 5, gid: 5, xattrs: { "security.capability": CAP } },
  { name: "hard", data: "h", uid: 6, gid: 6 },
  { name: "hard2", type: "1", link: "hard", uid: 6, gid: 6 },
  { name: "sym", type: "2", link: "in", uid: 200, gid: 5 },
]);

/** Only owners a first mapping covers, so a second mapping can follow it. */
const mappableTar = buildTar([
  { name: "in", data: "i", uid: 5, gid: 5 },
  { name: "root", data: "r", uid: 0, gid: 0 },
  { name: "hard", data: "h", uid: 6, gid: 6 },
  { name: "hard2", type: "1", link: "hard", uid: 6, gid: 6 },
]);

const MAP_A = ["--uidmap", "0:1000:100", "--gidmap", "0:2000:100"];
const MAP_B = ["--uidmap", "0:5000:100", "--gidmap", "0:6000:100"];
const NO_ROOT = ["--uidmap", "1:3000:100", "--gidmap", "1:4000:100"];

/** Each entry below `root`: type and mode, owner, link count, capability. */
function describe(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of [...Deno.readDirSync(`${root}${rel}`)].map((e) => e.name).sort()) {
      const path = `${root}${rel}/${name}`;
      const st = lstatNs(path);
      const cap = lgetxattr(path, "security.capability");
      out[`${rel}/${name}`] = `${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink}` +
        (cap ? ` cap ${[...cap].join(",")}` : "");
      if ((st.mode & 0o170000) === 0o040000) walk(`${rel}/${name}`);
    }
  };
  walk("");
  return out;
}

/** Runs one CLI (ours or the reference) on the store in `dir`. */
function attempt(dir: string, driver: string, ours: boolean, args: string[], stdin?: Uint8Array) {
  const global = ["-g", `${dir}/g`, "-R", `${dir}/r`, "-s", driver];
  return ours
    ? run(Deno.execPath(), ["run", "-A", cli, ...global, ...args], { stdin })
    : run(referenceCli!, [...global, ...args], { stdin });
}

/** One store driven by one CLI; every command must succeed. */
function store(dir: string, driver: string, ours: boolean) {
  return async (args: string[], stdin?: Uint8Array): Promise<string> => {
    const r = await attempt(dir, driver, ours, args, stdin);
    assert.equal(r.code, 0, `${ours ? "ours" : "reference"} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
}

for (const driver of ["vfs", "overlay"]) {
  Deno.test({
    name:
      `chown: create-layer with other mappings than its parent's re-owns like the reference (${driver})`,
    ignore: !isRoot || !referenceCli,
    fn: async () => {
      const root = await tempDir("cstest-chown-");
      try {
        const trees = await Promise.all([true, false].map(async (ours) => {
          const dir = `${root}/${ours ? "ours" : "ref"}`;
          // overlay that cannot shift IDs at mount time, as on kernels without
          // ID-mapped lowers: the layer's files are re-owned instead
          await Deno.mkdir(`${dir}/r/overlay`, { recursive: true });
          await Deno.writeTextFile(`${dir}/r/overlay/idmapped-lower-dir-false`, "");
          const cs = store(dir, driver, ours);
          const trees: Record<string, Record<string, string>> = {};
          const look = async (layer: string, what: string) => {
            const top = await cs(["mount", layer]);
            const st = lstatNs(top);
            trees[what] = { "/": `${st.mode.toString(8)} ${st.uid}:${st.gid}`, ...describe(top) };
            await cs(["unmount", layer]);
          };
          const parent = await cs(["import-layer"], parentTar);
          await look(await cs(["create-layer", ...MAP_A, parent]), "mapped from the host's IDs");
          const base = await cs(["import-layer"], mappableTar);
          const mid = await cs(["create-layer", ...MAP_A, base]);
          const midDir = await cs(["mount", mid]);
          await Deno.writeTextFile(`${midDir}/new`, "written by root");
          await cs(["unmount", mid]);
          await look(await cs(["create-layer", ...MAP_B, mid]), "mapped from other mappings");
          // No container ID 0: vfs leaves the layer's root as it is (1.43's RootPair
          // chowns to -1); overlay refuses (GetRootUIDGID), with the same words.
          if (driver === "vfs") {
            await look(
              await cs(["create-layer", ...NO_ROOT]),
              "a base layer without container root",
            );
            await look(await cs(["create-layer", ...NO_ROOT, parent]), "without container root");
          } else {
            const r = await attempt(dir, driver, ours, ["create-layer", ...NO_ROOT, parent]);
            // the reference also names the layer being created ("creating read-write layer …: ")
            const err = r.stderr.trim().split(": ").slice(-1)[0];
            trees["refused without container root"] = { [String(r.code)]: err };
          }
          return trees;
        }));
        assert.deepEqual(trees[0], trees[1]);
        const mapped = trees[0]["mapped from the host's IDs"];
        assert.equal(mapped["/d/out"], "100644 65534:65534 n1");
        assert.equal(mapped["/root-host-ids"], "100644 1000:2000 n1", "root's host IDs stay");
        assert.equal(mapped["/mixed"], "100644 1000:2007 n1");
        assert.equal(mapped["/hard2"], "100644 1006:2006 n2");
        const remapped = trees[0]["mapped from other mappings"];
        assert.equal(remapped["/new"], "100644 5000:6000 n1", "0:0 is taken as container root");
        assert.equal(remapped["/hard2"], "100644 5006:6006 n2", "re-owned once");
        if (driver === "vfs") {
          const noRoot = trees[0]["without container root"];
          assert.equal(noRoot["/in"], "100644 3004:4004 n1");
          assert.equal(noRoot["/root"], "100644 65534:65534 n1");
        } else {
          assert.equal(
            trees[0]["refused without container root"]["1"],
            "container ID 0 cannot be mapped to a host ID",
          );
        }
      } finally {
        await removeTree(root);
      }
    },
  });
}

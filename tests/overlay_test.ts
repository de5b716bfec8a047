/**
 * Overlay driver, for real as root: layout against what the reference CLI
 * creates, mounts through mount(2) with reference counts, page-size
 * fallback, options and their errors, whiteouts, native and naive diffs,
 * ID-map updates, additional image stores, and mount programs.
 * @module
 */

import overlay from "../drivers/overlay/mod.ts";
import type { Driver } from "../drivers/driver.ts";
import { ChangeKind } from "../drivers/driver.ts";
import { ErrConfig, ErrDriverNotSupported } from "../lib/errors.ts";
import { lgetxattr, lsetxattr, lstatNs } from "../ffi/fs.ts";
import {
  isRoot,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  run,
  tempDir,
} from "./helpers.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import {
  assertEquals,
  assertMatch,
  assertRejects,
  assertTrue as assert,
  fuseOverlayfs,
  mountedAt,
  treeOf,
  withoutOnPath,
} from "./overlay_helpers.ts";

const ignore = !isRoot;
if (ignore) console.log(`overlay tests ${notRootReason}`);

interface Env {
  root: string;
  home: string;
  runHome: string;
  driver: Driver;
}

async function withDriver(
  fn: (env: Env) => Promise<void>,
  opts: { options?: string[]; root?: string; stores?: string[] } = {},
): Promise<void> {
  const root = opts.root ?? await tempDir("cstest-overlay-");
  const home = `${root}/graph/overlay`;
  const runHome = `${root}/run/overlay`;
  try {
    const driver = await overlay.init({
      home,
      runHome,
      options: opts.options ?? [],
      additionalImageStores: opts.stores,
    });
    try {
      await fn({ root, home, runHome, driver });
    } finally {
      await driver.cleanup();
    }
  } finally {
    await removeTree(root);
  }
}

const id = (n: number) => n.toString(16).padStart(64, "0");
const tarOf = (entries: FixtureEntry[]) => streamOf(buildTar(entries));

Deno.test({
  name: "overlay: init probes features, caches them in the run home and makes the home private",
  ignore,
  fn: () =>
    withDriver(async ({ home, runHome, driver }) => {
      const cache = [...Deno.readDirSync(runHome)].map((e) => e.name).sort();
      // this kernel stacks overlay over ID-mapped lowers (see overlay_idmap_test.ts)
      assertEquals(cache, [
        "idmapped-lower-dir-true",
        "metacopy()-false",
        "native-diff()-true",
        "overlay-true",
      ]);
      assertEquals(Deno.readTextFileSync(`${home}/.has-mount-program`), "false");
      assertEquals(Deno.statSync(`${home}/l`).mode! & 0o777, 0o755);
      const line = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
        .find((l) => l.split(" ")[4] === home);
      assert(line, "home is bind-mounted onto itself");
      assert(!/ shared:/.test(line), "home mount is private");
      const status = await driver.status();
      assertEquals(status[0][0], "Backing Filesystem"); // its value is compared with the reference below
      assertEquals(status.slice(1), [
        ["Supports d_type", "true"],
        ["Native Overlay Diff", "true"],
        ["Using metacopy", "false"],
      ]);
      // a cached negative result is honoured with its recorded reason (the fallback to
      // fuse-overlayfs, when it is installed, is tested below)
      await driver.cleanup();
      Deno.removeSync(`${runHome}/overlay-true`);
      Deno.writeTextFileSync(
        `${runHome}/overlay-false`,
        "kernel does not support overlay fs: test",
      );
      await withoutOnPath("fuse-overlayfs", () =>
        assertRejects(
          () => overlay.init({ home, runHome, options: [] }),
          ErrDriverNotSupported,
          "kernel does not support overlay fs: test",
        ));
    }),
});

Deno.test({
  name:
    "overlay: a probe killed mid-way leaves a mount and a directory that the next probe clears (a fresh one it leaves alone)",
  ignore,
  fn: () =>
    withDriver(async ({ home, runHome, driver }) => {
      await driver.cleanup();
      // what a probe killed between its mount and its unmount leaves
      const old = `${home}/metacopy-check123456`;
      const young = `${home}/metacopy-check654321`;
      for (const dir of [old, young]) {
        for (const d of ["l1", "l2", "work", "merged"]) {
          Deno.mkdirSync(`${dir}/${d}`, { recursive: true });
        }
      }
      const mounted = await run("mount", [
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${old}/l1,upperdir=${old}/l2,workdir=${old}/work`,
        `${old}/merged`,
      ]);
      assertEquals(mounted.code, 0, mounted.stderr);
      const hourAgo = new Date(Date.now() - 3_600_000);
      Deno.utimeSync(old, hourAgo, hourAgo);
      // the metacopy probe runs again (its result was never cached)
      Deno.removeSync(`${runHome}/metacopy()-false`);
      const again = await overlay.init({ home, runHome, options: [] });
      try {
        assertEquals(mountedAt(`${old}/merged`), [], "the leftover mount is gone");
        assert(
          !Deno.statSync(home).isFile &&
            ![...Deno.readDirSync(home)].some((e) => e.name === "metacopy-check123456"),
          "and its directory",
        );
        assert(
          Deno.statSync(young).isDirectory,
          "a probe directory of the last minute may be another process's",
        );
        assert(
          Deno.statSync(`${runHome}/metacopy()-false`).isFile,
          "the feature is probed and cached",
        );
      } finally {
        await again.cleanup();
        Deno.removeSync(young, { recursive: true });
      }
    }),
});

Deno.test({
  name:
    "overlay: where the kernel's overlay is refused, fuse-overlayfs mounts, also after a reboot, as in the reference",
  ignore: ignore || !referenceCli || !fuseOverlayfs,
  fn: async () => {
    const root = await tempDir("cstest-overlay-");
    const ours = { home: `${root}/ours/g/overlay`, runHome: `${root}/ours/r/overlay`, options: [] };
    const ref = { graph: `${root}/ref/g`, run: `${root}/ref/r`, driver: "overlay" };
    const refHome = `${ref.graph}/overlay`;
    const fuseType = "fuse.fuse-overlayfs";
    try {
      await (await overlay.init(ours)).cleanup();
      await reference(ref, ["status"]);
      for (const runHome of [ours.runHome, `${ref.run}/overlay`]) {
        Deno.removeSync(`${runHome}/overlay-true`);
        Deno.writeTextFileSync(`${runHome}/overlay-false`, "kernel does not support overlay fs: x");
      }
      for (const [n, when] of [[1, "after the refusal"], [2, "after a reboot"]] as const) {
        if (n === 2) {
          // a reboot empties the run roots; the homes remember the mount program
          await Deno.remove(`${root}/ours/r`, { recursive: true });
          await Deno.remove(ref.run, { recursive: true });
        }
        const driver = await overlay.init(ours);
        try {
          await reference(ref, ["status"]);
          for (const home of [ours.home, refHome]) {
            assertEquals(Deno.readTextFileSync(`${home}/.has-mount-program`), "true", when);
          }
          if (n === 2) {
            const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
            assertEquals(names(ours.runHome), [], "the kernel is not probed again");
            assertEquals(names(`${ref.run}/overlay`), []);
          }
          await driver.create(id(n), "");
          const m = await driver.get(id(n));
          assertEquals(mountedAt(m).map((i) => i.fstype), [fuseType], when);
          await driver.put(id(n));
          assertEquals(mountedAt(m), [], when);
        } finally {
          await driver.cleanup();
        }
        const layer = (await reference(ref, ["create-layer"])).stdout.trim();
        const m = (await reference(ref, ["mount", layer])).stdout.trim();
        assertEquals(mountedAt(m).map((i) => i.fstype), [fuseType], when);
        await reference(ref, ["unmount", layer]);
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "overlay: a home holding a mount program's whiteouts or xattrs is recorded as needing one",
  ignore: ignore || !referenceCli,
  fn: async () => {
    const root = await tempDir("cstest-overlay-");
    try {
      const traces: Record<string, (layer: string) => void> = {
        none: () => {},
        whiteout: (layer) => Deno.writeTextFileSync(`${layer}/diff/.wh.gone`, ""),
        xattr: (layer) =>
          lsetxattr(`${layer}/diff`, "user.fuseoverlayfs.x", new TextEncoder().encode("1")),
      };
      for (const [what, leave] of Object.entries(traces)) {
        for (const who of ["ours", "ref"]) {
          const layer = `${root}/${what}-${who}/g/overlay/${id(1)}`;
          Deno.mkdirSync(`${layer}/diff`, { recursive: true });
          leave(layer);
        }
        const d = await overlay.init({
          home: `${root}/${what}-ours/g/overlay`,
          runHome: `${root}/${what}-ours/r/overlay`,
          options: [],
        });
        await d.cleanup();
        const ref = {
          graph: `${root}/${what}-ref/g`,
          run: `${root}/${what}-ref/r`,
          driver: "overlay",
        };
        await reference(ref, ["status"]);
        const flag = (who: string) =>
          Deno.readTextFileSync(`${root}/${what}-${who}/g/overlay/.has-mount-program`);
        assertEquals(flag("ours"), String(what !== "none"), what);
        assertEquals(flag("ours"), flag("ref"), what);
      }
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "overlay: status matches the reference CLI's status on the same kind of root",
  ignore: ignore || !referenceCli,
  fn: () =>
    withDriver(async ({ root, driver }) => {
      const ref = { graph: `${root}/ref/g`, run: `${root}/ref/r`, driver: "overlay" };
      const r = await reference(ref, ["status"]);
      const out = r.stdout + r.stderr; // the reference prints status on stderr
      for (const [k, v] of await driver.status()) {
        assert(out.includes(`${k}: ${v}\n`), `${k}: ${v} not in ${JSON.stringify(out)}`);
      }
    }),
});

Deno.test({
  name: "overlay: layer layout, short links and lower files are those the reference creates",
  ignore: ignore || !referenceCli,
  fn: () =>
    withDriver(async ({ root, home, driver }) => {
      const ref = { graph: `${root}/ref/g`, run: `${root}/ref/r`, driver: "overlay" };
      const r1 = (await reference(ref, ["create-layer"])).stdout.trim();
      const r2 = (await reference(ref, ["create-layer", r1])).stdout.trim();
      const r3 = (await reference(ref, ["create-layer", r2])).stdout.trim();
      await driver.create(id(1), "");
      await driver.create(id(2), id(1));
      await driver.createReadWrite(id(3), id(2));
      const describe = (h: string, lid: string) => {
        const out: Record<string, string> = {};
        for (const name of [...Deno.readDirSync(`${h}/${lid}`)].map((e) => e.name).sort()) {
          const st = Deno.lstatSync(`${h}/${lid}/${name}`);
          out[name] = `${st.isDirectory ? "d" : "f"}${(st.mode! & 0o7777).toString(8)}:${st.uid}`;
        }
        out["."] = (Deno.statSync(`${h}/${lid}`).mode! & 0o7777).toString(8);
        const link = Deno.readTextFileSync(`${h}/${lid}/link`);
        assertMatch(link, /^[A-Z2-7]{26}$/);
        assertEquals(Deno.readLinkSync(`${h}/l/${link}`), `../${lid}/diff`);
        return out;
      };
      const refHome = `${ref.graph}/overlay`;
      for (const [ours, theirs] of [[id(1), r1], [id(2), r2], [id(3), r3]]) {
        assertEquals(describe(home, ours), describe(refHome, theirs));
      }
      const link = (h: string, l: string) => Deno.readTextFileSync(`${h}/${l}/link`);
      assertEquals(
        Deno.readTextFileSync(`${home}/${id(3)}/lower`),
        `l/${link(home, id(2))}:l/${link(home, id(1))}`,
      );
      assertEquals(
        Deno.readTextFileSync(`${refHome}/${r3}/lower`),
        `l/${link(refHome, r2)}:l/${link(refHome, r1)}`,
      );
      assertEquals(
        await driver.metadata(id(3)),
        {
          WorkDir: `${home}/${id(3)}/work`,
          MergedDir: `${home}/${id(3)}/merged`,
          UpperDir: `${home}/${id(3)}/diff`,
          LowerDir: `${home}/${id(2)}/diff:${home}/${id(1)}/diff`,
        },
      );
    }),
});

Deno.test({
  name: "overlay: a layer mounted twice is mounted once; the last put unmounts and removes merged",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      Deno.writeTextFileSync(`${home}/${id(1)}/diff/base`, "base");
      await driver.createReadWrite(id(2), id(1));
      const m1 = await driver.get(id(2));
      const m2 = await driver.get(id(2));
      assertEquals(m1, `${home}/${id(2)}/merged`);
      assertEquals(m2, m1);
      const mounts = mountedAt(m1);
      assertEquals(mounts.length, 1);
      const link1 = Deno.readTextFileSync(`${home}/${id(1)}/link`);
      assert(
        mounts[0].options.includes(
          `lowerdir=${home}/l/${link1},upperdir=${home}/${id(2)}/diff,workdir=${home}/${
            id(2)
          }/work`,
        ),
        mounts[0].options,
      );
      assertEquals(Deno.readTextFileSync(`${m1}/base`), "base");
      Deno.writeTextFileSync(`${m1}/new`, "x");
      assertEquals(Deno.readTextFileSync(`${home}/${id(2)}/diff/new`), "x");
      await driver.put(id(2));
      assertEquals(mountedAt(m1).length, 1);
      await driver.put(id(2));
      assertEquals(mountedAt(m1).length, 0);
      assert(!(await exists(m1)), "merged is removed after the last put");
      // a mount made behind the driver's back (another process) is counted, not repeated
      const again = await driver.get(id(2));
      assertEquals(mountedAt(again).length, 1);
      await driver.put(id(2));
    }),
});

Deno.test({
  name: "overlay: ro mounts stack diff as a lower; mountopt and mount labels reach mount(2)",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      Deno.writeTextFileSync(`${home}/${id(1)}/diff/f`, "f");
      const m = await driver.get(id(1), { options: ["ro"] });
      const [info] = mountedAt(m);
      assert(info.mountOptions.split(",").includes("ro"), info.mountOptions);
      assert(
        info.options.includes(`lowerdir=${home}/${id(1)}/diff:${home}/${id(1)}/empty`),
        info.options,
      );
      assert(!info.options.includes("upperdir="));
      assertEquals(Deno.readTextFileSync(`${m}/f`), "f");
      assertRejectsSync(() => Deno.writeTextFileSync(`${m}/g`, "g"));
      await driver.put(id(1));
      const err = await assertRejects(() =>
        driver.get(id(1), { mountLabel: "system_u:object_r:container_file_t:s0:c1,c2" })
      );
      assertMatch(String(err), /context=\\"system_u:object_r:container_file_t:s0:c1,c2\\"/);
      assertEquals(mountedAt(`${home}/${id(1)}/merged`).length, 0);
    }, {}),
});

Deno.test({
  name: "overlay: overlay.mountopt is applied to every mount",
  ignore,
  fn: () =>
    withDriver(async ({ driver }) => {
      await driver.create(id(1), "");
      const m = await driver.get(id(1));
      assert(mountedAt(m)[0].mountOptions.split(",").includes("nodev"));
      await driver.put(id(1));
    }, { options: ["overlay.mountopt=nodev"] }),
});

Deno.test({
  name: "overlay: a chain whose absolute lowerdir exceeds a page mounts with relative short links",
  ignore,
  fn: async () => {
    const base = await tempDir("cstest-overlay-");
    const root = `${base}/${"d".repeat(200)}`;
    await Deno.mkdir(root);
    try {
      await withDriver(async ({ home, driver }) => {
        const depth = 24;
        for (let i = 1; i <= depth; i++) {
          await driver.create(id(i), i === 1 ? "" : id(i - 1));
          Deno.writeTextFileSync(`${home}/${id(i)}/diff/f${i}`, String(i));
        }
        await driver.createReadWrite(id(100), id(depth));
        const absLen = (home.length + 29) * depth;
        assert(absLen > 4096, `absolute lowerdir is ${absLen} bytes`);
        const cwd = Deno.cwd();
        const m = await driver.get(id(100));
        assertEquals(Deno.cwd(), cwd, "the process cwd is restored");
        for (let i = 1; i <= depth; i++) {
          assertEquals(Deno.readTextFileSync(`${m}/f${i}`), String(i));
        }
        assertEquals(mountedAt(m).length, 1);
        await driver.put(id(100));
        assertEquals(mountedAt(m).length, 0);
      }, { root });
    } finally {
      await removeTree(base);
    }
  },
});

Deno.test({
  name: "overlay: more than 128 lowers is refused with max depth exceeded",
  ignore,
  fn: () =>
    withDriver(async ({ driver }) => {
      await driver.create(id(1), "");
      for (let i = 2; i <= 129; i++) await driver.create(id(i), id(i - 1));
      await assertRejects(() => driver.create(id(130), id(129)), Error, "max depth exceeded");
      assert(!(await driver.exists(id(130))), "the failed layer leaves nothing behind");
    }),
});

Deno.test({
  name: "overlay: lost short links are recreated from the link files on mount",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      Deno.writeTextFileSync(`${home}/${id(1)}/diff/f`, "f");
      await driver.create(id(2), id(1));
      for (const e of [...Deno.readDirSync(`${home}/l`)]) Deno.removeSync(`${home}/l/${e.name}`);
      const m = await driver.get(id(2));
      assertEquals(Deno.readTextFileSync(`${m}/f`), "f");
      await driver.put(id(2));
      const link = Deno.readTextFileSync(`${home}/${id(1)}/link`);
      assertEquals(Deno.readLinkSync(`${home}/l/${link}`), `../${id(1)}/diff`);
    }),
});

Deno.test({
  name: "overlay: removing a mounted layer unmounts it first and drops its short link",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      const link = Deno.readTextFileSync(`${home}/${id(1)}/link`);
      const m = await driver.get(id(1));
      await driver.remove(id(1));
      assertEquals(mountedAt(m).length, 0);
      assert(!(await exists(`${home}/${id(1)}`)));
      assert(!(await exists(`${home}/l/${link}`)));
      assert(!(await driver.exists(id(1))));
    }),
});

Deno.test({
  name: "overlay: applyDiff writes overlay whiteouts; native diff, changes and size read diff/",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      await driver.applyDiff(id(1), "", {
        diff: tarOf([
          { name: "a/", type: "5" },
          { name: "a/keep", data: "keep" },
          { name: "a/gone", data: "gone" },
          { name: "o/", type: "5" },
          { name: "o/old", data: "old" },
        ]),
      });
      await driver.create(id(2), id(1));
      const size = await driver.applyDiff(id(2), id(1), {
        diff: tarOf([
          { name: "a/", type: "5" },
          { name: "a/.wh.gone" },
          { name: "o/", type: "5" },
          { name: "o/.wh..wh..opq" },
          { name: "o/new", data: "new!" },
        ]),
      });
      assertEquals(size, 4);
      const wh = lstatNs(`${home}/${id(2)}/diff/a/gone`);
      assertEquals([wh.mode & 0o170000, wh.rdevMajor, wh.rdevMinor], [0o020000, 0, 0]);
      assertEquals(
        new TextDecoder().decode(lgetxattr(`${home}/${id(2)}/diff/o`, "trusted.overlay.opaque")!),
        "y",
      );
      const changes = await driver.changes(id(2), undefined, id(1), undefined, "");
      const byPath = Object.fromEntries(changes.map((c) => [c.path, c.kind]));
      assertEquals(byPath["/a/gone"], ChangeKind.Delete);
      assertEquals(byPath["/o/new"], ChangeKind.Add);
      assertEquals(await driver.diffSize(id(2), undefined, id(1), undefined, ""), 4);
      const names = await tarNames(await driver.diff(id(2), undefined, id(1), undefined, ""));
      assert(names.includes("a/.wh.gone"), names.join(" "));
      assert(names.includes("o/.wh..wh..opq"), names.join(" "));
      assert(names.includes("o/new"), names.join(" "));
      const m = await driver.get(id(2));
      assertEquals((await treeOf(m)).keys().toArray().sort(), ["a", "a/keep", "o", "o/new"]);
      await driver.put(id(2));
    }),
});

Deno.test({
  name: "overlay: applying against another parent goes through a mount (naive diff)",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      await driver.applyDiff(id(1), "", {
        diff: tarOf([{ name: "x", data: "x" }, { name: "y", data: "y" }]),
      });
      await driver.create(id(2), id(1));
      // parent "" is not id(2)'s parent: whiteouts are carried out in the merged view
      await driver.applyDiff(id(2), "", {
        diff: tarOf([{ name: ".wh.x" }, { name: "z", data: "zz" }]),
      });
      const wh = lstatNs(`${home}/${id(2)}/diff/x`);
      assertEquals(wh.mode & 0o170000, 0o020000);
      assertEquals(
        mountedAt(`${home}/${id(2)}/merged`).length,
        0,
        "the temporary mount is released",
      );
      const changes = await driver.changes(id(2), undefined, "", undefined, "");
      assertEquals(changes.map((c) => c.path).sort(), ["/y", "/z"]);
      const names = await tarNames(await driver.diff(id(2), undefined, "", undefined, ""));
      assertEquals(names.sort(), ["y", "z"]);
      assertEquals(
        mountedAt(`${home}/${id(2)}/merged`).length,
        0,
        "diff stream released its mount",
      );
    }),
});

Deno.test({
  name: "overlay: diffGetter reads the layer's files without mounting",
  ignore,
  fn: () =>
    withDriver(async ({ driver }) => {
      await driver.create(id(1), "");
      await driver.applyDiff(id(1), "", {
        diff: tarOf([{ name: "d/", type: "5" }, { name: "d/f", data: "hello" }]),
      });
      const g = await driver.diffGetter(id(1));
      assertEquals(await new Response(await g.get("./d/f")).text(), "hello");
      await assertRejects(() => g.get("missing"));
      await g.close();
    }),
});

Deno.test({
  name: "overlay: updateLayerIDMap chowns through a mount and rotates diff to diff1",
  ignore,
  fn: () =>
    withDriver(async ({ home, driver }) => {
      await driver.create(id(1), "");
      await driver.applyDiff(id(1), "", {
        diff: tarOf([{ name: "f", data: "f", uid: 5, gid: 6 }]),
      });
      const to = {
        uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
        gidMap: [{ container_id: 0, host_id: 200000, size: 65536 }],
      };
      await driver.updateLayerIDMap(id(1), { uidMap: [], gidMap: [] }, to, "");
      assertEquals([...Deno.readDirSync(`${home}/${id(1)}/diff`)].length, 0);
      assert(await exists(`${home}/${id(1)}/diff1/f`));
      const m = await driver.get(id(1));
      const st = Deno.lstatSync(`${m}/f`);
      assertEquals([st.uid, st.gid], [100005, 200006]);
      // a mount re-owns diff (the mount's root) to the driver's root, as 1.43 does
      const root = Deno.statSync(m);
      assertEquals([root.uid, root.gid], [0, 0]);
      await driver.put(id(1));
      const g = await driver.diffGetter(id(1));
      assertEquals(await new Response(await g.get("f")).text(), "f");
      // shifting comes from ID-mapped lowers here, not from a mount program
      assertEquals(driver.supportsShifting(), true);
    }),
});

Deno.test({
  name: "overlay: layers of an additional image store serve as lowers",
  ignore,
  fn: async () => {
    const s = await tempDir("cstest-overlay-store-");
    const sHome = `${s}/overlay`;
    const sd = await overlay.init({ home: sHome, runHome: `${s}/run`, options: [] });
    try {
      await sd.create(id(1), "");
      await sd.applyDiff(id(1), "", { diff: tarOf([{ name: "shared", data: "from store" }]) });
      await sd.cleanup();
      await withDriver(async ({ home, driver }) => {
        assert(await driver.exists(id(1)));
        assertEquals(driver.additionalImageStores(), [s]);
        await driver.createReadWrite(id(2), id(1));
        const link = Deno.readTextFileSync(`${sHome}/${id(1)}/link`);
        assertEquals(Deno.readTextFileSync(`${home}/${id(2)}/lower`), `l/${link}`);
        const m = await driver.get(id(2));
        assertEquals(Deno.readTextFileSync(`${m}/shared`), "from store");
        assert(mountedAt(m)[0].options.includes(`lowerdir=${sHome}/l/${link}`));
        await driver.put(id(2));
      }, { options: [`overlay.imagestore=${s}`] });
    } finally {
      await removeTree(s);
    }
  },
});

Deno.test({
  name: "overlay: option errors name the option and the cause",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-overlay-");
    const cfg = (options: string[]) => ({
      home: `${root}/g/overlay`,
      runHome: `${root}/r/overlay`,
      options,
    });
    try {
      await assertRejects(
        () => overlay.init(cfg(["overlay.bogus=1"])),
        ErrConfig,
        "overlay: Unknown option overlay.bogus",
      );
      await assertRejects(
        () => overlay.init(cfg(["overlay.force_mask=0755"])),
        ErrConfig,
        "'force_mask' is supported only with 'mount_program'",
      );
      await assertRejects(
        () => overlay.init(cfg(["overlay.size=10G"])),
        ErrConfig,
        "storage option overlay.size and overlay.inodes only supported for backingFS XFS. Found ",
      );
      await assertRejects(
        () => overlay.init(cfg(["overlay.imagestore=rel"])),
        ErrConfig,
        'image path "rel" is not absolute',
      );
      await assertRejects(
        () => overlay.init(cfg(["overlay.mount_program=/nonexistent"])),
        ErrConfig,
        'can\'t stat program "/nonexistent"',
      );
      await assertRejects(
        () => overlay.init(cfg(["overlay.skip_mount_home=maybe"])),
        ErrConfig,
        "invalid boolean",
      );
      const d = await overlay.init(cfg(["overlay.skip_mount_home=true"]));
      assert(
        !Deno.readTextFileSync("/proc/self/mountinfo").includes(` ${root}/g/overlay `),
        "skip_mount_home skips the bind mount",
      );
      await assertRejects(
        () => d.create(id(1), "", { storageOpt: { size: "1G" } }),
        Error,
        "only supported for ReadWrite Layers",
      );
      await assertRejects(
        () => d.createReadWrite(id(1), "", { storageOpt: { size: "1G" } }),
        Error,
        "'pquota'",
      );
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "overlay: a home on overlayfs is refused, naming the backing filesystem",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-overlay-");
    try {
      for (const d of ["l", "u", "w", "m"]) Deno.mkdirSync(`${root}/${d}`);
      const { mount } = await import("../ffi/mount.ts");
      mount(
        "overlay",
        `${root}/m`,
        "overlay",
        0,
        `lowerdir=${root}/l,upperdir=${root}/u,workdir=${root}/w`,
      );
      const refusal = "'overlay' is not supported over overlayfs, a mount_program is required";
      const whiteoutRefused =
        /^kernel does not support overlay fs: unable to create kernel-style whiteout: /;
      await withoutOnPath("fuse-overlayfs", async () => {
        await assertRejects(
          () =>
            overlay.init({
              home: `${root}/m/g/overlay`,
              runHome: `${root}/r/overlay`,
              options: [],
            }),
          ErrDriverNotSupported,
          refusal,
        );
        assertMatch(Deno.readTextFileSync(`${root}/r/overlay/overlay-false`), whiteoutRefused);
        if (!referenceCli) return;
        const r = await run(referenceCli, [
          "-g",
          `${root}/m/ref`,
          "-R",
          `${root}/ref-r`,
          "-s",
          "overlay",
          "status",
        ]);
        assert(r.code !== 0 && r.stdout.includes(`error initializing: ${refusal}`), r.stdout);
        assertMatch(Deno.readTextFileSync(`${root}/ref-r/overlay/overlay-false`), whiteoutRefused);
      });
      if (!fuseOverlayfs) return;
      // with fuse-overlayfs installed, both mount with it instead
      const driver = await overlay.init({
        home: `${root}/m/g2/overlay`,
        runHome: `${root}/r2/overlay`,
        options: [],
      });
      await driver.cleanup();
      assertEquals(Deno.readTextFileSync(`${root}/m/g2/overlay/.has-mount-program`), "true");
      assertEquals((await driver.status())[0], ["Backing Filesystem", "overlayfs"]);
      if (!referenceCli) return;
      await reference({ graph: `${root}/m/ref2`, run: `${root}/ref-r2`, driver: "overlay" }, [
        "status",
      ]);
      assertEquals(Deno.readTextFileSync(`${root}/m/ref2/overlay/.has-mount-program`), "true");
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "overlay: mount_program runs with -o <options> <target> from the driver home",
  ignore,
  fn: async () => {
    const tools = await tempDir("cstest-overlay-prog-");
    const prog = `${tools}/fake-fuse-overlayfs`;
    Deno.writeTextFileSync(
      prog,
      `#!/bin/sh\nprintf '%s\\n' "$PWD" "$@" > ${tools}/log\nopts=$(printf '%s' "$2" | sed 's/,uidmapping=.*//')\nexec mount -t overlay overlay -o "$opts" "$3"\n`,
    );
    Deno.chmodSync(prog, 0o755);
    try {
      await withDriver(async ({ home, runHome, driver }) => {
        assertEquals(Deno.readTextFileSync(`${home}/.has-mount-program`), "true");
        assertEquals(
          [...Deno.readDirSync(runHome)].length,
          0,
          "no kernel probes with a mount program",
        );
        assert(driver.supportsShifting());
        await driver.create(id(1), "");
        await driver.applyDiff(id(1), "", { diff: tarOf([{ name: "gone", data: "g" }]) });
        await driver.create(id(2), id(1));
        await driver.applyDiff(id(2), id(1), { diff: tarOf([{ name: ".wh.gone" }]) });
        const m = await driver.get(id(2), {
          idMappings: {
            uidMap: [{ container_id: 0, host_id: 1000, size: 10 }],
            gidMap: [{ container_id: 0, host_id: 1000, size: 1 }],
          },
        });
        const log = Deno.readTextFileSync(`${tools}/log`).trim().split("\n");
        const link = Deno.readTextFileSync(`${home}/${id(1)}/link`);
        assertEquals(log, [
          home,
          "-o",
          `lowerdir=${home}/l/${link},upperdir=${home}/${id(2)}/diff,workdir=${home}/${
            id(2)
          }/work,,uidmapping=0:1000:10,squash_to_gid=1000`,
          m,
        ]);
        await driver.put(id(2));
        assertEquals(mountedAt(m).length, 0);
      }, { options: [`overlay.mount_program=${prog}`] });
    } finally {
      await removeTree(tools);
    }
  },
});

function assertRejectsSync(fn: () => unknown): void {
  let threw = false;
  try {
    fn();
  } catch {
    threw = true;
  }
  assert(threw, "expected an error");
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function tarNames(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const { readTar } = await import("../lib/archive/tar_reader.ts");
  const names: string[] = [];
  for await (const e of readTar(stream)) {
    names.push(e.header.name.replace(/^\.\//, "").replace(/\/$/, ""));
  }
  return names;
}

/**
 * ID-mapped mounts and overlay shifting, for real as root: the ffi mount
 * itself, the `idmapped-lower-dir` probe and its cache shared with the
 * reference CLI, layers created with maps (no chown, no recorded maps) by
 * both CLIs, mounts with ID mappings (mapped lowers, unmapped upper, clean
 * put), and the ways shifting is turned off.
 * @module
 */

import overlay from "../drivers/overlay/mod.ts";
import type { Driver } from "../drivers/driver.ts";
import { idMappedMount, UserNamespace } from "../ffi/idmap_mount.ts";
import { SyscallError } from "../ffi/errors.ts";
import { mountPoints } from "../ffi/mount.ts";
import { lstatNs } from "../ffi/fs.ts";
import { DISABLE_IDMAP_ENV, mappedMountRoot } from "../drivers/overlay/idmapped.ts";
import type { IDMappings } from "../lib/idmap.ts";
import { isRoot, notRootReason, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { assertEquals, assertRejects, assertTrue as assert, mountedAt } from "./overlay_helpers.ts";

const ignore = !isRoot;
if (ignore) console.log(`overlay idmap tests ${notRootReason}`);
const noReference = ignore || !referenceCli;

const MAP = [{ container_id: 0, host_id: 100000, size: 65536 }];
const MAPS: IDMappings = { uidMap: MAP, gidMap: MAP };
const MAP_FLAGS = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"];
const cli = new URL("../cli.ts", import.meta.url).pathname;
const id = (n: number) => n.toString(16).padStart(64, "0");

const FILES: FixtureEntry[] = [
  { name: "d/", type: "5", mode: 0o755 },
  { name: "d/f", data: "hello", mode: 0o644 },
  { name: "g", data: "x", mode: 0o640, uid: 1, gid: 2 },
];

interface Env {
  root: string;
  home: string;
  runHome: string;
  driver: Driver;
}

async function withDriver(
  fn: (env: Env) => Promise<void>,
  prepare?: (runHome: string) => Promise<void>,
): Promise<void> {
  const root = await tempDir("cstest-idmap-");
  const home = `${root}/graph/overlay`;
  const runHome = `${root}/run/overlay`;
  try {
    if (prepare) {
      await Deno.mkdir(runHome, { recursive: true, mode: 0o700 });
      await prepare(runHome);
    }
    const driver = await overlay.init({ home, runHome, options: [] });
    try {
      await fn({ root, home, runHome, driver });
    } finally {
      await driver.cleanup();
    }
  } finally {
    await removeTree(root);
  }
}

/** A base layer holding FILES and a writable child of it. */
async function twoLayers(driver: Driver): Promise<{ base: string; top: string }> {
  const base = id(1), top = id(2);
  await driver.create(base, "");
  await driver.applyDiff(base, "", { diff: streamOf(buildTar(FILES)) });
  await driver.createReadWrite(top, base);
  return { base, top };
}

function owner(path: string): string {
  const st = lstatNs(path);
  return `${st.uid}:${st.gid}`;
}

function mountsUnder(dir: string): string[] {
  return mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Names in the run home that record the ID-mapped probe, with their contents and modes. */
async function probeRecords(runHome: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(runHome)) {
    if (!e.name.startsWith("idmapped-")) continue;
    const p = `${runHome}/${e.name}`;
    const mode = ((await Deno.stat(p)).mode! & 0o7777).toString(8);
    out.push(`${e.name} ${mode} ${JSON.stringify(await Deno.readTextFile(p))}`);
  }
  return out.sort();
}

Deno.test({
  name: "idMappedMount shows a directory's files with mapped owners, without changing them",
  ignore,
  fn: async () => {
    const dir = await tempDir("cstest-idmap-");
    try {
      await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
      await Deno.writeTextFile(`${dir}/src/a`, "a");
      await Deno.writeTextFile(`${dir}/src/sub/b`, "b");
      await Deno.chown(`${dir}/src/sub/b`, 5, 6);
      await idMappedMount(`${dir}/src`, `${dir}/dst`, MAPS);
      assertEquals(owner(`${dir}/dst/a`), "100000:100000");
      assertEquals(owner(`${dir}/dst/sub/b`), "100005:100006");
      assertEquals(owner(`${dir}/src/sub/b`), "5:6");
      assert(mountedAt(`${dir}/dst`)[0].mountOptions.split(",").includes("idmapped"));
      // changes through the view are stored unmapped; host root has no ID inside it
      await Deno.chown(`${dir}/dst/a`, 100007, 100008);
      assertEquals(owner(`${dir}/src/a`), "7:8");
      await assertRejects(() => Deno.writeTextFile(`${dir}/dst/new`, "n"));
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "idMappedMount failures are typed SyscallErrors",
  ignore,
  fn: async () => {
    const dir = await tempDir("cstest-idmap-");
    try {
      const e = await assertRejects(
        () => idMappedMount(`${dir}/missing`, `${dir}/dst`, MAPS),
        SyscallError,
      ) as SyscallError;
      assertEquals([e.syscall, e.code, e.path], ["open_tree", "ENOENT", `${dir}/missing`]);
      // overlapping ranges are refused by the kernel when the map is written
      const bad = [{ container_id: 0, host_id: 1000, size: 10 }, {
        container_id: 5,
        host_id: 2000,
        size: 10,
      }];
      const w = await assertRejects(
        () => UserNamespace.create(bad, MAP),
        SyscallError,
      ) as SyscallError;
      assertEquals([w.syscall, w.code], ["write", "EINVAL"]);
      assertEquals(mountsUnder(dir), []);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("mappedMountRoot maps short links through the home and diffN through the layer", () => {
  assertEquals(mappedMountRoot("/h/l/ABC"), "/h");
  assertEquals(mappedMountRoot("/h/l/ABC/../diff1"), "/h");
  assertEquals(mappedMountRoot("/h/0123/diff1"), "/h/0123");
  assertEquals(mappedMountRoot("/h/0123/empty"), "/h/0123");
});

Deno.test({
  name: "the idmapped-lower-dir probe is cached like the reference's, and shifting follows it",
  ignore: noReference,
  fn: async () => {
    const theirs = await tempDir("cstest-idmap-ref-");
    try {
      const tar = `${theirs}/t.tar`;
      await Deno.writeFile(tar, buildTar(FILES));
      const args = ["-g", `${theirs}/g`, "-R", `${theirs}/r`, "-s", "overlay"];
      const base = await run(referenceCli!, [...args, "import-layer", "-f", tar]);
      assertEquals(base.code, 0, base.stderr);
      const r = await run(referenceCli!, [
        ...args,
        "create-layer",
        ...MAP_FLAGS,
        base.stdout.trim(),
      ]);
      assertEquals(r.code, 0, r.stderr);
      const expected = await probeRecords(`${theirs}/r/overlay`);
      assertEquals(expected, ['idmapped-lower-dir-true 644 ""']);
      await withDriver(async ({ runHome, driver }) => {
        assertEquals(await probeRecords(runHome), expected);
        assert(driver.supportsShifting());
      });
    } finally {
      await removeTree(theirs);
    }
  },
});

Deno.test({
  name: "a cached negative probe (as the reference records it) turns shifting off without probing",
  ignore,
  fn: async () => {
    await withDriver(
      async ({ runHome, driver }) => {
        assert(!driver.supportsShifting());
        assertEquals(await probeRecords(runHome), ['idmapped-lower-dir-false 644 ""']);
      },
      (runHome) => Deno.writeTextFile(`${runHome}/idmapped-lower-dir-false`, "", { mode: 0o644 }),
    );
  },
});

Deno.test({
  name: "without --allow-run the probe answers false and records nothing",
  ignore,
  fn: async () => {
    const root = await tempDir("cstest-idmap-");
    try {
      const script = `${root}/probe.ts`;
      const mod = new URL("../drivers/overlay/mod.ts", import.meta.url).href;
      const ns = new URL("../ffi/idmap_mount.ts", import.meta.url).href;
      await Deno.writeTextFile(
        script,
        `import overlay from ${JSON.stringify(mod)};
import { UserNamespace } from ${JSON.stringify(ns)};
const d = await overlay.init({ home: "${root}/g/overlay", runHome: "${root}/r/overlay", options: [] });
let err = "";
try { await UserNamespace.create([], []); } catch (e) { err = e.constructor.name; }
console.log(JSON.stringify({ shifting: d.supportsShifting(), err }));
await d.cleanup();`,
      );
      const r = await run(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "--allow-env",
        script,
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(JSON.parse(r.stdout), { shifting: false, err: "ErrPermission" });
      assertEquals(await probeRecords(`${root}/r/overlay`), []);
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "mounting with ID mappings maps the lowers, not the upper, and put cleans up",
  ignore,
  fn: async () => {
    await withDriver(async ({ home, driver }) => {
      assert(driver.supportsShifting());
      const { top } = await twoLayers(driver);
      const layerDir = `${home}/${top}`;
      const merged = await driver.get(top, { idMappings: MAPS });
      assertEquals(merged, `${layerDir}/merged`);
      assertEquals(owner(`${merged}/d/f`), "100000:100000");
      assertEquals(owner(`${merged}/g`), "100001:100002");
      const [m] = mountedAt(merged);
      assertEquals(m.fstype, "overlay");
      const link = (await Deno.readTextFile(`${layerDir}/lower`)).trim();
      assert(
        m.options.includes(`lowerdir=${layerDir}/mapped/0/${link},upperdir=${layerDir}/diff,`),
        m.options,
      );
      // the mapped mounts are detached as soon as overlay holds them
      assertEquals(mountsUnder(`${layerDir}/mapped`), []);
      // a second user shares the mount
      assertEquals(await driver.get(top, { idMappings: MAPS }), merged);
      await driver.put(top);
      assertEquals(mountedAt(merged).length, 1);
      // new files keep the writer's IDs; copied-up ones keep their mapped owners
      await Deno.writeTextFile(`${merged}/new`, "n");
      await Deno.chmod(`${merged}/g`, 0o600);
      assertEquals(owner(`${layerDir}/diff/new`), "0:0");
      assertEquals(owner(`${layerDir}/diff/g`), "100001:100002");
      await driver.put(top);
      assertEquals(mountsUnder(layerDir), []);
      assert(!(await exists(merged)));
      // like the reference, the (empty) mount points stay
      assertEquals([...Deno.readDirSync(`${layerDir}/mapped`)].map((e) => e.name), ["0"]);
      await driver.remove(top);
      assert(!(await exists(layerDir)));
    });
  },
});

Deno.test({
  name: "a chain too long for absolute mapped lowers mounts with paths relative to the home",
  ignore,
  fn: async () => {
    await withDriver(async ({ home, driver }) => {
      const depth = 32;
      for (let n = 1; n <= depth; n++) {
        await driver.create(id(n), n === 1 ? "" : id(n - 1));
        await driver.applyDiff(id(n), n === 1 ? "" : id(n - 1), {
          diff: streamOf(buildTar([{ name: `f${n}`, data: `${n}`, uid: n, gid: n }])),
        });
      }
      const top = id(depth + 1);
      await driver.createReadWrite(top, id(depth));
      const merged = await driver.get(top, { idMappings: MAPS });
      const [m] = mountedAt(merged);
      assert(m.options.includes(`lowerdir=${top}/mapped/0/l/`), m.options);
      assert((`${home}/${top}/mapped/0/l/`.length + 27) * depth > 4096);
      for (const n of [1, depth]) {
        assertEquals(owner(`${merged}/f${n}`), `${100000 + n}:${100000 + n}`);
      }
      await driver.put(top);
      assertEquals(mountsUnder(`${home}/${top}`), []);
    });
  },
});

Deno.test({
  name: "mounts without mappings, or with disableShifting, use the plain lowers",
  ignore,
  fn: async () => {
    await withDriver(async ({ home, driver }) => {
      const { top } = await twoLayers(driver);
      for (const opts of [{}, { idMappings: MAPS, disableShifting: true }]) {
        const merged = await driver.get(top, opts);
        assertEquals(owner(`${merged}/g`), "1:2");
        assert(mountedAt(merged)[0].options.includes(`lowerdir=${home}/l/`));
        await driver.put(top);
      }
      assert(!(await exists(`${home}/${top}/mapped`)));
    });
  },
});

Deno.test({
  name: `${DISABLE_IDMAP_ENV}=yes turns shifting off and skips the probe`,
  ignore,
  fn: async () => {
    Deno.env.set(DISABLE_IDMAP_ENV, "yes");
    try {
      await withDriver(async ({ home, runHome, driver }) => {
        assert(!driver.supportsShifting());
        assertEquals(await probeRecords(runHome), []);
        const { top } = await twoLayers(driver);
        const merged = await driver.get(top, { idMappings: MAPS });
        assertEquals(owner(`${merged}/g`), "1:2");
        assert(mountedAt(merged)[0].options.includes(`lowerdir=${home}/l/`));
        await driver.put(top);
      });
    } finally {
      Deno.env.delete(DISABLE_IDMAP_ENV);
    }
  },
});

/** Layer records without volatile fields, and each layer directory's shape. */
async function describeStore(graph: string): Promise<unknown> {
  const layers = JSON.parse(
    await Deno.readTextFile(`${graph}/overlay-layers/layers.json`),
  ) as Record<
    string,
    unknown
  >[];
  const out = [];
  for (const l of layers) {
    const dir = `${graph}/overlay/${l.id}`;
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name).sort().map((n) => {
      const st = lstatNs(`${dir}/${n}`);
      return `${n} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    });
    const diff = [...Deno.readDirSync(`${dir}/diff`)].map((e) => e.name).sort().map((n) =>
      `${n} ${owner(`${dir}/diff/${n}`)}`
    );
    const { id: _id, parent: _parent, created: _created, ...rest } = l;
    out.push({ record: rest, hasParent: "parent" in l, entries, diff });
  }
  return out;
}

Deno.test({
  name: "layers created with maps by our CLI and the reference look the same on disk",
  ignore: noReference,
  fn: async () => {
    const dir = await tempDir("cstest-idmap-cli-");
    try {
      const tar = `${dir}/t.tar`;
      await Deno.writeFile(tar, buildTar(FILES));
      const stores = {
        ours: (a: string[]) =>
          run(Deno.execPath(), [
            "run",
            "-A",
            cli,
            "-g",
            `${dir}/ours/g`,
            "-R",
            `${dir}/ours/r`,
            "-s",
            "overlay",
            ...a,
          ]),
        theirs: (a: string[]) =>
          run(referenceCli!, [
            "-g",
            `${dir}/theirs/g`,
            "-R",
            `${dir}/theirs/r`,
            "-s",
            "overlay",
            ...a,
          ]),
      };
      const shapes = [];
      for (const cs of [stores.ours, stores.theirs]) {
        const ok = async (a: string[]) => {
          const r = await cs(a);
          assertEquals(r.code, 0, r.stderr);
          return r.stdout.trim();
        };
        const base = await ok(["import-layer", "-f", tar]);
        await ok(["import-layer", ...MAP_FLAGS, "-f", tar]);
        await ok(["create-layer", ...MAP_FLAGS, base]);
        await ok(["create-layer", ...MAP_FLAGS]);
        shapes.push(await describeStore(`${dir}/${cs === stores.ours ? "ours" : "theirs"}/g`));
      }
      assertEquals(shapes[0], shapes[1]);
      // no chown and no recorded maps: files stay as the tar has them
      const flat = JSON.stringify(shapes[0]);
      assert(!flat.includes("100000") && !flat.includes("uidmap"), flat);
    } finally {
      await removeTree(dir);
    }
  },
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
}

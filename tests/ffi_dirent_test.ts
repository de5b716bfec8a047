/**
 * getdents64 directory entries and d_type probing, on real filesystems:
 * the types of a directory, file, symlink, FIFO, device and socket, more
 * entries than one getdents64 call returns, and an ext4 formatted without
 * the filetype feature (every entry DT_UNKNOWN), where the overlay driver
 * must refuse to start exactly as the reference does, or mount with
 * fuse-overlayfs as the reference does when it is installed.
 * @module
 */

import overlay from "../drivers/overlay/mod.ts";
import {
  DT_BLK,
  DT_CHR,
  DT_DIR,
  DT_FIFO,
  DT_LNK,
  DT_REG,
  DT_SOCK,
  DT_UNKNOWN,
  readDirTypes,
  supportsDType,
} from "../ffi/dirent.ts";
import { SyscallError } from "../ffi/errors.ts";
import { makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from "../ffi/fs.ts";
import { ErrDriverNotSupported } from "../lib/errors.ts";
import {
  isRoot,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  run,
  tempDir,
} from "./helpers.ts";
import {
  assertEquals,
  assertRejects,
  assertTrue as assert,
  fuseOverlayfs,
  mountedAt,
  withoutOnPath,
} from "./overlay_helpers.ts";
import { type LoopFsSpec, loopFsUnavailable, withLoopFs } from "./loopfs.ts";

const noFileType: LoopFsSpec = { mkfs: ["mkfs.ext4", "-q", "-F", "-O", "^filetype"], sizeMiB: 32 };
const noDTypeReason = await loopFsUnavailable(noFileType);
if (noDTypeReason) console.log(`ffi_dirent ext4-without-filetype tests skipped: ${noDTypeReason}`);
if (!isRoot) console.log(`ffi_dirent device-node test ${notRootReason}`);

Deno.test("dirent: each entry carries the type of what it is", async () => {
  const dir = await tempDir("cstest-dirent-");
  const listener = Deno.listen({ transport: "unix", path: `${dir}/sock` });
  try {
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeTextFile(`${dir}/f`, "x");
    await Deno.symlink("f", `${dir}/l`);
    mknod(`${dir}/p`, S_IFIFO | 0o600, 0);
    if (isRoot) {
      mknod(`${dir}/c`, S_IFCHR | 0o600, makedev(1, 3));
      mknod(`${dir}/b`, S_IFBLK | 0o600, makedev(7, 200));
    }
    const byName = new Map(readDirTypes(dir).map((e) => [e.name, e]));
    const want: Record<string, number> = {
      ".": DT_DIR,
      "..": DT_DIR,
      d: DT_DIR,
      f: DT_REG,
      l: DT_LNK,
      p: DT_FIFO,
      sock: DT_SOCK,
      ...(isRoot ? { c: DT_CHR, b: DT_BLK } : {}),
    };
    assertEquals(Object.fromEntries([...byName].map(([n, e]) => [n, e.type])), want);
    for (const name of ["d", "f", "l", "p", "sock"]) {
      assertEquals(byName.get(name)!.ino, BigInt(Deno.lstatSync(`${dir}/${name}`).ino!), name);
    }
    assert(supportsDType(dir));
  } finally {
    listener.close();
    await removeTree(dir);
  }
});

Deno.test("dirent: a directory larger than one getdents64 buffer is read completely", async () => {
  const dir = await tempDir("cstest-dirent-");
  try {
    const names = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      const n = `entry-${i}-${"x".repeat(40)}-ü`;
      names.add(n);
      Deno.writeFileSync(`${dir}/${n}`, new Uint8Array());
    }
    const got = readDirTypes(dir).filter((e) => e.name !== "." && e.name !== "..");
    assertEquals(got.length, names.size);
    assertEquals(new Set(got.map((e) => e.name)), names);
    assert(got.every((e) => e.type === DT_REG));
  } finally {
    await removeTree(dir);
  }
});

Deno.test("dirent: probing an empty directory leaves it empty", async () => {
  const dir = await tempDir("cstest-dirent-");
  try {
    assert(supportsDType(dir));
    assertEquals([...Deno.readDirSync(dir)], []);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("dirent: errors are SyscallErrors naming the path", async () => {
  const dir = await tempDir("cstest-dirent-");
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    for (const [path, code] of [[`${dir}/f`, "ENOTDIR"], [`${dir}/missing`, "ENOENT"]]) {
      try {
        readDirTypes(path);
        throw new Error(`readDirTypes ${path} did not fail`);
      } catch (e) {
        assert(e instanceof SyscallError, String(e));
        assertEquals([e.syscall, e.code, e.path], ["open", code, path]);
      }
    }
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "dirent: ext4 without filetype reports DT_UNKNOWN, and d_type is unsupported there",
  ignore: noDTypeReason !== undefined,
  fn: () =>
    withLoopFs(noFileType, async (mnt) => {
      await Deno.mkdir(`${mnt}/d`);
      await Deno.writeTextFile(`${mnt}/f`, "x");
      const types = readDirTypes(mnt).filter((e) => e.name !== "." && e.name !== "..");
      assert(types.length >= 3, "d, f and lost+found"); // lost+found comes from mkfs
      assert(types.every((e) => e.type === DT_UNKNOWN), types.map((e) => e.name).join(" "));
      assertEquals(supportsDType(mnt), false);
      await Deno.mkdir(`${mnt}/empty`);
      assertEquals(supportsDType(`${mnt}/empty`), false);
      assertEquals([...Deno.readDirSync(`${mnt}/empty`)], [], "the dummy file is removed");
    }),
});

const dTypeRefusal =
  "kernel does not support overlay fs: overlay: the backing extfs filesystem is formatted " +
  "without d_type support, which leads to incorrect behavior. Running without d_type is " +
  "not supported.: driver not supported";

Deno.test({
  name: "dirent: overlay refuses a home without d_type, caching the reference's words",
  ignore: noDTypeReason !== undefined,
  fn: () =>
    withLoopFs(noFileType, (mnt) =>
      withoutOnPath("fuse-overlayfs", async () => {
        const ours = { home: `${mnt}/ours/g/overlay`, runHome: `${mnt}/ours/r/overlay` };
        const e = await assertRejects(
          () => overlay.init({ ...ours, options: [] }),
          ErrDriverNotSupported,
          "the backing extfs filesystem is formatted without d_type support",
        );
        const text = Deno.readTextFileSync(`${ours.runHome}/overlay-false`);
        assertEquals(text, dTypeRefusal);
        assert(e.message.endsWith(text), e.message);
        // the cached answer is used on the next start
        await assertRejects(() => overlay.init({ ...ours, options: [] }), ErrDriverNotSupported);
        if (!referenceCli) return;
        const r = await run(referenceCli, [
          "-g",
          `${mnt}/ref/g`,
          "-R",
          `${mnt}/ref/r`,
          "-s",
          "overlay",
          "status",
        ]);
        assert(r.code !== 0, "the reference refuses too");
        assertEquals(Deno.readTextFileSync(`${mnt}/ref/r/overlay/overlay-false`), text);
        // the reference prints "[Ee]rror initializing: …" on stdout
        assert(r.stdout.trim().endsWith(`rror initializing: ${text}`), r.stdout);
      })),
});

Deno.test({
  name:
    "dirent: on a home without d_type, overlay mounts with fuse-overlayfs as the reference does",
  ignore: noDTypeReason !== undefined || !fuseOverlayfs,
  fn: () =>
    withLoopFs(noFileType, async (mnt) => {
      const ours = { home: `${mnt}/ours/g/overlay`, runHome: `${mnt}/ours/r/overlay` };
      const driver = await overlay.init({ ...ours, options: [] });
      try {
        assertEquals(Deno.readTextFileSync(`${ours.runHome}/overlay-false`), dTypeRefusal);
        assertEquals(Deno.readTextFileSync(`${ours.home}/.has-mount-program`), "true");
        const id = "1".repeat(64);
        await driver.create(id, "");
        const m = await driver.get(id);
        Deno.writeTextFileSync(`${m}/f`, "through fuse");
        assertEquals(mountedAt(m).map((i) => i.fstype), ["fuse.fuse-overlayfs"]);
        await driver.put(id);
        assertEquals(Deno.readTextFileSync(`${ours.home}/${id}/diff/f`), "through fuse");
        if (!referenceCli) return;
        const ref = { graph: `${mnt}/ref/g`, run: `${mnt}/ref/r`, driver: "overlay" };
        const r = await reference(ref, ["status"]);
        const out = r.stdout + r.stderr; // the reference prints status on stderr
        for (const [k, v] of await driver.status()) {
          assert(out.includes(`${k}: ${v}\n`), `${k}: ${v} not in ${out}`);
        }
        assertEquals(Deno.readTextFileSync(`${mnt}/ref/r/overlay/overlay-false`), dTypeRefusal);
        assertEquals(Deno.readTextFileSync(`${mnt}/ref/g/overlay/.has-mount-program`), "true");
        const layer = (await reference(ref, ["create-layer"])).stdout.trim();
        const refMount = (await reference(ref, ["mount", layer])).stdout.trim();
        assertEquals(mountedAt(refMount).map((i) => i.fstype), ["fuse.fuse-overlayfs"]);
        await reference(ref, ["unmount", layer]);
      } finally {
        await driver.cleanup();
      }
    }),
});

/**
 * Project quotas of the overlay driver (`overlay.size`, `overlay.inodes`,
 * per-layer `size`/`inodes` storage options) on loop-mounted XFS, compared
 * with the reference CLI: project IDs and inheritance through the fsxattr
 * ioctls, the refusal (and its wording) where the filesystem has no
 * project quotas, and — where the kernel can mount XFS with `prjquota` —
 * limits that make writes fail with EDQUOT and match what the reference
 * sets, as `xfs_quota` reports them.
 * @module
 */

import overlay from "../drivers/overlay/mod.ts";
import { parseStorageOpt, projectIDFromInode } from "../drivers/overlay/quota.ts";
import {
  FS_XFLAG_PROJINHERIT,
  getFsXattr,
  getProjectID,
  setProjectID,
  setProjectQuota,
} from "../ffi/quota.ts";
import { SyscallError } from "../ffi/errors.ts";
import { statNs } from "../ffi/fs.ts";
import { ErrConfig, ErrNotSupported } from "../lib/errors.ts";
import { reference, referenceCli, run } from "./helpers.ts";
import { assertEquals, assertRejects, assertTrue as assert } from "./overlay_helpers.ts";
import { type LoopFsSpec, loopFsUnavailable, withLoopFs } from "./loopfs.ts";

const xfs: LoopFsSpec = { mkfs: ["mkfs.xfs", "-q", "-f"] };
const xfsQuota: LoopFsSpec = { ...xfs, mountOptions: "prjquota" };
const xfsReason = await loopFsUnavailable(xfs);
let quotaReason = xfsReason ?? await loopFsUnavailable(xfsQuota);
if (quotaReason === undefined && !referenceCli) quotaReason = "reference CLI not installed";
if (xfsReason) console.log(`overlay quota tests on XFS skipped: ${xfsReason}`);
if (quotaReason) {
  console.log(
    `overlay quota enforcement test skipped: ${quotaReason} (XFS project quotas need a kernel with CONFIG_XFS_QUOTA)`,
  );
}

const id = (n: number) => n.toString(16).padStart(64, "0");

function syscallFailure(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof SyscallError, String(e));
    return e;
  }
  throw new Error("expected a SyscallError, nothing was thrown");
}

Deno.test("quota: layer storage options parse like the reference", () => {
  assertEquals(parseStorageOpt({}), { size: 0, inodes: 0 });
  assertEquals(parseStorageOpt({ size: "10M", inodes: "100" }), { size: 10 << 20, inodes: 100 });
  assertEquals(parseStorageOpt({ SIZE: "1.5k" }), { size: 1536, inodes: 0 });
  assertEquals(parseStorageOpt({ size: "0", inodes: "0" }), { size: 0, inodes: 0 });
  for (
    const [opts, msg] of [
      [{ Bogus: "1" }, "unknown option bogus"],
      [{ inodes: "-1" }, 'parsing "-1": invalid syntax'],
      [{ size: "lots" }, "invalid size: 'lots'"],
    ] as const
  ) {
    let err: Error | undefined;
    try {
      parseStorageOpt(opts);
    } catch (e) {
      err = e as Error;
    }
    assert(err?.message.includes(msg), `${JSON.stringify(opts)}: ${err?.message}`);
  }
});

Deno.test("quota: the base project ID of a home comes from its inode, with uint64 wrap-around", () => {
  // 262273 → 2622740000 is what the reference printed for a home with that inode
  assertEquals(projectIDFromInode(262273n), 2622740000);
  assertEquals(projectIDFromInode(12345678901n), 2536532520);
  assertEquals(projectIDFromInode(1n << 62n), 10000);
});

Deno.test({
  name: "quota: project IDs with PROJINHERIT through the fsxattr ioctls on XFS",
  ignore: xfsReason !== undefined,
  fn: () =>
    withLoopFs(xfs, async (mnt) => {
      await Deno.mkdir(`${mnt}/layer`);
      assertEquals(getProjectID(`${mnt}/layer`), 0);
      setProjectID(`${mnt}/layer`, 3000000001);
      const x = getFsXattr(`${mnt}/layer`);
      assertEquals(x.projid, 3000000001);
      assert(x.xflags & FS_XFLAG_PROJINHERIT, "PROJINHERIT set");
      await Deno.mkdir(`${mnt}/layer/diff/deeper`, { recursive: true });
      assertEquals(getProjectID(`${mnt}/layer/diff`), 3000000001);
      assertEquals(getProjectID(`${mnt}/layer/diff/deeper`), 3000000001);
      assertEquals(getProjectID(mnt), 0, "the parent is untouched");

      const missing = syscallFailure(() => getProjectID(`${mnt}/nope`));
      assertEquals([missing.syscall, missing.code], ["open", "ENOENT"]);
      if (quotaReason !== undefined) {
        // no quota support for this mount: quotactl itself refuses
        const e = syscallFailure(() => setProjectQuota("/dev/null", 1, { size: 1, inodes: 1 }));
        assertEquals(e.syscall, "quotactl");
      }
    }),
});

Deno.test({
  name: "quota: XFS without project quotas refuses overlay.size/inodes like the reference",
  ignore: xfsReason !== undefined,
  fn: () =>
    withLoopFs(xfs, async (mnt) => {
      const graph = `${mnt}/g`;
      const home = `${graph}/overlay`;
      let refText: string | undefined;
      if (referenceCli) {
        const r = await run(referenceCli, [
          "-g",
          graph,
          "-R",
          `${mnt}/r-ref`,
          "-s",
          "overlay",
          "--storage-opt",
          "overlay.size=10M",
          "status",
        ]);
        assert(r.code !== 0, "the reference refuses");
        refText = r.stdout.trim().replace(/^[Ee]rror initializing: /, "");
      }
      for (const option of ["overlay.size=10M", "overlay.inodes=50"]) {
        const e = await assertRejects(
          () => overlay.init({ home, runHome: `${mnt}/r/overlay`, options: [option] }),
          ErrConfig,
          "storage options overlay.size and overlay.inodes not supported. Filesystem does not support Project Quota: failed to set quota limit for projid ",
        );
        const base = projectIDFromInode(statNs(home).ino);
        assert(
          e.message.endsWith(`${base} on ${home}/backingFsBlockDev: function not implemented`),
        );
        if (refText) assert(e.message.endsWith(refText), `${e.message}\nvs reference ${refText}`);
      }
      if (refText) {
        const probed = (dir: string) => [...Deno.readDirSync(dir)].map((d) => d.name).sort();
        assertEquals(probed(`${mnt}/r/overlay`), probed(`${mnt}/r-ref/overlay`), "same probes");
      }

      // without size/inodes the driver starts; the device node is there as the reference leaves it
      const d = await overlay.init({ home, runHome: `${mnt}/r/overlay`, options: [] });
      try {
        const dev = statNs(`${home}/backingFsBlockDev`);
        assertEquals(dev.mode & 0o170777, 0o060600);
        assertEquals(dev.rdev, statNs(home).dev);
        assert(!(await Deno.lstat(`${home}/backingFsBlockDev.tmp`).catch(() => null)));
        await assertRejects(
          () => d.createReadWrite(id(1), "", { storageOpt: { size: "1M" } }),
          ErrNotSupported,
          "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        );
        await assertRejects(
          () => d.create(id(1), "", { storageOpt: { inodes: "5" } }),
          ErrNotSupported,
          "--storage-opt inodes is only supported for ReadWrite Layers",
        );
        await d.createReadWrite(id(1), "");
        assertEquals(getProjectID(`${home}/${id(1)}`), 0, "no project without quota support");
        if (referenceCli) {
          const root = { graph: `${mnt}/g2`, run: `${mnt}/r2`, driver: "overlay" };
          const out = await reference(root, ["create-layer"]);
          const refLayer = out.stdout.trim().split(/\s+/).pop()!;
          assertEquals(getProjectID(`${root.graph}/overlay/${refLayer}`), 0);
          await reference(root, ["shutdown"]).catch(() => {});
        }
      } finally {
        await d.cleanup();
      }
    }),
});

/** `xfs_quota -x -c 'report -p -n -N'` rows: project ID → [used, soft, hard] KiB blocks. */
async function projectReport(mnt: string): Promise<Map<number, number[]>> {
  const r = await run("xfs_quota", ["-x", "-c", "report -p -n -N", mnt]);
  assertEquals(r.code, 0, r.stderr);
  const rows = new Map<number, number[]>();
  for (const line of r.stdout.split("\n")) {
    const m = /^#(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line.trim());
    if (m) rows.set(Number(m[1]), [Number(m[2]), Number(m[3]), Number(m[4])]);
  }
  return rows;
}

Deno.test({
  name: "quota: layers on XFS prjquota get their own project, limits that bite, like the reference",
  ignore: quotaReason !== undefined,
  fn: () =>
    withLoopFs(xfsQuota, async (mnt) => {
      const home = `${mnt}/g/overlay`;
      const runHome = `${mnt}/r/overlay`;
      const d = await overlay.init({ home, runHome, options: ["overlay.size=4M"] });
      let ours: number[];
      try {
        const base = projectIDFromInode(statNs(home).ino);
        await d.createReadWrite(id(1), "");
        await d.createReadWrite(id(2), "", { storageOpt: { size: "1M", inodes: "8" } });
        await d.create(id(3), "");
        ours = [1, 2, 3].map((n) => getProjectID(`${home}/${id(n)}`));
        assertEquals(ours, [base + 1, base + 2, base + 3]);
        assertEquals(getProjectID(`${home}/${id(1)}/diff`), base + 1, "diff/ inherits");

        // 4M on layer 1 (the driver default): 6M of writes fail with EDQUOT
        const big = new Uint8Array(6 << 20).fill(7);
        await assertRejects(
          () => Deno.writeFile(`${home}/${id(1)}/diff/big`, big),
          Error,
          "Disk quota exceeded",
        );
        // 8 inodes on layer 2 (its diff/, work/, merged/ and empty/ count)
        const made: string[] = [];
        await assertRejects(
          async () => {
            for (let i = 0; i < 16; i++) {
              await Deno.writeFile(`${home}/${id(2)}/diff/f${i}`, new Uint8Array());
              made.push(`f${i}`);
            }
          },
          Error,
          "Disk quota exceeded",
        );
        assert(made.length < 8, `${made.length} files fit`);

        // a second driver on the same home continues after the IDs in use
        await d.cleanup();
        const again = await overlay.init({ home, runHome, options: [] });
        await again.createReadWrite(id(4), "");
        assertEquals(getProjectID(`${home}/${id(4)}`), base + 4);
        await again.cleanup();
      } finally {
        await d.cleanup().catch(() => {});
      }

      const root = { graph: `${mnt}/ref`, run: `${mnt}/ref-run`, driver: "overlay" };
      const out = await reference(root, ["--storage-opt", "overlay.size=4M", "create-layer"]);
      const refLayer = out.stdout.trim().split(/\s+/).pop()!;
      const refID = getProjectID(`${root.graph}/overlay/${refLayer}`);
      assert(refID > 0, "the reference gave its layer a project");
      const report = await projectReport(mnt);
      const limits = (projid: number) => report.get(projid)?.slice(1);
      assertEquals(limits(ours[0]), limits(refID), "same 4M limits as the reference");
      assertEquals(limits(ours[0]), [4096, 4096]);
      assertEquals(limits(ours[1]), [1024, 1024]);
      assertEquals(limits(ours[2]), [0, 0], "read-only layers are only tracked");
    }),
});

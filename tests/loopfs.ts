/**
 * Small loop-mounted filesystems for tests that need a particular
 * backing filesystem (XFS with or without project quotas, ext4 without
 * d_type). Every mount is undone and its loop device released, even when
 * the test fails.
 *
 * @example
 * ```ts ignore
 * const why = await loopFsUnavailable({ mkfs: ["mkfs.xfs", "-q"], mountOptions: "prjquota" });
 * if (!why) await withLoopFs({ mkfs: ["mkfs.xfs", "-q"] }, async (mnt) => {});
 * ```
 * @module
 */

import { isRoot, run } from "./helpers.ts";

/** How to make and mount the filesystem. */
export interface LoopFsSpec {
  /** mkfs command and its options; the image path is appended. */
  mkfs: string[];
  /** Extra mount options besides `loop`. */
  mountOptions?: string;
  /** Image size in MiB (default 300: XFS wants at least that). */
  sizeMiB?: number;
}

async function which(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
}

async function detachLoops(image: string): Promise<void> {
  const r = await run("losetup", ["-j", image, "-O", "NAME", "-n"]);
  for (const dev of r.stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    await run("losetup", ["-d", dev]);
  }
}

/**
 * Makes the filesystem in a temporary image, mounts it, runs `fn` on the
 * mount point, then unmounts, detaches the loop device and removes it all.
 * @throws {Error} naming the failing command when mkfs or mount fails.
 */
export async function withLoopFs<T>(
  spec: LoopFsSpec,
  fn: (mountPoint: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cstest-loopfs-" });
  const image = `${dir}/fs.img`;
  const mnt = `${dir}/mnt`;
  await Deno.mkdir(mnt);
  let mounted = false;
  try {
    const f = await Deno.open(image, { create: true, write: true });
    await f.truncate((spec.sizeMiB ?? 300) * 1024 * 1024);
    f.close();
    const mk = await run(spec.mkfs[0], [...spec.mkfs.slice(1), image]);
    if (mk.code !== 0) throw new Error(`${spec.mkfs.join(" ")} failed: ${mk.stderr}`);
    const opts = ["loop", spec.mountOptions].filter((o) => o).join(",");
    const m = await run("mount", ["-o", opts, image, mnt]);
    if (m.code !== 0) throw new Error(`mount -o ${opts} failed: ${m.stderr.trim()}`);
    mounted = true;
    return await fn(mnt);
  } finally {
    if (mounted && (await run("umount", ["-R", mnt])).code !== 0) {
      // something below is still busy: detach it anyway so nothing outlives the test
      await run("umount", ["-R", "-l", mnt]);
    }
    await detachLoops(image);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Why such a filesystem cannot be used here (not root, tool missing, the
 * kernel refuses the mount), or undefined when it can: tries it once.
 */
export async function loopFsUnavailable(spec: LoopFsSpec): Promise<string | undefined> {
  if (!isRoot) return "needs root (mkfs, loop mounts)";
  for (const cmd of [spec.mkfs[0], "mount", "losetup"]) {
    if (!(await which(cmd))) return `${cmd} is not installed`;
  }
  try {
    await withLoopFs(spec, () => Promise.resolve());
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

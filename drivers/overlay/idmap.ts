/**
 * ID-mapped layers for overlay: rewriting ownership through a mount of the
 * layer (so files of lower layers are copied up with their new owners),
 * then rotating `diff` to `diff1` (`diff1` to `diff2`, …) so the old upper
 * becomes the topmost lower and a fresh, empty `diff` takes its place.
 *
 * @example
 * ```ts ignore
 * await chownByMaps(mergedDir, oldMappings, newMappings);
 * await rotateDiffs(layerDir, 0o555, 0, 0);
 * ```
 * @module
 */

import { lchown, lstatNs } from "../../ffi/fs.ts";
import { toContainer, toHost } from "../../lib/idmap.ts";
import type { IDMappings } from "../../lib/idmap.ts";

/** `diff`, `diff1`, `diff2`, …: the name of the n-th upper generation. */
export function diffName(n: number): string {
  return n === 0 ? "diff" : `diff${n}`;
}

/**
 * Changes the owner of every entry under `root` from its host ID under
 * `from` to the host ID of the same container ID under `to`. Set-ID bits,
 * which chown clears, are restored.
 */
export async function chownByMaps(
  root: string,
  from: IDMappings | undefined,
  to: IDMappings | undefined,
): Promise<void> {
  const fromU = from?.uidMap ?? [], fromG = from?.gidMap ?? [];
  const toU = to?.uidMap ?? [], toG = to?.gidMap ?? [];
  const visit = async (path: string): Promise<void> => {
    const st = lstatNs(path);
    const uid = toHost(toContainer(st.uid, fromU), toU);
    const gid = toHost(toContainer(st.gid, fromG), toG);
    if (uid !== st.uid || gid !== st.gid) {
      lchown(path, uid, gid);
      const isLink = (st.mode & 0o170000) === 0o120000;
      if (!isLink && (st.mode & 0o6000) !== 0) await Deno.chmod(path, st.mode & 0o7777);
    }
    if ((st.mode & 0o170000) === 0o040000) {
      for await (const e of Deno.readDir(path)) await visit(`${path}/${e.name}`);
    }
  };
  await visit(root);
}

/**
 * Shifts `diff` → `diff1` → `diff2` … in `layerDir`, then recreates `work`
 * (which may still reference the old upper) and an empty `diff` with
 * `perms`, owned by `uid`:`gid`.
 */
export async function rotateDiffs(
  layerDir: string,
  perms: number,
  uid: number,
  gid: number,
): Promise<void> {
  let n = 0;
  while (await present(`${layerDir}/${diffName(n)}`)) n++;
  for (; n > 0; n--) {
    await Deno.rename(`${layerDir}/${diffName(n - 1)}`, `${layerDir}/${diffName(n)}`);
  }
  const work = `${layerDir}/work`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(work, { mode: 0o555 });
  await Deno.chown(work, uid, gid);
  await Deno.mkdir(`${layerDir}/diff`, { mode: perms });
  await Deno.chown(`${layerDir}/diff`, uid, gid);
}

async function present(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

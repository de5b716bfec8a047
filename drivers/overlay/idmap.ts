/**
 * ID-mapped layers for overlay: after ownership was rewritten through a
 * mount of the layer (so files of lower layers were copied up with their
 * new owners), `diff` is rotated to `diff1` (`diff1` to `diff2`, …) so the
 * old upper becomes the topmost lower and a fresh, empty `diff` takes its
 * place.
 *
 * @example
 * ```ts ignore
 * await rotateDiffs(layerDir, 0o555, 0, 0);
 * ```
 * @module
 */

/** `diff`, `diff1`, `diff2`, …: the name of the n-th upper generation. */
export function diffName(n: number): string {
  return n === 0 ? "diff" : `diff${n}`;
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

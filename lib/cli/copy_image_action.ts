/**
 * The work of `copy-image` (see copy_image.ts), loaded only when the
 * command runs: the image copy library, the store and the archive engine.
 *
 * @example
 * ```ts ignore
 * const code = await copyImageAction(ctx);
 * ```
 * @module
 */

import { copyImage, type CopyProgress } from "../image_copy/copy.ts";
import type { LayerCompression } from "../image_copy/oci_layout.ts";
import type { Context } from "./command.ts";
import { CliError } from "./messages.ts";
import { formatBytes, type ProgressDisplay, showProgress } from "./progress.ts";

const COMPRESSIONS = ["gzip", "zstd", "none"];

/** Runs `copy-image SRC DST` with the command's flags. */
export async function copyImageAction(ctx: Context): Promise<number> {
  const [src, dst] = ctx.args;
  const f = ctx.flags;
  const compress = f.getString("compress");
  if (compress && !COMPRESSIONS.includes(compress)) {
    throw new CliError(`copy-image: --compress must be one of ${COMPRESSIONS.join(", ")}`);
  }
  // One progress line per layer, labelled with the layer and the bytes of the layers before it.
  let display: ProgressDisplay | undefined;
  let shown = -1;
  const onProgress = (p: CopyProgress) => {
    if (p.layer !== shown) {
      display?.finish();
      shown = p.layer;
      const before = p.totalBytes - p.bytes;
      display = showProgress(ctx.io.err, {
        label: `copy-image: layer ${p.layer + 1}/${p.layers} (${formatBytes(before)} of ${
          formatBytes(p.totalSize)
        } before it)`,
        expectedSize: p.total,
      });
    }
    display?.options.onProgress?.(p);
  };
  try {
    const r = await copyImage(src, dst, {
      store: ctx.store,
      platform: f.getString("platform") || undefined,
      compression: (compress || undefined) as LayerCompression | undefined,
      name: f.getString("name") || undefined,
      onProgress,
    });
    display?.finish();
    ctx.io.out.write(`${r.imageID ?? r.writtenDigest ?? r.configDigest}\n`);
    return 0;
  } catch (e) {
    display?.finish();
    throw new CliError(`copy-image: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * What `layer-parent-owners` and `container-parent-owners` print: per
 * object, the host UIDs and GIDs owning the directories above it that its
 * ID mapping cannot represent. The first failure ends the command.
 *
 * @example
 * ```ts ignore
 * return await printParentOwners(ctx, layers, (id) => ctx.store.layerParentOwners(id), {
 *   errorPrefix: "LayerParentOwner", emptyLines: false,
 * });
 * ```
 * @module
 */

import { allFound, type Context } from "./command.ts";
import { goJSON, goList } from "./io.ts";
import { goMessage } from "./messages.ts";

/** How the two commands differ. */
export interface OwnersFormat {
  /** Word before a failure ("LayerParentOwner", "ContainerParentOwner"). */
  errorPrefix: string;
  /** Whether empty lists are printed ("UIDs: []") in text output. */
  emptyLines: boolean;
}

/** Prints the parent owners of each found object; the status counts the arguments not found. */
export async function printParentOwners(
  ctx: Context,
  found: { id: string }[],
  owners: (id: string) => Promise<{ uids: number[]; gids: number[] }>,
  format: OwnersFormat,
): Promise<number> {
  for (const { id } of found) {
    let uids: number[], gids: number[];
    try {
      ({ uids, gids } = await owners(id));
    } catch (e) {
      ctx.io.err.write(`${format.errorPrefix}: ${goMessage(e)}\n`);
      return 1;
    }
    if (ctx.flags.getBool("json")) {
      // Go encodes the empty (nil) slices as null.
      ctx.io.out.write(
        goJSON({ ID: id, UIDs: uids.length ? uids : null, GIDs: gids.length ? gids : null }),
      );
      continue;
    }
    let text = `ID: ${id}\n`;
    if (uids.length > 0 || format.emptyLines) text += `UIDs: ${goList(uids)}\n`;
    if (gids.length > 0 || format.emptyLines) text += `GIDs: ${goList(gids)}\n`;
    ctx.io.out.write(text);
  }
  return allFound(ctx, found);
}

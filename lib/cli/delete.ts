/**
 * Delete commands: `delete` (any kind, unchecked), `delete-layer`,
 * `delete-image` and `delete-container`. Each takes several arguments and
 * reports per argument like the reference CLI: errors on stderr, or one
 * JSON object keyed by argument with `-j`.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs delete-image -t my-image
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs delete-container -j web
 * ```
 * @module
 */

import { type Command, type Context, jsonFlag } from "./command.ts";
import { goJSON, goMap } from "./io.ts";
import { goMessage } from "./messages.ts";

/** Runs `op` on every argument and reports failures like the reference's delete commands. */
async function deleteEach(ctx: Context, op: (what: string) => Promise<void>): Promise<number> {
  // A repeated argument keeps its last result, as in the reference's map.
  const results = new Map<string, string>();
  for (const what of ctx.args) {
    try {
      await op(what);
      results.set(what, "");
    } catch (e) {
      results.set(what, goMessage(e));
    }
  }
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(goMap(results)));
  } else {
    for (const [what, err] of results) if (err) ctx.io.err.write(`${what}: ${err}\n`);
  }
  return [...results.values()].some((e) => e !== "") ? 1 : 0;
}

/** `delete-image`: the layers removed (or, with -t, that would be) are reported per image. */
async function deleteImage(ctx: Context): Promise<number> {
  const commit = !ctx.flags.getBool("test");
  const results = new Map<string, { "deleted-layers"?: string[]; error?: string }>();
  for (const what of ctx.args) {
    try {
      const layers = await ctx.store.deleteImage(what, commit);
      results.set(what, layers.length ? { "deleted-layers": layers } : {});
    } catch (e) {
      results.set(what, { error: goMessage(e) });
    }
  }
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(goMap(results)));
  } else {
    for (const [what, r] of results) {
      const lines = r.error ? [r.error] : r["deleted-layers"] ?? [];
      ctx.io.err.write(lines.map((line) => `${what}: ${line}\n`).join(""));
    }
  }
  return [...results.values()].some((r) => r.error) ? 1 : 0;
}

/** The delete commands, in the reference's order of registration. */
export const deleteCommands: Command[] = [
  {
    names: ["delete"],
    optionsHelp: "[LayerOrImageOrContainerNameOrID [...]]",
    usage: "Delete a layer or image or container, with no safety checks",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: (ctx) => deleteEach(ctx, (w) => ctx.store.delete(w)),
  },
  {
    names: ["delete-layer", "deletelayer"],
    optionsHelp: "[LayerNameOrID [...]]",
    usage: "Delete a layer, with safety checks",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: (ctx) => deleteEach(ctx, (w) => ctx.store.deleteLayer(w)),
  },
  {
    names: ["delete-image", "deleteimage"],
    optionsHelp: "[ImageNameOrID [...]]",
    usage: "Delete an image, with safety checks",
    minArgs: 1,
    maxArgs: 0,
    addFlags: (fs) => {
      fs.bool(["-test", "t"], false, "Only test removal");
      jsonFlag(fs);
    },
    action: deleteImage,
  },
  {
    names: ["delete-container", "deletecontainer"],
    optionsHelp: "[ContainerNameOrID [...]]",
    usage: "Delete a container, with safety checks",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: (ctx) => deleteEach(ctx, (w) => ctx.store.deleteContainer(w)),
  },
];

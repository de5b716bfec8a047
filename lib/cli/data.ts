/**
 * Layer big-data commands: `list-layer-data`, `get-layer-data` and
 * `set-layer-data`. Items stream between the store and stdin/stdout or a
 * file given with `-f`.
 *
 * @example
 * ```sh
 * echo hi | deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs set-layer-data base note
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs get-layer-data base note
 * ```
 * @module
 */

import { ErrInvalidBigDataName } from "../errors.ts";
import { type Command, type Context, jsonFlag } from "./command.ts";
import { openInput, withOutput, writeStream } from "./files.ts";
import { goJSON, goQuote } from "./io.ts";
import { CliError } from "./messages.ts";

async function listLayerData(ctx: Context): Promise<number> {
  const l = await ctx.store.layer(ctx.args[0]);
  const keys = await ctx.store.listLayerBigData(l.id);
  // Go encodes the empty (nil) list as null.
  if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(keys.length ? keys : null));
  else ctx.io.out.write(keys.map((k) => `${k}\n`).join(""));
  return 0;
}

async function getLayerData(ctx: Context): Promise<number> {
  const l = await ctx.store.layer(ctx.args[0]);
  // The reference creates the output file before looking the item up.
  await withOutput(ctx.flags.getString("file"), async (file) => {
    let data: ReadableStream<Uint8Array>;
    try {
      data = await ctx.store.layerBigData(l.id, ctx.args[1]);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new CliError(
        `locating item named ${goQuote(ctx.args[1])} for layer with ID ${goQuote(l.id)}: ` +
          "file does not exist",
        { cause: e },
      );
    }
    await writeStream(data, file, ctx.io.out);
  });
  return 0;
}

async function setLayerData(ctx: Context): Promise<number> {
  const l = await ctx.store.layer(ctx.args[0]);
  if (ctx.args[1] === "") {
    throw new CliError(
      `can't set empty name for layer big data item: ${ErrInvalidBigDataName.base}`,
    );
  }
  const input = await openInput(ctx.flags.getString("file"));
  try {
    await ctx.store.setLayerBigData(l.id, ctx.args[1], input.stream);
  } finally {
    input.close();
  }
  return 0;
}

/** The layer data commands, in the reference's order of registration. */
export const dataCommands: Command[] = [
  {
    names: ["list-layer-data", "listlayerdata"],
    optionsHelp: "[options [...]] layerNameOrID",
    usage: "List data items that are attached to a layer",
    minArgs: 1,
    maxArgs: 1,
    addFlags: jsonFlag,
    action: listLayerData,
  },
  {
    names: ["get-layer-data", "getlayerdata"],
    optionsHelp: "[options [...]] layerID dataName",
    usage: "Get data that is attached to a layer",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Write data to file"),
    action: getLayerData,
  },
  {
    names: ["set-layer-data", "setlayerdata"],
    optionsHelp: "[options [...]] layerID dataName",
    usage: "Set data that is attached to a layer",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Read data from file"),
    action: setLayerData,
  },
];

/**
 * Name and metadata commands: `get-names`, `add-names`, `set-names`,
 * `metadata` and `set-metadata`, as the reference CLI has them.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs add-names -n alias base
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs metadata -q base
 * ```
 * @module
 */

import { ErrLayerUnknown, ErrNotAnID } from "../errors.ts";
import { type Command, type Context, jsonFlag } from "./command.ts";
import { goJSON, goMap } from "./io.ts";
import { metadataFromFlags } from "./files.ts";
import { CliError } from "./messages.ts";

async function getNames(ctx: Context): Promise<number> {
  const id = await ctx.store.lookup(ctx.args[0]);
  const names = await ctx.store.names(id);
  if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(names));
  else ctx.io.out.write(names.map((n) => `${n}\n`).join(""));
  return 0;
}

async function changeNames(ctx: Context, add: boolean): Promise<number> {
  const id = await ctx.store.lookup(ctx.args[0]);
  const given = ctx.flags.getList("name");
  const names = add ? [...await ctx.store.names(id), ...given] : given;
  await ctx.store.setNames(id, names);
  const after = await ctx.store.names(id);
  // Go encodes names that are absent or emptied as null.
  if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(after.length ? after : null));
  return 0;
}

async function metadata(ctx: Context): Promise<number> {
  const found = new Map<string, string>();
  let missingAny = false;
  for (const what of ctx.args) {
    try {
      found.set(what, (await ctx.store.metadata(what)).replace(/\n$/, ""));
    } catch {
      missingAny = true;
    }
  }
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(goMap(found)));
  } else {
    const quiet = ctx.flags.getBool("quiet");
    ctx.io.out.write(
      ctx.args.map((w) => quiet ? `${found.get(w) ?? ""}\n` : `${w}: ${found.get(w) ?? ""}\n`)
        .join(""),
    );
  }
  return missingAny ? 1 : 0;
}

async function setMetadata(ctx: Context): Promise<number> {
  if (ctx.flags.getString("metadata-file") === "" && ctx.flags.getString("metadata") === "") {
    throw new CliError("no new metadata provided");
  }
  const md = await metadataFromFlags(ctx.flags);
  try {
    await ctx.store.setMetadata(ctx.args[0], md);
  } catch (e) {
    // The argument may name a layer, image or container; Go reports the miss as ErrNotAnID.
    if (e instanceof ErrLayerUnknown) throw new CliError(ErrNotAnID.base, { cause: e });
    throw e;
  }
  return 0;
}

function nameFlags(fs: Parameters<NonNullable<Command["addFlags"]>>[0]) {
  fs.list(["-name", "n"], [], "New name");
  jsonFlag(fs);
}

/** The name and metadata commands, in the reference's order of registration. */
export const nameCommands: Command[] = [
  {
    names: ["metadata"],
    optionsHelp: "[LayerOrImageOrContainerNameOrID [...]]",
    usage: "Retrieve layer, image, or container metadata",
    minArgs: 1,
    maxArgs: 0,
    addFlags: (fs) => {
      fs.bool(["-quiet", "q"], false, "Omit names and IDs");
      jsonFlag(fs);
    },
    action: metadata,
  },
  {
    names: ["set-metadata", "setmetadata"],
    optionsHelp: "[options [...]] layerOrImageOrContainerNameOrID",
    usage: "Set layer, image, or container metadata",
    minArgs: 1,
    maxArgs: 1,
    addFlags: (fs) => {
      fs.string(["-metadata", "m"], "", "Metadata");
      fs.string(["-metadata-file", "f"], "", "Metadata File");
    },
    action: setMetadata,
  },
  {
    names: ["get-names", "getnames"],
    optionsHelp: "[options [...]] imageOrContainerNameOrID",
    usage: "Get layer, image, or container name or names",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: getNames,
  },
  {
    names: ["add-names", "addnames"],
    optionsHelp: "[options [...]] imageOrContainerNameOrID",
    usage: "Add layer, image, or container name or names",
    minArgs: 1,
    maxArgs: 0,
    addFlags: nameFlags,
    action: (ctx) => changeNames(ctx, true),
  },
  {
    names: ["set-names", "setnames"],
    optionsHelp: "[options [...]] imageOrContainerNameOrID",
    usage: "Set layer, image, or container name or names",
    minArgs: 1,
    maxArgs: 0,
    addFlags: nameFlags,
    action: (ctx) => changeNames(ctx, false),
  },
];

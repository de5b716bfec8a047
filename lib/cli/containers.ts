/**
 * Container commands: `containers`, `container`, `create-container`,
 * `get-container-dir`, `get-container-run-dir`,
 * `container-parent-owners` and the container big-data commands, with the
 * flags, text and JSON output of the reference `containers-storage` CLI.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs create-container -n web my-image
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs containers
 * ```
 * @module
 */

import { containerToJSON } from "../containers/container.ts";
import { ErrInvalidBigDataName } from "../errors.ts";
import { bigDataFileName } from "../layers/encode.ts";
import { bigDataActions, type BigDataKind, type BigDataOp } from "./big_data.ts";
import { allFound, type Command, type Context, foundFor, jsonFlag } from "./command.ts";
import { printParentOwners } from "./owners.ts";
import { metadataFromFlags } from "./files.ts";
import type { FlagSet } from "./flags.ts";
import { idMappingFlags, idMappingOptions } from "./idmap_flags.ts";
import { goJSON } from "./io.ts";
import { CliError, goMessage, pathError } from "./messages.ts";

async function containers(ctx: Context): Promise<number> {
  const list = await ctx.store.containers();
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(list.map(containerToJSON)));
    return 0;
  }
  let text = "";
  for (const c of list) {
    text += `${c.id}\n`;
    for (const name of c.names ?? []) text += `\tname: ${name}\n`;
    for (const key of c["big-data-names"] ?? []) text += `\tdata: ${key}\n`;
  }
  ctx.io.out.write(text);
  return 0;
}

async function container(ctx: Context): Promise<number> {
  const images = await ctx.store.images();
  const matched = await foundFor(ctx.args, (arg) => ctx.store.container(arg));
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(matched.map(containerToJSON)));
    return allFound(ctx, matched);
  }
  for (const c of matched) {
    let text = `ID: ${c.id}\n`;
    for (const name of c.names ?? []) text += `Name: ${name}\n`;
    text += `Image: ${c.image}\n`;
    const image = images.find((i) => i.id === c.image);
    for (const name of image?.names ?? []) text += `Image name: ${name}\n`;
    try {
      text += `Size: ${await ctx.store.containerSize(c.id)}\n`;
    } catch (e) {
      text += `Size unknown: ${goMessage(e)}\n`;
    }
    text += `Layer: ${c.layer}\n`;
    for (const key of c["big-data-names"] ?? []) text += `Data: ${key}\n`;
    ctx.io.out.write(text);
  }
  return allFound(ctx, matched);
}

async function containerParentOwners(ctx: Context): Promise<number> {
  const found = await foundFor(ctx.args, (arg) => ctx.store.container(arg));
  return await printParentOwners(ctx, found, (id) => ctx.store.containerParentOwners(id), {
    errorPrefix: "ContainerParentOwner",
    emptyLines: true,
  });
}

async function createContainer(ctx: Context): Promise<number> {
  const f = ctx.flags;
  const metadata = await metadataFromFlags(f);
  const mappings = await idMappingOptions(f);
  const c = await ctx.store.createContainer(ctx.args[0] || undefined, {
    ...mappings,
    id: f.getString("id") || undefined,
    names: f.getList("name"),
    metadata,
    volatile: f.getBool("volatile"),
  });
  if (f.getBool("json")) ctx.io.out.write(goJSON(containerToJSON(c)));
  // The reference ends neither the names nor the output with a newline.
  else ctx.io.out.write(`${c.id}\n${(c.names ?? []).map((n) => `\t${n}`).join("")}`);
  return 0;
}

/** What the reference's container store says about an empty key, per operation. */
const EMPTY_KEY: Record<BigDataOp, string> = {
  get: "can't retrieve container big data value for empty name",
  size: "can't retrieve size of container big data with empty name",
  digest: "can't retrieve digest of container big data value with empty name",
  set: "can't set empty name for container big data item",
};

/** Containers as the big-data commands see them; failures are the container store's. */
const containerKind: BigDataKind = {
  resolve: async (store, arg) => (await store.container(arg)).id,
  list: (store, id) => store.listContainerBigData(id),
  get: (store, id, key) => store.containerBigData(id, key),
  size: (store, id, key) => store.containerBigDataSize(id, key),
  digest: (store, id, key) => store.containerBigDataDigest(id, key),
  set: (store, id, key, data) => store.setContainerBigData(id, key, data),
  failure(op, store, id, key, e) {
    if (e instanceof ErrInvalidBigDataName) {
      return new CliError(`${EMPTY_KEY[op]}: ${ErrInvalidBigDataName.base}`, { cause: e });
    }
    if (op === "get" && e instanceof Deno.errors.NotFound) {
      // The reference reads the item's file and reports that read's failure.
      const path = `${store.graphRoot}/${store.graphDriverName}-containers/${id}/` +
        bigDataFileName(key);
      return pathError("open", path, e);
    }
    return undefined;
  },
};

const data = bigDataActions(containerKind);

function createContainerFlags(fs: FlagSet): void {
  fs.list(["-name", "n"], [], "Container name");
  fs.bool(["-volatile"], false, "Mark as volatile");
  fs.string(["-id", "i"], "", "Container ID");
  fs.string(["-metadata", "m"], "", "Metadata");
  fs.string(["-metadata-file", "f"], "", "Metadata File");
  jsonFlag(fs);
  idMappingFlags(fs);
}

/** Prints the path a container directory getter returns. */
function printDir(get: (ctx: Context) => Promise<string>): (ctx: Context) => Promise<number> {
  return async (ctx) => {
    ctx.io.out.write(`${await get(ctx)}\n`);
    return 0;
  };
}

/** The container commands, in the reference's order of registration. */
export const containerCommands: Command[] = [
  {
    names: ["container"],
    optionsHelp: "[options [...]] containerNameOrID [...]",
    usage: "Examine a container",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: container,
  },
  {
    names: ["list-container-data", "listcontainerdata"],
    optionsHelp: "[options [...]] containerNameOrID",
    usage: "List data items that are attached to an container",
    minArgs: 1,
    maxArgs: 1,
    addFlags: jsonFlag,
    action: data.list,
  },
  {
    names: ["get-container-data", "getcontainerdata"],
    optionsHelp: "[options [...]] containerNameOrID dataName",
    usage: "Get data that is attached to an container",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Write data to file"),
    action: data.get,
  },
  {
    names: ["get-container-data-size", "getcontainerdatasize"],
    optionsHelp: "[options [...]] containerNameOrID dataName",
    usage: "Get size of data that is attached to an container",
    minArgs: 2,
    maxArgs: 0,
    action: data.size,
  },
  {
    names: ["get-container-data-digest", "getcontainerdatadigest"],
    optionsHelp: "[options [...]] containerNameOrID dataName",
    usage: "Get digest of data that is attached to an container",
    minArgs: 2,
    maxArgs: 0,
    action: data.digest,
  },
  {
    names: ["set-container-data", "setcontainerdata"],
    optionsHelp: "[options [...]] containerNameOrID dataName",
    usage: "Set data that is attached to an container",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Read data from file"),
    action: data.set,
  },
  {
    names: ["get-container-dir", "getcontainerdir"],
    optionsHelp: "[options [...]] containerNameOrID",
    usage: "Find the container's associated data directory",
    minArgs: 1,
    maxArgs: 0,
    action: printDir((ctx) => ctx.store.containerDirectory(ctx.args[0])),
  },
  {
    names: ["get-container-run-dir", "getcontainerrundir"],
    optionsHelp: "[options [...]] containerNameOrID",
    usage: "Find the container's associated runtime directory",
    minArgs: 1,
    maxArgs: 0,
    action: printDir((ctx) => ctx.store.containerRunDirectory(ctx.args[0])),
  },
  {
    names: ["container-parent-owners"],
    optionsHelp: "[options [...]] containerNameOrID [...]",
    usage: "Compute the set of unmapped parent UIDs and GIDs of the container",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: containerParentOwners,
  },
  {
    names: ["containers"],
    optionsHelp: "[options [...]]",
    usage: "List containers",
    minArgs: 0,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: containers,
  },
  {
    names: ["create-container", "createcontainer"],
    optionsHelp: "[options [...]] parentImageNameOrID",
    usage: "Create a new container from an image",
    minArgs: 1,
    maxArgs: 1,
    addFlags: createContainerFlags,
    action: createContainer,
  },
];

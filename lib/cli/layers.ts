/**
 * Layer commands: `layers`, `layer`, `layer-parent-owners`, `create-layer`,
 * `import-layer` and `exists`, with the flags,
 * text and JSON output of the reference `containers-storage` CLI.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs import-layer -n base -f layer.tar
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs layers --tree
 * ```
 * @module
 */

import type { Container } from "../containers/container.ts";
import type { Image } from "../images/image.ts";
import type { CreateLayerOptions, Layer } from "../layers/layer.ts";
import { layerToJSON } from "../layers/encode.ts";
import { allFound, type Command, type Context, foundFor, jsonFlag } from "./command.ts";
import { printParentOwners } from "./owners.ts";
import { openInput } from "./files.ts";
import { inputSize, withProgress } from "./progress.ts";
import { goJSON, goMap } from "./io.ts";
import { idMappingFlags, idMappingOptions } from "./idmap_flags.ts";
import { renderTree, type TreeNode } from "./tree.ts";

async function layers(ctx: Context): Promise<number> {
  const all = await ctx.store.layers();
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(all.map(layerToJSON)));
    return 0;
  }
  // The reference lists the layers even when images or containers cannot be read.
  const imagesByLayer = new Map<string, Image[]>();
  for (const image of await ctx.store.images().catch(() => [])) {
    for (const layerID of [image.layer ?? "", ...(image["mapped-layers"] ?? [])]) {
      imagesByLayer.set(layerID, [...(imagesByLayer.get(layerID) ?? []), image]);
    }
  }
  const containerByLayer = new Map<string, Container>();
  for (const c of await ctx.store.containers().catch(() => [])) containerByLayer.set(c.layer, c);
  const tree = ctx.flags.getBool("tree");
  const nodes: TreeNode[] = [];
  let text = "";
  for (const layer of all) {
    const images = imagesByLayer.get(layer.id) ?? [];
    const container = containerByLayer.get(layer.id);
    if (tree) {
      const notes = (layer.names ?? []).map((n) => `name: ${n}`);
      if (layer.mountpoint && (layer.mountcount ?? 0) > 0) notes.push(`mount: ${layer.mountpoint}`);
      for (const image of images) {
        notes.push(`image: ${image.id}`, ...(image.names ?? []).map((n) => `image name: ${n}`));
      }
      if (container) {
        notes.push(
          `container: ${container.id}`,
          ...(container.names ?? []).map((n) => `container name: ${n}`),
        );
      }
      nodes.push({ left: layer.parent || "(base)", right: layer.id, notes });
      continue;
    }
    text += `${layer.id}\n`;
    for (const name of layer.names ?? []) text += `\tname: ${name}\n`;
    for (const image of images) {
      text += `\timage: ${image.id}\n`;
      for (const name of image.names ?? []) text += `\t\tname: ${name}\n`;
    }
    if (container) {
      text += `\tcontainer: ${container.id}\n`;
      for (const name of container.names ?? []) text += `\t\tname: ${name}\n`;
    }
  }
  ctx.io.out.write(tree ? renderTree(nodes) : text);
  return 0;
}

async function layer(ctx: Context): Promise<number> {
  const matched = await foundFor(ctx.args, (arg) => ctx.store.layer(arg));
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(matched.map(layerToJSON)));
  } else {
    let text = "";
    for (const l of matched) {
      text += `ID: ${l.id}\n`;
      for (const m of l.uidmap ?? []) {
        text += `UID mapping: (container=${m.container_id}, host=${m.host_id}, size=${m.size})\n`;
      }
      for (const m of l.gidmap ?? []) {
        text += `GID mapping: (container=${m.container_id}, host=${m.host_id}, size=${m.size})\n`;
      }
      if (l.parent) text += `Parent: ${l.parent}\n`;
      for (const name of l.names ?? []) text += `Name: ${name}\n`;
      if (l.readonly) text += "Read Only: true\n";
    }
    ctx.io.out.write(text);
  }
  return allFound(ctx, matched);
}

async function layerParentOwners(ctx: Context): Promise<number> {
  const found = await foundFor(ctx.args, (arg) => ctx.store.layer(arg));
  return await printParentOwners(ctx, found, (id) => ctx.store.layerParentOwners(id), {
    errorPrefix: "LayerParentOwner",
    emptyLines: false,
  });
}

function printNewLayer(ctx: Context, l: Layer): void {
  if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(layerToJSON(l)));
  else ctx.io.out.write(`${l.id}\n${(l.names ?? []).map((n) => `\t${n}\n`).join("")}`);
}

/** The new layer as the create-layer and import-layer flags and argument describe it. */
async function newLayerOptions(ctx: Context): Promise<CreateLayerOptions> {
  const f = ctx.flags;
  return {
    ...await idMappingOptions(f),
    id: f.getString("id") || undefined,
    parent: ctx.args[0],
    names: f.getList("name"),
    mountLabel: f.getString("label"),
    writeable: !f.getBool("readonly"),
  };
}

async function createLayer(ctx: Context): Promise<number> {
  const l = await ctx.store.createLayer(await newLayerOptions(ctx));
  printNewLayer(ctx, l);
  return 0;
}

async function importLayer(ctx: Context): Promise<number> {
  const path = ctx.flags.getString("file");
  const input = await openInput(path);
  try {
    const opts = await newLayerOptions(ctx);
    const progress = { label: ctx.name, expectedSize: await inputSize(path) };
    const { layer: l } = await withProgress(
      ctx.io,
      progress,
      (p) => ctx.store.putLayer({ ...opts, ...p, diff: input.stream }),
    );
    printNewLayer(ctx, l);
    return 0;
  } finally {
    input.close();
  }
}

async function exists(ctx: Context): Promise<number> {
  const f = ctx.flags;
  const found = new Map<string, boolean>();
  let anyMissing = false;
  const is = (get: Promise<unknown>) => get.then(() => true, () => false);
  for (const what of ctx.args) {
    let ok = await ctx.store.exists(what);
    found.set(what, ok);
    if (f.getBool("container") && !await is(ctx.store.container(what))) ok = false;
    if (f.getBool("image") && !await is(ctx.store.image(what))) ok = false;
    if (f.getBool("layer") && !await is(ctx.store.layer(what))) ok = false;
    if (!ok) anyMissing = true;
  }
  if (f.getBool("json")) {
    ctx.io.out.write(goJSON(goMap(found)));
  } else if (!f.getBool("quiet")) {
    ctx.io.out.write([...found].map(([what, ok]) => `${what}: ${ok}\n`).join(""));
  }
  return anyMissing ? 1 : 0;
}

function layerFlags(fs: Parameters<NonNullable<Command["addFlags"]>>[0], withFile: boolean) {
  fs.string(["-label", "l"], "", "Mount Label");
  fs.list(["-name", "n"], [], "Layer name");
  fs.string(["-id", "i"], "", "Layer ID");
  fs.bool(["-readonly", "r"], false, "Mark as read-only");
  jsonFlag(fs);
  if (withFile) fs.string(["-file", "f"], "", "Read from file instead of stdin");
  idMappingFlags(fs);
}

/** The layer commands, in the reference's order of registration. */
export const layerCommands: Command[] = [
  {
    names: ["create-layer", "createlayer"],
    optionsHelp: "[options [...]] [parentLayerNameOrID]",
    usage: "Create a new layer",
    minArgs: 0,
    maxArgs: 1,
    addFlags: (fs) => layerFlags(fs, false),
    action: createLayer,
  },
  {
    names: ["import-layer", "importlayer"],
    optionsHelp: "[options [...]] [parentLayerNameOrID]",
    usage: "Import a new layer",
    minArgs: 0,
    maxArgs: 1,
    addFlags: (fs) => layerFlags(fs, true),
    action: importLayer,
    preload: layerWriters,
  },
  {
    names: ["exists"],
    optionsHelp: "[LayerOrImageOrContainerNameOrID [...]]",
    usage: "Check if a layer or image or container exists",
    minArgs: 1,
    maxArgs: 0,
    addFlags: (fs) => {
      fs.bool(["-quiet", "q"], false, "Don't print names");
      fs.bool(["-layer", "l"], false, "Only succeed if the match is a layer");
      fs.bool(["-image", "i"], false, "Only succeed if the match is an image");
      fs.bool(["-container", "c"], false, "Only succeed if the match is a container");
      jsonFlag(fs);
    },
    action: exists,
  },
  {
    names: ["layer"],
    optionsHelp: "[options [...]] layerNameOrID [...]",
    usage: "Examine a layer",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: layer,
  },
  {
    names: ["layer-parent-owners"],
    optionsHelp: "[options [...]] layerNameOrID [...]",
    usage: "Compute the set of unmapped parent UIDs and GIDs of the layer",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: layerParentOwners,
  },
  {
    names: ["layers"],
    optionsHelp: "[options [...]]",
    usage: "List layers",
    minArgs: 0,
    maxArgs: 0,
    addFlags: (fs) => {
      fs.bool(["-tree", "t"], false, "Use a tree");
      jsonFlag(fs);
    },
    action: layers,
  },
];

/** The modules that write a layer's content, for {@linkcode Command.preload}. */
export function layerWriters(): Promise<unknown>[] {
  return [
    import("../layers/put.ts"),
    import("../archive/layer_stream.ts"),
    import("../archive/apply.ts"),
  ];
}

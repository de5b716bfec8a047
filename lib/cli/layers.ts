/**
 * Layer commands: `layers`, `layer`, `layer-parent-owners`, `create-layer`,
 * `import-layer`, `delete-layer`, `delete` and `exists`, with the flags,
 * text and JSON output of the reference `containers-storage` CLI.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs import-layer -n base -f layer.tar
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs layers --tree
 * ```
 * @module
 */

import { ErrLayerUnknown } from "../errors.ts";
import type { CreateLayerOptions, Layer } from "../layers/layer.ts";
import { layerToJSON } from "../layers/encode.ts";
import { type Command, type Context, jsonFlag } from "./command.ts";
import { openInput } from "./files.ts";
import { goJSON, goList } from "./io.ts";
import { goMessage } from "./messages.ts";
import { idMappingFlags, idMappingOptions } from "./idmap_flags.ts";
import { renderTree, type TreeNode } from "./tree.ts";

/** Images and containers as far as `layers` shows them; present once the store manages them. */
interface Owners {
  images?(): Promise<
    { id: string; names?: string[]; layer?: string; "mapped-top-layers"?: string[] }[]
  >;
  containers?(): Promise<{ id: string; names?: string[]; layer: string }[]>;
  image?(idOrName: string): Promise<unknown>;
  container?(idOrName: string): Promise<unknown>;
  delete?(idOrName: string): Promise<void>;
}

function owners(ctx: Context): Owners {
  return ctx.store as unknown as Owners;
}

/** Resolves each argument to a layer, skipping unknown ones (the reference reports them by exit code only). */
async function matchLayers(ctx: Context): Promise<Layer[]> {
  const matched: Layer[] = [];
  for (const arg of ctx.args) {
    try {
      matched.push(await ctx.store.layer(arg));
    } catch {
      // unknown: counted by the caller
    }
  }
  return matched;
}

async function layers(ctx: Context): Promise<number> {
  const all = await ctx.store.layers();
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(all.map(layerToJSON)));
    return 0;
  }
  const imagesByLayer = new Map<string, { id: string; names?: string[] }[]>();
  for (const image of await owners(ctx).images?.().catch(() => []) ?? []) {
    for (const layerID of [image.layer ?? "", ...(image["mapped-top-layers"] ?? [])]) {
      imagesByLayer.set(layerID, [...(imagesByLayer.get(layerID) ?? []), image]);
    }
  }
  const containerByLayer = new Map<string, { id: string; names?: string[] }>();
  for (const c of await owners(ctx).containers?.().catch(() => []) ?? []) {
    containerByLayer.set(c.layer, c);
  }
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
  const matched = await matchLayers(ctx);
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
  return matched.length === ctx.args.length ? 0 : 1;
}

async function layerParentOwners(ctx: Context): Promise<number> {
  const matched = await matchLayers(ctx);
  for (const l of matched) {
    let owners: { uids: number[]; gids: number[] };
    try {
      owners = await ctx.store.layerParentOwners(l.id);
    } catch (e) {
      ctx.io.err.write(`LayerParentOwner: ${goMessage(e)}\n`);
      return 1;
    }
    const { uids, gids } = owners;
    if (ctx.flags.getBool("json")) {
      // Go encodes the empty (nil) slices as null.
      ctx.io.out.write(
        goJSON({ ID: l.id, UIDs: uids.length ? uids : null, GIDs: gids.length ? gids : null }),
      );
    } else {
      let text = `ID: ${l.id}\n`;
      if (uids.length > 0) text += `UIDs: ${goList(uids)}\n`;
      if (gids.length > 0) text += `GIDs: ${goList(gids)}\n`;
      ctx.io.out.write(text);
    }
  }
  return matched.length === ctx.args.length ? 0 : 1;
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
  const input = await openInput(ctx.flags.getString("file"));
  try {
    const opts = await newLayerOptions(ctx);
    const { layer: l } = await ctx.store.putLayer({ ...opts, diff: input.stream });
    printNewLayer(ctx, l);
    return 0;
  } finally {
    input.close();
  }
}

/** Runs `op` on every distinct argument and reports failures like the reference's delete commands. */
async function deleteEach(ctx: Context, op: (what: string) => Promise<void>): Promise<number> {
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
    ctx.io.out.write(goJSON(Object.fromEntries([...results].sort(([a], [b]) => a < b ? -1 : 1))));
  } else {
    for (const [what, err] of results) if (err) ctx.io.err.write(`${what}: ${err}\n`);
  }
  return [...results.values()].some((e) => e !== "") ? 1 : 0;
}

async function exists(ctx: Context): Promise<number> {
  const f = ctx.flags;
  const found = new Map<string, boolean>();
  let anyMissing = false;
  const probe = async (get: ((id: string) => Promise<unknown>) | undefined, what: string) => {
    if (!get) return false;
    return await get(what).then(() => true, () => false);
  };
  const o = owners(ctx);
  for (const what of ctx.args) {
    let ok = await ctx.store.exists(what);
    found.set(what, ok);
    if (f.getBool("container") && !await probe(o.container?.bind(o), what)) ok = false;
    if (f.getBool("image") && !await probe(o.image?.bind(o), what)) ok = false;
    if (f.getBool("layer") && !await probe((id) => ctx.store.layer(id), what)) ok = false;
    if (!ok) anyMissing = true;
  }
  if (f.getBool("json")) {
    ctx.io.out.write(goJSON(Object.fromEntries([...found].sort(([a], [b]) => a < b ? -1 : 1))));
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
  },
  {
    names: ["delete"],
    optionsHelp: "[LayerOrImageOrContainerNameOrID [...]]",
    usage: "Delete a layer or image or container, with no safety checks",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: (ctx) => {
      const o = owners(ctx);
      return deleteEach(ctx, async (w) => {
        if (o.delete) return await o.delete(w);
        // Without Store.delete only layers can go; an unknown name is Go's ErrLayerUnknown.
        if (!await ctx.store.exists(w)) throw new ErrLayerUnknown(w);
        await ctx.store.deleteLayer(w);
      });
    },
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

/**
 * Image commands: `images`, `images-by-digest`, `image`, `create-image`
 * and the image big-data commands, with the flags, text
 * and JSON output of the reference `containers-storage` CLI.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs create-image -n web base-layer
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs images
 * ```
 * @module
 */

import {
  ErrDuplicateID,
  ErrDuplicateName,
  ErrImageUnknown,
  ErrInvalidBigDataName,
  ErrLayerUnknown,
} from "../errors.ts";
import { type Image, imageToJSON } from "../images/image.ts";
import { bigDataActions, type BigDataKind } from "./big_data.ts";
import { allFound, type Command, type Context, foundFor, jsonFlag } from "./command.ts";
import { digestProblem } from "./digest.ts";
import type { FlagSet } from "./flags.ts";
import { goJSON, goQuote } from "./io.ts";
import { metadataFromFlags } from "./files.ts";
import { CliError, goMessage } from "./messages.ts";

/** Prints images as `images` and `images-by-digest` do: IDs, then (unless -q) names, digests and data keys. */
async function printImages(ctx: Context, list: Image[], nullWhenEmpty: boolean): Promise<void> {
  if (ctx.flags.getBool("json")) {
    // Go encodes a nil slice (what Images() returns for no images) as null.
    ctx.io.out.write(goJSON(list.length || !nullWhenEmpty ? list.map(imageToJSON) : null));
    return;
  }
  const quiet = ctx.flags.getBool("quiet");
  let text = "";
  for (const image of list) {
    text += `${image.id}\n`;
    if (quiet) continue;
    for (const name of image.names ?? []) text += `\tname: ${name}\n`;
    for (const d of await ctx.store.imageDigests(image.id)) text += `\tdigest: ${d}\n`;
    for (const key of image["big-data-names"] ?? []) text += `\tdata: ${key}\n`;
  }
  ctx.io.out.write(text);
}

async function images(ctx: Context): Promise<number> {
  await printImages(ctx, await ctx.store.images(), true);
  return 0;
}

async function imagesByDigest(ctx: Context): Promise<number> {
  const d = ctx.args[0];
  const problem = digestProblem(d);
  if (problem) throw new CliError(`${d}: ${problem}`);
  await printImages(ctx, await ctx.store.imagesByDigest(d), false);
  return 0;
}

async function image(ctx: Context): Promise<number> {
  const matched = await foundFor(ctx.args, (arg) => ctx.store.image(arg));
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(matched.map(imageToJSON)));
    return allFound(ctx, matched);
  }
  for (const image of matched) {
    let text = `ID: ${image.id}\n`;
    for (const name of image.names ?? []) text += `Name: ${name}\n`;
    text += `Top Layer: ${image.layer ?? ""}\n`;
    for (const layer of image["mapped-layers"] ?? []) text += `Top Layer: ${layer}\n`;
    for (const d of await ctx.store.imageDigests(image.id)) text += `Digest: ${d}\n`;
    for (const key of image["big-data-names"] ?? []) text += `Data: ${key}\n`;
    try {
      text += `Size: ${await ctx.store.imageSize(image.id)}\n`;
    } catch (e) {
      text += `Size unknown: ${goMessage(e)}\n`;
    }
    if (image.readonly) text += "Read Only: true\n";
    ctx.io.out.write(text);
  }
  return allFound(ctx, matched);
}

async function createImage(ctx: Context): Promise<number> {
  const f = ctx.flags;
  const metadata = await metadataFromFlags(f);
  const digest = f.getString("digest");
  let created: Image;
  try {
    created = await ctx.store.createImage(ctx.args[0] || undefined, {
      id: f.getString("id") || undefined,
      names: f.getList("name"),
      metadata,
      digest: digest || undefined,
    });
  } catch (e) {
    // The store checks the layer, the ID and the names before the digest.
    const problem = digest ? digestProblem(digest) : undefined;
    const earlier = e instanceof ErrLayerUnknown || e instanceof ErrDuplicateID ||
      e instanceof ErrDuplicateName;
    if (!problem || earlier) throw e;
    throw new CliError(
      `validating digests for new image: validating image digest ${goQuote(digest)}: ${problem}`,
      { cause: e },
    );
  }
  if (f.getBool("json")) ctx.io.out.write(goJSON(imageToJSON(created)));
  else ctx.io.out.write(`${created.id}\n${(created.names ?? []).map((n) => `\t${n}\n`).join("")}`);
  return 0;
}

/** Images as the big-data commands see them: failures once the image is found are worded by the store. */
const imageKind: BigDataKind = {
  resolve: async (store, arg) => (await store.image(arg)).id,
  list: (store, id) => store.listImageBigData(id),
  get: (store, id, key) => store.imageBigData(id, key),
  size: (store, id, key) => store.imageBigDataSize(id, key),
  digest: (store, id, key) => store.imageBigDataDigest(id, key),
  // The reference digests every item with plain sha256, manifests included.
  // (Loaded here: the command table stays free of the store's modules.)
  set: async (store, id, key, data) => {
    const { sha256Digest } = await import("../records/record_store.ts");
    return await store.setImageBigData(id, key, data, sha256Digest);
  },
  failure(op, _store, id, key, e) {
    if (e instanceof ErrImageUnknown) return e;
    if (op === "get") {
      return new CliError(
        `locating item named ${goQuote(key)} for image with ID ${goQuote(id)} ` +
          "(consider removing the image to resolve the issue): file does not exist",
        { cause: e },
      );
    }
    if (op === "set" && e instanceof ErrInvalidBigDataName) {
      return new CliError(
        `can't set empty name for image big data item: ${ErrInvalidBigDataName.base}`,
        { cause: e },
      );
    }
    return undefined;
  },
};

const data = bigDataActions(imageKind);

function createImageFlags(fs: FlagSet): void {
  fs.list(["-name", "n"], [], "Image name");
  fs.string(["-id", "i"], "", "Image ID");
  fs.string(["-digest", "d"], "", "Image Digest");
  fs.string(["-metadata", "m"], "", "Metadata");
  fs.string(["-metadata-file", "f"], "", "Metadata File");
  jsonFlag(fs);
}

function listFlags(fs: FlagSet): void {
  jsonFlag(fs);
  fs.bool(["-quiet", "q"], false, "Only print IDs");
}

/** The image commands, in the reference's order of registration. */
export const imageCommands: Command[] = [
  {
    names: ["create-image", "createimage"],
    optionsHelp: "[options [...]] topLayerNameOrID",
    usage: "Create a new image using layers",
    minArgs: 0,
    maxArgs: 1,
    addFlags: createImageFlags,
    action: createImage,
  },
  {
    names: ["image"],
    optionsHelp: "[options [...]] imageNameOrID [...]",
    usage: "Examine an image",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: image,
  },
  {
    names: ["list-image-data", "listimagedata"],
    optionsHelp: "[options [...]] imageNameOrID",
    usage: "List data items that are attached to an image",
    minArgs: 1,
    maxArgs: 1,
    addFlags: jsonFlag,
    action: data.list,
  },
  {
    names: ["get-image-data", "getimagedata"],
    optionsHelp: "[options [...]] imageNameOrID dataName",
    usage: "Get data that is attached to an image",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Write data to file"),
    action: data.get,
  },
  {
    names: ["get-image-data-size", "getimagedatasize"],
    optionsHelp: "[options [...]] imageNameOrID dataName",
    usage: "Get size of data that is attached to an image",
    minArgs: 2,
    maxArgs: 0,
    action: data.size,
  },
  {
    names: ["get-image-data-digest", "getimagedatadigest"],
    optionsHelp: "[options [...]] imageNameOrID dataName",
    usage: "Get digest of data that is attached to an image",
    minArgs: 2,
    maxArgs: 0,
    action: data.digest,
  },
  {
    names: ["set-image-data", "setimagedata"],
    optionsHelp: "[options [...]] imageNameOrID dataName",
    usage: "Set data that is attached to an image (with sometimes wrong digest)",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Read data from file"),
    action: data.set,
  },
  {
    names: ["images"],
    optionsHelp: "[options [...]]",
    usage: "List images",
    minArgs: 0,
    maxArgs: 0,
    addFlags: listFlags,
    action: images,
  },
  {
    names: ["images-by-digest"],
    optionsHelp: "[options [...]] DIGEST",
    usage: "List images by digest",
    minArgs: 1,
    maxArgs: 1,
    addFlags: listFlags,
    action: imagesByDigest,
  },
];

/**
 * Diff commands: `diff` (a layer's changes as a tarball, optionally
 * compressed), `diffsize`, `changes` and `applydiff`. Tarballs stream
 * between the store and stdin/stdout or `-f` files.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs diff -u -f out.tar <layer>
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs applydiff -f layer.tar <layer>
 * ```
 * @module
 */

import { ChangeKind } from "../../drivers/driver.ts";
import { type Command, type Context, jsonFlag } from "./command.ts";
import { openInput, withOutput, writeStream } from "./files.ts";
import { goJSON, goQuote } from "./io.ts";
import { CliError } from "./messages.ts";
import { layerWriters } from "./layers.ts";
import { inputSize, withProgress } from "./progress.ts";

/** Compression numbers as containers/storage's archive.Compression (and layers.json) use them. */
const UNCOMPRESSED = 0, BZIP2 = 1, GZIP = 2, XZ = 3;

/** `layer [reference]` → [from, to] as the store takes them. */
function fromTo(ctx: Context): [string, string] {
  return [ctx.args[1] ?? "", ctx.args[0]];
}

async function changes(ctx: Context): Promise<number> {
  const list = await ctx.store.changes(...fromTo(ctx));
  if (ctx.flags.getBool("json")) {
    // Go encodes the empty (nil) list as null.
    ctx.io.out.write(
      goJSON(list.length ? list.map((c) => ({ Path: c.path, Kind: c.kind })) : null),
    );
    return 0;
  }
  const word = (k: ChangeKind) =>
    k === ChangeKind.Add
      ? "Add"
      : k === ChangeKind.Modify
      ? "Modify"
      : k === ChangeKind.Delete
      ? "Delete"
      : "?";
  ctx.io.out.write(list.map((c) => `${word(c.kind)} ${goQuote(c.path)}\n`).join(""));
  return 0;
}

async function diff(ctx: Context): Promise<number> {
  const f = ctx.flags;
  await withOutput(f.getString("file"), async (file) => {
    let compression: number | undefined;
    if (f.getBool("uncompressed") || f.getBool("gzip") || f.getBool("bzip2") || f.getBool("xz")) {
      compression = UNCOMPRESSED;
      if (f.getBool("gzip")) compression = GZIP;
      if (f.getBool("bzip2")) compression = BZIP2;
      if (f.getBool("xz")) compression = XZ;
    }
    // The reference cannot compress with these (its help says so) and fails before reading.
    if (compression === BZIP2) throw new CliError("unsupported compression format tar.bz2");
    if (compression === XZ) throw new CliError("unsupported compression format tar.xz");
    const [from, to] = fromTo(ctx);
    await withProgress(ctx.io, { label: ctx.name }, async (progress) => {
      const stream = await ctx.store.diff(from, to, { compression, ...progress });
      await writeStream(stream, file, ctx.io.out);
    });
  });
  return 0;
}

async function applyDiff(ctx: Context): Promise<number> {
  const path = ctx.flags.getString("file");
  const input = await openInput(path);
  try {
    const progress = { label: ctx.name, expectedSize: await inputSize(path) };
    await withProgress(ctx.io, progress, (p) => ctx.store.applyDiff(ctx.args[0], input.stream, p));
  } finally {
    input.close();
  }
  return 0;
}

async function diffSize(ctx: Context): Promise<number> {
  ctx.io.out.write(`${await ctx.store.diffSize(...fromTo(ctx))}\n`);
  return 0;
}

/** The diff commands, in the reference's order of registration. */
export const diffCommands: Command[] = [
  {
    names: ["changes"],
    optionsHelp: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
    usage: "Compare two layers",
    minArgs: 1,
    maxArgs: 2,
    addFlags: jsonFlag,
    action: changes,
  },
  {
    names: ["diffsize", "diff-size"],
    optionsHelp: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
    usage: "Compare two layers",
    minArgs: 1,
    maxArgs: 2,
    action: diffSize,
  },
  {
    names: ["diff"],
    optionsHelp: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
    usage: "Compare two layers",
    minArgs: 1,
    maxArgs: 2,
    addFlags: (fs) => {
      fs.string(["-file", "f"], "", "Write to file instead of stdout");
      fs.bool(["-uncompressed", "u"], false, "Use no compression");
      fs.bool(["-gzip", "c"], false, "Compress using gzip");
      fs.bool(["-bzip2", "-bz2", "b"], false, "Compress using bzip2 (not currently supported)");
      fs.bool(["-xz", "x"], false, "Compress using xz (not currently supported)");
    },
    action: diff,
    preload: () => [import("../layers/diff.ts"), import("../archive/pass_on.ts")],
  },
  {
    names: ["applydiff", "apply-diff"],
    optionsHelp: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
    usage: "Apply a diff to a layer",
    minArgs: 1,
    maxArgs: 1,
    addFlags: (fs) => fs.string(["-file", "f"], "", "Read from file instead of stdin"),
    action: applyDiff,
    preload: layerWriters,
  },
];

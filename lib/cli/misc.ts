/**
 * Store-wide commands: `status`, `version`, `wipe` and `shutdown`.
 *
 * The reference's `version` prints an empty list; ours prints the package
 * version (`Version: x.y.z`, or `[["Version","x.y.z"]]` with `-j`) and, unlike
 * the other commands, does not open a store.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs status
 * deno run -A cli.ts version
 * ```
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import { type Command, type Context, jsonFlag } from "./command.ts";
import { goJSON, goList } from "./io.ts";
import { CliError, goMessage } from "./messages.ts";

/** The package version that `version` reports. */
export const VERSION: string = denoJson.version;

async function status(ctx: Context): Promise<number> {
  const s = ctx.store;
  let driverStatus: [string, string][];
  try {
    driverStatus = await s.status();
  } catch (e) {
    throw new CliError(`status: ${goMessage(e)}`, { cause: e });
  }
  const pairs: [string, string][] = [
    ["Root", s.graphRoot],
    ["Run Root", s.runRoot],
    ["Driver Name", s.graphDriverName],
    ["Driver Options", goList(s.graphOptions)],
    ...driverStatus,
  ];
  if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON(pairs));
  else ctx.io.err.write(pairs.map(([k, v]) => `${k}: ${v}\n`).join(""));
  return 0;
}

/** Runs a store-wide operation with the reference's reporting: `""` or `{}` with -j, else an error line. */
async function storeWide(ctx: Context, op: () => Promise<unknown>): Promise<number> {
  const json = ctx.flags.getBool("json");
  try {
    await op();
  } catch (e) {
    // Go marshals an error value as {} (no exported fields).
    if (json) {
      ctx.io.out.write("{}\n");
      return 1;
    }
    throw new CliError(`${ctx.name}: ${goMessage(e)}`, { cause: e });
  }
  if (json) ctx.io.out.write('""\n');
  return 0;
}

/** The store-wide commands, in the reference's order of registration. */
export const miscCommands: Command[] = [
  {
    names: ["shutdown"],
    optionsHelp: "",
    usage: "Shut down layer storage",
    minArgs: 0,
    maxArgs: 0,
    addFlags: (fs) => {
      jsonFlag(fs);
      fs.bool(["-force", "f"], false, "Unmount mounted layers first");
    },
    action: (ctx) => storeWide(ctx, () => ctx.store.shutdown(ctx.flags.getBool("force"))),
  },
  {
    names: ["status"],
    optionsHelp: "",
    usage: "Check on graph driver status",
    minArgs: 0,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: status,
  },
  {
    names: ["version"],
    optionsHelp: "",
    usage: "Return containers-storage version information",
    minArgs: 0,
    maxArgs: 0,
    storeless: true,
    addFlags: jsonFlag,
    action: (ctx) => {
      if (ctx.flags.getBool("json")) ctx.io.out.write(goJSON([["Version", VERSION]]));
      else ctx.io.out.write(`Version: ${VERSION}\n`);
      return Promise.resolve(0);
    },
  },
  {
    names: ["wipe"],
    optionsHelp: "",
    usage: "Wipe all layers, images, and containers",
    minArgs: 0,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: (ctx) => storeWide(ctx, () => ctx.store.wipe()),
  },
];

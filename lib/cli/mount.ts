/**
 * Mount commands: `mount`, `unmount` (alias `umount`) and `mounted`. Each
 * takes several layers and reports per layer, like the reference CLI:
 * mount points on stdout, errors on stderr, or one JSON array with `-j`.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs mount <layer-id>
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs unmount <layer-id>
 * ```
 * @module
 */

import { type Command, type Context, jsonFlag } from "./command.ts";
import { goJSON } from "./io.ts";
import { goMessage } from "./messages.ts";

async function mount(ctx: Context): Promise<number> {
  const label = ctx.flags.getString("label");
  const results: { id: string; mountpoint: string; error: string }[] = [];
  for (const arg of ctx.args) {
    try {
      let mountpoint: string;
      if (ctx.flags.getBool("ro")) {
        mountpoint = await ctx.store.mountImage(arg, ["noexec", "nosuid"], label);
      } else {
        mountpoint = await ctx.store.mount(arg, label);
      }
      results.push({ id: arg, mountpoint, error: "" });
    } catch (e) {
      results.push({ id: arg, mountpoint: "", error: goMessage(e) });
    }
  }
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(results));
  } else {
    for (const r of results) {
      if (r.error) ctx.io.err.write(`${r.error} while mounting ${r.id}\n`);
      ctx.io.out.write(`${r.mountpoint}\n`);
    }
  }
  return results.some((r) => r.error) ? 1 : 0;
}

async function unmount(ctx: Context): Promise<number> {
  const force = ctx.flags.getBool("force");
  const results: { id: string; error: string }[] = [];
  for (const arg of ctx.args) {
    let error = "";
    try {
      const stillMounted = await ctx.store.unmount(arg, force);
      if (!stillMounted) ctx.io.out.write(`${arg} mountpoint unmounted\n`);
    } catch (e) {
      // Not a layer or container: maybe an image mounted read-only.
      const ok = await ctx.store.unmountImage(arg, force).then(() => true, () => false);
      if (!ok) error = goMessage(e);
    }
    results.push({ id: arg, error });
  }
  report(ctx, results, "while unmounting");
  return results.some((r) => r.error) ? 1 : 0;
}

async function mounted(ctx: Context): Promise<number> {
  const results: { id: string; error: string }[] = [];
  for (const arg of ctx.args) {
    let error = "";
    try {
      if (await ctx.store.mounted(arg) > 0) ctx.io.out.write(`${arg} mounted\n`);
    } catch (e) {
      error = goMessage(e);
    }
    results.push({ id: arg, error });
  }
  report(ctx, results, "checking if", " is mounted");
  return results.some((r) => r.error) ? 1 : 0;
}

function report(ctx: Context, results: { id: string; error: string }[], mid: string, end = "") {
  if (ctx.flags.getBool("json")) {
    ctx.io.out.write(goJSON(results));
    return;
  }
  for (const r of results) if (r.error) ctx.io.err.write(`${r.error} ${mid} ${r.id}${end}\n`);
}

/** The mount commands, in the reference's order of registration. */
export const mountCommands: Command[] = [
  {
    names: ["mount"],
    optionsHelp: "[options [...]] LayerOrContainerNameOrID",
    usage: "Mount a layer or container",
    minArgs: 1,
    maxArgs: 0,
    addFlags: (fs) => {
      fs.string(["-opt", "o"], "", "Mount Options");
      fs.string(["-label", "l"], "", "Mount Label");
      fs.bool(["-ro", "r"], false, "Mount image readonly");
      jsonFlag(fs);
    },
    action: mount,
  },
  {
    names: ["unmount", "umount"],
    optionsHelp: "LayerOrContainerNameOrID",
    usage: "Unmount an image, layer or container",
    minArgs: 1,
    maxArgs: 0,
    addFlags: (fs) => {
      jsonFlag(fs);
      fs.bool(["-force", "f"], false, "Force the umount");
    },
    action: unmount,
  },
  {
    names: ["mounted"],
    optionsHelp: "LayerOrContainerNameOrID",
    usage: "Check if a file system is mounted",
    minArgs: 1,
    maxArgs: 0,
    addFlags: jsonFlag,
    action: mounted,
  },
];

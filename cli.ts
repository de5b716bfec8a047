/**
 * `containers-storage`-compatible command-line tool: the same commands,
 * flags, output and exit codes as the reference CLI (containers/storage
 * 1.43), on stores that both tools share.
 *
 * Global flags (`-g`, `-R`, `-s`, `--storage-opt`, `-D`) come before the
 * command; when none is given the defaults come from storage.conf and
 * $STORAGE_DRIVER/$STORAGE_OPTS. Every command takes `--help`.
 *
 * Run it as a program, or call {@linkcode main} with the arguments and
 * where the output goes. Permissions: those of the Store (see the package's
 * main entry point) for commands that open a store; `version` and `--help`
 * need none.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs import-layer -n base -f layer.tar
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s vfs layers -j
 * deno run -A cli.ts version
 * ```
 *
 * @example
 * ```ts
 * import { main, MemorySink } from "@denostore/storage/cli";
 *
 * const root = await Deno.makeTempDir();
 * try {
 *   const store = ["-g", `${root}/graph`, "-R", `${root}/run`, "-s", "vfs"];
 *   const out = new MemorySink();
 *   const err = new MemorySink();
 *   // The layer's root is the current user, so that this runs unprivileged too.
 *   const maps = [`--uidmap=0:${Deno.uid()}:1`, `--gidmap=0:${Deno.gid()}:1`];
 *   if (await main([...store, "create-layer", ...maps], { out, err }) !== 0) {
 *     throw new Error(err.text);
 *   }
 *   const id = out.text.trim();
 *   const listed = new MemorySink();
 *   await main([...store, "layers", "-j"], { out: listed, err });
 *   if (JSON.parse(listed.text)[0].id !== id) throw new Error(listed.text);
 *   await main([...store, "shutdown"], { out, err });
 * } finally {
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 * @module
 */

import type { StoreOptions } from "./lib/config.ts";
import type { Store } from "./lib/store/mod.ts";
import type { Command, Context } from "./lib/cli/command.ts";
import { commands, findCommand } from "./lib/cli/commands.ts";
import {
  type ErrorHandling,
  ExitError,
  FlagError,
  FlagSet,
  GoPanic,
  PROG,
} from "./lib/cli/flags.ts";
import { type CliIO, goList, logLine, stdio } from "./lib/cli/io.ts";

export { type CliIO, MemorySink, type Sink } from "./lib/cli/io.ts";
import { goMessage } from "./lib/cli/messages.ts";
import { setLogSink } from "./lib/log.ts";

/** The options the global flags set. */
interface GlobalOptions {
  runRoot: string;
  graphRoot: string;
  graphDriverName: string;
  graphDriverOptions: string[];
  debug: boolean;
}

/** Store options other than the ones the global flags set, when the flags replace the defaults. */
const EMPTY_OPTIONS: StoreOptions = {
  runRoot: "",
  graphRoot: "",
  graphDriverName: "",
  graphDriverOptions: [],
  uidMap: [],
  gidMap: [],
  imageStores: [],
};

/** A flag set with the global flags, their defaults being the current options. */
function globalFlags(name: string, eh: ErrorHandling, o: GlobalOptions, io: CliIO): FlagSet {
  const fs = new FlagSet(name, eh, io);
  fs.string(["-run", "R"], o.runRoot, "Root of the runtime state tree");
  fs.string(["-graph", "g"], o.graphRoot, "Root of the storage tree");
  fs.string(["-storage-driver", "s"], o.graphDriverName, "Storage driver to use ($STORAGE_DRIVER)");
  fs.list(["-storage-opt"], o.graphDriverOptions, "Set storage driver options ($STORAGE_OPTS)");
  fs.bool(["-debug", "D"], o.debug, "Print debugging information");
  return fs;
}

function readGlobals(fs: FlagSet, o: GlobalOptions): void {
  o.runRoot = fs.getString("run");
  o.graphRoot = fs.getString("graph");
  o.graphDriverName = fs.getString("storage-driver");
  o.graphDriverOptions = fs.getList("storage-opt");
  o.debug = fs.getBool("debug");
}

function programUsage(fs: FlagSet, io: CliIO): void {
  let text = `Usage: ${PROG} command [options [...]]\n\nCommands:\n\n`;
  const line = (c: Command) => `  ${c.names[0].padEnd(30)}${c.usage}\n`;
  for (const c of commands) if (!c.extension) text += line(c);
  io.out.write(text + "\nOptions:\n");
  fs.out.write(fs.printDefaults());
  const extensions = commands.filter((c) => c.extension);
  if (extensions.length > 0) {
    fs.out.write(`\nExtensions:\n\n${extensions.map(line).join("")}`);
  }
}

function commandUsage(fs: FlagSet, name: string, c: Command, io: CliIO): void {
  io.out.write(`Usage: ${PROG} ${name} ${c.optionsHelp}\n\n${c.usage}\n\nOptions:\n`);
  fs.out.write(fs.printDefaults());
}

/**
 * The default store options (storage.conf and the environment), loaded only
 * when a command needs them: `--help` and `version` with global flags never do.
 */
async function readDefaults(): Promise<StoreOptions> {
  const { defaultStoreOptions } = await import("./lib/config.ts");
  return await defaultStoreOptions();
}

/**
 * Opens the store as the reference's GetStore does: with neither root given
 * it fails; a missing one is taken from the defaults. Returns the error text on failure.
 */
async function openStore(o: GlobalOptions, defaults?: StoreOptions): Promise<Store | string> {
  if (!o.graphRoot && !o.runRoot) {
    return "no storage runroot or graphroot specified: missing necessary StoreOptions";
  }
  try {
    const d = defaults ?? await readDefaults();
    const { Store } = await import("./lib/store/mod.ts");
    return await Store.open({
      ...(defaults ?? EMPTY_OPTIONS),
      graphRoot: o.graphRoot || d.graphRoot,
      runRoot: o.runRoot || d.runRoot,
      graphDriverName: o.graphDriverName,
      graphDriverOptions: o.graphDriverOptions,
    });
  } catch (e) {
    return goMessage(e);
  }
}

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[], io: CliIO = stdio): Promise<number> {
  try {
    return await run(args, io);
  } catch (e) {
    if (e instanceof GoPanic) {
      io.err.write(`${e.partial}panic: ${e.panic}\n\ngoroutine 1 [running]:\n`);
    }
    if (e instanceof ExitError) return e.code;
    throw e;
  }
}

/** Output that goes nowhere, for a trial parse. */
const DISCARD: CliIO = { out: { write() {} }, err: { write() {} } };

/**
 * Whether `command` runs without a store and, on these arguments, shows no
 * flag defaults (no usage, no `--debug` lines): then storage.conf, which
 * only supplies those defaults, need not be read (`version` starts faster).
 */
function quietlyStoreless(command: Command, name: string, args: string[], o: GlobalOptions) {
  if (!command.storeless || o.debug) return false;
  const trial = globalFlags(name, "continue", { ...o }, DISCARD);
  command.addFlags?.(trial);
  try {
    trial.parse(args);
  } catch {
    return false;
  }
  const n = trial.args.length;
  return !trial.getBool("debug") && n >= command.minArgs &&
    (command.maxArgs === 0 || n <= command.maxArgs);
}

async function run(args: string[], io: CliIO): Promise<number> {
  const o: GlobalOptions = {
    runRoot: "",
    graphRoot: "",
    graphDriverName: "",
    graphDriverOptions: [],
    debug: false,
  };
  const top = globalFlags(PROG, "continue", o, io);
  top.usage = () => programUsage(top, io);
  if (args.length === 0) {
    top.usage();
    return 1;
  }
  top.bool(["#help", "-help"], false, "Print usage");
  try {
    top.parse(args);
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.out.write(`${e.message} while parsing arguments (1)\n`);
    top.usage();
    return 1;
  }
  if (top.getBool("help")) {
    top.useStdout();
    top.usage();
    return 0;
  }
  readGlobals(top, o);
  if (top.args.length === 0) {
    top.usage();
    return 1;
  }
  const name = top.args[0];
  const command = findCommand(name);
  if (!command) {
    io.out.write(`${name}: unrecognized command.\n`);
    return 1;
  }
  if (!command.storeless) {
    // Loaded while storage.conf is read: the chain of lazy imports otherwise waits on each.
    const early = [import("./lib/store/mod.ts"), ...(command.preload?.() ?? [])];
    for (const p of early) p.catch(() => {});
  }
  let storeOptions: StoreOptions | undefined;
  let configError: string | undefined;
  const flagsGiven = o.graphRoot || o.runRoot || o.graphDriverName || o.graphDriverOptions.length;
  if (!flagsGiven && !quietlyStoreless(command, name, top.args.slice(1), o)) {
    try {
      storeOptions = await readDefaults();
    } catch (e) {
      // Reported when a command opens the store, so --help still works.
      configError = goMessage(e);
      storeOptions = { ...EMPTY_OPTIONS, graphDriverOptions: [] };
    }
    o.graphRoot = storeOptions.graphRoot;
    o.runRoot = storeOptions.runRoot;
    o.graphDriverName = storeOptions.graphDriverName;
    o.graphDriverOptions = [...storeOptions.graphDriverOptions];
  }
  const fs = globalFlags(name, "exit", o, io);
  command.addFlags?.(fs);
  fs.usage = () => commandUsage(fs, name, command, io);
  fs.parse(top.args.slice(1));
  const rest = fs.args;
  if (command.minArgs !== 0 && rest.length < command.minArgs) {
    io.out.write(`${name}: more arguments required.\n`);
    fs.usage();
    return 1;
  }
  if (command.maxArgs !== 0 && rest.length > command.maxArgs) {
    io.out.write(`${name}: too many arguments (${goList(rest)}).\n`);
    fs.usage();
    return 1;
  }
  readGlobals(fs, o);
  if (o.debug) {
    io.err.write(logLine("debug", `Root: ${o.graphRoot}`));
    io.err.write(logLine("debug", `Run Root: ${o.runRoot}`));
    io.err.write(logLine("debug", `Driver Name: ${o.graphDriverName}`));
    io.err.write(logLine("debug", `Driver Options: ${goList(o.graphDriverOptions)}`));
  }
  // The reference sets logrus to its error level, or to debug with --debug.
  const previousSink = setLogSink((level, msg) => {
    if (o.debug || level === "error") io.err.write(logLine(level, msg));
  });
  try {
    const ctx: Context = {
      name,
      args: rest,
      flags: fs,
      io,
      get store(): Store {
        throw new Error(`${name} runs without a store`);
      },
    };
    if (!command.storeless) {
      const store = configError ?? await openStore(o, storeOptions);
      if (typeof store === "string") {
        io.out.write(`error initializing: ${store}\n`);
        return 1;
      }
      Object.defineProperty(ctx, "store", { value: store });
    }
    try {
      return await command.action(ctx);
    } catch (e) {
      if (e instanceof ExitError) throw e;
      io.err.write(`${goMessage(e)}\n`);
      return 1;
    }
  } finally {
    setLogSink(previousSink);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

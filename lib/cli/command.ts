/**
 * What a CLI command is: its names, the usage line and summary the reference
 * prints, argument counts, the flags it adds to the global ones, and the
 * action run against an open store.
 *
 * @example
 * ```ts ignore
 * const hello: Command = {
 *   names: ["hello"], optionsHelp: "", usage: "Say hello", minArgs: 0, maxArgs: 0,
 *   action: (ctx) => { ctx.io.out.write("hello\n"); return Promise.resolve(0); },
 * };
 * ```
 * @module
 */

import type { Store } from "../store/mod.ts";
import type { FlagSet } from "./flags.ts";
import type { CliIO } from "./io.ts";

/** What an action gets. */
export interface Context {
  /** The command name as typed (an alias like "umount" stays as typed). */
  name: string;
  /** Arguments after the flags. */
  args: string[];
  /** The parsed flags (global and the command's). */
  flags: FlagSet;
  /** The open store. */
  store: Store;
  /** Output streams. */
  io: CliIO;
}

/** One command of the CLI. */
export interface Command {
  /** Name and aliases; the first is shown in the usage. */
  names: string[];
  /** Text after the name in "Usage: containers-storage NAME …". */
  optionsHelp: string;
  /** One-line summary. */
  usage: string;
  /** Minimum number of arguments (0: none required). */
  minArgs: number;
  /** Maximum number of arguments (0: no limit). */
  maxArgs: number;
  /** Runs without opening a store (`ctx.store` throws if used). */
  storeless?: boolean;
  /**
   * A command of ours that the reference CLI does not have: the program's
   * usage lists it under "Extensions:" after the reference's own text, which
   * so stays byte for byte the reference's.
   */
  extension?: true;
  /** Defines the command's own flags. */
  addFlags?: (fs: FlagSet) => void;
  /** Runs the command; resolves to the exit code. A thrown error is printed and exits 1. */
  action: (ctx: Context) => Promise<number>;
  /**
   * Starts loading the modules the action will need (the layer engine for
   * the commands that read or write a layer's content), so that they load
   * while the store opens instead of one after another once it is open.
   */
  preload?: () => Promise<unknown>[];
}

/** Adds `--json, -j` ("Prefer JSON output"), which most commands take. */
export function jsonFlag(fs: FlagSet): void {
  fs.bool(["-json", "j"], false, "Prefer JSON output");
}

/**
 * What `get` finds for each argument, in order. Arguments it finds nothing
 * for are left out: the reference reports them only through the exit
 * status, which {@linkcode allFound} gives.
 */
export async function foundFor<T>(args: string[], get: (arg: string) => Promise<T>): Promise<T[]> {
  const found: T[] = [];
  for (const arg of args) {
    try {
      found.push(await get(arg));
    } catch {
      // not found: left out
    }
  }
  return found;
}

/** The exit status of a command that looked up every argument: 1 unless all were found. */
export function allFound(ctx: Context, found: readonly unknown[]): number {
  return found.length === ctx.args.length ? 0 : 1;
}

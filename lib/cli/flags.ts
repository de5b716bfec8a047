/**
 * A flag parser with the behaviour of the `mflag` package that the reference
 * `containers-storage` CLI uses, so that our CLI accepts the same command
 * lines and prints the same errors and option tables: `-x` and `--long`
 * are equivalent, short boolean flags can be grouped (`-jt`), values follow
 * as `-f file` or `-f=file`, parsing stops at the first non-flag argument or
 * after `--`, and `--help`/`-h` print the usage.
 *
 * @example
 * ```ts
 * import { FlagSet } from "./flags.ts";
 * import { MemorySink } from "./io.ts";
 * const io = { out: new MemorySink(), err: new MemorySink() };
 * const fs = new FlagSet("layers", "exit", io);
 * fs.bool(["-json", "j"], false, "Prefer JSON output");
 * fs.parse(["-j", "extra"]);
 * console.log(fs.getBool("json"), fs.args); // true ["extra"]
 * ```
 * @module
 */

import type { CliIO } from "./io.ts";

/** The program name used in messages ("See 'containers-storage --help'."). */
export const PROG = "containers-storage";

/** What the parser does after printing a parse error: "continue" returns it, "exit" exits 125. */
export type ErrorHandling = "continue" | "exit";

/** Thrown to end the process with `code` (what mflag's `os.Exit` calls do). */
export class ExitError extends Error {
  /**
   * @param code The exit status.
   */
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/**
 * Thrown where the reference CLI's Go code panics: the process ends with
 * status 2 after `partial` (what was written before) and the runtime's
 * panic message on stderr.
 */
export class GoPanic extends ExitError {
  /**
   * @param panic The panic value as the runtime prints it.
   * @param partial Output written before the panic.
   */
  constructor(readonly panic: string, readonly partial: string) {
    super(2);
  }
}

/** A parse error that the caller handles (ContinueOnError); `message` is Go's `%v` of it. */
export class FlagError extends Error {}

/** The error message of mflag's help special case. */
export const HELP_REQUESTED = "flag: help requested";

type Kind = "bool" | "string" | "list";

interface Flag {
  names: string[];
  usage: string;
  kind: Kind;
  defValue: string;
  value: boolean | string | string[];
}

/** A set of flags for the program or one command. */
export class FlagSet {
  /** Arguments left after the flags. */
  args: string[] = [];
  /** Prints the usage; replaced by the caller to print its header first. */
  usage: () => void = () => this.io.err.write(this.printDefaults());
  #formal = new Map<string, Flag>();
  #toStdout = false;

  /**
   * @param name "containers-storage" for the global flags, else the command name.
   * @param errorHandling What to do after a parse error.
   * @param io Where messages go.
   */
  constructor(readonly name: string, readonly errorHandling: ErrorHandling, readonly io: CliIO) {}

  /** Sends the option table and parse errors to stdout (for `--help` at the top level). */
  useStdout(): void {
    this.#toStdout = true;
  }

  /** Where the option table and parse errors go (stderr unless {@linkcode useStdout}). */
  get out(): CliIO["out"] {
    return this.#toStdout ? this.io.out : this.io.err;
  }

  /** Defines a boolean flag; `names` as in mflag: "-long" for --long, "x" for -x, "#x" hidden. */
  bool(names: string[], value: boolean, usage: string): void {
    this.#define(names, usage, "bool", value, String(value));
  }

  /** Defines a string flag. */
  string(names: string[], value: string, usage: string): void {
    this.#define(names, usage, "string", value, value);
  }

  /** Defines a repeatable flag whose values are appended to `initial` (mflag's ListOpts). */
  list(names: string[], initial: string[], usage: string): void {
    this.#define(names, usage, "list", [...initial], `[${initial.join(" ")}]`);
  }

  #define(names: string[], usage: string, kind: Kind, value: Flag["value"], defValue: string) {
    const flag: Flag = { names, usage, kind, defValue, value };
    for (const n of names) {
      const key = n.replace(/^#/, "");
      if (this.#formal.has(key)) throw new Error(`${this.name} flag redefined: ${key}`);
      this.#formal.set(key, flag);
    }
  }

  /** The value of a boolean flag, by any of its names (without dashes: "json" or "j"). */
  getBool(name: string): boolean {
    return this.#lookup(name, "bool") as boolean;
  }

  /** The value of a string flag. */
  getString(name: string): string {
    return this.#lookup(name, "string") as string;
  }

  /** The values of a list flag. */
  getList(name: string): string[] {
    return this.#lookup(name, "list") as string[];
  }

  #lookup(name: string, kind: Kind): Flag["value"] {
    const flag = this.#formal.get(name) ?? this.#formal.get("-" + name);
    if (!flag || flag.kind !== kind) throw new Error(`no ${kind} flag ${name} in ${this.name}`);
    return flag.value;
  }

  /** Whether a flag of this name is defined. */
  has(name: string): boolean {
    return this.#formal.has(name) || this.#formal.has("-" + name);
  }

  /**
   * Parses `args`, leaving the rest in {@linkcode args}.
   * @throws {ExitError} (125) on an error with "exit" handling.
   * @throws {FlagError} on an error with "continue" handling.
   */
  parse(args: string[]): void {
    this.args = args;
    for (;;) {
      let r = this.#parseOne();
      if (r.seen) continue;
      if (r.error === undefined && r.retry === undefined) return;
      if (r.retry !== undefined) {
        const name = r.retry;
        if (name.length > 1) {
          r = { seen: false };
          for (const letter of name) {
            this.args = ["-" + letter, ...this.args];
            const r2 = this.#parseOne();
            if (r2.seen) continue;
            if (r2.error !== undefined || r2.retry !== undefined) {
              r = { seen: false, error: this.#fail(`flag provided but not defined: -${name}`) };
              break;
            }
          }
          if (r.error === undefined) continue;
        } else {
          r = { seen: false, error: this.#fail(`flag provided but not defined: -${name}`) };
        }
      }
      if (this.errorHandling === "exit") throw new ExitError(125);
      throw new FlagError(r.error);
    }
  }

  #fail(message: string): string {
    this.out.write(message + "\n");
    const where = this.name === PROG ? PROG : `${PROG} ${this.name}`;
    this.out.write(`See '${where} --help'.\n`);
    return message;
  }

  #parseOne(): { seen: boolean; error?: string; retry?: string } {
    if (this.args.length === 0) return { seen: false };
    const s = this.args[0];
    if (s.length < 2 || s[0] !== "-") return { seen: false };
    if (s === "--") {
      this.args = this.args.slice(1);
      return { seen: false };
    }
    let name = s.slice(1);
    if (name[0] === "=") return { seen: false, error: this.#fail(`bad flag syntax: ${s}`) };
    this.args = this.args.slice(1);
    let value = "";
    let hasValue = false;
    const eq = name.indexOf("=");
    if (eq !== -1) {
      value = trimQuotes(name.slice(eq + 1));
      hasValue = true;
      name = name.slice(0, eq);
    }
    const flag = this.#formal.get(name);
    if (!flag) {
      if (name === "-help" || name === "help" || name === "h") {
        this.usage();
        return { seen: false, error: HELP_REQUESTED };
      }
      if (name[0] === "-") {
        return { seen: false, error: this.#fail(`flag provided but not defined: -${name}`) };
      }
      return { seen: false, retry: name };
    }
    if (flag.kind === "bool") {
      if (hasValue) {
        const b = parseBool(value);
        if (b === undefined) {
          return {
            seen: false,
            error: this.#fail(
              `invalid boolean value ${JSON.stringify(value)} for  -${name}: ` +
                `strconv.ParseBool: parsing ${JSON.stringify(value)}: invalid syntax`,
            ),
          };
        }
        flag.value = b;
      } else flag.value = true;
      return { seen: true };
    }
    if (!hasValue && this.args.length > 0) {
      value = this.args[0];
      this.args = this.args.slice(1);
      hasValue = true;
    }
    if (!hasValue) return { seen: false, error: this.#fail(`flag needs an argument: -${name}`) };
    if (flag.kind === "list") (flag.value as string[]).push(value);
    else flag.value = value;
    return { seen: true };
  }

  /** The option table as mflag's PrintDefaults writes it (a tabwriter with minwidth 20, padding 3). */
  printDefaults(): string {
    const flags = [...new Set(this.#formal.values())];
    // mflag indexes the first character of every name: an empty one panics after the blank line.
    if (flags.some((f) => f.names.includes(""))) {
      throw new GoPanic("runtime error: index out of range [0] with length 0", "\n");
    }
    const key = (f: Flag) => f.names[0].replace(/^#/, "").replace(/^-/, "");
    flags.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const [lx, ly] = [x.toLowerCase(), y.toLowerCase()];
      if (lx !== ly) return lx < ly ? -1 : 1;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    let home = Deno.env.get("HOME") ?? "";
    if (home === "/") home = "";
    const rows: [string, string][] = [];
    for (const f of flags) {
      const names = f.names.filter((n) => n[0] !== "#");
      if (names.length === 0 || f.usage === "") continue;
      let val = f.defValue;
      if (home !== "" && val.startsWith(home)) val = "~" + val.slice(home.length);
      const cell = `  -${names.join(", -")}` + (isZeroValue(val) ? "" : `=${val}`);
      for (const [i, line] of f.usage.split("\n").entries()) rows.push([i === 0 ? cell : "", line]);
    }
    const width = Math.max(20, ...rows.map(([c]) => c === "" ? 0 : [...c].length + 3));
    const pad = (c: string) => c + " ".repeat(width - [...c].length);
    return (flags.length > 0 ? "\n" : "") + rows.map(([c, u]) => `${pad(c)} ${u}\n`).join("");
  }
}

function isZeroValue(v: string): boolean {
  return v === "false" || v === "" || v === "0";
}

function trimQuotes(s: string): string {
  if (s.length > 0) {
    for (const q of ['"', "'"]) {
      if (s[0] === q && s[s.length - 1] === q) return s.slice(1, -1);
    }
  }
  return s;
}

/** Go's strconv.ParseBool. */
function parseBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

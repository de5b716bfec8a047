/**
 * `containers-storage`-compatible command-line tool.
 *
 * @example
 * ```sh
 * deno run -A cli.ts version
 * ```
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };

const usage = `Usage: containers-storage command [options [...]]

Commands:

  version                       Return containers-storage version information

Options:

  --debug, -D             Print debugging information
  --graph, -g             Root of the storage tree
  --help                  Print usage
  --run, -R               Root of the runtime state tree
  --storage-driver, -s    Storage driver to use ($STORAGE_DRIVER)
  --storage-opt=[]        Set storage driver options ($STORAGE_OPTS)
`;

/** Runs the CLI with `args` and returns the process exit code. */
export function main(args: string[]): number {
  const cmd = args.find((a) => !a.startsWith("-"));
  if (args.includes("--help") || args.includes("-h") || cmd === undefined) {
    console.log(usage);
    return cmd === undefined && !args.includes("--help") ? 1 : 0;
  }
  if (cmd === "version") {
    console.log(`Version: ${denoJson.version}`);
    return 0;
  }
  console.error(`containers-storage: unrecognized command "${cmd}"`);
  return 1;
}

if (import.meta.main) Deno.exit(main(Deno.args));

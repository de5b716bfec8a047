/**
 * Timing of one command of the bench: wall time around the spawn and the
 * child's peak RSS as GNU time reports it (`/usr/bin/time -f %M`), and the
 * median, min and max of several runs.
 *
 * @example
 * ```ts ignore
 * import { run, summary } from "./measure.ts";
 * const r = await run(["sha256sum", "/etc/passwd"]);
 * console.log(r.s, r.rssKB, summary([r, r, r]));
 * ```
 * @module
 */

/** One run: wall seconds, peak RSS in KiB, and what it printed. */
export interface Sample {
  /** Wall time in seconds. */
  s: number;
  /** Peak resident set of the command, KiB (0 when GNU time is missing). */
  rssKB: number;
  /** Its standard output, trimmed. */
  stdout: string;
}

const TIME = "/usr/bin/time";
let hasTime: boolean | undefined;

/**
 * Runs `argv` (with `stdin` from a file when given), failing with its
 * stderr unless it exits 0.
 */
export async function run(argv: string[], opts: { stdout?: string } = {}): Promise<Sample> {
  hasTime ??= (() => {
    try {
      return Deno.statSync(TIME).isFile;
    } catch {
      return false;
    }
  })();
  const rssFile = hasTime ? Deno.makeTempFileSync({ prefix: "bench-rss-" }) : "";
  const cmd = hasTime ? [TIME, "-f", "%M", "-o", rssFile, ...argv] : argv;
  const args = opts.stdout ? ["-c", `exec "$@" > "${opts.stdout}"`, "sh", ...cmd] : cmd.slice(1);
  const t0 = performance.now();
  const r = await new Deno.Command(opts.stdout ? "sh" : cmd[0], {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const s = (performance.now() - t0) / 1000;
  let rssKB = 0;
  if (hasTime) {
    rssKB = Number(Deno.readTextFileSync(rssFile).trim().split("\n").pop()) || 0;
    Deno.removeSync(rssFile);
  }
  if (r.code !== 0) {
    throw new Error(`${argv.join(" ")}: exit ${r.code}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return { s, rssKB, stdout: new TextDecoder().decode(r.stdout).trim() };
}

/** Median, min and max of the runs' seconds and the largest peak RSS. */
export interface Summary {
  /** Median seconds. */
  med: number;
  /** Fastest run. */
  min: number;
  /** Slowest run. */
  max: number;
  /** Peak RSS over the runs, MiB. */
  rssMB: number;
}

/** The summary of `samples`. */
export function summary(samples: Sample[]): Summary {
  const t = samples.map((x) => x.s).sort((a, b) => a - b);
  const mid = t.length >> 1;
  return {
    med: t.length % 2 ? t[mid] : (t[mid - 1] + t[mid]) / 2,
    min: t[0],
    max: t[t.length - 1],
    rssMB: Math.max(...samples.map((x) => x.rssKB)) / 1024,
  };
}

/**
 * Drops `file` from the page cache (`dd iflag=nocache`), so an import reads
 * its layer from disk while both tools' executables stay cached: what is
 * measured is the import, not loading a 100 MB Deno from disk.
 */
export async function evict(file: string): Promise<void> {
  await new Deno.Command("sync").output();
  await new Deno.Command("dd", {
    args: [`if=${file}`, "iflag=nocache", "count=0", "status=none"],
  }).output();
}

/** Empties the whole page cache (root only): executables and data are read from disk again. */
export async function dropCaches(): Promise<void> {
  await new Deno.Command("sync").output();
  try {
    Deno.writeTextFileSync("/proc/sys/vm/drop_caches", "3");
  } catch {
    // not root: caches stay warm
  }
}

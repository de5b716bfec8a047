/**
 * A progress line on stderr for commands that move layer-sized data:
 * bytes and entries done, the rate and, when the total is known, the
 * percentage and the time left. It is drawn only when stderr is a terminal,
 * redrawn at most ten times a second and erased at the end, so pipes and
 * scripts see exactly the reference CLI's output.
 *
 * @example
 * ```ts ignore
 * import { withProgress } from "./progress.ts";
 * const size = (await Deno.stat("layer.tar")).size;
 * await withProgress(ctx.io, { label: "import-layer", expectedSize: size }, (progress) =>
 *   ctx.store.putLayer({ diff, ...progress }));
 * ```
 * @module
 */

import type { ProgressCallback, ProgressOptions } from "../progress.ts";
import { type CliIO, type Sink, stdio } from "./io.ts";

/** Options of {@linkcode showProgress}. */
export interface ProgressDisplayOptions {
  /** What is shown before the counts (usually the command name). */
  label: string;
  /** Bytes expected in all, when known (a file's size): adds the percentage and the time left. */
  expectedSize?: number;
  /** Whether to draw at all (default: whether `err` is the process's stderr and a terminal). */
  terminal?: boolean;
  /** Milliseconds between redraws (default 100). */
  interval?: number;
  /** The clock, in milliseconds (default `performance.now`); tests set it. */
  now?: () => number;
  /**
   * The terminal's width: a longer line is cut, since a wrapped one cannot be
   * erased (default the console's width; 0 means unknown, no cut).
   */
  columns?: number;
}

/** A progress line being shown. */
export interface ProgressDisplay {
  /** What to pass to the library: `onProgress` (absent when nothing is drawn) and `expectedSize`. */
  readonly options: ProgressOptions;
  /** Writes to stderr on a line of its own: the progress line is erased first, and redrawn later. */
  readonly err: Sink;
  /** Erases the line if one was drawn. Idempotent. */
  finish(): void;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `n` bytes for people: "512 B", "1.5 MiB". */
export function formatBytes(n: number): string {
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${UNITS[i]}`;
}

/** A duration in seconds for people: "42s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  const pad = (v: number) => String(v).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
}

/** The console's width, or 0 when unknown. */
function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 0;
  }
}

/** Whether `err` is the process's stderr and that is a terminal. */
function stderrIsTerminal(err: Sink): boolean {
  try {
    return err === stdio.err && Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/**
 * Starts a progress line on `err`. When it is not drawn (not a terminal),
 * `options.onProgress` is absent, so the library counts nothing.
 */
export function showProgress(err: Sink, opts: ProgressDisplayOptions): ProgressDisplay {
  const { label, expectedSize, interval = 100, now = () => performance.now() } = opts;
  const terminal = opts.terminal ?? stderrIsTerminal(err);
  if (!terminal) return { options: { expectedSize }, err, finish: () => {} };
  const columns = opts.columns ?? consoleColumns();
  const start = now();
  let lastDraw = -Infinity;
  let drawn = false;
  let finished = false;
  const onProgress: ProgressCallback = (p) => {
    const t = now();
    if (finished || t - lastDraw < interval) return;
    lastDraw = t;
    const seconds = (t - start) / 1000;
    const rate = seconds > 0 ? p.bytes / seconds : 0;
    const total = p.total ?? expectedSize;
    let line = `${label}: ${formatBytes(p.bytes)}`;
    if (total !== undefined && total > 0) {
      line += ` of ${formatBytes(total)} (${Math.min(100, Math.floor(p.bytes * 100 / total))}%)`;
    }
    line += `, ${p.entries} ${p.entries === 1 ? "entry" : "entries"}`;
    if (rate > 0) line += `, ${formatBytes(Math.round(rate))}/s`;
    if (total !== undefined && rate > 0 && p.bytes < total) {
      line += `, ETA ${formatDuration((total - p.bytes) / rate)}`;
    }
    if (columns > 1 && line.length >= columns) line = line.slice(0, columns - 1);
    err.write(`\r\x1b[K${line}`);
    drawn = true;
  };
  return {
    options: { onProgress, expectedSize },
    err: {
      write(data) {
        if (drawn && !finished) err.write("\r\x1b[K");
        drawn = false;
        lastDraw = -Infinity;
        err.write(data);
      },
    },
    finish() {
      if (drawn && !finished) err.write("\r\x1b[K");
      finished = true;
    },
  };
}

/**
 * Runs `fn` with the progress options of a line shown on `io.err` (see
 * {@linkcode showProgress}) and erases the line when `fn` settles, before
 * any error is printed.
 */
export async function withProgress<T>(
  io: CliIO,
  opts: ProgressDisplayOptions,
  fn: (progress: ProgressOptions) => Promise<T>,
): Promise<T> {
  const display = showProgress(io.err, opts);
  try {
    return await fn(display.options);
  } finally {
    display.finish();
  }
}

/**
 * The size of the regular file at `path`, the `-f` input of a command
 * (undefined for "", stdin, and for anything but a regular file).
 */
export async function inputSize(path: string): Promise<number | undefined> {
  if (path === "") return undefined;
  try {
    const st = await Deno.stat(path);
    return st.isFile ? st.size : undefined;
  } catch {
    return undefined;
  }
}

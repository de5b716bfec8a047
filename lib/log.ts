/**
 * The library's log: what containers/storage reports through logrus besides
 * its errors (an incomplete layer deleted on open, a clean-up that failed),
 * handed to a sink that the application sets. Nothing is written by default,
 * since a library should not print on its own; the CLI prints these as the
 * reference does (errors always, warnings and debug messages with --debug).
 * Like logrus, the sink is one per process.
 *
 * @example
 * ```ts
 * import { log, setLogSink } from "./log.ts";
 * const previous = setLogSink((level, message) => console.error(`${level}: ${message}`));
 * log("warning", "Found incomplete layer \"abc\", deleting it"); // warning: Found …
 * setLogSink(previous);
 * ```
 * @module
 */

/** Severity of a message, named as logrus's text formatter names it. */
export type LogLevel = "error" | "warning" | "info" | "debug";

/** Receives every log message of the library. */
export type LogSink = (level: LogLevel, message: string) => void;

let sink: LogSink | undefined;

/**
 * Sets where the library's log messages go (`undefined`: nowhere).
 * @returns the sink set before, to restore it
 */
export function setLogSink(next: LogSink | undefined): LogSink | undefined {
  const previous = sink;
  sink = next;
  return previous;
}

/** Reports a message to the sink, if one is set. */
export function log(level: LogLevel, message: string): void {
  sink?.(level, message);
}

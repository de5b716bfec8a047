/**
 * Output plumbing of the CLI: synchronous text writers for stdout/stderr
 * (so messages interleave exactly as the reference prints them) and the
 * Go-style formatting helpers the reference output relies on (`%v` of a
 * slice, `%q`, JSON as `json.Encoder` writes it, logrus lines).
 *
 * @example
 * ```ts
 * import { goJSON, goList, stdio } from "./io.ts";
 * stdio.out.write(goList(["a", "b"]) + "\n"); // [a b]
 * stdio.out.write(goJSON({ k: "<x>" })); // {"k":"\u003cx\u003e"}\n
 * ```
 * @module
 */

import { goStringify } from "../go_json.ts";
import { encodeOsString } from "../os_string.ts";
import type { LogLevel } from "../log.ts";

/** A synchronous sink for text or bytes. */
export interface Sink {
  /** Writes all of `data`. */
  write(data: string | Uint8Array): void;
}

/** The two output streams a command writes to. */
export interface CliIO {
  /** Standard output. */
  out: Sink;
  /** Standard error. */
  err: Sink;
}

/**
 * A sink writing to a Deno file-like resource, looping over short writes.
 * File names in text keep their bytes, as Go prints them.
 */
export function fileSink(file: { writeSync(p: Uint8Array): number }): Sink {
  return {
    write(data) {
      let bytes = typeof data === "string" ? encodeOsString(data) : data;
      while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
    },
  };
}

/** The process's stdout and stderr. */
export const stdio: CliIO = { out: fileSink(Deno.stdout), err: fileSink(Deno.stderr) };

/** A sink that keeps what is written, for tests. */
export class MemorySink implements Sink {
  #chunks: string[] = [];
  #decoder = new TextDecoder();
  /** Appends `data`. */
  write(data: string | Uint8Array): void {
    this.#chunks.push(typeof data === "string" ? data : this.#decoder.decode(data));
  }
  /** Everything written so far. */
  get text(): string {
    return this.#chunks.join("");
  }
}

/** Go's `%v` of a `[]string` or `[]int`: `[a b c]`. */
export function goList(items: readonly (string | number)[]): string {
  return `[${items.join(" ")}]`;
}

/**
 * JSON as Go's `json.NewEncoder(w).Encode(v)` writes it: compact, HTML
 * characters escaped, U+2028/U+2029 escaped, with a trailing newline.
 */
export function goJSON(value: unknown): string {
  return goStringify(value) + "\n";
}

/** A Go map keyed by string, as its JSON encoder orders it: keys sorted. */
export function goMap<T>(entries: Map<string, T>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** Go's `strconv.Quote` (what `%q` prints for a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (cp === 7) out += "\\a";
    else if (cp === 8) out += "\\b";
    else if (cp === 12) out += "\\f";
    else if (cp === 10) out += "\\n";
    else if (cp === 13) out += "\\r";
    else if (cp === 9) out += "\\t";
    else if (cp === 11) out += "\\v";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (cp === 0xfffd) out += "\\ufffd";
    // a byte of a file name that is not UTF-8 (lib/os_string.ts): Go quotes the byte
    else if (cp >= 0xdc80 && cp <= 0xdcff) out += `\\x${(cp - 0xdc00).toString(16)}`;
    else if (cp >= 0x80 && cp < 0xa0) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/** logrus's text-formatter line for a message, as the reference prints on stderr. */
export function logLine(level: LogLevel, msg: string, now: Date = new Date()): string {
  const quoted = /^[A-Za-z0-9\-._/@^+]+$/.test(msg) ? msg : goQuote(msg);
  return `time="${rfc3339(now)}" level=${level} msg=${quoted}\n`;
}

/** RFC 3339 with seconds and the local offset ("Z" for UTC), like Go's time.RFC3339. */
function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + off * 60_000).toISOString().slice(0, 19);
  if (off === 0) return local + "Z";
  const abs = Math.abs(off);
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  return `${local}${off < 0 ? "-" : "+"}${hh}:${String(abs % 60).padStart(2, "0")}`;
}

/**
 * Error text as the reference CLI prints it. Go's sentinel errors carry no
 * object name ("layer not known"), while our typed errors name the object
 * (`layer not known: "abc"`); the CLI prints the Go wording so scripts that
 * match on it keep working. File errors read like Go's `*PathError`
 * ("open /x: no such file or directory").
 *
 * @example
 * ```ts
 * import { ErrLayerUnknown } from "../errors.ts";
 * import { goMessage } from "./messages.ts";
 * console.log(goMessage(new ErrLayerUnknown("abc"))); // layer not known
 * ```
 * @module
 */

import { ErrBadArchive, ErrLayerHasChildren, StorageError } from "../errors.ts";

/** An error whose message is printed verbatim by the CLI. */
export class CliError extends Error {}

/** strerror() texts for the errno codes Deno reports, lower-case as Go prints them. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  EEXIST: "file exists",
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  EBUSY: "device or resource busy",
  EINVAL: "invalid argument",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "file name too long",
};

/** Go's `*PathError` text for a failed file operation: "open /x: no such file or directory". */
export function pathError(op: string, path: string, e: unknown): CliError {
  const code = (e as { code?: string })?.code;
  const text = code && ERRNO_TEXT[code] ? ERRNO_TEXT[code] : String((e as Error)?.message ?? e);
  return new CliError(`${op} ${path}: ${text}`, { cause: e });
}

/** The text the reference CLI would print for `e`. */
export function goMessage(e: unknown): string {
  // A refused tarball keeps the entry name: the reference's wording differs anyway,
  // and the user needs to know which entry was bad.
  if (e instanceof StorageError && e.id !== undefined && !(e instanceof ErrBadArchive)) {
    // Our messages are `base: "id"` or `base: "id": detail`; Go's sentinel has no id.
    const text = e.message.replace(`: ${JSON.stringify(e.id)}`, "");
    const base = (e.constructor as typeof StorageError).base;
    // Go wraps this one as "used by layer X: layer has children".
    if (e instanceof ErrLayerHasChildren && text.startsWith(`${base}: used by `)) {
      return `${text.slice(base.length + 2)}: ${base}`;
    }
    return text;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

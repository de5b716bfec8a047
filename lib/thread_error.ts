/**
 * Errors that cross from a worker to the thread that started it. A
 * structured clone keeps an Error's message but not its class or fields, so
 * a worker sends {@linkcode toWireError}'s plain object and the receiver
 * rebuilds the error with {@linkcode fromWireError}: the same class
 * (`instanceof ErrBadArchive`, `SyscallError`, `Deno.errors.NotFound`…), the
 * same fields (`id`, `errno`, `code`, `path`…), message, stack and cause.
 *
 * @example
 * ```ts
 * import { fromWireError, toWireError } from "./thread_error.ts";
 * import { ErrBadArchive } from "./errors.ts";
 * const sent = structuredClone(toWireError(new ErrBadArchive("etc/passwd", { detail: "escapes" })));
 * const e = fromWireError(sent);
 * console.log(e instanceof ErrBadArchive, (e as ErrBadArchive).id); // true etc/passwd
 * ```
 * @module
 */

import * as storageErrors from "./errors.ts";
import { SyscallError } from "../ffi/errors.ts";

/** An error as a worker posts it: its class name and own fields. */
export interface WireError {
  /** The class's name, e.g. "ErrBadArchive"; unknown classes come back as Error. */
  kind: string;
  /** The error's `name`. */
  name: string;
  /** The message. */
  message: string;
  /** The stack as the worker saw it. */
  stack?: string;
  /** Own fields other than message, stack and cause (strings, numbers, …). */
  fields: Record<string, unknown>;
  /** The cause, when it was an error too (anything else goes as its text). */
  cause?: WireError | string;
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** The classes rebuilt by name: the store's errors, SyscallError, Deno's errors. */
const classes = new Map<string, ErrorClass>();
for (
  const value of [...Object.values(storageErrors), SyscallError, ...Object.values(Deno.errors)]
) {
  if (typeof value === "function" && value.prototype instanceof Error) {
    classes.set(value.name, value as ErrorClass);
  }
}

/** A cloneable description of `e` (any thrown value). */
export function toWireError(e: unknown): WireError {
  if (!(e instanceof Error)) {
    return { kind: "Error", name: "Error", message: String(e), fields: {} };
  }
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(e)) {
    if (key === "cause" || key === "name") continue;
    if (value === null || ["string", "number", "boolean", "undefined"].includes(typeof value)) {
      fields[key] = value;
    }
  }
  const wire: WireError = {
    kind: e.constructor.name,
    name: e.name,
    message: e.message,
    stack: e.stack,
    fields,
  };
  if ("cause" in e) {
    wire.cause = e.cause instanceof Error ? toWireError(e.cause) : String(e.cause);
  }
  return wire;
}

/** The error `w` describes, of its original class when that is one of ours or Deno's. */
export function fromWireError(w: WireError): Error {
  const cls = classes.get(w.kind) ?? Error;
  const e = Object.create(cls.prototype) as Error;
  const own = (key: string, value: unknown) =>
    Object.defineProperty(e, key, { value, writable: true, configurable: true });
  own("message", w.message);
  own("stack", w.stack);
  if (w.name !== cls.prototype.name) Object.assign(e, { name: w.name });
  Object.assign(e, w.fields);
  if (w.cause !== undefined) {
    own("cause", typeof w.cause === "string" ? w.cause : fromWireError(w.cause));
  }
  return e;
}

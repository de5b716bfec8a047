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

import {
  ErrBadArchive,
  ErrDigestUnknown,
  ErrDriverNotSupported,
  ErrDuplicateID,
  ErrDuplicateName,
  ErrFileWrite,
  ErrImageUnknown,
  ErrImageUsedByContainer,
  ErrInvalidStoreFile,
  ErrLayerHasChildren,
  ErrSizeUnknown,
  ErrUnmappedID,
  StorageError,
} from "../errors.ts";
import { goQuote } from "./io.ts";

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

/** The words after `base` and the quoted ID in a {@linkcode StorageError}'s message. */
function detailOf(e: StorageError): string {
  const base = (e.constructor as typeof StorageError).base;
  const head = e.id === undefined ? base : `${base}: ${JSON.stringify(e.id)}`;
  return e.message.startsWith(`${head}: `) ? e.message.slice(head.length + 2) : "";
}

/** Go's `%q` of an ID carried by an error. */
const q = (e: StorageError) => goQuote(e.id ?? "");

/**
 * The reference's wording of errors whose Go text carries the object or
 * other words in its own order; undefined falls back to the generic rule.
 */
const WORDINGS: [typeof StorageError, (e: StorageError, detail: string) => string | undefined][] = [
  [
    ErrImageUnknown,
    (e) =>
      e.id === undefined ? undefined : `locating image with ID ${q(e)}: ${ErrImageUnknown.base}`,
  ],
  [ErrDuplicateName, (e, detail) => {
    const image = detail.match(/^already associated with image (.*)$/);
    if (image) {
      return `image name ${q(e)} is already associated with image ${
        goQuote(image[1])
      }: ${ErrDuplicateName.base}`;
    }
    const container = detail.match(/^the container name is already in use by ([^;]*);/);
    if (container) {
      return `the container name ${q(e)} is already in use by ${container[1]}. ` +
        `You have to remove that container to be able to reuse that name: ${ErrDuplicateName.base}`;
    }
    return undefined;
  }],
  [
    ErrDuplicateID,
    (e, detail) =>
      detail.startsWith("an image ")
        ? `an image with ID ${q(e)} already exists: ${ErrDuplicateID.base}`
        : ErrDuplicateID.base,
  ],
  [ErrImageUsedByContainer, (_e, detail) => `image ${detail}: ${ErrImageUsedByContainer.base}`],
  // Go's vfs driver refuses mount options with a plain error.
  [ErrDriverNotSupported, (_e, detail) => detail.startsWith("vfs driver ") ? detail : undefined],
  // 1.43 reads a damaged store file as empty; later versions refuse it in these words.
  [ErrInvalidStoreFile, (e, detail) => `loading ${q(e)}: ${detail}`],
  // Go's sentinels for these carry no words of their own.
  [ErrSizeUnknown, () => ErrSizeUnknown.base],
  [ErrDigestUnknown, () => ErrDigestUnknown.base],
  [
    ErrUnmappedID,
    (e, detail) =>
      detail.endsWith("has no host ID in the mapping")
        ? `container ID ${e.id} cannot be mapped to a host ID`
        : `host ID ${e.id} cannot be mapped to a container ID`,
  ],
];

/** The text the reference CLI would print for `e`. */
export function goMessage(e: unknown): string {
  // Go returns the *PathError of the write itself.
  if (e instanceof ErrFileWrite) return `${e.op} ${e.path}: ${ERRNO_TEXT[e.code] ?? e.text}`;
  if (e instanceof StorageError) {
    for (const [cls, word] of WORDINGS) {
      const text = e instanceof cls ? word(e, detailOf(e)) : undefined;
      if (text !== undefined) return text;
    }
  }
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

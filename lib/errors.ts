/**
 * Typed errors of the store, one class per error that containers/storage
 * exports, so callers can branch with `instanceof` instead of parsing text.
 *
 * Every error names the object it is about (layer/image/container ID or
 * name) when there is one, and keeps the underlying failure as `cause`.
 *
 * @example
 * ```ts
 * import { ErrLayerUnknown } from "./errors.ts";
 * try {
 *   throw new ErrLayerUnknown("0123abcd");
 * } catch (e) {
 *   if (e instanceof ErrLayerUnknown) console.log(e.id, e.message);
 * }
 * ```
 * @module
 */

/** Extra information for a {@linkcode StorageError}. */
export interface StorageErrorOptions {
  /** Words appended to the message. */
  detail?: string;
  /** The underlying failure. */
  cause?: unknown;
}

/** Base class of every error raised by the store. */
export class StorageError extends Error {
  /** The containers/storage wording of the error; each subclass sets its own. */
  static readonly base: string = "storage error";
  /** The ID or name of the object the error is about, if any. */
  readonly id?: string;

  /**
   * Builds the message `base`, `base: "id"`, `base: "id": detail` or `base: detail`.
   * @param id The object the error is about (ID, name or path).
   * @param options Words appended to the message and the underlying failure.
   */
  constructor(id?: string, options: StorageErrorOptions = {}) {
    const { detail, cause } = options;
    const base = (new.target as typeof StorageError).base;
    const what = id === undefined ? base : `${base}: ${JSON.stringify(id)}`;
    // An absent cause stays absent rather than becoming an own `cause: undefined`.
    super(
      detail === undefined ? what : `${what}: ${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = new.target.name;
    this.id = id;
  }
}

/** A layer ID, prefix or name matches no layer. */
export class ErrLayerUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "layer not known";
}
/** An image ID, prefix or name matches no image. */
export class ErrImageUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "image not known";
}
/** A container ID, prefix or name matches no container. */
export class ErrContainerUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "container not known";
}
/** The parent named for a new layer does not exist. */
export class ErrParentUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "parent of layer not known";
}
/** An ID given for a new object is already used. */
export class ErrDuplicateID extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "that ID is already in use";
}
/** A name given to an object is already used by another object. */
export class ErrDuplicateName extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "that name is already in use";
}
/** A write was attempted on a read-only store. */
export class ErrStoreIsReadOnly extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "called a write method on a read-only store";
}
/** A layer cannot be deleted because other layers are built on it. */
export class ErrLayerHasChildren extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "layer has children";
}
/** A layer cannot be deleted because an image uses it. */
export class ErrLayerUsedByImage extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "layer is in use by an image";
}
/** A layer cannot be deleted because a container uses it. */
export class ErrLayerUsedByContainer extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "layer is in use by a container";
}
/** An image cannot be deleted because a container uses it. */
export class ErrImageUsedByContainer extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "image is in use by a container";
}
/** A container's layer was named as the parent of a new layer. */
export class ErrParentIsContainer extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "would-be parent layer is a container";
}
/** The operation is not supported by this store or driver. */
export class ErrNotSupported extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "not supported";
}
/** An unmount was asked for a layer that is not mounted. */
export class ErrLayerNotMounted extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "layer is not mounted";
}
/** The size of an object is not known. */
export class ErrSizeUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "size is not known";
}
/** An identifier matched something that is not a layer. */
export class ErrNotALayer extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "identifier is not a layer";
}
/** An identifier matched something that is not an image. */
export class ErrNotAnImage extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "identifier is not an image";
}
/** An identifier matched something that is not a container. */
export class ErrNotAContainer extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "identifier is not a container";
}
/** An identifier matched no layer, image or container. */
export class ErrNotAnID extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "identifier is not a layer, image, or container";
}
/** A required option was not given. */
export class ErrIncompleteOptions extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "missing necessary options";
}
/** A big data key is not usable as a name. */
export class ErrInvalidBigDataName extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "not a valid name for a big data item";
}
/** A digest of an item could not be computed. */
export class ErrDigestUnknown extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "could not compute digest of item";
}
/** A unique-prefix lookup matched more than one ID. */
export class ErrAmbiguousPrefix extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "ambiguous ID prefix";
}
/** An ID is not 64 lowercase hex characters where one is required. */
export class ErrInvalidID extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "invalid ID";
}
/** A lock operation was attempted that the lock does not allow (e.g. writing a read-only lock). */
export class ErrLockReadOnly extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "lock is read-only";
}
/** The configured or requested storage driver is not known or not usable. */
export class ErrDriverNotSupported extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "driver not supported";
}
/** storage.conf (or an override of it) is malformed. */
export class ErrConfig extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "invalid storage configuration";
}
/** A layer tarball is malformed or tries to escape its root. */
export class ErrBadArchive extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "invalid layer archive";
}
/** A Deno permission the operation needs was not granted. */
export class ErrPermission extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "missing Deno permission";
}
/** A UID/GID mapping spec (e.g. "0:100000:65536") or subordinate-ID entry is malformed. */
export class ErrInvalidIDMap extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "invalid ID mapping";
}
/** An ID falls outside every range of a mapping, so it has no counterpart. */
export class ErrUnmappedID extends StorageError {
  /** The containers/storage wording of this error. */
  static override readonly base = "ID cannot be mapped";
}
/**
 * A store file (layers.json, images.json, containers.json, mountpoints.json)
 * is cut short, not JSON, or not a list of records. 1.43 reads such a file as
 * empty, or as the records before the damage, and its next write makes the
 * loss permanent; we refuse the store until the file is repaired.
 */
export class ErrInvalidStoreFile extends StorageError {
  /** Our wording of this error (containers/storage 1.43 has none). */
  static override readonly base = "invalid store file";
}
/**
 * A file of the store could not be written: no space left on the device
 * (`ENOSPC`), a quota (`EDQUOT`), an I/O error… The message names the
 * operation, the file and the errno (`write /g/vfs-images/.images.json.tmp-1:
 * ENOSPC (No space left on device)`), as Go's `*PathError` does; a file
 * replaced atomically is left as it was.
 */
export class ErrFileWrite extends StorageError {
  /** Our wording of this error (containers/storage 1.43 returns the `*PathError` itself). */
  static override readonly base = "cannot write a file of the store";
  /** The operation that failed: open, write, sync, chmod, rename. */
  readonly op: string;
  /** The file it was about. */
  readonly path: string;
  /** The errno's name ("ENOSPC"), or "" when the failure has none. */
  readonly code: string;
  /** The errno's text ("No space left on device"). */
  readonly text: string;

  /**
   * An error for `op` on `path`, keeping the errno name and text of `cause`.
   * @param op The operation that failed.
   * @param path The file it was about.
   * @param cause The failure (a Deno error carrying `code`, usually).
   */
  constructor(op: string, path: string, cause: unknown) {
    const code = String((cause as { code?: unknown })?.code ?? "");
    const text = String((cause as Error)?.message ?? cause)
      .replace(/ \(os error \d+\)[^]*$/, "");
    super(undefined, { detail: `${op} ${path}: ${code ? `${code} (${text})` : text}`, cause });
    this.op = op;
    this.path = path;
    this.code = code;
    this.text = text;
  }
}

/**
 * Errors of image copies: an image whose manifest, index, config or blobs
 * are not what they claim ({@linkcode ErrInvalidImage}, naming the blob or
 * file and the reason), and a transport reference that cannot be parsed
 * ({@linkcode ErrInvalidReference}).
 *
 * @example
 * ```ts
 * import { ErrInvalidImage } from "./errors.ts";
 * const e = new ErrInvalidImage("sha256:" + "0".repeat(64), { detail: "digest mismatch" });
 * console.log(e.message);
 * ```
 * @module
 */

import { StorageError } from "../errors.ts";

/**
 * An image refused: a blob whose digest or size differs from its
 * descriptor, a layer whose uncompressed digest is not the config's
 * diff_id, a missing blob, a malformed manifest, index or config, or an
 * unsupported media type. `id` names the blob (digest) or the file.
 */
export class ErrInvalidImage extends StorageError {
  /** Our wording of this error. */
  static override readonly base = "invalid image";
}

/** A transport reference (`oci:DIR:REF`, `containers-storage:[…]NAME`, …) that cannot be used. */
export class ErrInvalidReference extends StorageError {
  /** Our wording of this error. */
  static override readonly base = "invalid image reference";
}

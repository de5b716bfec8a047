/**
 * go-digest's `Digest.Validate`, which the reference CLI runs on digests it
 * is given (`images-by-digest`) or prints (`get-…-data-digest`), with its
 * three error texts.
 *
 * @example
 * ```ts
 * import { digestProblem } from "./digest.ts";
 * console.log(digestProblem("sha256:abc")); // invalid checksum digest length
 * ```
 * @module
 */

/** Hex length of the encoded part for the algorithms go-digest can compute. */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** go-digest's DigestRegexp, anchored: what any well-formed digest looks like. */
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Why `d` is not a valid digest (go-digest's error text), or undefined when it is. */
export function digestProblem(d: string): string | undefined {
  const colon = d.indexOf(":");
  if (colon <= 0 || colon + 1 === d.length) return "invalid checksum digest format";
  const length = HEX_LENGTH[d.slice(0, colon)];
  if (length === undefined) {
    return ANY_DIGEST.test(d) ? "unsupported digest algorithm" : "invalid checksum digest format";
  }
  const encoded = d.slice(colon + 1);
  if (encoded.length !== length) return "invalid checksum digest length";
  return /^[a-f0-9]+$/.test(encoded) ? undefined : "invalid checksum digest format";
}

/**
 * The digest of a manifest as containers/image computes it: the sha256 of
 * its bytes, except for a signed Docker schema 1 manifest, whose digest
 * covers only the payload its JWS signatures sign (the manifest without
 * the `signatures` member). This is what an image's `digest` and its
 * findability by digest rest on.
 *
 * @example
 * ```ts
 * import { manifestDigest } from "./manifest_digest.ts";
 * const m = new TextEncoder().encode('{"schemaVersion":2}');
 * console.log(manifestDigest(m)); // sha256:…
 * ```
 * @module
 */

import { ErrDigestUnknown } from "../errors.ts";
import { sha256Digest } from "../records/record_store.ts";

const decoder = new TextDecoder();

function base64urlDecode(s: string): Uint8Array {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** The signed payload of a schema 1 manifest with JWS signatures ("pretty signature" form). */
function schema1Payload(manifest: Uint8Array, signatures: unknown[]): Uint8Array {
  let payload: Uint8Array | undefined;
  for (const sig of signatures) {
    const header = JSON.parse(
      decoder.decode(base64urlDecode(String((sig as { protected?: unknown }).protected ?? ""))),
    );
    const length = header.formatLength;
    if (!Number.isInteger(length) || length < 0 || length > manifest.length) {
      throw new ErrDigestUnknown(undefined, { detail: "invalid formatLength in JWS header" });
    }
    const tail = base64urlDecode(String(header.formatTail ?? ""));
    const p = new Uint8Array(length + tail.length);
    p.set(manifest.subarray(0, length));
    p.set(tail, length);
    if (payload && decoder.decode(payload) !== decoder.decode(p)) {
      throw new ErrDigestUnknown(undefined, { detail: "JWS signatures sign different payloads" });
    }
    payload = p;
  }
  if (!payload) throw new ErrDigestUnknown(undefined, { detail: "JWS has no signatures" });
  return payload;
}

/**
 * The digest of a manifest.
 * @throws {ErrDigestUnknown} for a signed schema 1 manifest whose signatures are malformed.
 */
export function manifestDigest(manifest: Uint8Array): string {
  let parsed: { schemaVersion?: unknown; signatures?: unknown };
  try {
    parsed = JSON.parse(decoder.decode(manifest));
  } catch {
    return sha256Digest(manifest);
  }
  if (parsed?.schemaVersion === 1 && Array.isArray(parsed.signatures)) {
    try {
      return sha256Digest(schema1Payload(manifest, parsed.signatures));
    } catch (e) {
      if (e instanceof ErrDigestUnknown) throw e;
      throw new ErrDigestUnknown(undefined, { detail: "malformed JWS signature", cause: e });
    }
  }
  return sha256Digest(manifest);
}

/** go-digest's rule for a well-formed digest: a known algorithm and its hex length. */
export function isValidDigest(d: string): boolean {
  return /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/.test(d);
}

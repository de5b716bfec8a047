/**
 * SHA-256 through OpenSSL's libcrypto (`libcrypto.so.3`, on every Debian
 * system), whose code uses the CPU's SHA instructions: about 3.5 times as
 * fast as `node:crypto` in Deno on layer digests. Optional (see
 * optional_lib.ts): {@linkcode libcryptoSha256} gives undefined without the
 * library and callers use `node:crypto`.
 *
 * @example
 * ```ts ignore
 * import { libcryptoSha256 } from "./libcrypto.ts";
 * const h = libcryptoSha256();
 * if (h) {
 *   h.update(new TextEncoder().encode("abc"));
 *   console.log(h.hex());
 * }
 * ```
 * @module
 */

import { openOptional } from "./optional_lib.ts";

const SYMBOLS = {
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  // The same, on a thread of Deno's pool (pointers: a buffer argument there costs a copy).
  EVP_DigestUpdate_async: {
    name: "EVP_DigestUpdate",
    parameters: ["pointer", "pointer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
} as const;

type Crypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Frees the context of a hash dropped before its digest was taken. */
const contexts = new FinalizationRegistry<{ lib: Crypto; ctx: Deno.PointerValue }>((held) => {
  held.lib.EVP_MD_CTX_free(held.ctx);
});

/** An incremental SHA-256; its context is freed by {@linkcode hex} (or when collected). */
export class LibcryptoSha256 {
  #ctx: Deno.PointerValue;
  readonly #token = {};

  /** Takes the library's symbols; use {@linkcode libcryptoSha256}. */
  constructor(private readonly lib: Crypto) {
    const ctx = lib.EVP_MD_CTX_new();
    if (ctx === null || lib.EVP_DigestInit_ex(ctx, lib.EVP_sha256(), null) !== 1) {
      if (ctx !== null) lib.EVP_MD_CTX_free(ctx);
      throw new Error("libcrypto: cannot start a SHA-256 digest");
    }
    this.#ctx = ctx;
    contexts.register(this, { lib, ctx }, this.#token);
  }

  /** Adds `buf` to the digest. */
  update(buf: Uint8Array): void {
    if (this.#ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    if (buf.length === 0) return;
    if (this.lib.EVP_DigestUpdate(this.#ctx, buf, BigInt(buf.length)) !== 1) {
      throw new Error("libcrypto: EVP_DigestUpdate failed");
    }
  }

  /**
   * Adds `buf` on another thread, so hashing overlaps with the caller's
   * work. `buf` must stay alive and unchanged until the promise settles, and
   * no other method may be called before.
   */
  async updateOffThread(buf: Uint8Array): Promise<void> {
    if (this.#ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    if (buf.length === 0) return;
    const p = Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>);
    if (await this.lib.EVP_DigestUpdate_async(this.#ctx, p, BigInt(buf.length)) !== 1) {
      throw new Error("libcrypto: EVP_DigestUpdate failed");
    }
  }

  /** The digest as 64 lower-case hex digits; the hash cannot be used after. */
  hex(): string {
    const ctx = this.#ctx;
    if (ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    this.#ctx = null;
    contexts.unregister(this.#token);
    const out = new Uint8Array(32);
    try {
      if (this.lib.EVP_DigestFinal_ex(ctx, out, null) !== 1) {
        throw new Error("libcrypto: EVP_DigestFinal_ex failed");
      }
    } finally {
      this.lib.EVP_MD_CTX_free(ctx);
    }
    return (out as Uint8Array & { toHex(): string }).toHex();
  }
}

/** A SHA-256 on libcrypto, or undefined when the library is not usable. */
export function libcryptoSha256(): LibcryptoSha256 | undefined {
  const l = openOptional("libcrypto.so.3", SYMBOLS);
  return l ? new LibcryptoSha256(l) : undefined;
}

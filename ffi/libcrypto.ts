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
  // The plain SHA256_* calls rather than EVP: the same SHA instructions, but
  // EVP's provider machinery touched ~1.8 MB more of the library per process.
  SHA256_Init: { parameters: ["buffer"], result: "i32" },
  SHA256_Update: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // The same, on a thread of Deno's pool (pointers: a "buffer" argument there costs a copy).
  SHA256_Update_async: {
    name: "SHA256_Update",
    parameters: ["pointer", "pointer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  SHA256_Final: { parameters: ["buffer", "buffer"], result: "i32" },
} as const;

type Crypto = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `sizeof(SHA256_CTX)` is 112 bytes on x86_64; room to spare. */
const CTX_SIZE = 128;

/** An incremental SHA-256; {@linkcode hex} ends it. */
export class LibcryptoSha256 {
  #ctx: Uint8Array<ArrayBuffer> | null = new Uint8Array(CTX_SIZE);

  /** Takes the library's symbols; use {@linkcode libcryptoSha256}. */
  constructor(private readonly lib: Crypto) {
    if (lib.SHA256_Init(this.#ctx!) !== 1) {
      throw new Error("libcrypto: cannot start a SHA-256 digest");
    }
  }

  /** Adds `buf` to the digest. */
  update(buf: Uint8Array): void {
    if (this.#ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    if (buf.length === 0) return;
    if (this.lib.SHA256_Update(this.#ctx, buf, BigInt(buf.length)) !== 1) {
      throw new Error("libcrypto: SHA256_Update failed");
    }
  }

  /**
   * Adds `buf` on a thread of Deno's pool, so hashing overlaps with what
   * the caller does next. `buf` must stay unchanged, and no other method be
   * called, until the promise settles.
   */
  async updateBehind(buf: Uint8Array): Promise<void> {
    if (this.#ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    if (buf.length === 0) return;
    const ctx = Deno.UnsafePointer.of(this.#ctx);
    const data = Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>);
    if (await this.lib.SHA256_Update_async(ctx, data, BigInt(buf.length)) !== 1) {
      throw new Error("libcrypto: SHA256_Update failed");
    }
  }

  /** The digest as 64 lower-case hex digits; the hash cannot be used after. */
  hex(): string {
    const ctx = this.#ctx;
    if (ctx === null) throw new Error("libcrypto: SHA-256 digest already taken");
    this.#ctx = null;
    const out = new Uint8Array(32);
    if (this.lib.SHA256_Final(out, ctx) !== 1) throw new Error("libcrypto: SHA256_Final failed");
    return (out as Uint8Array & { toHex(): string }).toHex();
  }
}

/** A SHA-256 on libcrypto, or undefined when the library is not usable. */
export function libcryptoSha256(): LibcryptoSha256 | undefined {
  const l = openOptional("libcrypto.so.3", SYMBOLS);
  return l ? new LibcryptoSha256(l) : undefined;
}

/**
 * Intel ISA-L (`libisal.so.2`, Debian's `libisal2`) through `Deno.dlopen`:
 * streaming gzip inflate, about four times as fast as zlib, and CRC-64/ISO
 * (tar-split's file checksum) with carry-less multiplication. Both are
 * optional (see optional_lib.ts): callers fall back to `node:zlib` and the
 * JavaScript CRC when {@linkcode isalInflate} / {@linkcode isalCrc64} give
 * undefined.
 *
 * The inflate is a synchronous call on the calling thread: handing each of
 * a layer's thousands of chunks to a pool thread (a wake-up, a context
 * switch on our 2-core VMs) cost about as much as the inflate itself.
 *
 * `struct inflate_state` is allocated here, so its layout is part of the
 * ABI we rely on: the offsets below are those of ISA-L 2.x's igzip_lib.h
 * (x86_64). A self-test inflates a known member on first use and checks
 * the fields we read; a library whose layout differs is not used.
 *
 * @example
 * ```ts ignore
 * import { isalInflate } from "./isal.ts";
 * const inf = isalInflate();
 * if (inf) {
 *   inf.setInput(gzipBytes);
 *   const out = new Uint8Array(1 << 16);
 *   const { status, produced } = inf.inflate(out);
 *   inf.free();
 * }
 * ```
 * @module
 */

import { openOptional } from "./optional_lib.ts";

const SYMBOLS = {
  isal_inflate_init: { parameters: ["buffer"], result: "void" },
  isal_inflate_reset: { parameters: ["buffer"], result: "void" },
  isal_inflate: { parameters: ["buffer"], result: "i32" },
  crc64_iso_refl: { parameters: ["u64", "buffer", "u64"], result: "u64" },
} as const;

type Isal = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Offsets in `struct inflate_state` (ISA-L 2.x, x86_64). */
const NEXT_OUT = 0;
const AVAIL_OUT = 8;
const TOTAL_OUT = 12;
const NEXT_IN = 16;
const AVAIL_IN = 32;
const BLOCK_STATE = 21160;
const CRC_FLAG = 21172;
/** sizeof(struct inflate_state) is 87,368 bytes; room to spare. */
const STATE_SIZE = 96 << 10;

/** `enum isal_block_state`: the member and its trailer are done. */
const ISAL_BLOCK_FINISH = 5;
/** crc_flag: parse the gzip header and check the trailer. */
const ISAL_GZIP = 1;

/** isal_inflate's return codes, by value. */
const STATUS: Record<number, string> = {
  [-1]: "invalid deflate block",
  [-2]: "invalid deflate symbol",
  [-3]: "invalid lookback distance",
  [-4]: "invalid header",
  [-5]: "unsupported compression method",
  [-6]: "invalid checksum",
};

/** `printf 'isal\n' | gzip -n -9`: the self-test's member. */
const PROBE = new Uint8Array([
  31,
  139,
  8,
  0,
  0,
  0,
  0,
  0,
  2,
  3,
  203,
  44,
  78,
  204,
  225,
  2,
  0,
  241,
  129,
  2,
  75,
  5,
  0,
  0,
  0,
]);

let usable: boolean | undefined;

function lib(): Isal | undefined {
  const l = openOptional("libisal.so.2", SYMBOLS);
  if (!l) return undefined;
  if (usable === undefined) usable = selfTest(l);
  return usable ? l : undefined;
}

/** Inflates {@linkcode PROBE} synchronously and checks output, counters and the finish state. */
function selfTest(l: Isal): boolean {
  const inf = new IsalInflate(l);
  try {
    inf.setInput(PROBE);
    const out = new Uint8Array(64);
    inf.bindOutput(out);
    const status = l.isal_inflate(inf.state);
    return status === 0 && inf.finished && inf.availIn === 0 &&
      new TextDecoder().decode(out.subarray(0, inf.produced(out))) === "isal\n";
  } catch {
    return false;
  }
}

/** Result of one {@linkcode IsalInflate.inflate} step. */
export interface InflateStep {
  /** isal_inflate's status: 0 or a positive code is progress, negative is bad data. */
  status: number;
  /** Bytes written to the output buffer. */
  produced: number;
}

/**
 * A gzip member decoder. Hand it input with {@linkcode setInput} (the
 * buffer must stay untouched until consumed), call {@linkcode inflate}
 * with output buffers until `availIn` is 0 or the member is
 * {@linkcode finished}; {@linkcode reset} starts the next member on the
 * input left. One inflate at a time.
 */
export class IsalInflate {
  /** The `struct inflate_state`. */
  readonly state: Uint8Array<ArrayBuffer> = new Uint8Array(STATE_SIZE);
  readonly #view = new DataView(this.state.buffer);
  /** Keeps the input alive while ISA-L points into it. */
  #input: Uint8Array | undefined;

  /** Takes the library's symbols; use {@linkcode isalInflate}. */
  constructor(private readonly lib: Isal) {
    lib.isal_inflate_init(this.state);
    this.#view.setUint32(CRC_FLAG, ISAL_GZIP, true);
  }

  /** Points the decoder at `buf` (replacing what was left of the last input). */
  setInput(buf: Uint8Array): void {
    this.#input = buf;
    this.#view.setBigUint64(NEXT_IN, pointer(buf), true);
    this.#view.setUint32(AVAIL_IN, buf.length, true);
  }

  /** Input bytes not consumed yet. */
  get availIn(): number {
    return this.#view.getUint32(AVAIL_IN, true);
  }

  /** Whether the current member is complete, its trailer checked. */
  get finished(): boolean {
    return this.#view.getInt32(BLOCK_STATE, true) === ISAL_BLOCK_FINISH;
  }

  /** Binds `out` as the output buffer (see {@linkcode produced}). */
  bindOutput(out: Uint8Array): void {
    this.#view.setBigUint64(NEXT_OUT, pointer(out), true);
    this.#view.setUint32(AVAIL_OUT, out.length, true);
  }

  /** Bytes written into `out` since {@linkcode bindOutput}. */
  produced(out: Uint8Array): number {
    return out.length - this.#view.getUint32(AVAIL_OUT, true);
  }

  /** Decodes into `out`. */
  inflate(out: Uint8Array): InflateStep {
    this.bindOutput(out);
    const status = this.lib.isal_inflate(this.state);
    return { status, produced: this.produced(out) };
  }

  /** Readies the decoder for the next member; the input left stays. */
  reset(): void {
    const nextIn = this.#view.getBigUint64(NEXT_IN, true);
    const availIn = this.availIn;
    this.lib.isal_inflate_reset(this.state);
    this.#view.setUint32(CRC_FLAG, ISAL_GZIP, true);
    this.#view.setBigUint64(NEXT_IN, nextIn, true);
    this.#view.setUint32(AVAIL_IN, availIn, true);
    this.#view.setUint32(TOTAL_OUT, 0, true);
  }

  /** Drops the input reference (the state is garbage-collected memory). */
  free(): void {
    this.#input = undefined;
  }
}

/** What a negative {@linkcode InflateStep.status} means, in Go's words where they exist. */
export function inflateError(status: number): string {
  return STATUS[status] ?? `ISA-L inflate error ${status}`;
}

/** A gzip decoder on ISA-L, or undefined when the library is not usable. */
export function isalInflate(): IsalInflate | undefined {
  const l = lib();
  return l ? new IsalInflate(l) : undefined;
}

/**
 * CRC-64/ISO (reflected, as Go's crc64.ISO table and tar-split use) of
 * `buf` continuing from `crc` (0 to start), or undefined without ISA-L.
 */
export function isalCrc64(): ((crc: bigint, buf: Uint8Array) => bigint) | undefined {
  const l = lib();
  if (!l) return undefined;
  return (crc, buf) => BigInt(l.crc64_iso_refl(crc, buf, BigInt(buf.length)));
}

function pointer(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>)));
}

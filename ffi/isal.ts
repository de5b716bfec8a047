/**
 * Intel ISA-L (`libisal.so.2`, Debian's `libisal2`) through `Deno.dlopen`:
 * streaming gzip inflate, about four times as fast as zlib; gzip deflate at
 * ISA-L's level 1, some six times as fast as zlib's default level (the
 * tar-split files a layer import writes: the reference's gzip level is no
 * part of the format); and CRC-64/ISO (tar-split's file checksum) with
 * carry-less multiplication. All are optional (see optional_lib.ts):
 * callers fall back to `node:zlib`, `CompressionStream` and the JavaScript
 * CRC when {@linkcode isalInflate} / {@linkcode isalDeflate} /
 * {@linkcode isalCrc64} give undefined.
 *
 * The inflate is a synchronous call on the calling thread: handing each of
 * a layer's thousands of chunks to a pool thread (a wake-up, a context
 * switch on our 2-core VMs) cost about as much as the inflate itself.
 *
 * `struct inflate_state` and `struct isal_zstream` are allocated here, so
 * their layouts are part of the ABI we rely on: the offsets below are those
 * of ISA-L 2.x's igzip_lib.h (x86_64). Self-tests on first use inflate a
 * known member and deflate a known text back to it, checking the fields we
 * read; a library whose layout differs is not used.
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
  isal_deflate_init: { parameters: ["buffer"], result: "void" },
  isal_deflate: { parameters: ["buffer"], result: "i32" },
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

/** Offsets in `struct isal_zstream` (ISA-L 2.x, x86_64). */
const Z_NEXT_IN = 0;
const Z_AVAIL_IN = 8;
const Z_NEXT_OUT = 16;
const Z_AVAIL_OUT = 24;
const Z_LEVEL = 40;
const Z_LEVEL_BUF_SIZE = 44;
const Z_LEVEL_BUF = 48;
const Z_END_OF_STREAM = 56;
const Z_GZIP_FLAG = 60;
/** `internal_state.state`: ZSTATE_END once the trailer is written. */
const Z_STATE = 84;
const ZSTATE_END = 11;
/** sizeof(struct isal_zstream) is 82,384 bytes; room to spare. */
const ZSTREAM_SIZE = 88 << 10;
/** ISAL_DEF_LVL1_DEFAULT: level 1's hash tables. */
const LVL1_BUF_SIZE = 282_624;
/** Output buffer of {@linkcode IsalDeflate.write}. */
const DEFLATE_OUT = 64 << 10;

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
// deno-fmt-ignore
const PROBE = new Uint8Array([
  31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 44, 78, 204, 225, 2,
  0, 241, 129, 2, 75, 5, 0, 0, 0,
]);

let usable: boolean | undefined;

function lib(): Isal | undefined {
  const l = openOptional("libisal.so.2", SYMBOLS);
  if (!l) return undefined;
  if (usable === undefined) usable = selfTest(l) && deflateSelfTest(l);
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

/** Deflates a text and inflates the member back: layout, trailer and end state as expected. */
function deflateSelfTest(l: Isal): boolean {
  try {
    const text = new TextEncoder().encode("isal isal isal isal\n");
    const parts: Uint8Array[] = [];
    const def = new IsalDeflate(l);
    def.write(text, (b) => parts.push(b.slice()));
    def.end((b) => parts.push(b.slice()));
    if (!def.ended) return false;
    const member = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (member.set(p, at), at + p.length), 0);
    const inf = new IsalInflate(l);
    inf.setInput(member);
    const out = new Uint8Array(64);
    const { status, produced } = inf.inflate(out);
    return status === 0 && inf.finished && inf.availIn === 0 &&
      produced === text.length && out.subarray(0, produced).every((b, i) => b === text[i]);
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

/**
 * A gzip member encoder at ISA-L's level 1: {@linkcode write} input as it
 * comes, then {@linkcode end}; each gives the compressed bytes to `emit` in
 * views of one reused buffer (valid only during the call). One member per
 * encoder.
 */
export class IsalDeflate {
  /** The `struct isal_zstream`. */
  readonly state: Uint8Array<ArrayBuffer> = new Uint8Array(ZSTREAM_SIZE);
  readonly #view = new DataView(this.state.buffer);
  readonly #levelBuf = new Uint8Array(LVL1_BUF_SIZE);
  readonly #out = new Uint8Array(DEFLATE_OUT);

  /** Takes the library's symbols; use {@linkcode isalDeflate}. */
  constructor(private readonly lib: Isal) {
    lib.isal_deflate_init(this.state);
    const v = this.#view;
    v.setUint32(Z_LEVEL, 1, true);
    v.setUint32(Z_LEVEL_BUF_SIZE, LVL1_BUF_SIZE, true);
    v.setBigUint64(Z_LEVEL_BUF, pointer(this.#levelBuf), true);
    v.setUint16(Z_GZIP_FLAG, ISAL_GZIP, true);
  }

  /** Whether the member is complete (after {@linkcode end}). */
  get ended(): boolean {
    return this.#view.getInt32(Z_STATE, true) === ZSTATE_END;
  }

  /** Compresses all of `input`. */
  write(input: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    this.#run(input, false, emit);
  }

  /** Compresses what is buffered and writes the gzip trailer. */
  end(emit: (bytes: Uint8Array) => void): void {
    this.#run(new Uint8Array(0), true, emit);
  }

  #run(input: Uint8Array, last: boolean, emit: (bytes: Uint8Array) => void): void {
    const v = this.#view;
    v.setBigUint64(Z_NEXT_IN, pointer(input), true);
    v.setUint32(Z_AVAIL_IN, input.length, true);
    v.setUint16(Z_END_OF_STREAM, last ? 1 : 0, true);
    const out = this.#out;
    for (let stalls = 0;;) {
      const availIn = v.getUint32(Z_AVAIL_IN, true);
      v.setBigUint64(Z_NEXT_OUT, pointer(out), true);
      v.setUint32(Z_AVAIL_OUT, out.length, true);
      const status = this.lib.isal_deflate(this.state);
      if (status !== 0) throw new Error(`ISA-L deflate error ${status}`);
      const produced = out.length - v.getUint32(Z_AVAIL_OUT, true);
      const left = v.getUint32(Z_AVAIL_IN, true);
      if (produced) emit(out.subarray(0, produced));
      // Output left room: all the input is taken (and, at the end, the trailer written).
      if (produced < out.length && left === 0 && (!last || this.ended)) return;
      // ISA-L progresses whenever it has room to write; a stall would be a layout mismatch
      stalls = produced || left < availIn ? 0 : stalls + 1;
      if (stalls > 2) throw new Error("ISA-L deflate made no progress");
    }
  }
}

/** A gzip encoder on ISA-L, or undefined when the library is not usable. */
export function isalDeflate(): IsalDeflate | undefined {
  const l = lib();
  return l ? new IsalDeflate(l) : undefined;
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

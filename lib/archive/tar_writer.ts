/**
 * Streaming tar writer that encodes headers exactly as Go's archive/tar
 * Writer does, so that a diff we produce is byte-identical to the one
 * containers/storage produces for the same entries.
 *
 * Format choice follows Go: with no format requested, mtime is rounded to
 * the second, atime/ctime dropped, and USTAR is used when every field fits,
 * else PAX (else GNU). With `"pax"` requested (what containers/storage's
 * pkg/archive sets), USTAR is still used when nothing needs a PAX record;
 * sub-second times and atime/ctime then force PAX.
 *
 * @example
 * ```ts ignore
 * import { writeTar } from "./tar_writer.ts";
 * import { emptyHeader } from "./tar_header.ts";
 * const body = new TextEncoder().encode("hi\n");
 * const h = { ...emptyHeader("hello.txt"), mode: 0o644, size: body.length };
 * const tar = writeTar([{ header: h, body: [body] }], { format: "pax" });
 * await tar.pipeTo((await Deno.create("out.tar")).writable);
 * ```
 * @module
 */

import {
  BLOCK,
  blockPadding,
  cleanPath,
  Field,
  type TarHeader,
  type TarTime,
  TypeFlag,
} from "./tar_header.ts";
import { concatBytes } from "../bytes.ts";
import { compareOsStrings, encodeOsString } from "../os_string.ts";

/** Header format wanted from the writer (Go's tar.Format). */
export type TarFormat = "ustar" | "pax" | "gnu";

/** One entry to write; `body` must yield exactly `header.size` bytes. */
export interface TarWriteEntry {
  /** The header. */
  header: TarHeader;
  /** The content of a regular file. */
  body?: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array>;
}

/** Options of {@linkcode writeTar} and {@linkcode encodeHeader}. */
export interface TarWriteOptions {
  /** Format wanted (Go's Header.Format); unset lets the writer choose as Go does. */
  format?: TarFormat;
}

const enc = new TextEncoder();
const ZEROS = new Uint8Array(2 * BLOCK);
const BASIC_KEYS = new Set([
  "path",
  "linkpath",
  "size",
  "uid",
  "gid",
  "uname",
  "gname",
  "mtime",
  "atime",
  "ctime",
]);

function isASCII(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80) return false;
  return true;
}

function toASCII(b: Uint8Array): Uint8Array {
  return isASCII(b) ? b : b.filter((c) => c < 0x80);
}

function fitsOctal(n: number, x: number): boolean {
  return x >= 0 && (n >= 22 || x < 8 ** (n - 1));
}

function fitsBase256(n: number, x: number): boolean {
  const lim = 2 ** ((n - 1) * 8);
  return n >= 9 || (x >= -lim && x < lim);
}

/** Go's formatPAXTime: seconds, then a fraction without trailing zeros. */
export function formatPaxTime(t: TarTime): string {
  let { sec, nsec } = t;
  if (nsec === 0) return String(sec);
  let sign = "";
  if (sec < 0) {
    sign = "-";
    sec = -(sec + 1);
    nsec = 1e9 - nsec;
  }
  return `${sign}${sec}.${String(nsec).padStart(9, "0")}`.replace(/0+$/, "");
}

function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const k = encodeOsString(key);
  let size = k.length + value.length + 3;
  size += String(size).length;
  const actual = String(size).length + k.length + value.length + 3;
  if (actual !== size) size = actual;
  return concatBytes([enc.encode(`${size} `), k, enc.encode("="), value, enc.encode("\n")]);
}

/** Go's splitUSTARPath: a prefix/suffix split of a long ASCII name, if one exists. */
function splitUstar(name: Uint8Array): [Uint8Array, Uint8Array] | undefined {
  let length = name.length;
  if (length <= 100 || !isASCII(name)) return undefined;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return undefined;
  return [name.subarray(0, i), name.subarray(i + 1)];
}

/** A 512-byte block being filled field by field, as Go's formatter does. */
class Block {
  b = new Uint8Array(BLOCK);

  str(f: readonly [number, number], s: Uint8Array): void {
    const [off, len] = f;
    this.b.set(s.subarray(0, len), off);
    if (s.length < len) this.b[off + s.length] = 0;
    // Go avoids a truncated name that ends in "/" looking like a directory.
    if (s.length > len && this.b[off + len - 1] === 0x2f) {
      let n = len;
      while (n > 0 && this.b[off + n - 1] === 0x2f) n--;
      this.b[off + n] = 0;
    }
  }

  octal(f: readonly [number, number], x: number): void {
    if (!fitsOctal(f[1], x)) x = 0;
    this.str(f, enc.encode(x.toString(8).padStart(f[1] - 1, "0")));
  }

  numeric(f: readonly [number, number], x: number): void {
    if (fitsOctal(f[1], x)) return this.octal(f, x);
    if (!fitsBase256(f[1], x)) return this.octal(f, 0);
    let v = BigInt(x);
    for (let i = f[1] - 1; i >= 0; i--) {
      this.b[f[0] + i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.b[f[0]] |= 0x80;
  }

  finish(format: "ustar" | "gnu" | "v7"): Uint8Array {
    if (format === "gnu") this.b.set(enc.encode("ustar  \0"), Field.magic[0]);
    else if (format === "ustar") this.b.set(enc.encode("ustar\x0000"), Field.magic[0]);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : this.b[i];
    this.str([148, 7], enc.encode(sum.toString(8).padStart(6, "0")));
    this.b[155] = 0x20;
    return this.b;
  }
}

function templateV7Plus(
  h: TarHeader,
  name: Uint8Array,
  str: (blk: Block, f: readonly [number, number], s: Uint8Array) => void,
  num: "octal" | "numeric",
  mtime: TarTime,
): Block {
  const blk = new Block();
  blk.b[Field.typeflag[0]] = h.typeflag.charCodeAt(0);
  str(blk, Field.name, name);
  str(blk, Field.linkname, encodeOsString(h.linkname));
  blk[num](Field.mode, h.mode);
  blk[num](Field.uid, h.uid);
  blk[num](Field.gid, h.gid);
  blk[num](Field.size, h.size);
  blk[num](Field.mtime, mtime.sec);
  str(blk, Field.uname, encodeOsString(h.uname));
  str(blk, Field.gname, encodeOsString(h.gname));
  blk[num](Field.devmajor, h.devmajor);
  blk[num](Field.devminor, h.devminor);
  return blk;
}

/** A raw extension file (PAX `x`/`g`, GNU `L`/`K`): header block, data, padding. */
function rawFile(
  name: string,
  data: Uint8Array,
  flag: string,
  format: "ustar" | "gnu",
): Uint8Array[] {
  let n = toASCII(encodeOsString(name)).subarray(0, 100);
  let end = n.length;
  while (end > 0 && n[end - 1] === 0x2f) end--;
  n = n.subarray(0, end);
  const blk = new Block();
  blk.b[Field.typeflag[0]] = flag.charCodeAt(0);
  blk.str(Field.name, n);
  blk.octal(Field.mode, 0);
  blk.octal(Field.uid, 0);
  blk.octal(Field.gid, 0);
  blk.octal(Field.size, data.length);
  blk.octal(Field.mtime, 0);
  return [blk.finish(format), data, ZEROS.subarray(0, blockPadding(data.length))];
}

/**
 * Encodes the header blocks of one entry (extension headers included) as
 * Go's tar.Writer.WriteHeader would, without the body.
 */
export function encodeHeader(header: TarHeader, opts: TarWriteOptions = {}): Uint8Array {
  const h = { ...header };
  if (h.typeflag === TypeFlag.RegA) h.typeflag = h.name.endsWith("/") ? TypeFlag.Dir : TypeFlag.Reg;
  let mtime = h.mtime;
  let atime = h.atime;
  let ctime = h.ctime;
  if (!opts.format) {
    mtime = { sec: mtime.sec + (mtime.nsec >= 5e8 ? 1 : 0), nsec: 0 };
    atime = ctime = undefined;
  }
  const name = encodeOsString(h.name);
  let ustar = true, pax = true, gnu = true, preferPax = false;
  const recs = new Map<string, Uint8Array>();
  const str = (s: Uint8Array, size: number, key: string) => {
    const tooLong = s.length > size;
    if (s.includes(0) || (tooLong && key !== "path" && key !== "linkpath")) gnu = false;
    if (!isASCII(s) || tooLong) {
      if (key !== "path" || !splitUstar(s)) ustar = false;
      recs.set(key, s);
    }
  };
  const num = (n: number, size: number, key?: string) => {
    if (!fitsBase256(size, n)) gnu = false;
    if (!fitsOctal(size, n)) {
      ustar = false;
      if (key) recs.set(key, enc.encode(String(n)));
      else pax = false;
    }
  };
  const time = (t: TarTime | undefined, size: number, key: string) => {
    if (!t) return;
    if (!fitsBase256(size, t.sec)) gnu = false;
    const isMtime = key === "mtime";
    const fits = fitsOctal(size, t.sec);
    if (!isMtime || !fits) ustar = false;
    if (!isMtime || !fits || t.nsec !== 0) {
      preferPax = true;
      recs.set(key, enc.encode(formatPaxTime(t)));
    }
  };
  str(name, 100, "path");
  const linkname = encodeOsString(h.linkname);
  str(linkname, 100, "linkpath");
  str(encodeOsString(h.uname), 32, "uname");
  str(encodeOsString(h.gname), 32, "gname");
  num(h.mode, 8);
  num(h.uid, 8, "uid");
  num(h.gid, 8, "gid");
  num(h.size, 12, "size");
  num(h.devmajor, 8);
  num(h.devminor, 8);
  time(mtime, 12, "mtime");
  time(atime, 12, "atime");
  time(ctime, 12, "ctime");
  const isGlobal = h.typeflag === TypeFlag.XGlobalHeader;
  if (isGlobal) ustar = gnu = false;
  const xattrs = Object.entries(h.xattrs);
  for (const [k, v] of xattrs) recs.set("SCHILY.xattr." + k, v);
  if (xattrs.length) ustar = gnu = false;
  const extra = Object.entries(h.pax);
  for (const [k, v] of extra) {
    if (recs.has(k)) continue;
    if (isGlobal || (!BASIC_KEYS.has(k) && !k.startsWith("GNU.sparse."))) {
      recs.set(k, encodeOsString(v));
    }
  }
  if (extra.length) ustar = gnu = false;
  if (opts.format === "ustar") pax = gnu = false;
  else if (opts.format === "gnu") ustar = pax = false;
  else if (opts.format === "pax") {
    gnu = false;
    if (preferPax) ustar = false;
  }

  if (ustar) {
    const split = splitUstar(name);
    const blk = templateV7Plus(
      h,
      split ? split[1] : name,
      (b, f, s) => b.str(f, s),
      "octal",
      mtime,
    );
    if (split) blk.str(Field.prefix, split[0]);
    return blk.finish("ustar");
  }
  if (pax) {
    const parts: Uint8Array[] = [];
    if (recs.size || isGlobal) {
      const keys = [...recs.keys()].sort(compareOsStrings); // Go sorts them as bytes
      const data = concatBytes(keys.map((k) => paxRecord(k, recs.get(k)!)));
      if (isGlobal) {
        return concatBytes(
          rawFile(h.name || "GlobalHead.0.0", data, TypeFlag.XGlobalHeader, "ustar"),
        );
      }
      const slash = h.name.lastIndexOf("/");
      const dir = h.name.slice(0, slash + 1);
      const file = h.name.slice(slash + 1);
      const paxName = cleanPath([dir, "PaxHeaders.0", file].filter((x) => x !== "").join("/"));
      parts.push(...rawFile(paxName, data, TypeFlag.XHeader, "ustar"));
    }
    const blk = templateV7Plus(h, name, (b, f, s) => b.str(f, toASCII(s)), "octal", mtime);
    parts.push(blk.finish("ustar"));
    return concatBytes(parts);
  }
  if (gnu) {
    const parts: Uint8Array[] = [];
    const nul = (s: Uint8Array) => concatBytes([s, new Uint8Array(1)]);
    if (name.length > 100) {
      parts.push(...rawFile("././@LongLink", nul(name), TypeFlag.GNULongName, "gnu"));
    }
    if (linkname.length > 100) {
      parts.push(...rawFile("././@LongLink", nul(linkname), TypeFlag.GNULongLink, "gnu"));
    }
    const blk = templateV7Plus(h, name, (b, f, s) => b.str(f, s), "numeric", mtime);
    if (atime) blk.numeric(Field.gnuAtime, atime.sec);
    if (ctime) blk.numeric(Field.gnuCtime, ctime.sec);
    parts.push(blk.finish("gnu"));
    return concatBytes(parts);
  }
  throw new Error(
    `tar header for ${JSON.stringify(h.name)} cannot be encoded in format ${opts.format ?? "any"}`,
  );
}

async function* chunks(
  body: TarWriteEntry["body"],
): AsyncGenerator<Uint8Array> {
  if (!body) return;
  if (body instanceof ReadableStream) {
    for await (const c of body) yield c;
  } else yield* body as AsyncIterable<Uint8Array>;
}

async function* entryChunks(
  header: TarHeader,
  body: TarWriteEntry["body"],
  opts: TarWriteOptions,
): AsyncGenerator<Uint8Array> {
  yield encodeHeader(header, opts);
  const t = header.typeflag;
  const noBody = t === TypeFlag.XGlobalHeader || t === TypeFlag.Link || t === TypeFlag.Symlink ||
    t === TypeFlag.Char || t === TypeFlag.Block || t === TypeFlag.Dir || t === TypeFlag.Fifo;
  const want = noBody ? 0 : header.size;
  let n = 0;
  for await (const c of chunks(body)) {
    n += c.length;
    if (n > want) break;
    yield c;
  }
  if (n !== want) {
    throw new Error(
      `tar entry ${JSON.stringify(header.name)}: body has ${n} bytes, header says ${want}`,
    );
  }
  const pad = blockPadding(want);
  if (pad) yield ZEROS.subarray(0, pad);
}

async function* generate(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  opts: TarWriteOptions,
): AsyncGenerator<Uint8Array> {
  for await (const { header, body } of entries) yield* entryChunks(header, body, opts);
  yield ZEROS;
}

/**
 * Writes entries as a tar stream ending with two zero blocks (no record
 * padding, like Go). Pulls entries and bodies only as fast as the stream is
 * read.
 */
export function writeTar(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  opts: TarWriteOptions = {},
): ReadableStream<Uint8Array> {
  const it = generate(entries, opts);
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const r = await it.next();
      if (r.done) ctl.close();
      else ctl.enqueue(r.value);
    },
    async cancel(reason) {
      await it.throw(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Push-style writer: `add()` entries one by one (it waits while the reader
 * is behind), then `close()`.
 */
export class TarWriter {
  /** The tar stream. */
  readonly readable: ReadableStream<Uint8Array>;
  #w: WritableStreamDefaultWriter<Uint8Array>;
  #opts: TarWriteOptions;

  /**
   * A writer whose entries come out of {@linkcode readable}.
   * @param opts Format wanted for every header.
   */
  constructor(opts: TarWriteOptions = {}) {
    const ts = new TransformStream<Uint8Array, Uint8Array>();
    this.readable = ts.readable;
    this.#w = ts.writable.getWriter();
    this.#opts = opts;
  }

  /** Writes one entry; the body must yield exactly `header.size` bytes. */
  async add(header: TarHeader, body?: TarWriteEntry["body"]): Promise<void> {
    for await (const c of entryChunks(header, body, this.#opts)) {
      await this.#w.ready;
      await this.#w.write(c);
    }
  }

  /** Writes the end-of-archive blocks and closes the stream. */
  async close(): Promise<void> {
    await this.#w.write(ZEROS);
    await this.#w.close();
  }

  /** Fails the stream (the reader sees `reason`). */
  async abort(reason?: unknown): Promise<void> {
    await this.#w.abort(reason);
  }
}

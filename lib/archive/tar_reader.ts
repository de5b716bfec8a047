/**
 * Streaming tar reader. {@linkcode TarParser} is a push parser (feed it
 * chunks, it calls back with headers, body slices and raw non-payload bytes);
 * {@linkcode readTar} wraps it as a pull-style async generator of entries.
 *
 * It reads what Go's archive/tar reads: V7, USTAR (with prefix), PAX (local
 * and global headers, sub-second times, `SCHILY.xattr.*`), GNU (long names
 * `L`/`K`, base-256 numbers, atime/ctime), star, and GNU sparse files in
 * their PAX forms (tar_sparse.ts; the header then lists the data regions).
 * Old GNU sparse entries (type `S`) are refused, as containers/storage 1.43
 * refuses them. Body bytes are handed on
 * as subarray views of the input chunks, never copied. The raw bytes of
 * every header, extension and padding block are exposed because tar-split
 * must reproduce them.
 *
 * @example
 * ```ts ignore
 * import { readTar } from "./tar_reader.ts";
 * const file = await Deno.open("layer.tar");
 * for await (const entry of readTar(file.readable)) {
 *   console.log(entry.header.name, entry.header.size);
 * }
 * ```
 * @module
 */

import { ErrBadArchive } from "../errors.ts";
import { decodeOsString } from "../os_string.ts";
import {
  BLOCK,
  blockPadding,
  emptyHeader,
  Field,
  isHeaderOnlyType,
  type SparseRegion,
  type TarHeader,
  type TarTime,
  TypeFlag,
} from "./tar_header.ts";
import {
  checkRegions,
  SPARSE_MAP_KEY,
  sparseFromPax,
  type SparseInfo,
  SparseMapReader,
  SparseProblem,
} from "./tar_sparse.ts";

/** Callbacks of {@linkcode TarParser}. Byte arrays are only valid during the call. */
export interface TarEvents {
  /**
   * Header blocks, extension data, the map blocks of a 1.0 sparse file (before
   * its header event), padding and end-of-archive blocks, in stream order.
   */
  raw?(bytes: Uint8Array): void;
  /** A logical entry begins; `offset` is its first header block (extension headers included). */
  header(header: TarHeader, offset: number): void;
  /** A slice of the current entry's body (of a sparse file: its data regions, back to back). */
  data(bytes: Uint8Array): void;
  /** The current entry's body is complete (its padding follows as raw bytes). */
  entryEnd(): void;
  /** Bytes after the two end-of-archive blocks (GNU tar pads to its record size). */
  trailing?(bytes: Uint8Array): void;
}

/**
 * What Go's archive/tar, and so the reference CLI, says for input that stops
 * inside a block (io.ErrUnexpectedEOF) and for a block that is no valid
 * header (tar.ErrHeader). Our messages end with these words where Go fails
 * the same way, for scripts that match on them.
 */
const GO_UNEXPECTED_EOF = "unexpected EOF";
const GO_ERR_HEADER = "archive/tar: invalid tar header";

/** Largest PAX or GNU long-name payload accepted (Go's maxSpecialFileSize). */
const MAX_SPECIAL = 1 << 20;

const enum State {
  Header,
  Body,
  Pad,
  Ext,
  Trailer,
  SparseMap,
}

const lossy = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/**
 * A field up to its first NUL, decoded losslessly: names, link targets and
 * xattr names keep bytes that are not UTF-8 (see lib/os_string.ts).
 */
function cString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return decodeOsString(nul < 0 ? b : b.subarray(0, nul));
}

/** {@linkcode cString} of header field `f` of block `b`. */
function cStringField(b: Uint8Array, f: readonly [number, number]): string {
  const start = f[0];
  let end = start;
  for (const limit = start + f[1]; end < limit && b[end] !== 0; end++);
  if (end === start) return "";
  return decodeOsString(b.subarray(start, end));
}

function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Go's computeChecksum: unsigned and signed sums with the checksum field as spaces. */
function checksums(b: Uint8Array): [number, number] {
  let u = 0;
  let s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    u += c;
    s += c < 128 ? c : c - 256;
  }
  return [u, s];
}

/** A tar header failed validation; carries the field so messages say what was wrong. */
class HeaderProblem extends Error {}

/** Octal as Go's parseOctal: trims spaces/NULs, stops at NUL, requires digits 0-7. */
function parseOctal(b: Uint8Array, field: string): number {
  return parseOctalIn(b, 0, b.length, field);
}

/** {@linkcode parseOctal} of `b[from, to)`, without a view of it. */
function parseOctalIn(b: Uint8Array, from: number, to: number, field: string): number {
  let start = from;
  let end = to;
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++;
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
  for (let i = start; i < end; i++) {
    if (b[i] === 0) {
      end = i;
      break;
    }
  }
  let x = 0;
  for (let i = start; i < end; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 7) {
      throw new HeaderProblem(
        `invalid octal number ${
          JSON.stringify(lossy.decode(b.subarray(start, end)))
        } in ${field} field`,
      );
    }
    x = x * 8 + d;
  }
  return x;
}

/** {@linkcode parseNumeric} of header field `f` of block `b`. */
function numericField(b: Uint8Array, f: readonly [number, number], field: string): number {
  // octal, by far the most common, is read in place
  if ((b[f[0]] & 0x80) === 0) return parseOctalIn(b, f[0], f[0] + f[1], field);
  return parseNumeric(b.subarray(f[0], f[0] + f[1]), field);
}

/** Whether header field `f` of block `b` holds exactly the ASCII bytes of `text`. */
function fieldIs(b: Uint8Array, f: readonly [number, number], text: string): boolean {
  for (let i = 0; i < f[1]; i++) if (b[f[0] + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Go's parseNumeric: base-256 (two's complement) when the top bit is set, else octal. */
function parseNumeric(b: Uint8Array, field: string): number {
  if (b.length === 0 || (b[0] & 0x80) === 0) return parseOctal(b, field);
  const inv = (b[0] & 0x40) !== 0 ? 0xff : 0;
  let x = 0n;
  for (let i = 0; i < b.length; i++) {
    let c = b[i] ^ inv;
    if (i === 0) c &= 0x7f;
    if (x >> 56n) throw new HeaderProblem(`base-256 ${field} field overflows`);
    x = (x << 8n) | BigInt(c);
  }
  if (x >> 63n) throw new HeaderProblem(`base-256 ${field} field overflows`);
  const v = inv ? -x - 1n : x;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new HeaderProblem(`${field} field ${v} is out of range`);
  }
  return Number(v);
}

function field(b: Uint8Array, f: readonly [number, number]): Uint8Array {
  return b.subarray(f[0], f[0] + f[1]);
}

const DECIMAL = /^[+-]?[0-9]+$/;

function parseDecimal(s: string, key: string): number {
  if (!DECIMAL.test(s)) throw new HeaderProblem(`invalid PAX ${key} value ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new HeaderProblem(`PAX ${key} value ${s} is out of range`);
  return n;
}

/** Go's parsePAXTime: seconds with an optional fraction, truncated to nanoseconds. */
export function parsePaxTime(s: string, key = "time"): TarTime {
  const dot = s.indexOf(".");
  const ss = dot < 0 ? s : s.slice(0, dot);
  const sec = parseDecimal(ss, key);
  if (dot < 0 || dot === s.length - 1) return { sec, nsec: 0 };
  const sn = s.slice(dot + 1);
  if (!/^[0-9]+$/.test(sn)) {
    throw new HeaderProblem(`invalid PAX ${key} value ${JSON.stringify(s)}`);
  }
  const nsec = Number(sn.padEnd(9, "0").slice(0, 9));
  if (ss.startsWith("-") && nsec > 0) return { sec: sec - 1, nsec: 1e9 - nsec };
  return { sec, nsec };
}

/** Parses PAX records ("<len> <key>=<value>\n") as Go's parsePAXRecord does; values stay bytes. */
function parsePax(buf: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const sparse00: string[] = [];
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    const bad = () => new HeaderProblem(`malformed PAX record at extension byte ${i}`);
    if (sp < 0) throw bad();
    const lenStr = decodeOsString(buf.subarray(i, sp));
    const n = DECIMAL.test(lenStr) ? Number(lenStr) : -1;
    if (n < 5 || n > buf.length - i || n <= sp - i + 1) throw bad();
    const end = i + n;
    if (buf[end - 1] !== 0x0a) throw bad();
    const eq = buf.subarray(sp + 1, end - 1).indexOf(0x3d);
    if (eq <= 0) throw bad();
    const key = decodeOsString(buf.subarray(sp + 1, sp + 1 + eq));
    const value = buf.subarray(sp + 2 + eq, end - 1);
    const textKey = key === "path" || key === "linkpath" || key === "uname" || key === "gname";
    if (textKey ? value.indexOf(0) >= 0 : key.includes("\0")) throw bad();
    if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") {
      // Sparse format 0.0 repeats this pair once per region: keep every one, in order, as Go does.
      if ((sparse00.length % 2 === 0) !== (key === "GNU.sparse.offset") || value.includes(0x2c)) {
        throw new HeaderProblem(`misplaced PAX record ${key} at extension byte ${i}`);
      }
      sparse00.push(lossy.decode(value));
    } else {
      out.set(key, value);
    }
    i = end;
  }
  if (sparse00.length) out.set(SPARSE_MAP_KEY, encoder.encode(sparse00.join(",")));
  return out;
}

/** Folds PAX records into a header as Go's mergePAX does (empty values keep the USTAR field). */
function mergePax(h: TarHeader, recs: Map<string, Uint8Array>): void {
  for (const [k, vb] of recs) {
    if (vb.length === 0) continue;
    if (k.startsWith("SCHILY.xattr.")) {
      h.xattrs[k.slice(13)] = vb.slice();
      continue;
    }
    if (k.startsWith("GNU.sparse.")) continue; // read by sparseFromPax
    const v = decodeOsString(vb);
    switch (k) {
      case "path":
        h.name = v;
        break;
      case "linkpath":
        h.linkname = v;
        break;
      case "uname":
        h.uname = v;
        break;
      case "gname":
        h.gname = v;
        break;
      case "uid":
        h.uid = parseDecimal(v, k);
        break;
      case "gid":
        h.gid = parseDecimal(v, k);
        break;
      case "size":
        h.size = parseDecimal(v, k);
        break;
      case "mtime":
        h.mtime = parsePaxTime(v, k);
        break;
      case "atime":
        h.atime = parsePaxTime(v, k);
        break;
      case "ctime":
        h.ctime = parsePaxTime(v, k);
        break;
      default:
        h.pax[k] = v;
    }
  }
}

/**
 * Parses one non-zero header block (checksum already verified by the
 * caller) whose name field reads `name`.
 */
function parseBlock(b: Uint8Array, name: string): TarHeader {
  const ustar = fieldIs(b, Field.magic, "ustar\0");
  const kind = ustar && fieldIs(b, Field.starTrailer, "tar\0")
    ? "star"
    : ustar
    ? "ustar"
    : fieldIs(b, Field.magic, "ustar ") && fieldIs(b, Field.version, " \0")
    ? "gnu"
    : "v7";
  const h: TarHeader = {
    name,
    typeflag: String.fromCharCode(b[Field.typeflag[0]]),
    mode: numericField(b, Field.mode, "mode"),
    uid: numericField(b, Field.uid, "uid"),
    gid: numericField(b, Field.gid, "gid"),
    uname: "",
    gname: "",
    size: numericField(b, Field.size, "size"),
    mtime: { sec: numericField(b, Field.mtime, "mtime"), nsec: 0 },
    linkname: cStringField(b, Field.linkname),
    devmajor: 0,
    devminor: 0,
    xattrs: {},
    pax: {},
  };
  if (kind === "v7") return h;
  h.uname = cStringField(b, Field.uname);
  h.gname = cStringField(b, Field.gname);
  h.devmajor = numericField(b, Field.devmajor, "devmajor");
  h.devminor = numericField(b, Field.devminor, "devminor");
  let prefix: Uint8Array | undefined;
  if (kind === "ustar") {
    prefix = field(b, Field.prefix);
  } else if (kind === "star") {
    prefix = field(b, Field.starPrefix);
    h.atime = { sec: numericField(b, Field.starAtime, "atime"), nsec: 0 };
    h.ctime = { sec: numericField(b, Field.starCtime, "ctime"), nsec: 0 };
  } else {
    // Old GNU has no prefix, but Go before 1.8 wrote one over atime/ctime:
    // like Go, fall back to reading it as a prefix when the times do not parse.
    try {
      const a = field(b, Field.gnuAtime);
      const c = field(b, Field.gnuCtime);
      if (a[0] !== 0) h.atime = { sec: parseNumeric(a, "atime"), nsec: 0 };
      if (c[0] !== 0) h.ctime = { sec: parseNumeric(c, "ctime"), nsec: 0 };
    } catch {
      delete h.atime;
      delete h.ctime;
      const p = field(b, Field.prefix);
      const end = p.indexOf(0) < 0 ? p.length : p.indexOf(0);
      if (p.subarray(0, end).every((c) => c < 0x80)) prefix = p;
    }
  }
  if (prefix && prefix[0] !== 0) {
    h.name = cString(prefix) + "/" + h.name;
  }
  return h;
}

/**
 * Push parser of a tar stream. Call {@linkcode push} with each chunk and
 * {@linkcode end} at the end of input; malformed input throws
 * {@linkcode ErrBadArchive} naming the entry and the byte offset, and ending
 * with Go's words where Go's archive/tar refuses the input too.
 */
export class TarParser {
  #ev: TarEvents;
  #state = State.Header;
  #blk = new Uint8Array(BLOCK);
  #fill = 0;
  #remaining = 0;
  #size = 0;
  #pos = 0;
  #zeros = 0;
  #entryStart = 0;
  #name: string | undefined;
  #ext: Uint8Array | undefined;
  #extType = "";
  #extFill = 0;
  #pax: Map<string, Uint8Array> | undefined;
  #longName: Uint8Array | undefined;
  #longLink: Uint8Array | undefined;
  #afterExt = false;
  /** A 1.0 sparse entry whose map is being read, and the map reader. */
  #sparse: { h: TarHeader; map: SparseMapReader } | undefined;

  /** @param events Where headers, body slices and raw bytes go. */
  constructor(events: TarEvents) {
    this.#ev = events;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#pos;
  }

  /** `goError`: the text Go's archive/tar fails with on the same input, if it fails. */
  #fail(what: string, at: number, goError?: string): ErrBadArchive {
    const detail = `${what} at byte offset ${at}${goError === undefined ? "" : `: ${goError}`}`;
    return new ErrBadArchive(this.#name, { detail });
  }

  /** Feeds one chunk; callbacks run synchronously before this returns. */
  push(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    const ev = this.#ev;
    while (i < n) {
      switch (this.#state) {
        case State.Header:
        case State.SparseMap: {
          let block: Uint8Array;
          if (this.#fill === 0 && n - i >= BLOCK) {
            block = chunk.subarray(i, i + BLOCK);
            i += BLOCK;
          } else {
            const take = Math.min(BLOCK - this.#fill, n - i);
            this.#blk.set(chunk.subarray(i, i + take), this.#fill);
            this.#fill += take;
            i += take;
            if (this.#fill < BLOCK) continue;
            this.#fill = 0;
            block = this.#blk;
          }
          const at = this.#pos;
          this.#pos += BLOCK;
          if (this.#state === State.Header) this.#header(block, at);
          else this.#mapBlock(block, at);
          break;
        }
        case State.Body: {
          const take = Math.min(this.#remaining, n - i);
          ev.data(chunk.subarray(i, i + take));
          i += take;
          this.#pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#endBody();
          break;
        }
        case State.Pad: {
          const take = Math.min(this.#remaining, n - i);
          ev.raw?.(chunk.subarray(i, i + take));
          i += take;
          this.#pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = State.Header;
          break;
        }
        case State.Ext: {
          const ext = this.#ext!;
          const take = Math.min(ext.length - this.#extFill, n - i);
          const part = chunk.subarray(i, i + take);
          ext.set(part, this.#extFill);
          ev.raw?.(part);
          this.#extFill += take;
          i += take;
          this.#pos += take;
          if (this.#extFill === ext.length) this.#extDone();
          break;
        }
        case State.Trailer: {
          ev.trailing?.(chunk.subarray(i));
          this.#pos += n - i;
          i = n;
          break;
        }
      }
    }
  }

  /**
   * Signals the end of input; throws if the stream stopped inside a header
   * or body. Like Go's reader, it takes input that stops after a body or an
   * extension header, or inside the padding after them, as the end of the
   * archive: its end-of-archive blocks are optional, and a pending
   * extension header then applies to nothing.
   */
  end(): void {
    const s = this.#state;
    if (s === State.Header && this.#fill > 0) {
      if (!this.#afterExt) this.#name = cString(this.#blk.subarray(0, Math.min(this.#fill, 100)));
      throw this.#fail(
        `truncated header (${this.#fill} of 512 bytes)`,
        this.#pos,
        GO_UNEXPECTED_EOF,
      );
    }
    if (s === State.Body || s === State.Ext) {
      const missing = s === State.Body ? this.#remaining : this.#ext!.length - this.#extFill;
      throw this.#fail(`truncated body (${missing} bytes missing)`, this.#pos, GO_UNEXPECTED_EOF);
    }
    if (s === State.SparseMap) throw this.#fail("truncated GNU sparse map", this.#pos);
  }

  #header(block: Uint8Array, at: number): void {
    const ev = this.#ev;
    if (isZeroBlock(block)) {
      ev.raw?.(block);
      if (++this.#zeros === 2) this.#state = State.Trailer;
      return;
    }
    const name = cStringField(block, Field.name);
    if (!this.#afterExt) {
      this.#entryStart = at;
      // Unverified, but the best name an error about this block can give.
      this.#name = name;
    }
    if (this.#zeros === 1) {
      throw this.#fail("non-zero block after an end-of-archive block", at, GO_ERR_HEADER);
    }
    const [u, s] = checksums(block);
    let h: TarHeader;
    try {
      const stored = parseOctalIn(
        block,
        Field.chksum[0],
        Field.chksum[0] + Field.chksum[1],
        "checksum",
      );
      if (stored !== u && stored !== s) {
        throw new HeaderProblem(`bad header checksum (stored ${stored}, computed ${u})`);
      }
      h = parseBlock(block, name);
    } catch (e) {
      if (e instanceof HeaderProblem) throw this.#fail(e.message, at, GO_ERR_HEADER);
      throw e;
    }
    ev.raw?.(block);
    const t = h.typeflag;
    if (
      t === TypeFlag.XHeader || t === TypeFlag.XGlobalHeader || t === TypeFlag.GNULongName ||
      t === TypeFlag.GNULongLink
    ) {
      if (h.size < 0 || h.size > MAX_SPECIAL) {
        throw this.#fail(`extension header size ${h.size} out of range`, at);
      }
      this.#extType = t;
      // A global header is an entry of its own, named by its block even after other extensions.
      if (t === TypeFlag.XGlobalHeader) this.#name = h.name;
      this.#ext = new Uint8Array(h.size);
      this.#extFill = 0;
      this.#afterExt = true;
      if (h.size === 0) this.#extDone();
      else this.#state = State.Ext;
      return;
    }
    if (t === TypeFlag.GNUSparse) {
      // The reference reads it (Go's archive/tar does) but its unpacker refuses the type.
      throw this.#fail(
        "unhandled tar header type 83 (old GNU sparse file, refused like containers-storage 1.43)",
        at,
      );
    }
    const pax = this.#pax;
    let sparse: SparseInfo | null = null;
    try {
      if (pax) mergePax(h, pax);
      if (pax) sparse = sparseFromPax(pax);
    } catch (e) {
      if (e instanceof HeaderProblem) throw this.#fail(e.message, at, GO_ERR_HEADER);
      if (e instanceof SparseProblem) throw this.#fail(e.message, at);
      throw e;
    }
    // Go uses a GNU long name or link only when it is not empty (up to its first NUL): an empty
    // record leaves the header's own name, or a PAX path before it, as it was.
    const longName = this.#longName ? cString(this.#longName) : "";
    const longLink = this.#longLink ? cString(this.#longLink) : "";
    if (longName) h.name = longName;
    if (longLink) h.linkname = longLink;
    this.#pax = this.#longName = this.#longLink = undefined;
    this.#afterExt = false;
    this.#name = h.name;
    if (h.typeflag === TypeFlag.RegA) {
      h.typeflag = h.name.endsWith("/") ? TypeFlag.Dir : TypeFlag.Reg;
    }
    if (h.size < 0) throw this.#fail(`negative size ${h.size}`, at, GO_ERR_HEADER);
    if (!Number.isSafeInteger(h.size)) throw this.#fail(`absurd size ${h.size}`, at);
    if (isHeaderOnlyType(h.typeflag)) h.size = 0;
    this.#remaining = this.#size = h.size;
    if (sparse) return this.#beginSparse(h, sparse, at);
    ev.header(h, this.#entryStart);
    if (h.size === 0) this.#endBody();
    else this.#state = State.Body;
  }

  /** A PAX sparse entry: the logical name and size, then its map (from the records or the data). */
  #beginSparse(h: TarHeader, sparse: SparseInfo, at: number): void {
    if (isHeaderOnlyType(h.typeflag)) {
      throw this.#fail(`GNU sparse records on an entry of type ${JSON.stringify(h.typeflag)}`, at);
    }
    if (sparse.name) {
      h.name = this.#name = sparse.name;
    }
    if (sparse.size !== undefined) h.size = sparse.size;
    if (sparse.map) return this.#sparseReady(h, sparse.map, at);
    if (this.#remaining < BLOCK) throw this.#fail("GNU sparse map runs past the entry's data", at);
    this.#sparse = { h, map: new SparseMapReader(MAX_SPECIAL) };
    this.#state = State.SparseMap;
  }

  /** One block of a 1.0 sparse map (raw bytes: tar-split keeps them as they are). */
  #mapBlock(block: Uint8Array, at: number): void {
    this.#ev.raw?.(block);
    this.#remaining -= BLOCK;
    const { h, map } = this.#sparse!;
    let regions: SparseRegion[] | null;
    try {
      regions = map.push(block);
    } catch (e) {
      if (e instanceof SparseProblem) throw this.#fail(e.message, at);
      throw e;
    }
    if (regions) {
      this.#sparse = undefined;
      this.#sparseReady(h, regions, at);
    } else if (this.#remaining < BLOCK) {
      throw this.#fail("GNU sparse map runs past the entry's data", at);
    }
  }

  #sparseReady(h: TarHeader, map: SparseRegion[], at: number): void {
    try {
      h.sparse = checkRegions(map, h.size, this.#remaining);
    } catch (e) {
      if (e instanceof SparseProblem) throw this.#fail(e.message, at);
      throw e;
    }
    this.#ev.header(h, this.#entryStart);
    if (this.#remaining === 0) this.#endBody();
    else this.#state = State.Body;
  }

  #endBody(): void {
    this.#ev.entryEnd();
    this.#remaining = blockPadding(this.#size);
    this.#state = this.#remaining ? State.Pad : State.Header;
  }

  #extDone(): void {
    const data = this.#ext!;
    this.#ext = undefined;
    const at = this.#pos - data.length;
    try {
      switch (this.#extType) {
        case TypeFlag.XHeader:
          this.#pax = parsePax(data);
          break;
        case TypeFlag.GNULongName:
          this.#longName = data;
          if (cString(data)) this.#name = cString(data);
          break;
        case TypeFlag.GNULongLink:
          this.#longLink = data;
          break;
        case TypeFlag.XGlobalHeader: {
          // Go returns a global header as an entry of its own, applying it to nothing, and
          // forgets the extension headers before it.
          this.#pax = this.#longName = this.#longLink = undefined;
          const h = emptyHeader(this.#name ?? "", TypeFlag.XGlobalHeader);
          for (const [k, v] of parsePax(data)) {
            if (k.startsWith("SCHILY.xattr.")) h.xattrs[k.slice(13)] = v.slice();
            else h.pax[k] = decodeOsString(v);
          }
          this.#afterExt = false;
          this.#ev.header(h, this.#entryStart);
          this.#ev.entryEnd();
          break;
        }
      }
    } catch (e) {
      if (e instanceof HeaderProblem) throw this.#fail(e.message, at, GO_ERR_HEADER);
      throw e;
    }
    this.#remaining = blockPadding(data.length);
    this.#state = this.#remaining ? State.Pad : State.Header;
  }
}

/** One entry of a tar stream. */
export interface TarEntry {
  /** The logical header, extension records folded in. */
  header: TarHeader;
  /** The body; skipped automatically when the next entry is requested. */
  body: AsyncIterable<Uint8Array>;
  /** Byte offset of the entry's first header block. */
  offset: number;
}

/** Options of {@linkcode readTar}. */
export interface ReadTarOptions {
  /** Receives every non-payload byte (headers, extensions, padding, end blocks, trailing data). */
  onRaw?: (bytes: Uint8Array) => void;
}

type Ev =
  | { k: 0; h: TarHeader; off: number }
  | { k: 1; b: Uint8Array }
  | { k: 2 };

/**
 * Reads a tar stream entry by entry. Bodies are views of the input chunks:
 * copy them if they must outlive the next read. The input is cancelled when
 * iteration stops early or fails.
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  opts: ReadTarOptions = {},
): AsyncGenerator<TarEntry> {
  const src = stream.getReader();
  let queue: Ev[] = [];
  let qi = 0;
  let done = false;
  let gen = 0;
  const onRaw = opts.onRaw;
  const parser = new TarParser({
    raw: onRaw,
    trailing: onRaw,
    header: (h, off) => queue.push({ k: 0, h, off }),
    data: (b) => queue.push({ k: 1, b }),
    entryEnd: () => queue.push({ k: 2 }),
  });
  const fill = async (): Promise<void> => {
    queue = [];
    qi = 0;
    const r = await src.read();
    if (r.done) {
      done = true;
      parser.end();
    } else {
      parser.push(r.value);
    }
  };
  async function* body(mine: number): AsyncGenerator<Uint8Array> {
    while (mine === gen) {
      while (qi < queue.length) {
        const ev = queue[qi];
        if (ev.k !== 1) {
          if (ev.k === 2) qi++;
          return;
        }
        qi++;
        yield ev.b;
        if (mine !== gen) return;
      }
      if (done) return;
      await fill();
    }
  }
  let ok = false;
  try {
    for (;;) {
      while (qi < queue.length) {
        const ev = queue[qi++];
        if (ev.k === 0) {
          const mine = ++gen;
          yield { header: ev.h, offset: ev.off, body: body(mine) };
        }
      }
      if (done) break;
      await fill();
    }
    ok = true;
  } finally {
    gen++;
    if (!ok) await src.cancel().catch(() => {});
    src.releaseLock();
  }
}

/**
 * Builds small tarballs with arbitrary (also hostile) entries for the apply,
 * escape, export and fuzz tests: a minimal ustar encoder with PAX records
 * for xattrs, long names and sub-second times, GNU long names and links,
 * the ustar prefix field, base-256 numbers, GNU and v7 magic, the GNU
 * sparse formats and any extra PAX records. Independent of lib/archive so
 * that the tests do not trust the code they test.
 * @module
 */

/** One entry of a fixture tarball. */
export interface FixtureEntry {
  /** Raw name as written to the header (bytes: not necessarily UTF-8). */
  name: string | Uint8Array;
  /** "0" file, "1" hard link, "2" symlink, "3" char, "4" block, "5" dir, "6" fifo, or any other. */
  type?: string;
  /** File content. */
  data?: string | Uint8Array;
  /** Link target (bytes: not necessarily UTF-8). */
  link?: string | Uint8Array;
  /** Permission bits (default 0o644, dirs 0o755). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Modification time in seconds (may be fractional: a PAX mtime is written). */
  mtime?: number;
  /** Access time in seconds (written as PAX atime). */
  atime?: number;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes (SCHILY.xattr.*). */
  xattrs?: Record<string, string>;
  /** Extended attributes whose names or values are arbitrary bytes. */
  rawXattrs?: [Uint8Array, Uint8Array][];
  /** Write the name (and link) as PAX records even when they fit the header. */
  paxNames?: boolean;
  /** Write the name (and link) as GNU long name/link entries (`L`, `K`) instead of PAX records. */
  gnuNames?: boolean;
  /** Split a name of 101–255 bytes into the ustar prefix and name fields where it can be. */
  prefixName?: boolean;
  /** Magic and version of the header: ustar (default), old GNU (`ustar  \0`) or none (v7). */
  magic?: "ustar" | "gnu" | "v7";
  /** Owner names (header fields). */
  uname?: string;
  gname?: string;
  /** More PAX records, written after the ones the fields above make (any keys and values). */
  pax?: [string | Uint8Array, string | Uint8Array][];
  /**
   * A GNU sparse file: `data` holds the data regions one after the other;
   * `map` gives each region's [offset, length] in a file of `realSize`
   * bytes. PAX formats 0.0, 0.1, 1.0 as GNU tar writes them, or the old GNU
   * `S` header (which containers-storage 1.43 refuses).
   */
  sparse?: { format: "0.0" | "0.1" | "1.0" | "old"; map: [number, number][]; realSize: number };
}

/** A tarball and where each of its 512-byte headers starts (extension headers included). */
export interface TarLayout {
  bytes: Uint8Array;
  headers: number[];
}

const enc = new TextEncoder();

/**
 * A numeric field: octal when the value fits (len - 1 digits), else GNU
 * base-256 (two's complement, first byte's top bit set) as Go writes it.
 */
function octal(buf: Uint8Array, off: number, len: number, v: number): void {
  if (Number.isInteger(v) && v >= 0 && v < 8 ** (len - 1)) {
    buf.set(enc.encode(v.toString(8).padStart(len - 1, "0") + "\0"), off);
    return;
  }
  let x = BigInt.asUintN(8 * len, BigInt(Math.trunc(v)));
  for (let i = off + len - 1; i >= off; i--) (buf[i] = Number(x & 0xffn), x >>= 8n);
  buf[off] |= 0x80;
}

function bytes(s: string | Uint8Array): Uint8Array {
  return typeof s === "string" ? enc.encode(s) : s;
}

function header(
  name: string | Uint8Array,
  type: string,
  e: FixtureEntry,
  size: number,
): Uint8Array {
  const b = new Uint8Array(512);
  b.set(bytes(name).subarray(0, 100), 0);
  octal(b, 100, 8, e.mode ?? (type === "5" ? 0o755 : 0o644));
  octal(b, 108, 8, e.uid ?? 0);
  octal(b, 116, 8, e.gid ?? 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, Math.floor(e.mtime ?? 1600000000));
  b.fill(0x20, 148, 156);
  b[156] = type.charCodeAt(0);
  b.set(bytes(e.link ?? "").subarray(0, 100), 157);
  const magic = e.magic ?? "ustar";
  if (magic !== "v7") b.set(enc.encode(magic === "gnu" ? "ustar  \0" : "ustar\x0000"), 257);
  if (magic !== "v7") {
    b.set(enc.encode(e.uname ?? "").subarray(0, 31), 265);
    b.set(enc.encode(e.gname ?? "").subarray(0, 31), 297);
    octal(b, 329, 8, e.devmajor ?? 0);
    octal(b, 337, 8, e.devminor ?? 0);
  }
  const n = bytes(name);
  const cut = e.prefixName && magic === "ustar" ? prefixSplit(n) : -1;
  if (cut > 0) {
    b.fill(0, 0, 100);
    b.set(n.subarray(cut + 1), 0);
    b.set(n.subarray(0, cut), 345);
  }
  let sum = 0;
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

/**
 * Where a name of 101–255 bytes splits into the ustar prefix (before the
 * '/') and name fields: the last '/' leaving at most 155 bytes before it
 * and 100 after; -1 when there is none.
 */
function prefixSplit(n: Uint8Array): number {
  if (n.length <= 100 || n.length > 255) return -1;
  for (let i = Math.min(155, n.length - 1); i >= n.length - 101 && i > 0; i--) {
    if (n[i] === 0x2f) return i;
  }
  return -1;
}

function paxRecord(key: string | Uint8Array, value: string | Uint8Array): Uint8Array {
  const body = concat([
    enc.encode(" "),
    bytes(key),
    enc.encode("="),
    bytes(value),
    enc.encode("\n"),
  ]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len++;
  return concat([enc.encode(String(len)), body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) (out.set(p, off), off += p.length);
  return out;
}

function padded(data: Uint8Array): Uint8Array[] {
  const pad = (512 - (data.length % 512)) % 512;
  return [data, new Uint8Array(pad)];
}

/** Encodes entries into a complete tarball (with the two zero end blocks). */
export function buildTar(entries: FixtureEntry[]): Uint8Array {
  return buildTarLayout(entries).bytes;
}

/** The sparse map of a PAX 1.0 sparse file: its text, padded to whole blocks. */
function sparseMap10(map: [number, number][]): Uint8Array {
  const text = [map.length, ...map.flat()].map((n) => `${n}\n`).join("");
  return concat(padded(enc.encode(text)));
}

/** The old GNU sparse fields of an `S` header: up to 4 regions, the rest is not written. */
function oldSparseHeader(b: Uint8Array, map: [number, number][], realSize: number): void {
  map.slice(0, 4).forEach(([o, n], i) => {
    octal(b, 386 + 24 * i, 12, o);
    octal(b, 398 + 24 * i, 12, n);
  });
  octal(b, 483, 12, realSize);
  let sum = 0;
  b.fill(0x20, 148, 156);
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

/** Like {@linkcode buildTar}, also telling where each header starts. */
export function buildTarLayout(entries: FixtureEntry[]): TarLayout {
  const out: Uint8Array[] = [];
  const headers: number[] = [];
  let at = 0;
  const push = (...parts: Uint8Array[]) => {
    for (const p of parts) (out.push(p), at += p.length);
  };
  const pushHeader = (h: Uint8Array) => (headers.push(at), push(h));
  for (const e of entries) {
    let type = e.type ?? "0";
    let data = typeof e.data === "string" ? enc.encode(e.data) : e.data ?? new Uint8Array();
    let name = e.name;
    const pax: Uint8Array[] = [];
    const long = (v: string | Uint8Array) => e.paxNames || bytes(v).length > 100;
    if (e.gnuNames) {
      for (const [t, v] of [["L", e.name], ["K", e.link]] as const) {
        if (v === undefined || bytes(v).length === 0) continue;
        const body = concat([bytes(v), new Uint8Array(1)]);
        pushHeader(header("././@LongLink", t, { name: "", magic: "gnu" }, body.length));
        push(...padded(body));
      }
    } else {
      if (
        long(e.name) &&
        !(e.prefixName && (e.magic ?? "ustar") === "ustar" && prefixSplit(bytes(e.name)) > 0)
      ) {
        pax.push(paxRecord("path", e.name));
      }
      if (e.link && long(e.link)) pax.push(paxRecord("linkpath", e.link));
    }
    const sp = e.sparse;
    if (sp && sp.format !== "old") {
      const real = bytes(e.name);
      name = concat([enc.encode("GNUSparseFile.0/"), real.subarray(real.lastIndexOf(0x2f) + 1)]);
      if (sp.format === "0.0") {
        pax.push(paxRecord("path", real));
        pax.push(paxRecord("GNU.sparse.size", String(sp.realSize)));
        pax.push(paxRecord("GNU.sparse.numblocks", String(sp.map.length)));
        for (const [o, n] of sp.map) {
          pax.push(paxRecord("GNU.sparse.offset", String(o)));
          pax.push(paxRecord("GNU.sparse.numbytes", String(n)));
        }
      } else if (sp.format === "0.1") {
        pax.push(paxRecord("GNU.sparse.name", real));
        pax.push(paxRecord("GNU.sparse.size", String(sp.realSize)));
        pax.push(paxRecord("GNU.sparse.numblocks", String(sp.map.length)));
        pax.push(paxRecord("GNU.sparse.map", sp.map.flat().join(",")));
      } else {
        pax.push(paxRecord("GNU.sparse.major", "1"), paxRecord("GNU.sparse.minor", "0"));
        pax.push(paxRecord("GNU.sparse.name", real));
        pax.push(paxRecord("GNU.sparse.realsize", String(sp.realSize)));
        data = concat([sparseMap10(sp.map), data]);
      }
    } else if (sp) {
      type = "S";
    }
    if (e.mtime !== undefined && !Number.isInteger(e.mtime)) {
      pax.push(paxRecord("mtime", e.mtime.toFixed(9)));
    }
    if (e.atime !== undefined) pax.push(paxRecord("atime", e.atime.toFixed(9)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      pax.push(paxRecord(`SCHILY.xattr.${k}`, v));
    }
    for (const [k, v] of e.rawXattrs ?? []) {
      pax.push(paxRecord(concat([enc.encode("SCHILY.xattr."), k]), v));
    }
    for (const [k, v] of e.pax ?? []) pax.push(paxRecord(k, v));
    if (pax.length > 0) {
      const body = concat(pax);
      pushHeader(header("PaxHeaders/x", "x", { name: "" }, body.length));
      push(...padded(body));
    }
    // Links, devices, directories and FIFOs have no body; every other type (files, "7", "g"…) does.
    const body = !"123456".includes(type);
    const h = header(name, type, e, body ? data.length : 0);
    if (sp?.format === "old") oldSparseHeader(h, sp.map, sp.realSize);
    pushHeader(h);
    if (body) push(...padded(data));
  }
  push(new Uint8Array(1024));
  return { bytes: concat(out), headers };
}

/** A stream of the bytes, in chunks of `chunk` bytes (to exercise chunk boundaries). */
export function streamOf(bytes: Uint8Array, chunk = 4096): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

/**
 * Builds small tarballs with arbitrary (also hostile) entries for the apply,
 * escape and export tests: a minimal ustar encoder with PAX records for
 * xattrs, long names and sub-second times. Independent of lib/archive so
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
}

const enc = new TextEncoder();

function octal(buf: Uint8Array, off: number, len: number, v: number): void {
  buf.set(enc.encode(v.toString(8).padStart(len - 1, "0") + "\0"), off);
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
  b.set(enc.encode("ustar\x0000"), 257);
  octal(b, 329, 8, e.devmajor ?? 0);
  octal(b, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
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
  const out: Uint8Array[] = [];
  for (const e of entries) {
    const type = e.type ?? "0";
    const data = typeof e.data === "string" ? enc.encode(e.data) : e.data ?? new Uint8Array();
    const pax: Uint8Array[] = [];
    if (e.paxNames || bytes(e.name).length > 100) pax.push(paxRecord("path", e.name));
    if (e.link && (e.paxNames || bytes(e.link).length > 100)) {
      pax.push(paxRecord("linkpath", e.link));
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
    if (pax.length > 0) {
      const body = concat(pax);
      out.push(header("PaxHeaders/x", "x", { name: "" }, body.length), ...padded(body));
    }
    // Links, devices, directories and FIFOs have no body; every other type (files, "7", "g"…) does.
    const body = !"123456".includes(type);
    out.push(header(e.name, type, e, body ? data.length : 0));
    if (body) out.push(...padded(data));
  }
  out.push(new Uint8Array(1024));
  return concat(out);
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

/**
 * fast-check generators of layer tarballs for the fuzzer: structured
 * entries (names with `..`, long names, bytes that are not UTF-8,
 * whiteouts; PAX records, GNU long names and links, the ustar prefix, GNU
 * sparse maps in every format, hard and symbolic links, devices, FIFOs,
 * xattrs, odd modes, times and owners) encoded by tests/tar_fixtures.ts,
 * then mutated (header fields set with or without a fixed checksum, bytes
 * flipped in headers and bodies, truncation anywhere, trailing garbage or
 * zeros, a missing or short end of archive), compressed (none, gzip, zstd,
 * xz, bzip2 by the system's tools) and mutated again (corrupted and
 * truncated compressed streams).
 *
 * A case is plain data (`FuzzCase`), so fast-check can print and shrink it;
 * {@linkcode caseBytes} turns it into the bytes fed to the store.
 * @module
 */

import fc from "fast-check";
import { buildTarLayout, type FixtureEntry } from "../tar_fixtures.ts";

const enc = new TextEncoder();

/** Names that the escape check looks for outside the store: every generated name component starts so. */
export const CANARY_PREFIX = "fz";

/** How an entry's link target is chosen: another entry's name (by index), or given bytes. */
export type LinkSpec = { ref: number; up: number } | { path: Uint8Array };

/** An entry as generated: a FixtureEntry whose link may refer to another entry. */
export interface EntrySpec extends Omit<FixtureEntry, "link"> {
  linkSpec?: LinkSpec;
}

/** A change to the bytes of the tar or of the compressed stream. */
export type Mutation =
  | { kind: "flip"; inHeader: boolean; pos: number; xor: number }
  | { kind: "truncate"; pos: number }
  | { kind: "append"; data: Uint8Array }
  | {
    kind: "field";
    header: number;
    field: keyof typeof FIELDS;
    value: Uint8Array;
    fixChecksum: boolean;
  };

/** The compressions a layer may have (the system tool that makes each). */
export const COMPRESSORS = {
  none: [],
  gzip: ["gzip", "-n", "-c"],
  zstd: ["zstd", "-q", "-c"],
  xz: ["xz", "-c"],
  bzip2: ["bzip2", "-c"],
} as const;

/** The decompressing command of each compression. */
export const DECOMPRESSORS: Record<Compressor, string[]> = {
  none: [],
  gzip: ["gzip", "-d", "-c"],
  zstd: ["zstd", "-q", "-d", "-c"],
  xz: ["xz", "-d", "-c"],
  bzip2: ["bzip2", "-d", "-c"],
};

/** A compression by name. */
export type Compressor = keyof typeof COMPRESSORS;

/** One fuzz case. */
export interface FuzzCase {
  entries: EntrySpec[];
  /** End of archive: two zero blocks, one, none, or padded to a 10 KiB record as tar(1) does. */
  end: "two" | "one" | "none" | "record";
  tarMutations: Mutation[];
  compression: Compressor;
  streamMutations: Mutation[];
  /** Size of the chunks the stream is fed in. */
  chunk: number;
}

/** Header fields a mutation may set: [offset, length]. */
export const FIELDS = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8],
  uname: [265, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const;

// ---------------------------------------------------------------------------
// Entries

/** A name component: mostly a few shared names (so entries meet), sometimes odd. */
const component: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom("fzA", "fzB", "fzC", "fzD", "fzE").map((s) => enc.encode(s)),
  },
  { weight: 1, arbitrary: fc.constantFrom("..", ".", "").map((s) => enc.encode(s)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(".wh.fzA", ".wh.fzB", ".wh..wh..opq", ".wh..wh.plnk", ".wh..wh.fzX")
      .map((s) => enc.encode(s)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 90, max: 255 }).map((n) =>
      enc.encode(CANARY_PREFIX + "L" + "l".repeat(n - 3))
    ),
  },
  {
    // raw bytes (not necessarily UTF-8; no '/'), now and then a NUL
    weight: 2,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) =>
      new Uint8Array([0x66, 0x7a, ...b.map((x) => x === 0x2f ? 0xff : x)])
    ),
  },
);

/**
 * A path: an optional `/`, `./` or `../` lead, 1–4 components, an optional
 * trailing `/`. A path of dots alone (the layer's root) only now and then:
 * a layer with one such entry of another type than a directory is refused.
 */
const pathArb: fc.Arbitrary<Uint8Array> = fc.tuple(
  fc.constantFrom("", "", "", "/", "./", "../"),
  fc.array(component, { minLength: 1, maxLength: 4 }),
  fc.constantFrom("", "", "", "/"),
  fc.nat({ max: 7 }),
).map(([lead, parts, trail, odd]) => {
  const dots = parts.every((p) => p.length <= 2 && p.every((c) => c === 0x2e));
  if (dots && odd !== 0) parts = [...parts, enc.encode("fzA")];
  const out: number[] = [...enc.encode(lead)];
  parts.forEach((p, i) => (i > 0 && out.push(0x2f), out.push(...p)));
  out.push(...enc.encode(trail));
  return new Uint8Array(out);
});

/** Link targets: absolute and climbing ones too, to try to leave the layer. */
const linkPathArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  pathArb,
  fc.constantFrom("/", "/tmp", "/fzA", "../../../../../../..", "/proc/self/root", "/etc/passwd")
    .map((s) => enc.encode(s)),
);

const linkSpecArb: fc.Arbitrary<LinkSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ ref: fc.nat(), up: fc.nat({ max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ path: linkPathArb }) },
);

const modeArb = fc.oneof(
  fc.constantFrom(0o644, 0o755, 0o600, 0o4755, 0o2755, 0o1777, 0o7777, 0, 0o200, 0o100644),
  fc.integer({ min: 0, max: 0o7777 }),
  fc.integer({ min: 0, max: 0o7777777 }),
);

const idArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0, 0, 1, 1000, 65534) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0o7777777 }) },
  // base-256: a big ID, or one no kernel takes
  { weight: 1, arbitrary: fc.constantFrom(2 ** 21, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1, 2 ** 40) },
);

const timeArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(1600000000) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, -1, -(2 ** 31), 2 ** 31, 2 ** 33, 8 ** 11 - 1, 1600000000.5),
  },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }) },
);

const bodyArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 500, maxLength: 1100 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => new Uint8Array(n).fill(0x61)),
  },
);

const xattrName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("user.fzA", "user.fzB", "trusted.fz") },
  // refused by the kernel: no namespace, an empty name, a capability that does not parse
  { weight: 1, arbitrary: fc.constantFrom("security.capability", "user.", "fz") },
).map((s) => enc.encode(s)).chain((name) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(name) },
    fc.uint8Array({ minLength: 1, maxLength: 6 }).map((b) =>
      new Uint8Array([...name, ...b.filter((x) => x !== 0 && x !== 0x3d)])
    ),
  )
);

/** Extra PAX records: keys the readers act on, with odd values. */
const paxRecordArb: fc.Arbitrary<[Uint8Array, Uint8Array]> = fc.tuple(
  fc.constantFrom(
    "size",
    "mtime",
    "atime",
    "ctime",
    "uid",
    "gid",
    "uname",
    "path",
    "linkpath",
    "comment",
    "GNU.sparse.major",
    "GNU.sparse.minor",
    "GNU.sparse.size",
    "GNU.sparse.map",
    "SCHILY.xattr.user.fzP",
    "fz.unknown",
  ).map((s) => enc.encode(s)),
  fc.oneof(
    fc.constantFrom("0", "1", "-1", "nan", "1e9", "", "1.5", "99999999999999999999", "fzA", "0,1")
      .map((s) => enc.encode(s)),
    fc.uint8Array({ maxLength: 8 }),
  ),
);

const sparseArb: fc.Arbitrary<NonNullable<FixtureEntry["sparse"]>> = fc.record({
  format: fc.constantFrom(
    "0.0",
    "0.1",
    "1.0",
    "1.0",
    "0.0",
    "0.1",
    "1.0",
    "1.0",
    "old",
  ) as fc.Arbitrary<
    "0.0" | "0.1" | "1.0" | "old"
  >,
  map: fc.array(fc.tuple(fc.nat({ max: 9000 }), fc.nat({ max: 700 })), { maxLength: 5 }),
  extra: fc.nat({ max: 3000 }),
  sorted: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
}).map(({ format, map, extra, sorted }) => {
  // sorted regions that do not overlap are what tar makes; the others are for the readers to refuse
  let m = map;
  if (sorted) {
    let at = 0;
    m = map.map(([gap, n]) => {
      const region: [number, number] = [at + gap, n];
      at += gap + n;
      return region;
    });
  }
  const end = m.reduce((a, [o, n]) => Math.max(a, o + n), 0);
  return { format, map: m, realSize: end + extra };
});

const TYPES = fc.oneof(
  { weight: 8, arbitrary: fc.constant("0") },
  { weight: 5, arbitrary: fc.constant("5") },
  { weight: 3, arbitrary: fc.constant("2") },
  { weight: 3, arbitrary: fc.constant("1") },
  { weight: 1, arbitrary: fc.constantFrom("3", "4", "6", "\0", "7") },
  { weight: 1, arbitrary: fc.constantFrom("g", "x", "L", "K", "V", "M", "A", "D") },
);

/** One entry. */
export const entryArb: fc.Arbitrary<EntrySpec> = fc.record({
  type: TYPES,
  name: pathArb,
  data: bodyArb,
  linkSpec: linkSpecArb,
  mode: modeArb,
  uid: idArb,
  gid: idArb,
  mtime: timeArb,
  atime: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, timeArb),
  devmajor: fc.nat({ max: 300 }),
  devminor: fc.nat({ max: 300 }),
  rawXattrs: fc.oneof(
    { weight: 3, arbitrary: fc.constant<[Uint8Array, Uint8Array][]>([]) },
    fc.array(fc.tuple(xattrName, fc.uint8Array({ maxLength: 20 })), { minLength: 1, maxLength: 2 }),
  ),
  pax: fc.array(paxRecordArb, { maxLength: 2 }),
  encoding: fc.constantFrom("plain", "plain", "pax", "gnu", "prefix"),
  magic: fc.constantFrom("ustar", "ustar", "ustar", "gnu", "v7") as fc.Arbitrary<
    "ustar" | "gnu" | "v7"
  >,
  uname: fc.constantFrom("", "root", "fz\u00e9"),
  sparse: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, sparseArb),
  odd: fc.nat({ max: 9 }),
}).map((r) => {
  const e: EntrySpec = {
    type: r.type,
    name: r.name,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    mtime: r.mtime,
    magic: r.magic,
    uname: r.uname,
  };
  const last = r.name.subarray(r.name.lastIndexOf(0x2f, r.name.length - 2) + 1);
  const whiteout = last[0] === 0x2e && last[1] === 0x77 && last[2] === 0x68 && last[3] === 0x2e;
  if (r.type === "0" || r.type === "\0" || r.type === "7") {
    // whiteouts are empty but now and then (a body the apply does not keep)
    e.data = whiteout && r.odd !== 3 ? new Uint8Array() : r.data;
    if (r.sparse && r.type === "0") {
      e.sparse = r.sparse;
      const stored = r.sparse.map.reduce((a, [, n]) => a + n, 0);
      e.data = new Uint8Array(stored).map((_, i) => r.data[i % (r.data.length || 1)] ?? 0x73);
    }
  } else if (r.odd === 0) {
    e.data = r.data; // a body where none belongs: the readers must skip or refuse it
  }
  if (r.type === "1" || r.type === "2" || r.odd === 1) e.linkSpec = r.linkSpec;
  if (r.type === "3" || r.type === "4") (e.devmajor = r.devmajor, e.devminor = r.devminor);
  if (r.atime !== undefined) e.atime = r.atime;
  // (the kernel refuses user xattrs on symlinks, devices and FIFOs: now and then)
  if (r.rawXattrs.length > 0 && ("05".includes(r.type) || r.odd === 2)) e.rawXattrs = r.rawXattrs;
  if (r.pax.length > 0 && r.odd < 1) e.pax = r.pax;
  if (r.encoding === "pax") e.paxNames = true;
  if (r.encoding === "gnu") e.gnuNames = true;
  if (r.encoding === "prefix") e.prefixName = true;
  return e;
});

// ---------------------------------------------------------------------------
// Mutations

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("flip" as const),
      inHeader: fc.boolean(),
      pos: fc.nat(),
      xor: fc.integer({ min: 1, max: 255 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate" as const), pos: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      data: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 1100 }),
        fc.integer({ min: 1, max: 11_000 }).map((n) => new Uint8Array(n)),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("field" as const),
      header: fc.nat(),
      field: fc.constantFrom(...(Object.keys(FIELDS) as (keyof typeof FIELDS)[])),
      value: fc.oneof(
        fc.constantFrom(
          "0",
          "7777777",
          "77777777777",
          "-1",
          "\x80\0\0\0\0\0\0\x01",
          "\xff\xff\xff\xff\xff\xff\xff\xff",
          " 123 ",
          "1",
          "2",
          "5",
          "x",
          "g",
          "S",
          "ustar  \0",
          "\0",
          "../../fzA",
          "/fzA",
        ).map((s) => new Uint8Array([...s].map((c) => c.charCodeAt(0)))),
        fc.uint8Array({ minLength: 1, maxLength: 12 }),
      ),
      fixChecksum: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    }),
  },
);

/** Header checksum of a 512-byte block (the field counted as spaces). */
function fixChecksum(b: Uint8Array, at: number): void {
  b.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += b[i];
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), at + 148);
}

/** `bytes` changed by `m`; `headers` are the header offsets (for the tar, not a compressed stream). */
export function mutate(bytes: Uint8Array, m: Mutation, headers: number[] = []): Uint8Array {
  switch (m.kind) {
    case "flip": {
      if (bytes.length === 0) return bytes;
      const out = bytes.slice();
      let pos = m.pos % bytes.length;
      if (m.inHeader && headers.length > 0) {
        const h = headers[m.pos % headers.length];
        pos = Math.min(h + (Math.floor(m.pos / headers.length) % 512), bytes.length - 1);
      }
      out[pos] ^= m.xor;
      return out;
    }
    case "truncate":
      return bytes.subarray(0, m.pos % (bytes.length + 1));
    case "append": {
      const out = new Uint8Array(bytes.length + m.data.length);
      out.set(bytes);
      out.set(m.data, bytes.length);
      return out;
    }
    case "field": {
      if (headers.length === 0) return bytes;
      const h = headers[m.header % headers.length];
      if (h + 512 > bytes.length) return bytes;
      const out = bytes.slice();
      const [off, len] = FIELDS[m.field];
      out.fill(0, h + off, h + off + len);
      out.set(m.value.subarray(0, len), h + off);
      if (m.fixChecksum && m.field !== "chksum") fixChecksum(out, h);
      return out;
    }
  }
}

/** The generated entries as FixtureEntry: link references resolved to names. */
export function resolveEntries(specs: EntrySpec[]): FixtureEntry[] {
  return specs.map(({ linkSpec, ...e }, i) => {
    if (!linkSpec) return e;
    if ("path" in linkSpec) return { ...e, link: linkSpec.path };
    if (i === 0) {
      // nothing to link to: now and then itself (refused, or a symlink loop), else a file
      if (linkSpec.ref % 4 === 0 || e.type !== "1") return { ...e, link: e.name };
      return { ...e, type: "0", data: e.data ?? new Uint8Array() };
    }
    // an earlier entry's name (a file's, if there is one), perhaps reached through some "../"
    const earlier = specs.slice(0, i);
    const files = earlier.filter((t) => t.type === "0");
    const pool = files.length > 0 && linkSpec.up < 2 ? files : earlier;
    const target = pool[linkSpec.ref % pool.length];
    const up = enc.encode("../".repeat(Math.max(0, linkSpec.up - 1)));
    return { ...e, link: new Uint8Array([...up, ...target.name as Uint8Array]) };
  });
}

/** The uncompressed tar of a case (entries, end of archive and tar mutations). */
export function caseTar(c: FuzzCase): Uint8Array {
  const layout = buildTarLayout(resolveEntries(c.entries));
  let bytes = layout.bytes;
  const body = bytes.subarray(0, bytes.length - 1024);
  if (c.end === "one") bytes = bytes.subarray(0, bytes.length - 512);
  if (c.end === "none") bytes = body;
  if (c.end === "record") {
    const padded = new Uint8Array(Math.ceil(bytes.length / 10240) * 10240);
    padded.set(bytes);
    bytes = padded;
  }
  for (const m of c.tarMutations) bytes = mutate(bytes, m, layout.headers);
  return bytes;
}

/** Compresses with the system's tool. */
export async function compress(bytes: Uint8Array, how: Compressor): Promise<Uint8Array> {
  if (how === "none") return bytes;
  const [cmd, ...args] = COMPRESSORS[how];
  const r = await pipe(cmd, args, bytes);
  if (r.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(r.stderr)}`);
  return r.stdout;
}

/**
 * The compression of a stream by its magic number, as containers/storage
 * detects it (a mutated stream may have lost or changed its magic).
 */
export function sniff(b: Uint8Array): Compressor {
  const starts = (...m: number[]) => m.every((x, i) => b[i] === x);
  if (starts(0x1f, 0x8b, 0x08)) return "gzip";
  if (starts(0x42, 0x5a, 0x68)) return "bzip2";
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz";
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd";
  return "none";
}

/** Decompresses with the system's tool: undefined when the tool finds the stream bad. */
export async function decompress(
  bytes: Uint8Array,
  how: Compressor,
): Promise<Uint8Array | undefined> {
  if (how === "none") return bytes;
  const [cmd, ...args] = DECOMPRESSORS[how];
  const r = await pipe(cmd, args, bytes);
  return r.code === 0 ? r.stdout : undefined;
}

/** Runs a filter on bytes: its exit code and output as bytes. */
async function pipe(
  cmd: string,
  args: string[],
  input: Uint8Array,
): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  const writing = w.write(input).then(() => w.close()).catch(() => {});
  const out = await child.output();
  await writing;
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/** The bytes of a case as fed to the store, and its tar before compression. */
export async function caseBytes(c: FuzzCase): Promise<{ input: Uint8Array; tar: Uint8Array }> {
  const tar = caseTar(c);
  let input = await compress(tar, c.compression);
  for (const m of c.streamMutations) input = mutate(input, m);
  return { input, tar };
}

/** Whole fuzz cases. */
export const caseArb: fc.Arbitrary<FuzzCase> = fc.record({
  entries: fc.array(entryArb, { maxLength: 10 }),
  end: fc.constantFrom("two", "two", "two", "one", "none", "record") as fc.Arbitrary<
    FuzzCase["end"]
  >,
  tarMutations: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) },
  ),
  compression: fc.oneof(
    { weight: 5, arbitrary: fc.constant("none" as const) },
    {
      weight: 3,
      arbitrary: fc.constantFrom("gzip", "zstd", "xz", "bzip2") as fc.Arbitrary<Compressor>,
    },
  ),
  streamMutations: fc.oneof(
    { weight: 2, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 2 }) },
  ),
  chunk: fc.constantFrom(1, 7, 512, 4096, 65536),
}).map((c) => c.compression === "none" ? { ...c, streamMutations: [] } : c);

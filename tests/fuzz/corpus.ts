/**
 * The fixed corpus of the fuzzer, compared with the reference CLI
 * (corpus_test.ts): hand-picked layers that exercise every feature of the
 * generator and every kind of damage, the reproducers of bugs the fuzzer
 * found (files in corpus/, any compression, by extension), and cases
 * generated from a fixed seed.
 * @module
 */

import fc from "fast-check";
import { buildTar, type FixtureEntry } from "../tar_fixtures.ts";
import { caseArb, caseBytes, compress, type Compressor } from "./tar_gen.ts";

/** One case of the corpus. */
export interface CorpusCase {
  name: string;
  /** The bytes fed to both tools. */
  input: () => Promise<Uint8Array>;
  /** Also compare on overlay. */
  overlay?: boolean;
  /**
   * Where the reference's `diff -u` deliberately differs from ours, which
   * returns the input (README, Layer tarballs): it fails, returns other
   * bytes, or a prefix of the input; and why.
   */
  theirDiff?: { kind: "fails" | "other" | "shorter"; why: string };
  /** Generated: the reference may differ where README says we do on purpose. */
  generated?: boolean;
}

const enc = new TextEncoder();
const raw = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...enc.encode(p)] : p));

/** A small tree of every ordinary kind of entry. */
const BASIC: FixtureEntry[] = [
  { name: "fzA/", type: "5", mode: 0o750, uid: 1000, gid: 1000 },
  { name: "fzA/file", data: "hello\n", mode: 0o640, uid: 1000, gid: 100 },
  { name: "fzA/link", type: "2", link: "file" },
  { name: "fzA/hard", type: "1", link: "fzA/file" },
  { name: "fzA/empty", data: "" },
  { name: "fzB", data: "x".repeat(5000), mtime: 1500000000 },
];

/** `bytes` without its last `n` bytes. */
function cut(bytes: Uint8Array, n: number): Uint8Array {
  return bytes.subarray(0, bytes.length - n);
}

function withTail(bytes: Uint8Array, tail: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + tail.length);
  out.set(bytes);
  out.set(tail, bytes.length);
  return out;
}

function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] ^= 0x55;
  return out;
}

const tar = (entries: FixtureEntry[]) => () => Promise.resolve(buildTar(entries));
const packed = (entries: FixtureEntry[], how: Compressor, change = (b: Uint8Array) => b) => () =>
  compress(buildTar(entries), how).then(change);

/** Hand-picked cases. */
export const HAND_PICKED: CorpusCase[] = [
  { name: "basic tree", input: tar(BASIC), overlay: true },
  {
    name: "long names: PAX, GNU L/K, ustar prefix",
    input: tar([
      { name: `fzL${"l".repeat(150)}/`, type: "5" },
      { name: `fzL${"l".repeat(150)}/${"m".repeat(120)}`, data: "pax" },
      { name: `fzG${"g".repeat(200)}`, data: "gnu", gnuNames: true },
      { name: "fzK", type: "2", link: `fzG${"g".repeat(200)}`, gnuNames: true },
      { name: `fzP${"p".repeat(90)}/${"q".repeat(90)}`, data: "prefix", prefixName: true },
      { name: "fzS", data: "short in PAX", paxNames: true },
    ]),
    overlay: true,
  },
  {
    name: "GNU sparse files, PAX 0.0, 0.1 and 1.0",
    input: tar([
      {
        name: "fz00",
        data: "AAAABB",
        sparse: { format: "0.0", map: [[0, 4], [100, 2]], realSize: 9000 },
      },
      {
        name: "fz01",
        data: "AAAABB",
        sparse: { format: "0.1", map: [[10, 4], [8192, 2]], realSize: 8194 },
      },
      {
        name: "fz10",
        data: "AAAABB",
        sparse: { format: "1.0", map: [[0, 4], [5000, 2], [6000, 0]], realSize: 6000 },
      },
    ]),
    overlay: true,
    theirDiff: {
      kind: "other",
      why: "1.43's tar-split writes each expanded file after its sparse header",
    },
  },
  {
    name: "old GNU sparse (type S): refused",
    input: tar([{
      name: "fzS",
      data: "AB",
      sparse: { format: "old", map: [[0, 2]], realSize: 100 },
    }]),
  },
  {
    name: "whiteouts and an opaque directory",
    input: tar([
      { name: "fzA/", type: "5" },
      { name: "fzA/.wh..wh..opq", data: "" },
      { name: "fzA/keep", data: "k" },
      { name: ".wh.fzB", data: "" },
      { name: "fzC/.wh.fzD", data: "" },
    ]),
    overlay: true,
  },
  {
    name: "devices and a FIFO",
    input: tar([
      { name: "fzC", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "fzB", type: "4", devmajor: 7, devminor: 200, mode: 0o660, gid: 6 },
      { name: "fzF", type: "6", mode: 0o600 },
    ]),
    overlay: true,
  },
  {
    name: "xattrs: user and trusted, names that are not UTF-8",
    input: tar([
      { name: "fzX", data: "x", xattrs: { "user.fzA": "1", "trusted.fzB": "two" } },
      { name: "fzY/", type: "5", rawXattrs: [[raw("user.fz", [0xff]), raw([0, 1, 2])]] },
    ]),
  },
  {
    name: "odd modes, owners and times",
    input: tar([
      { name: "fzS", data: "s", mode: 0o4755 },
      { name: "fzT/", type: "5", mode: 0o1777 },
      { name: "fzU", data: "u", mode: 0o7777, uid: 2 ** 31, gid: 2 ** 21 },
      { name: "fzZ", data: "", mode: 0 },
      { name: "fzN", data: "n", mtime: -100 },
      { name: "fzF", data: "f", mtime: 1600000000.25, atime: 1.5 },
      { name: "fzO", data: "o", uid: 0o7777777, uname: "root", gname: "fz\u00e9" },
    ]),
    overlay: true,
  },
  {
    name: "names and link targets that are not UTF-8",
    input: tar([
      { name: raw("fz", [0xff, 0xfe]), data: "bytes" },
      { name: raw("fz", [0x80], "/"), type: "5" },
      { name: raw("fz", [0x80], "/", [0xc3]), data: "lead byte alone", paxNames: true },
      { name: "fzL", type: "2", link: raw([0xed, 0xa0, 0x80]) },
    ]),
  },
  {
    name: "'..' and absolute names stay in the layer",
    input: tar([
      { name: "../fzA", data: "a" },
      { name: "fzB/../../fzC", data: "c" },
      { name: "/fzD/", type: "5" },
      { name: "/fzD/../../fzE", data: "e" },
      { name: "fzH", type: "1", link: "../../fzA" },
    ]),
    theirDiff: { kind: "fails", why: "1.43 opens ../fzA beside the layer" },
  },
  {
    name: "symlinks out of the layer are followed inside it",
    input: tar([
      { name: "fzA", type: "2", link: "/tmp" },
      { name: "fzA/fzB", data: "inside" },
      { name: "fzU", type: "2", link: "../../../../../../.." },
      { name: "fzU/fzV/", type: "5" },
      { name: "fzR", type: "2", link: "/" },
      { name: "fzR/fzW", data: "w" },
    ]),
  },
  {
    name: "a hard link to nothing: refused",
    input: tar([{ name: "fzA", type: "1", link: "fzNothing" }]),
  },
  {
    name: "a hard link to a directory: refused",
    input: tar([{ name: "fzD/", type: "5" }, { name: "fzA", type: "1", link: "fzD" }]),
  },
  {
    name: "two entries of one path: refused",
    input: tar([{ name: "fzA", data: "1" }, { name: "fzA", data: "2" }]),
  },
  {
    name: "type 7 (contiguous file): refused",
    input: tar([{ name: "fzA", type: "7", data: "7" }]),
  },
  {
    name: "GNU and v7 headers",
    input: tar([
      { name: "fzG", data: "gnu", magic: "gnu" },
      { name: "fzV", data: "v7", magic: "v7" },
    ]),
  },
  {
    name: "cut inside a body: refused",
    input: () => Promise.resolve(buildTar(BASIC).subarray(0, 512 * 7 + 100)),
  },
  {
    name: "cut inside a header: refused",
    input: () => Promise.resolve(buildTar(BASIC).subarray(0, 512 * 3 + 17)),
  },
  {
    name: "cut inside the padding after a body",
    input: () => Promise.resolve(buildTar(BASIC).subarray(0, 512 * 2 + 17)),
    theirDiff: { kind: "shorter", why: "1.43's tar-split drops the padding bytes it read" },
  },
  { name: "no end-of-archive blocks", input: () => Promise.resolve(cut(buildTar(BASIC), 1024)) },
  { name: "one end-of-archive block", input: () => Promise.resolve(cut(buildTar(BASIC), 512)) },
  {
    name: "padded to a 10 KiB record, then garbage",
    input: () => Promise.resolve(withTail(buildTar(BASIC), new Uint8Array(9000).fill(0x47))),
  },
  {
    name: "a bad header checksum: refused",
    input: () => Promise.resolve(flipped(buildTar(BASIC), 512 + 3)),
  },
  ...(["gzip", "zstd", "xz", "bzip2"] as const).flatMap((how): CorpusCase[] => [
    { name: `${how}: whole`, input: packed(BASIC, how) },
    { name: `${how}: cut short`, input: packed(BASIC, how, (b) => cut(b, 9)) },
    { name: `${how}: a byte flipped`, input: packed(BASIC, how, (b) => flipped(b, b.length >> 1)) },
  ]),
  {
    name: "gzip: trailing garbage",
    input: packed(BASIC, "gzip", (b) => withTail(b, enc.encode("junk"))),
  },
  { name: "xz: zero padding", input: packed(BASIC, "xz", (b) => withTail(b, new Uint8Array(8))) },
];

/**
 * The files of a corpus directory: `corpus/` holds reproducers of fixed
 * bugs the fuzzer found, `known/` those of bugs not fixed yet (see
 * known/README.md), which only `FUZZ_KNOWN=1` runs.
 */
export async function corpusFiles(which: "corpus" | "known"): Promise<CorpusCase[]> {
  const dir = new URL(`./${which}/`, import.meta.url);
  const out: CorpusCase[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !/\.tar(\.(gz|zst|xz|bz2))?$/.test(e.name)) continue;
    out.push({ name: `${which}/${e.name}`, input: () => Deno.readFile(new URL(e.name, dir)) });
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

/**
 * Cases of the corpus that meet a bug not fixed yet (in files the test
 * machinery does not own), kept out of the run until it is: the bug, and
 * its reproducer in known/. `FUZZ_KNOWN=1` runs them.
 */
export const KNOWN_BUGS: Record<string, string> = {};
// The other bugs of known/README.md were found by larger generated runs (FUZZ_GENERATED).

/** Seed of the generated part of the corpus. */
export const CORPUS_SEED = 4242;

/** Cases generated from {@linkcode CORPUS_SEED}. */
export function generated(n: number, seed = CORPUS_SEED): CorpusCase[] {
  return fc.sample(caseArb, { seed, numRuns: n }).map((c, i) => ({
    name: `generated #${i} (seed ${seed})`,
    generated: true,
    input: async () => (await caseBytes(c)).input,
  }));
}

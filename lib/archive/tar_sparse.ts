/**
 * GNU sparse files in PAX form, as GNU tar writes them with
 * `--sparse --format=posix` (map formats 0.0, 0.1 and 1.0), read the way
 * Go's archive/tar reads them:
 * - 0.0: one `GNU.sparse.offset` / `GNU.sparse.numbytes` record pair per
 *   region (folded into `GNU.sparse.map` by the PAX parser);
 * - 0.1: `GNU.sparse.numblocks` and `GNU.sparse.map` ("off,len,off,len");
 * - 1.0: `GNU.sparse.major=1`/`minor=0`, the map written as decimal lines
 *   in whole blocks at the start of the entry's data.
 * `GNU.sparse.name` and `GNU.sparse.size` / `realsize` give the real name
 * and logical size. The entry's data holds only the mapped regions, in order.
 *
 * @example
 * ```ts
 * import { checkRegions } from "./tar_sparse.ts";
 * const data = checkRegions([{ offset: 4096, length: 10 }, { offset: 8192, length: 0 }], 8192, 10);
 * console.log(data); // [{ offset: 4096, length: 10 }] (empty regions dropped)
 * ```
 * @module
 */

import { decodeOsString } from "../os_string.ts";
import type { SparseRegion } from "./tar_header.ts";

/** A sparse map or its PAX records are malformed; the tar reader adds entry and offset. */
export class SparseProblem extends Error {}

/** The PAX record that carries a 0.0 or 0.1 map. */
export const SPARSE_MAP_KEY = "GNU.sparse.map";

/** What an entry's PAX records say about it being sparse. */
export interface SparseInfo {
  /** Real name (`GNU.sparse.name`), when given. */
  name?: string;
  /** Logical size (`GNU.sparse.size`, else `GNU.sparse.realsize`), when given. */
  size?: number;
  /** The map of a 0.x entry; absent for 1.0, whose map starts the entry's data. */
  map?: SparseRegion[];
}

const dec = new TextDecoder();
const INT = /^[+-]?[0-9]+$/;

/** Go's strconv.ParseInt(s, 10, 64), limited to safe integers. */
function parseInt10(s: string, what: string): number {
  const n = INT.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new SparseProblem(`invalid GNU sparse ${what} ${JSON.stringify(s.slice(0, 40))}`);
  }
  return n;
}

/** Reads offset/length pairs from decimal tokens. */
function pairs(tokens: string[]): SparseRegion[] {
  const map: SparseRegion[] = [];
  for (let i = 0; i + 1 < tokens.length; i += 2) {
    map.push({
      offset: parseInt10(tokens[i], "map offset"),
      length: parseInt10(tokens[i + 1], "map length"),
    });
  }
  return map;
}

/**
 * Recognises a GNU sparse entry from its PAX records, as Go's
 * readGNUSparsePAXHeaders: null when it is not one (an unknown map version
 * too, whose data then reads as a plain file, as in Go).
 * @throws {SparseProblem} for malformed numbers or a map of the wrong length.
 */
export function sparseFromPax(recs: Map<string, Uint8Array>): SparseInfo | null {
  const get = (k: string) => {
    const v = recs.get(`GNU.sparse.${k}`);
    return v ? dec.decode(v) : "";
  };
  const major = get("major");
  const minor = get("minor");
  let inData: boolean;
  if (major === "0" && (minor === "0" || minor === "1")) inData = false;
  else if (major === "1" && minor === "0") inData = true;
  else if (major !== "" || minor !== "") return null;
  else if (get("map") !== "") inData = false; // 0.0 and 0.1 have no version records
  else return null;
  const info: SparseInfo = {};
  const name = recs.get("GNU.sparse.name");
  if (name?.length) info.name = decodeOsString(name);
  const size = get("size") || get("realsize");
  if (size) info.size = parseInt10(size, "size");
  if (inData) return info;
  const count = parseInt10(get("numblocks"), "numblocks");
  const tokens = get("map").split(",");
  if (tokens.length === 1 && tokens[0] === "") tokens.length = 0;
  if (count < 0 || tokens.length !== 2 * count) {
    throw new SparseProblem(
      `GNU sparse map has ${tokens.length} numbers for ${count} regions`,
    );
  }
  info.map = pairs(tokens);
  return info;
}

/**
 * Incremental reader of a 1.0 map: decimal lines (region count, then offset
 * and length of each region) filling whole blocks. Feed it blocks until it
 * returns the map; it refuses maps longer than `limit` bytes.
 */
export class SparseMapReader {
  #blocks: Uint8Array[] = [];
  #bytes = 0;
  #newlines = 0;
  #needed = 1;
  #count = -1;
  #limit: number;

  /** @param limit Largest map text accepted, in bytes. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Takes one 512-byte block (copied); returns the map once complete, else null.
   * @throws {SparseProblem} for malformed numbers, absurd counts or an oversized map.
   */
  push(block: Uint8Array): SparseRegion[] | null {
    this.#bytes += block.length;
    if (this.#bytes > this.#limit) {
      throw new SparseProblem(`GNU sparse map longer than ${this.#limit} bytes`);
    }
    this.#blocks.push(block.slice());
    for (const c of block) if (c === 0x0a) this.#newlines++;
    if (this.#newlines < this.#needed) return null;
    const tokens = this.#tokens();
    if (this.#count < 0) {
      this.#count = parseInt10(tokens[0], "region count");
      if (this.#count < 0 || 4 * this.#count > this.#limit) {
        throw new SparseProblem(`absurd GNU sparse region count ${this.#count}`);
      }
      this.#needed = 1 + 2 * this.#count;
      if (this.#newlines < this.#needed) return null;
    }
    return pairs(tokens.slice(1, this.#needed));
  }

  /** The newline-terminated tokens read so far. */
  #tokens(): string[] {
    const all = new Uint8Array(this.#bytes);
    let o = 0;
    for (const b of this.#blocks) {
      all.set(b, o);
      o += b.length;
    }
    const text = dec.decode(all.subarray(0, all.lastIndexOf(0x0a)));
    return text.split("\n");
  }
}

/**
 * Validates a map as Go's validateSparseEntries (no negative values, in
 * order, no overlap, within the logical `size`) and checks that its regions
 * add up to the `stored` data bytes the entry carries. Returns the regions
 * that hold data.
 * @throws {SparseProblem} naming what is wrong.
 */
export function checkRegions(map: SparseRegion[], size: number, stored: number): SparseRegion[] {
  if (size < 0) throw new SparseProblem(`negative GNU sparse file size ${size}`);
  let end = 0;
  let total = 0;
  for (const r of map) {
    if (r.offset < 0 || r.length < 0) {
      throw new SparseProblem(`negative GNU sparse region ${r.offset}+${r.length}`);
    }
    if (r.offset + r.length > size) {
      throw new SparseProblem(
        `GNU sparse region ${r.offset}+${r.length} extends beyond the file size ${size}`,
      );
    }
    if (r.offset < end) {
      throw new SparseProblem(
        `GNU sparse region ${r.offset}+${r.length} overlaps the previous one`,
      );
    }
    end = r.offset + r.length;
    total += r.length;
  }
  if (total !== stored) {
    throw new SparseProblem(
      `GNU sparse map describes ${total} data bytes, the entry stores ${stored}`,
    );
  }
  return map.filter((r) => r.length > 0);
}

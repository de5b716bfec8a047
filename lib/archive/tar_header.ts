/**
 * The parsed form of one tar header, as the tar reader produces it and the
 * tar writer consumes it. Field meanings follow Go's archive/tar so that
 * what we read and write matches what containers/storage reads and writes.
 *
 * @example
 * ```ts
 * import { type TarHeader, TypeFlag } from "./tar_header.ts";
 * const h: TarHeader = {
 *   name: "etc/hostname", typeflag: TypeFlag.Reg, mode: 0o644, uid: 0, gid: 0,
 *   uname: "", gname: "", size: 5, mtime: { sec: 0, nsec: 0 }, linkname: "",
 *   devmajor: 0, devminor: 0, xattrs: {}, pax: {},
 * };
 * ```
 * @module
 */

/** Tar entry type flags (one ASCII character). */
export const TypeFlag = {
  /** Regular file. */
  Reg: "0",
  /** Regular file, pre-POSIX form (NUL typeflag). */
  RegA: "\0",
  /** Hard link. */
  Link: "1",
  /** Symbolic link. */
  Symlink: "2",
  /** Character device. */
  Char: "3",
  /** Block device. */
  Block: "4",
  /** Directory. */
  Dir: "5",
  /** FIFO. */
  Fifo: "6",
  /** Contiguous file (read as a regular file; refused by the apply, as by containers/storage). */
  Cont: "7",
  /** PAX extended header for the next entry. */
  XHeader: "x",
  /** PAX global header. */
  XGlobalHeader: "g",
  /** Old GNU sparse file: rejected, as containers/storage 1.43 rejects it. */
  GNUSparse: "S",
  /** GNU long name for the next entry. */
  GNULongName: "L",
  /** GNU long link name for the next entry. */
  GNULongLink: "K",
} as const;

/** A point in time with nanoseconds, as tar PAX records carry it. */
export interface TarTime {
  /** Seconds since the Unix epoch (may be negative). */
  sec: number;
  /** Nanoseconds, 0..999999999. */
  nsec: number;
}

/** One logical tar entry (after PAX/GNU extension records are folded in). */
export interface TarHeader {
  /**
   * Entry name exactly as in the archive (e.g. "./etc/passwd"). Names,
   * link names, user and group names, xattr names and PAX values are
   * decoded losslessly: bytes that are not UTF-8 are kept as lone
   * surrogates (lib/os_string.ts), and written back as those bytes.
   */
  name: string;
  /** Type flag character (see {@linkcode TypeFlag}). */
  typeflag: string;
  /**
   * The mode field as the archive carries it: permission bits including
   * setuid/setgid/sticky, plus the file-type bits (0o40000 …) when the writer
   * put them there, as containers/storage's pkg/archive does. Mask with
   * 0o7777 for the permissions.
   */
  mode: number;
  /** Owner UID. */
  uid: number;
  /** Owner GID. */
  gid: number;
  /** Owner user name. */
  uname: string;
  /** Owner group name. */
  gname: string;
  /** Payload size in bytes (0 for non-regular entries). */
  size: number;
  /** Modification time. */
  mtime: TarTime;
  /** Access time, when the archive carries it. */
  atime?: TarTime;
  /** Change time, when the archive carries it. */
  ctime?: TarTime;
  /** Link target of symlinks and hard links. */
  linkname: string;
  /** Device major number. */
  devmajor: number;
  /** Device minor number. */
  devminor: number;
  /** Extended attributes (PAX `SCHILY.xattr.<name>`), values as raw bytes. */
  xattrs: Record<string, Uint8Array>;
  /** Other PAX records not folded into the fields above. */
  pax: Record<string, string>;
  /**
   * Set on GNU sparse files (PAX formats): the data regions of the file, in
   * order. The body then carries only these regions' bytes, one after the
   * other; the rest of the `size` logical bytes are holes (zeros).
   */
  sparse?: SparseRegion[];
}

/** One data region of a sparse file, in logical file offsets. */
export interface SparseRegion {
  /** Where the region starts in the file. */
  offset: number;
  /** Its length in bytes. */
  length: number;
}

/** Block size of the tar format. */
export const BLOCK = 512;

/** Byte offset and length of each header field (USTAR layout; GNU/star noted). */
export const Field = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  /** USTAR prefix (155 bytes); star uses only the first 131. */
  prefix: [345, 155],
  /** GNU atime / ctime (old GNU format). */
  gnuAtime: [345, 12],
  gnuCtime: [357, 12],
  /** star atime / ctime / trailer. */
  starPrefix: [345, 131],
  starAtime: [476, 12],
  starCtime: [488, 12],
  starTrailer: [508, 4],
} as const satisfies Record<string, readonly [number, number]>;

/** Entry types that never carry a body, whatever their size field says (as Go's isHeaderOnlyType). */
export function isHeaderOnlyType(typeflag: string): boolean {
  return typeflag === TypeFlag.Link || typeflag === TypeFlag.Symlink ||
    typeflag === TypeFlag.Char || typeflag === TypeFlag.Block || typeflag === TypeFlag.Dir ||
    typeflag === TypeFlag.Fifo;
}

/** Zero-filled bytes needed after a body of `size` bytes to reach a block boundary. */
export function blockPadding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

/** An empty header with every field at its zero value, for building entries. */
export function emptyHeader(name = "", typeflag: string = TypeFlag.Reg): TarHeader {
  return {
    name,
    typeflag,
    mode: 0,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    size: 0,
    mtime: { sec: 0, nsec: 0 },
    linkname: "",
    devmajor: 0,
    devminor: 0,
    xattrs: {},
    pax: {},
  };
}

/** Go's path.Clean: lexical normalisation of a slash-separated path ("" becomes "."). */
export function cleanPath(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = (abs ? "/" : "") + out.join("/");
  return s === "" ? "." : s;
}

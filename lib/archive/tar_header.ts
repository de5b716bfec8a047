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
  /** Contiguous file (treated as regular). */
  Cont: "7",
  /** PAX extended header for the next entry. */
  XHeader: "x",
  /** PAX global header. */
  XGlobalHeader: "g",
  /** GNU sparse file. */
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
  /** Entry name exactly as in the archive (e.g. "./etc/passwd"). */
  name: string;
  /** Type flag character (see {@linkcode TypeFlag}). */
  typeflag: string;
  /** Permission and mode bits (including setuid/setgid/sticky), no file-type bits. */
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
}

/**
 * Raw directory entries through getdents64(2), with the `d_type` the
 * filesystem reports. Deno's readDir hides a missing type (it falls back to
 * lstat on DT_UNKNOWN), so whether a filesystem fills in d_type — which
 * overlayfs needs — can only be seen from here.
 *
 * @example
 * ```ts ignore
 * import { DT_DIR, readDirTypes } from "./dirent.ts";
 * for (const e of readDirTypes("/tmp")) if (e.type === DT_DIR) console.log(e.name);
 * ```
 * @module
 */

import { check, cstr, libc, O_CLOEXEC, O_DIRECTORY, O_RDONLY } from "./libc.ts";

/** The filesystem did not say what the entry is. */
export const DT_UNKNOWN = 0;
/** FIFO. */
export const DT_FIFO = 1;
/** Character device. */
export const DT_CHR = 2;
/** Directory. */
export const DT_DIR = 4;
/** Block device. */
export const DT_BLK = 6;
/** Regular file. */
export const DT_REG = 8;
/** Symbolic link. */
export const DT_LNK = 10;
/** Unix socket. */
export const DT_SOCK = 12;

/** One `struct linux_dirent64`. */
export interface DirEntry {
  /** Entry name (raw bytes decoded as UTF-8). */
  name: string;
  /** Inode number (0: a deleted entry some filesystems still return). */
  ino: bigint;
  /** One of the DT_* constants. */
  type: number;
}

const decoder = new TextDecoder();

/** Parses the linux_dirent64 records in the first `len` bytes of `buf`. */
function parseRecords(buf: Uint8Array<ArrayBuffer>, len: number, out: DirEntry[]): void {
  const v = new DataView(buf.buffer, buf.byteOffset, len);
  for (let off = 0; off < len;) {
    const reclen = v.getUint16(off + 16, true);
    const nameStart = off + 19;
    let nameEnd = nameStart;
    while (nameEnd < off + reclen && buf[nameEnd] !== 0) nameEnd++;
    out.push({
      ino: v.getBigUint64(off, true),
      type: v.getUint8(off + 18),
      name: decoder.decode(buf.subarray(nameStart, nameEnd)),
    });
    off += reclen;
  }
}

/**
 * Every entry of a directory as the kernel returns it, "." and ".."
 * included, in directory order.
 * @throws {SyscallError} when the directory cannot be opened or read.
 */
export function readDirTypes(path: string): DirEntry[] {
  const fd = check(libc().open(cstr(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), "open", path);
  try {
    const buf = new Uint8Array(32 * 1024);
    const out: DirEntry[] = [];
    for (;;) {
      const n = check(libc().getdents64(fd, buf, BigInt(buf.length)), "getdents64", path);
      if (n === 0) return out;
      parseRecords(buf, n, out);
    }
  } finally {
    libc().close(fd);
  }
}

/**
 * Whether the entries of `dir` carry their type: false as soon as one
 * (other than "." and "..", which some filesystems always type) reports
 * DT_UNKNOWN. An empty directory gets a temporary file so there is an
 * entry to look at, as containers/storage does.
 */
export function supportsDType(dir: string): boolean {
  const entries = () =>
    readDirTypes(dir).filter((e) => e.ino !== 0n && e.name !== "." && e.name !== "..");
  let found = entries();
  let dummy: string | undefined;
  if (found.length === 0) {
    dummy = Deno.makeTempFileSync({ dir, prefix: "fsutils-dummy" });
    found = entries();
  }
  try {
    return found.every((e) => e.type !== DT_UNKNOWN);
  } finally {
    if (dummy) Deno.removeSync(dummy);
  }
}

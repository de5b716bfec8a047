/**
 * Full directory copy for the vfs driver: every file keeps its type, mode,
 * ownership, extended attributes and nanosecond times, hard links stay
 * hard links, and regular files are reflinked when the file system can
 * (so a copy costs no data blocks on btrfs/xfs) and copied otherwise. Names
 * are handled as bytes (ffi/): they need not be UTF-8.
 *
 * @example
 * ```ts ignore
 * copyTree("/g/vfs/dir/parent", "/g/vfs/dir/child");
 * ```
 * @module
 */

import {
  chmod,
  cloneFile,
  lchown,
  lgetxattr,
  link,
  llistxattr,
  lsetxattr,
  lstatNs,
  mkdir,
  mknod,
  readlink,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type StatNs,
  symlink,
  utimensat,
} from "../../ffi/fs.ts";
import { listDir } from "../../ffi/dirent.ts";
import { Errno, SyscallError } from "../../ffi/errors.ts";
import { RawFile } from "../../ffi/file.ts";
import { O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY } from "../../ffi/libc.ts";

/** Copies all extended attributes of `src` onto `dst`. */
function copyXattrs(src: string, dst: string): void {
  for (const name of llistxattr(src)) {
    const value = lgetxattr(src, name);
    if (value !== null) lsetxattr(dst, name, value);
  }
}

/** State shared across one copy: hard-link targets and whether reflinks work here. */
interface CopyState {
  links: Map<string, string>;
  reflink: boolean;
  dirs: { path: string; st: StatNs }[];
}

/** Copies the content of regular file `src` to a new or emptied `dst`. */
function copyData(src: string, dst: string): void {
  const from = RawFile.open(src, O_RDONLY);
  try {
    const to = RawFile.open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0o600);
    try {
      if (from.copyTo(to)) return;
      const buf = new Uint8Array(1 << 20);
      for (let n; (n = from.read(buf)) > 0;) to.writeAll(buf.subarray(0, n));
    } finally {
      to.close();
    }
  } finally {
    from.close();
  }
}

function copyEntry(src: string, dst: string, st: StatNs, state: CopyState): void {
  const type = st.mode & S_IFMT;
  if (type !== S_IFDIR && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = state.links.get(key);
    if (first !== undefined) {
      link(first, dst);
      return;
    }
    state.links.set(key, dst);
  }
  switch (type) {
    case S_IFDIR:
      try {
        mkdir(dst, 0o700);
      } catch (e) {
        if (!(e instanceof SyscallError && e.errno === Errno.EEXIST)) throw e;
      }
      break;
    case S_IFREG:
      if (!(state.reflink && cloneFile(src, dst))) {
        state.reflink = false;
        copyData(src, dst);
      }
      break;
    case S_IFLNK:
      symlink(readlink(src), dst);
      break;
    default: // devices, fifos, sockets
      mknod(dst, st.mode, st.rdev);
  }
  // chown first: it clears set-id bits that chmod then restores.
  lchown(dst, st.uid, st.gid);
  copyXattrs(src, dst);
  if (type !== S_IFLNK) chmod(dst, st.mode & 0o7777);
  if (type === S_IFDIR) {
    state.dirs.push({ path: dst, st });
    for (const e of listDir(src)) {
      const s = `${src}/${e.name}`;
      copyEntry(s, `${dst}/${e.name}`, lstatNs(s), state);
    }
  } else {
    utimensat(dst, st.atime, st.mtime, true);
  }
}

/**
 * Copies the tree at `src` into `dst` (which may already exist as an empty
 * directory; its metadata is replaced by that of `src`).
 */
export function copyTree(src: string, dst: string): void {
  const state: CopyState = { links: new Map(), reflink: true, dirs: [] };
  copyEntry(src, dst, lstatNs(src), state);
  // Directory times last: creating children changed them.
  for (let i = state.dirs.length - 1; i >= 0; i--) {
    const { path, st } = state.dirs[i];
    utimensat(path, st.atime, st.mtime, true);
  }
}

/**
 * Tests of the libc bindings (ffi/*), against the real kernel: mounts,
 * device nodes, ownership, xattrs, nanosecond times, statfs, reflinks and
 * OFD record locks.
 * @module
 */

import assert from "node:assert/strict";
import { isRoot, notRootReason, removeTree, run, tempDir } from "./helpers.ts";
import { errnoMessage, errnoName, SyscallError } from "../ffi/errors.ts";
import {
  isMountpoint,
  MNT_DETACH,
  mount,
  MS_BIND,
  MS_RDONLY,
  MS_REMOUNT,
  unmount,
} from "../ffi/mount.ts";
import {
  cloneFile,
  getpagesize,
  lchown,
  lgetxattr,
  llistxattr,
  lremovexattr,
  lsetxattr,
  lstatNs,
  makedev,
  mknod,
  S_IFCHR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  statfs,
  statNs,
  utimensat,
} from "../ffi/fs.ts";
import {
  closeFd,
  getLock,
  lockFd,
  O_CREAT,
  O_RDWR,
  openFd,
  preadFd,
  pwriteFd,
  unlockFd,
} from "../ffi/lock.ts";

if (!isRoot) console.log(`ffi_test: privileged tests ${notRootReason}`);

const TMPFS_MAGIC = 0x01021994;
const PROC_MAGIC = 0x9fa0;
const enc = (s: string) => new TextEncoder().encode(s);

/** Runs `fn`, asserting it throws an instance of `cls`; returns the error. */
function assertThrows<T extends Error>(fn: () => unknown, cls: new (...a: any[]) => T): T {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return e;
  }
  assert.fail(`expected ${cls.name}, nothing was thrown`);
}

function assertSyscallError(fn: () => unknown, syscall: string, code: string, path: string) {
  const e = assertThrows(fn, SyscallError);
  assert.deepEqual(e.syscall, syscall);
  assert.deepEqual(e.code, code);
  assert.deepEqual(e.path, path);
  assert.ok(e.message.includes(path), e.message);
  assert.ok(e.message.includes(code), e.message);
  return e;
}

Deno.test("errors: errno names and SyscallError message", () => {
  assert.deepEqual(errnoName(16), "EBUSY");
  assert.deepEqual(errnoName(1), "EPERM");
  assert.deepEqual(errnoName(61), "ENODATA");
  assert.deepEqual(errnoName(95), "EOPNOTSUPP");
  assert.deepEqual(errnoName(9999), "errno 9999");
  assert.deepEqual(errnoMessage(2), "No such file or directory");
  const e = new SyscallError("umount2", 22, "/x");
  assert.deepEqual(e.message, "umount2 /x: EINVAL (Invalid argument)");
  assert.deepEqual([e.syscall, e.errno, e.code, e.path], ["umount2", 22, "EINVAL", "/x"]);
  assert.deepEqual(new SyscallError("close", 9).message, "close: EBADF (Bad file descriptor)");
});

Deno.test("libc: without --allow-ffi the first call throws ErrPermission naming the flag", async () => {
  const dir = await tempDir();
  try {
    const script = `${dir}/noffi.ts`;
    const fsUrl = new URL("../ffi/fs.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { getpagesize } from ${JSON.stringify(fsUrl)};\n` +
        `try { getpagesize(); } catch (e) { console.log((e as Error).name, (e as Error).message); }\n`,
    );
    const r = await run(Deno.execPath(), ["run", "--allow-read", script]);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith("ErrPermission"), r.stdout);
    assert.ok(r.stdout.includes("--allow-ffi"), r.stdout);
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "mount: umount2 of a non-mount is EINVAL naming the path; missing path is ENOENT",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    try {
      const e = assertSyscallError(() => unmount(dir), "umount2", "EINVAL", dir);
      assert.deepEqual(e.message, `umount2 ${dir}: EINVAL (Invalid argument)`);
      assert.deepEqual(e.errno, 22);
      assertSyscallError(() => unmount(`${dir}/missing`), "umount2", "ENOENT", `${dir}/missing`);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "mount: tmpfs mount, statfs magic, isMountpoint, remount ro, unmount",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    const mnt = `${dir}/m nt`; // a space exercises mountinfo's \040 escape
    await Deno.mkdir(mnt);
    try {
      assert.deepEqual(await isMountpoint(mnt), false);
      mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0755");
      assert.deepEqual(await isMountpoint(mnt), true);
      assert.deepEqual(statfs(mnt).type, TMPFS_MAGIC);
      assert.deepEqual(statfs(mnt).bsize, 4096);
      await Deno.writeTextFile(`${mnt}/f`, "x");
      mount("none", mnt, "", MS_REMOUNT | MS_RDONLY);
      assertSyscallError(() => mknod(`${mnt}/p`, S_IFIFO | 0o644, 0), "mknod", "EROFS", `${mnt}/p`);
      // A bind mount of it shows the same files.
      await Deno.mkdir(`${dir}/b`);
      mount(mnt, `${dir}/b`, "", MS_BIND);
      assert.equal(await Deno.readTextFile(`${dir}/b/f`), "x");
      unmount(`${dir}/b`);
      // Busy while a file on it is open.
      const open = await Deno.open(`${mnt}/f`);
      try {
        assertSyscallError(() => unmount(mnt), "umount2", "EBUSY", mnt);
      } finally {
        open.close();
      }
      unmount(mnt);
      assert.deepEqual(await isMountpoint(mnt), false);
      assert.deepEqual(await Deno.readDir(mnt)[Symbol.asyncIterator]().next(), {
        done: true,
        value: undefined,
      });
      mount("tmpfs", mnt, "tmpfs", 0);
      unmount(mnt, MNT_DETACH);
      assert.deepEqual(await isMountpoint(mnt), false);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "mount: unknown file system type is ENODEV naming the target",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    try {
      assertSyscallError(() => mount("none", dir, "nosuchfs", 0), "mount", "ENODEV", dir);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("fs: statfs of /proc is PROC_SUPER_MAGIC; getpagesize is 4096", () => {
  assert.deepEqual(statfs("/proc").type, PROC_MAGIC);
  assert.deepEqual(getpagesize(), 4096);
  assertSyscallError(() => statfs("/nonexistent/x"), "statfs", "ENOENT", "/nonexistent/x");
});

Deno.test("fs: makedev matches glibc encoding", () => {
  assert.deepEqual(makedev(0, 0), 0n);
  assert.deepEqual(makedev(1, 3), 0x103n);
  assert.deepEqual(makedev(8, 17), 0x811n);
  assert.deepEqual(makedev(0x1234, 0x56789), 0x100056723489n); // python3 os.makedev agrees
});

Deno.test({
  name: "fs: mknod creates a 0/0 char device (whiteout), another char device and a FIFO",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    try {
      mknod(`${dir}/wh`, S_IFCHR | 0o000, 0);
      let st = lstatNs(`${dir}/wh`);
      assert.deepEqual(st.mode & S_IFMT, S_IFCHR);
      assert.deepEqual([st.rdevMajor, st.rdevMinor, st.rdev], [0, 0, 0n]);
      mknod(`${dir}/null`, S_IFCHR | 0o666, makedev(1, 3));
      st = lstatNs(`${dir}/null`);
      assert.deepEqual([st.rdevMajor, st.rdevMinor, st.rdev], [1, 3, makedev(1, 3)]);
      assert.deepEqual(st.mode & 0o7777, 0o666 & ~Deno.umask());
      mknod(`${dir}/fifo`, S_IFIFO | 0o644, 0);
      assert.deepEqual(lstatNs(`${dir}/fifo`).mode & S_IFMT, S_IFIFO);
      assert.ok((await Deno.lstat(`${dir}/fifo`)).isFifo);
      assertSyscallError(() => mknod(`${dir}/fifo`, S_IFIFO, 0), "mknod", "EEXIST", `${dir}/fifo`);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "fs: lchown changes a symlink, not its target",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    try {
      await Deno.writeTextFile(`${dir}/t`, "x");
      await Deno.symlink("t", `${dir}/l`);
      lchown(`${dir}/l`, 1234, 5678);
      const l = lstatNs(`${dir}/l`), t = lstatNs(`${dir}/t`);
      assert.deepEqual(l.mode & S_IFMT, S_IFLNK);
      assert.deepEqual([l.uid, l.gid], [1234, 5678]);
      assert.deepEqual([t.uid, t.gid], [0, 0]);
      lchown(`${dir}/l`, -1, 42); // -1 keeps the uid
      assert.deepEqual([lstatNs(`${dir}/l`).uid, lstatNs(`${dir}/l`).gid], [1234, 42]);
      assert.deepEqual(statNs(`${dir}/l`).mode & S_IFMT, S_IFREG);
      assertSyscallError(() => lchown(`${dir}/nope`, 0, 0), "lchown", "ENOENT", `${dir}/nope`);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test({
  name: "fs: xattrs set/get/list/remove (user.* and trusted.*), ENODATA is null",
  ignore: !isRoot,
  fn: async () => {
    const dir = await tempDir();
    try {
      const f = `${dir}/f`;
      await Deno.writeTextFile(f, "x");
      assert.deepEqual(llistxattr(f), []);
      assert.deepEqual(lgetxattr(f, "user.nope"), null);
      lsetxattr(f, "user.a", enc("hello"));
      lsetxattr(f, "trusted.overlay.opaque", enc("y"));
      lsetxattr(f, "user.empty", new Uint8Array());
      const big = new Uint8Array(3000).map((_, i) => i & 0xff);
      lsetxattr(f, "user.big", big);
      assert.deepEqual(lgetxattr(f, "user.a"), enc("hello"));
      assert.deepEqual(lgetxattr(f, "trusted.overlay.opaque"), enc("y"));
      assert.deepEqual(lgetxattr(f, "user.empty"), new Uint8Array());
      assert.deepEqual(lgetxattr(f, "user.big"), big);
      assert.deepEqual(
        llistxattr(f).sort(),
        ["trusted.overlay.opaque", "user.a", "user.big", "user.empty"],
      );
      // XATTR_CREATE (1) refuses to replace.
      assertSyscallError(() => lsetxattr(f, "user.a", enc("x"), 1), "lsetxattr", "EEXIST", f);
      lremovexattr(f, "user.a");
      assert.deepEqual(lgetxattr(f, "user.a"), null);
      assertSyscallError(() => lremovexattr(f, "user.a"), "lremovexattr", "ENODATA", f);
      // On a symlink itself: trusted.* is allowed, user.* is not (EPERM).
      await Deno.symlink("f", `${dir}/l`);
      lsetxattr(`${dir}/l`, "trusted.x", enc("1"));
      assert.deepEqual(lgetxattr(`${dir}/l`, "trusted.x"), enc("1"));
      assert.deepEqual(lgetxattr(f, "trusted.x"), null);
      assertSyscallError(
        () => lsetxattr(`${dir}/l`, "user.x", enc("1")),
        "lsetxattr",
        "EPERM",
        `${dir}/l`,
      );
      assertSyscallError(
        () => lgetxattr(`${dir}/no`, "user.a"),
        "lgetxattr",
        "ENOENT",
        `${dir}/no`,
      );
      assertSyscallError(() => llistxattr(`${dir}/no`), "llistxattr", "ENOENT", `${dir}/no`);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("fs: utimensat sets nanosecond times on a file and on a symlink itself", async () => {
  const dir = await tempDir();
  try {
    const f = `${dir}/f`, l = `${dir}/l`;
    await Deno.writeTextFile(f, "x");
    await Deno.symlink("f", l);
    utimensat(f, { sec: 1000, nsec: 123456789 }, { sec: 2000, nsec: 987654321 }, false);
    let st = lstatNs(f);
    assert.deepEqual(st.atime, { sec: 1000, nsec: 123456789 });
    assert.deepEqual(st.mtime, { sec: 2000, nsec: 987654321 });
    utimensat(l, { sec: 3000, nsec: 1 }, { sec: 4000, nsec: 999999999 }, true);
    st = lstatNs(l);
    assert.deepEqual(st.mode & S_IFMT, S_IFLNK);
    assert.deepEqual(st.atime, { sec: 3000, nsec: 1 });
    assert.deepEqual(st.mtime, { sec: 4000, nsec: 999999999 });
    assert.deepEqual(lstatNs(f).mtime, { sec: 2000, nsec: 987654321 }); // target untouched
    // Without nofollow the target is changed through the link.
    utimensat(l, { sec: 5, nsec: 5 }, { sec: 6, nsec: 6 }, false);
    assert.deepEqual(lstatNs(f).mtime, { sec: 6, nsec: 6 });
    assert.deepEqual(statNs(l).mtime, { sec: 6, nsec: 6 });
    const t = { sec: 0, nsec: 2_000_000_000 };
    assertSyscallError(() => utimensat(f, t, t, false), "utimensat", "EINVAL", f);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("fs: lstatNs matches Deno.lstat", async () => {
  const dir = await tempDir();
  try {
    const f = `${dir}/f`;
    await Deno.writeTextFile(f, "hello");
    await Deno.link(f, `${dir}/h`);
    const st = lstatNs(f), d = await Deno.lstat(f);
    assert.deepEqual(st.size, 5);
    assert.deepEqual(st.nlink, 2);
    assert.deepEqual(st.mode, d.mode);
    assert.deepEqual(st.ino, BigInt(d.ino!));
    assert.deepEqual(st.uid, d.uid);
    assert.deepEqual(Number(st.dev), d.dev);
    assert.deepEqual(Math.floor(st.mtime.sec * 1000 + st.mtime.nsec / 1e6), d.mtime!.getTime());
    assertSyscallError(() => lstatNs(`${dir}/no`), "statx", "ENOENT", `${dir}/no`);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("fs: cloneFile reflinks or returns false leaving nothing behind", async () => {
  const dir = await tempDir();
  try {
    const data = new Uint8Array(100_000).map((_, i) => (i * 31 + 7) & 0xff);
    await Deno.writeFile(`${dir}/src`, data, { mode: 0o640 });
    const cloned = cloneFile(`${dir}/src`, `${dir}/dst`);
    assert.deepEqual(typeof cloned, "boolean");
    if (cloned) {
      assert.deepEqual(await Deno.readFile(`${dir}/dst`), data);
    } else {
      await assert.rejects(() => Deno.lstat(`${dir}/dst`), Deno.errors.NotFound);
    }
    assertSyscallError(() => cloneFile(`${dir}/no`, `${dir}/d2`), "open", "ENOENT", `${dir}/no`);
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "fs: cloneFile on a file system that reflinks (loop-mounted btrfs/xfs) copies the data",
  ignore: !isRoot,
  fn: async (t) => {
    const mkfs = ["mkfs.btrfs", "mkfs.xfs"].find((m) =>
      ["/usr/sbin", "/sbin", "/usr/bin"].some((d) => {
        try {
          return Deno.statSync(`${d}/${m}`).isFile;
        } catch {
          return false;
        }
      })
    );
    if (!mkfs) {
      console.log("skipped: neither mkfs.btrfs nor mkfs.xfs is installed");
      return;
    }
    const dir = await tempDir();
    try {
      const img = `${dir}/img`, mnt = `${dir}/mnt`;
      await Deno.mkdir(mnt);
      const f = await Deno.open(img, { create: true, write: true });
      await f.truncate(320 * 1024 * 1024);
      f.close();
      const args = mkfs === "mkfs.xfs" ? ["-q", "-m", "reflink=1", img] : ["-q", img];
      const made = await run(mkfs, args);
      assert.deepEqual(made.code, 0, made.stderr);
      const m = await run("mount", ["-o", "loop", img, mnt]);
      if (m.code !== 0) {
        await t.step({
          name: `loop mount unavailable: ${m.stderr.trim()}`,
          ignore: true,
          fn: () => {},
        });
        return;
      }
      const data = new Uint8Array(200_000).map((_, i) => (i * 17 + 3) & 0xff);
      await Deno.writeFile(`${mnt}/src`, data);
      assert.deepEqual(cloneFile(`${mnt}/src`, `${mnt}/dst`), true);
      assert.deepEqual(await Deno.readFile(`${mnt}/dst`), data);
      // An existing destination is replaced.
      await Deno.writeTextFile(`${mnt}/dst2`, "old content that is longer");
      assert.deepEqual(cloneFile(`${mnt}/src`, `${mnt}/dst2`), true);
      assert.deepEqual(await Deno.readFile(`${mnt}/dst2`), data);
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("lock: pread/pwrite on raw fds; bad fd is EBADF", async () => {
  const dir = await tempDir();
  try {
    const fd = openFd(`${dir}/f`, O_RDWR | O_CREAT, 0o600);
    assert.deepEqual(pwriteFd(fd, enc("hello world"), 0), 11);
    assert.deepEqual(pwriteFd(fd, enc("W"), 6), 1);
    const buf = new Uint8Array(64);
    assert.deepEqual(preadFd(fd, buf, 0), 11);
    assert.deepEqual(new TextDecoder().decode(buf.subarray(0, 11)), "hello World");
    assert.deepEqual(preadFd(fd, buf, 100), 0);
    closeFd(fd);
    assert.deepEqual((await Deno.stat(`${dir}/f`)).mode! & 0o777, 0o600 & ~Deno.umask());
    const e = assertThrows(() => closeFd(fd), SyscallError);
    assert.deepEqual(e.code, "EBADF");
    assertSyscallError(() => openFd(`${dir}/no/f`, O_RDWR, 0), "open", "ENOENT", `${dir}/no/f`);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lock: OFD locks of two open files conflict; a wait keeps the event loop running", async () => {
  const dir = await tempDir();
  const a = openFd(`${dir}/l`, O_RDWR | O_CREAT, 0o644);
  const b = openFd(`${dir}/l`, O_RDWR, 0);
  try {
    assert.deepEqual(getLock(b, "write"), null);
    assert.deepEqual(await lockFd(a, "write", false), true);
    assert.deepEqual(await lockFd(b, "write", false), false);
    assert.deepEqual(await lockFd(b, "read", false), false);
    assert.deepEqual(getLock(b, "read"), { type: "write", pid: -1 }); // -1: an OFD lock
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    let granted = false;
    const waiting = lockFd(b, "write", true).then((ok) => granted = ok);
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(timer);
    assert.ok(ticks >= 5, `event loop stalled: ${ticks} ticks`);
    assert.deepEqual(granted, false);
    unlockFd(a);
    await waiting;
    assert.deepEqual(granted, true);
    assert.deepEqual(getLock(a, "read"), { type: "write", pid: -1 });
    unlockFd(b);
    // Read locks share.
    assert.deepEqual(await lockFd(a, "read", false), true);
    assert.deepEqual(await lockFd(b, "read", false), true);
    assert.deepEqual(await lockFd(b, "write", false), false);
    unlockFd(a);
    unlockFd(b);
    // A read lock needs a readable descriptor; a bad descriptor is EBADF.
    const wo = openFd(`${dir}/l`, 1, /* O_WRONLY */ 0);
    await assert.rejects(
      () => lockFd(wo, "read", true),
      (e) => e instanceof SyscallError && e.code === "EBADF",
    );
    closeFd(wo);
    await assert.rejects(
      () => lockFd(wo, "write", true),
      (e) => e instanceof SyscallError && e.code === "EBADF",
    );
    assert.throws(() => unlockFd(wo), (e) => e instanceof SyscallError && e.code === "EBADF");
    assert.throws(
      () => getLock(wo, "write"),
      (e) => e instanceof SyscallError && e.code === "EBADF",
    );
  } finally {
    closeFd(a);
    closeFd(b);
    await removeTree(dir);
  }
});

Deno.test("fs: symlink creates a dangling link and names the path on EEXIST", async () => {
  const { symlink } = await import("../ffi/fs.ts");
  const dir = await tempDir();
  try {
    symlink("../nowhere/at/all", `${dir}/l`);
    assert.equal(await Deno.readLink(`${dir}/l`), "../nowhere/at/all");
    assert.throws(
      () => symlink("x", `${dir}/l`),
      (e: unknown) => e instanceof SyscallError && e.code === "EEXIST" && e.path === `${dir}/l`,
    );
  } finally {
    await removeTree(dir);
  }
});

Deno.test("mount: mountPoints lists / and a fresh tmpfs, read through libc", async () => {
  const { mountPoints, mount, unmount } = await import("../ffi/mount.ts");
  assert.ok(mountPoints().includes("/"));
  if (!isRoot) return console.log(notRootReason);
  const dir = await tempDir();
  try {
    const target = `${dir}/with space`;
    await Deno.mkdir(target);
    mount("tmpfs", target, "tmpfs", 0, "size=1m");
    assert.ok(mountPoints().includes(target), "escaped mountinfo field is decoded");
    unmount(target);
    assert.ok(!mountPoints().includes(target));
  } finally {
    await removeTree(dir);
  }
});

Deno.test("process: geteuid matches Deno.uid", async () => {
  const { geteuid } = await import("../ffi/process.ts");
  assert.equal(geteuid(), Deno.uid());
});

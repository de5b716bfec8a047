/**
 * Tests of lib/lockfile.ts against real processes: the reference
 * containers-storage CLI, another Deno process, and python's lockf (classic
 * POSIX fcntl locks).
 * @module
 */

import assert from "node:assert/strict";
import { LockFile } from "../lib/lockfile.ts";
import { ErrLockReadOnly, StorageError } from "../lib/errors.ts";
import { closeFd, getLock, O_RDWR, openFd } from "../ffi/lock.ts";
import { referenceCli, removeTree, run, tempDir } from "./helpers.ts";

const noReference = referenceCli === undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves to "exited" or "running" after waiting up to `ms` for `status`. */
function stateAfter(status: Promise<unknown>, ms: number): Promise<"exited" | "running"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"running">((r) => timer = setTimeout(() => r("running"), ms));
  return Promise.race([status.then(() => "exited" as const), timeout]).finally(() =>
    clearTimeout(timer)
  );
}

/** Runs `fn` with a fresh vfs store created by the reference CLI. */
async function withStore(
  fn: (root: { graph: string; run: string; driver: string }) => Promise<void>,
) {
  const dir = await tempDir();
  const root = { graph: `${dir}/g`, run: `${dir}/r`, driver: "vfs" };
  try {
    const r = await run(referenceCli!, ["-g", root.graph, "-R", root.run, "-s", "vfs", "layers"]);
    assert.equal(r.code, 0, r.stderr);
    await fn(root);
  } finally {
    await removeTree(dir);
  }
}

function cs(
  root: { graph: string; run: string },
  args: string[],
  stdin: "null" | "piped" = "null",
) {
  return new Deno.Command(referenceCli!, {
    args: ["-g", root.graph, "-R", root.run, "-s", "vfs", ...args],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "lockfile: get creates an empty 0644 file (and 0700 directory) like the reference",
  ignore: noReference,
  fn: () =>
    withStore(async (root) => {
      const ref = await Deno.stat(`${root.graph}/vfs-layers/layers.lock`);
      assert.equal(ref.size, 0);
      assert.equal(ref.mode! & 0o777, 0o644);
      const path = `${root.graph}/new/dir/x.lock`;
      const lk = await LockFile.get(path);
      const ours = await Deno.stat(path);
      assert.equal(ours.size, ref.size);
      assert.equal(ours.mode! & 0o777, ref.mode! & 0o777);
      assert.equal((await Deno.stat(`${root.graph}/new/dir`)).mode! & 0o777, 0o700);
      assert.equal(lk.locked(), false);
      assert.equal(lk.isReadWrite(), true);
    }),
});

Deno.test("lockfile: one instance per path; asking again in the other mode is an error", async () => {
  const dir = await tempDir();
  try {
    const a = await LockFile.get(`${dir}/a.lock`);
    assert.equal(await LockFile.get(`${dir}/./sub/../a.lock`), a);
    assert.equal(a.path, `${dir}/a.lock`);
    await assert.rejects(() => LockFile.get(`${dir}/a.lock`, { readOnly: true }), (e) => {
      assert.ok(e instanceof StorageError);
      assert.match(e.message, /not a read-only lock/);
      return true;
    });
    await LockFile.get(`${dir}/b.lock`, { readOnly: true });
    await assert.rejects(() => LockFile.get(`${dir}/b.lock`), /is a read-only lock/);
    // A path that cannot be opened fails at get(), naming the errno.
    await Deno.writeTextFile(`${dir}/file`, "");
    await assert.rejects(() => LockFile.get(`${dir}/file/c.lock`), /ENOTDIR/);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lockfile: touch writes the 64-byte token (UnixNano, counter, PID, random)", async () => {
  const dir = await tempDir();
  try {
    const lk = await LockFile.get(`${dir}/t.lock`);
    await lk.lock();
    const before = BigInt(Date.now() - 1) * 1_000_000n;
    lk.touch();
    const first = await Deno.readFile(`${dir}/t.lock`);
    lk.touch();
    const after = BigInt(Date.now() + 1) * 1_000_000n;
    const second = await Deno.readFile(`${dir}/t.lock`);
    lk.unlock();
    assert.equal(first.length, 64);
    assert.equal(second.length, 64);
    const v1 = new DataView(first.buffer), v2 = new DataView(second.buffer);
    const t1 = v1.getBigUint64(0, true), t2 = v2.getBigUint64(0, true);
    assert.ok(before <= t1 && t1 <= t2 && t2 <= after, `${before} ${t1} ${t2} ${after}`);
    assert.equal(v2.getBigUint64(8, true), v1.getBigUint64(8, true) + 1n);
    assert.equal(v1.getUint32(16, true), Deno.pid);
    assert.notDeepEqual(first.subarray(20), second.subarray(20));
    assert.notDeepEqual(first.subarray(20), new Uint8Array(44));
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "lockfile: our token layout matches the one the reference CLI writes",
  ignore: noReference,
  fn: () =>
    withStore(async (root) => {
      const path = `${root.graph}/vfs-layers/layers.lock`;
      const start = BigInt(Date.now() - 1) * 1_000_000n;
      const child = cs(root, ["create-layer"]);
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const end = BigInt(Date.now() + 1) * 1_000_000n;
      const ref = await Deno.readFile(path);
      assert.equal(ref.length, 64);
      const v = new DataView(ref.buffer);
      const t = v.getBigUint64(0, true);
      assert.ok(start <= t && t <= end, `reference UnixNano ${t} outside [${start}, ${end}]`);
      assert.equal(v.getUint32(16, true), child.pid);
      const counter = v.getBigUint64(8, true);
      assert.ok(counter > 0n && counter < 1000n, `counter ${counter}`);
    }),
});

Deno.test("lockfile: modified() is true first, then false, then true after another Deno process touches", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/m.lock`;
    const lk = await LockFile.get(path);
    await lk.rLock();
    assert.equal(lk.modified(), true); // a new instance has seen no token yet
    assert.equal(lk.modified(), false);
    lk.unlock();
    await lk.lock();
    lk.touch();
    assert.equal(lk.modified(), false); // our own touch is not a change
    // The other process must wait for our write lock before touching.
    const script = `${dir}/toucher.ts`;
    const lockfileUrl = new URL("../lib/lockfile.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { LockFile } from ${JSON.stringify(lockfileUrl)};\n` +
        `const lk = await LockFile.get(Deno.args[0]);\n` +
        `await lk.lock(); lk.touch(); lk.unlock();\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, path],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    assert.equal(await stateAfter(child.status, 1500), "running");
    lk.unlock();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    await lk.rLock();
    assert.equal(lk.modified(), true);
    assert.equal(lk.modified(), false);
    const token = await Deno.readFile(path);
    assert.equal(new DataView(token.buffer).getUint32(16, true), child.pid);
    lk.unlock();
  } finally {
    await removeTree(dir);
  }
});

Deno.test({
  name: "lockfile: modified() turns true after the reference CLI create-layer touches layers.lock",
  ignore: noReference,
  fn: () =>
    withStore(async (root) => {
      const lk = await LockFile.get(`${root.graph}/vfs-layers/layers.lock`);
      await lk.rLock();
      lk.modified();
      assert.equal(lk.modified(), false);
      lk.unlock();
      const out = await cs(root, ["create-layer"]).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      await lk.rLock();
      assert.equal(lk.modified(), true);
      assert.equal(lk.modified(), false);
      lk.unlock();
    }),
});

Deno.test({
  name: "lockfile: the reference CLI `layers` blocks while we hold layers.lock, then exits 0",
  ignore: noReference,
  fn: () =>
    withStore(async (root) => {
      const lk = await LockFile.get(`${root.graph}/vfs-layers/layers.lock`);
      // The reference loads the layer store under its write lock, so even our read lock blocks it.
      for (const take of [() => lk.lock(), () => lk.rLock()]) {
        await take();
        const child = cs(root, ["layers"]);
        assert.equal(await stateAfter(child.status, 1000), "running");
        lk.unlock();
        const out = await child.output();
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      }
    }),
});

Deno.test({
  name: "lockfile: lock() waits while the reference CLI holds its POSIX lock; timers keep firing",
  ignore: noReference,
  fn: () =>
    withStore(async (root) => {
      const path = `${root.graph}/vfs-layers/layers.lock`;
      // import-layer holds the layers write lock while it reads the tarball from stdin.
      const child = cs(root, ["import-layer"], "piped");
      const fd = openFd(path, O_RDWR, 0);
      let holder = null;
      for (let i = 0; i < 100 && holder === null; i++) {
        await sleep(50);
        holder = getLock(fd, "read");
      }
      closeFd(fd);
      assert.deepEqual(holder, { type: "write", pid: child.pid }); // a classic POSIX lock
      const lk = await LockFile.get(path);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 50);
      let acquired = false;
      const locking = lk.lock().then(() => acquired = true);
      await sleep(1000);
      clearInterval(timer);
      assert.ok(ticks >= 10, `event loop stalled while waiting: ${ticks} ticks`);
      assert.equal(acquired, false);
      assert.equal(lk.locked(), false);
      const w = child.stdin.getWriter();
      await w.write(new Uint8Array(1024)); // an empty tar archive
      await w.close();
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      await locking;
      assert.equal(lk.locked(), true);
      assert.equal(lk.modified(), true); // import-layer touched it
      lk.unlock();
    }),
});

const python = await run("python3", ["-c", "import fcntl"]).then((r) => r.code === 0, () => false);
const PY_LOCKER = `
import fcntl, sys
f = open(sys.argv[1], "r+" if sys.argv[2] == "ex" else "r")
fcntl.lockf(f, fcntl.LOCK_EX if sys.argv[2] == "ex" else fcntl.LOCK_SH)
print("locked", flush=True)
sys.stdin.readline()
`;

/** Starts python holding a lockf (fcntl F_SETLKW) lock on `path` until its stdin closes. */
async function pythonLock(path: string, mode: "ex" | "sh") {
  const child = new Deno.Command("python3", {
    args: ["-c", PY_LOCKER, path, mode],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    pid: child.pid,
    status: child.status,
    async release() {
      await child.stdin.close();
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    },
  };
}

Deno.test({
  name: "lockfile: python lockf locks exclude our lock() and share with our rLock()",
  ignore: !python,
  fn: async () => {
    const dir = await tempDir();
    try {
      const path = `${dir}/p.lock`;
      const lk = await LockFile.get(path);
      // Their write lock holds off our read lock.
      let py = await pythonLock(path, "ex");
      let acquired = false;
      let waiting = lk.rLock().then(() => acquired = true);
      await sleep(500);
      assert.equal(acquired, false);
      await py.release();
      await waiting;
      lk.unlock();
      // Their read lock shares with ours but holds off our write lock.
      py = await pythonLock(path, "sh");
      await lk.rLock();
      lk.unlock();
      acquired = false;
      waiting = lk.lock().then(() => acquired = true);
      await sleep(500);
      assert.equal(acquired, false);
      await py.release();
      await waiting;
      // Now ours holds off theirs.
      const blocked = new Deno.Command("python3", {
        args: ["-c", PY_LOCKER, path, "sh"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      assert.equal(await stateAfter(blocked.status, 500), "running");
      lk.unlock();
      const out = await blocked.output();
      assert.equal(new TextDecoder().decode(out.stdout), "locked\n");
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("lockfile: read-only lock files allow rLock only", async () => {
  const dir = await tempDir();
  try {
    const path = `${dir}/ro.lock`;
    await Deno.writeFile(path, new Uint8Array(64).fill(7), { mode: 0o444 });
    const lk = await LockFile.get(path, { readOnly: true });
    assert.equal(lk.isReadWrite(), false);
    await assert.rejects(() => lk.lock(), ErrLockReadOnly);
    assert.equal(lk.locked(), false);
    await lk.rLock();
    assert.equal(lk.locked(), true);
    assert.equal(lk.modified(), true);
    assert.equal(lk.modified(), false);
    assert.throws(() => lk.touch(), /held for reading/);
    await lk.recursiveLock(); // a read lock on a read-only file
    lk.unlock();
    lk.unlock();
    assert.equal(lk.locked(), false);
    assert.deepEqual(await Deno.readFile(path), new Uint8Array(64).fill(7));
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lockfile: recursiveLock nests, allows touch, and holds off lock() until fully released", async () => {
  const dir = await tempDir();
  try {
    const lk = await LockFile.get(`${dir}/r.lock`);
    await lk.recursiveLock();
    await lk.recursiveLock();
    lk.touch();
    let writer = false;
    const w = lk.lock().then(() => writer = true);
    lk.unlock();
    await sleep(50);
    assert.equal(writer, false);
    assert.equal(lk.locked(), true);
    lk.unlock();
    await w;
    assert.equal(writer, true);
    lk.unlock();
    assert.equal(lk.locked(), false);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lockfile: async writers in one process serialize; readers share", async () => {
  const dir = await tempDir();
  try {
    const lk = await LockFile.get(`${dir}/s.lock`);
    let inside = 0, maxInside = 0, count = 0;
    const writer = async () => {
      await lk.lock();
      inside++;
      maxInside = Math.max(maxInside, inside);
      const seen = count;
      await sleep(20);
      count = seen + 1;
      inside--;
      lk.unlock();
    };
    await Promise.all([writer(), writer(), writer()]);
    assert.equal(count, 3);
    assert.equal(maxInside, 1);
    // Readers overlap, also with a reader that arrives while a writer is queued (nested
    // rLock in async code must not deadlock behind the writer); the writer waits for all.
    const order: string[] = [];
    const reader = async (name: string) => {
      await lk.rLock();
      order.push(`+${name}`);
      await sleep(30);
      order.push(`-${name}`);
      lk.unlock();
    };
    const loggedWriter = async () => {
      await lk.lock();
      order.push("+w");
      await sleep(10);
      count++;
      order.push("-w");
      lk.unlock();
    };
    await Promise.all([reader("r1"), reader("r2"), loggedWriter(), reader("r3")]);
    assert.deepEqual(order.slice(0, 3).sort(), ["+r1", "+r2", "+r3"]);
    assert.deepEqual(order.slice(-2), ["+w", "-w"]);
    assert.equal(count, 4);
    assert.equal(lk.locked(), false);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lockfile: touchedSince compares with the file's nanosecond mtime", async () => {
  const dir = await tempDir();
  try {
    const lk = await LockFile.get(`${dir}/ts.lock`);
    const before = new Date(Date.now() - 1000);
    await lk.lock();
    lk.touch();
    lk.unlock();
    assert.equal(lk.touchedSince(before), true);
    assert.equal(lk.touchedSince(new Date(Date.now() + 1000)), false);
    await Deno.utime(`${dir}/ts.lock`, 1000, 1000);
    assert.equal(lk.touchedSince(new Date(999_000)), true);
    assert.equal(lk.touchedSince(new Date(1000_000)), false);
    await Deno.remove(`${dir}/ts.lock`);
    assert.equal(lk.touchedSince(new Date()), true); // cannot tell: assume it was
  } finally {
    await removeTree(dir);
  }
});

Deno.test("lockfile: misuse throws instead of corrupting state", async () => {
  const dir = await tempDir();
  try {
    const lk = await LockFile.get(`${dir}/x.lock`);
    assert.throws(() => lk.unlock(), /unlocked lock/);
    assert.throws(() => lk.touch(), /not held/);
    assert.throws(() => lk.modified(), /not held/);
    await lk.rLock();
    assert.throws(() => lk.touch(), /held for reading/);
    lk.unlock();
    assert.throws(() => lk.unlock(), /unlocked lock/);
    await lk.lock();
    lk.touch();
    lk.unlock();
  } finally {
    await removeTree(dir);
  }
});

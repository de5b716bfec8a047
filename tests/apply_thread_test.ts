/**
 * The apply on a worker thread (lib/archive/apply_thread.ts): the same tree,
 * size and usage as the apply on the calling thread, its errors coming back
 * as the same classes with the same messages, a failing input or a bad entry
 * leaving nothing written after the call settles, the fallback when the
 * worker cannot load; the usage tally against a walk of the tree; and the
 * errors' round trip between threads (lib/thread_error.ts).
 */
import assert from "node:assert/strict";
import { type ApplyOptions, applyTar } from "../lib/archive/apply.ts";
import { applyTarOffThread } from "../lib/archive/apply_thread.ts";
import { directorySize } from "../drivers/overlay/diff.ts";
import { ErrBadArchive, ErrUnmappedID } from "../lib/errors.ts";
import { SyscallError } from "../ffi/errors.ts";
import { fromWireError, toWireError } from "../lib/thread_error.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { isRoot, layerTree, removeTree, tempDir } from "./helpers.ts";

/** Every kind of entry, a file bigger than the worker's buffers in flight, and a whiteout. */
function richLayer(): FixtureEntry[] {
  const big = new Uint8Array(3_000_000).map((_, i) => (i * 7) % 253);
  return [
    { name: "./etc/", type: "5", mode: 0o755, mtime: 1_600_000_000 },
    { name: "./etc/hostname", data: "box\n", uid: 12, gid: 34, mtime: 1_600_000_001.5 },
    { name: "./etc/shadow", data: "root:*:\n", mode: 0o640, xattrs: { "user.kind": "secret" } },
    { name: "./usr/bin/tool", data: big, mode: 0o4755 },
    { name: "./usr/bin/tool-hard", type: "1", link: "./usr/bin/tool" },
    { name: "./usr/bin/t", type: "2", link: "tool" },
    { name: "./usr/share/é-ünicode", type: "2", link: "../bin/tool-é" },
    { name: "./dev/null", type: "3", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "./run/fifo", type: "6", mode: 0o600 },
    ...Array.from({ length: 300 }, (_, i) => ({
      name: `./many/f${i}`,
      data: "x".repeat(i),
      mtime: 1_500_000_000 + i,
    })),
    { name: "./many/.wh.gone", data: "" },
  ];
}

async function both(
  entries: FixtureEntry[],
  opts: ApplyOptions,
  chunk = 700,
): Promise<{ here: string; there: string; cleanup: () => Promise<void> }> {
  const here = await tempDir("apply-here-");
  const there = await tempDir("apply-there-");
  const tar = buildTar(entries);
  const a = await applyTar(streamOf(tar, chunk), here, opts);
  const b = await applyTarOffThread(streamOf(tar, chunk), there, opts);
  assert.deepEqual(b, a, "size and usage");
  return {
    here,
    there,
    cleanup: async () => {
      await removeTree(here);
      await removeTree(there);
    },
  };
}

Deno.test({
  name: "apply thread: the worker makes the same tree as the calling thread (overlay, aufs)",
  ignore: !isRoot,
  fn: async () => {
    for (const whiteoutFormat of ["overlay", "aufs"] as const) {
      const r = await both(richLayer(), { whiteoutFormat, measureUsage: true });
      try {
        assert.equal(await layerTree(r.there), await layerTree(r.here), whiteoutFormat);
      } finally {
        await r.cleanup();
      }
    }
  },
});

Deno.test({
  name: "apply thread: mappings and force-mask cross to the worker",
  ignore: !isRoot,
  fn: async () => {
    const mappings = {
      uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      gidMap: [{ container_id: 0, host_id: 200000, size: 65536 }],
    };
    const r = await both(richLayer(), { whiteoutFormat: "overlay", mappings, forceMask: 0o700 });
    try {
      assert.equal(await layerTree(r.there), await layerTree(r.here));
    } finally {
      await r.cleanup();
    }
  },
});

/** The tree of `dir` now and a moment later: equal when nothing writes there any more. */
async function settledTree(dir: string): Promise<string> {
  const now = await layerTree(dir);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(await layerTree(dir), now, "the tree changed after the apply settled");
  return now;
}

Deno.test("apply thread: a bad entry is the same ErrBadArchive, and nothing is written after", async () => {
  const entries: FixtureEntry[] = [
    ...Array.from({ length: 200 }, (_, i) => ({ name: `./ok/f${i}`, data: "y".repeat(5000) })),
    { name: "./ok/hard", type: "1", link: "./no/such/file" },
    { name: "./after", data: "never" },
  ];
  const tar = buildTar(entries);
  const here = await tempDir("apply-bad-here-");
  const there = await tempDir("apply-bad-there-");
  try {
    const a = await applyTar(streamOf(tar), here, { whiteoutFormat: "aufs" }).catch((e) => e);
    const b = await applyTarOffThread(streamOf(tar), there, { whiteoutFormat: "aufs" })
      .catch((e) => e);
    assert.ok(a instanceof ErrBadArchive, String(a));
    assert.ok(b instanceof ErrBadArchive, String(b));
    assert.equal(b.message, a.message);
    assert.equal(b.id, "./ok/hard");
    assert.equal(b.name, "ErrBadArchive");
    assert.match(b.stack ?? "", /ErrBadArchive/);
    assert.equal(await settledTree(there), await layerTree(here));
  } finally {
    await removeTree(here);
    await removeTree(there);
  }
});

Deno.test("apply thread: an unmapped owner comes back as ErrUnmappedID", async () => {
  const dir = await tempDir("apply-unmapped-");
  try {
    const mappings = {
      uidMap: [{ container_id: 0, host_id: 100000, size: 10 }],
      gidMap: [{ container_id: 0, host_id: 100000, size: 10 }],
    };
    const tar = buildTar([{ name: "./f", data: "x", uid: 500 }]);
    const e = await applyTarOffThread(streamOf(tar), dir, { whiteoutFormat: "aufs", mappings })
      .catch((e) => e);
    assert.ok(e instanceof ErrUnmappedID, String(e));
    assert.match(e.message, /UID of \.\/f has no host ID/);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("apply thread: a failing input rejects with its error once the worker has stopped", async () => {
  const tar = buildTar(
    Array.from({ length: 400 }, (_, i) => ({ name: `./d/f${i}`, data: "z".repeat(3000) })),
  );
  const failure = new Error("network gone");
  let sent = 0;
  const input = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= tar.length / 2) return c.error(failure);
      c.enqueue(tar.slice(sent, sent + 10_000));
      sent += 10_000;
    },
  });
  const dir = await tempDir("apply-fail-");
  try {
    const e = await applyTarOffThread(input, dir, { whiteoutFormat: "aufs" }).catch((e) => e);
    assert.equal(e, failure);
    const tree = await settledTree(dir);
    assert.ok(tree.includes("./d/f0 "), "what came before the failure was applied");
  } finally {
    await removeTree(dir);
  }
});

Deno.test("apply thread: a worker that cannot load leaves the apply to this thread", async () => {
  const here = await tempDir("apply-fallback-here-");
  const there = await tempDir("apply-fallback-there-");
  try {
    // more than the buffers posted before the worker says it is ready
    const entries = Array.from({ length: 40 }, (_, i) => ({
      name: `./f${i}`,
      data: new Uint8Array(100_000).fill(i),
    }));
    const tar = buildTar(entries);
    const a = await applyTar(streamOf(tar, 65536), here, { whiteoutFormat: "aufs" });
    const b = await applyTarOffThread(streamOf(tar, 65536), there, { whiteoutFormat: "aufs" }, {
      workerModule: new URL("./no_such_worker.ts", import.meta.url),
    });
    assert.deepEqual(b, a);
    assert.equal(await layerTree(there), await layerTree(here));
  } finally {
    await removeTree(here);
    await removeTree(there);
  }
});

Deno.test({
  name: "apply thread: the usage tally equals a walk of the tree, or gives up",
  ignore: !isRoot,
  fn: async () => {
    const usage = async (entries: FixtureEntry[], before?: (dir: string) => void) => {
      const dir = await tempDir("apply-usage-");
      try {
        before?.(dir);
        const r = await applyTar(streamOf(buildTar(entries)), dir, {
          whiteoutFormat: "overlay",
          measureUsage: true,
        });
        return { tallied: r.usage, walked: await directorySize(dir) };
      } finally {
        await removeTree(dir);
      }
    };
    const rich = await usage(richLayer());
    assert.ok(rich.tallied !== undefined && rich.tallied > 3_000_000);
    assert.equal(rich.tallied, rich.walked);
    // a whiteout of nothing removes nothing: the tally goes on
    const wh = await usage([{ name: "./a", data: "12345" }, { name: "./.wh.b", data: "" }]);
    assert.deepEqual(wh, { tallied: 5, walked: 5 });
    // what the layer itself made and then removes or replaces: a walk decides
    for (
      const entries of [
        [{ name: "./a", data: "12345" }, { name: "./.wh.a", data: "" }],
        [{ name: "./a", data: "12345" }, { name: "./a", data: "1" }],
        [{ name: "./d/", type: "5" }, { name: "./d/f", data: "12" }, { name: "./d", data: "1" }],
        [{ name: "./a", data: "1" }, { name: "./h", type: "1", link: "./a" }, {
          name: "./.wh.a",
          data: "",
        }],
      ] as FixtureEntry[][]
    ) {
      const r = await usage(entries);
      assert.equal(r.tallied, undefined, JSON.stringify(entries.map((e) => e.name)));
    }
    // a target that is not empty is walked
    const full = await usage(
      [{ name: "./a", data: "1" }],
      (dir) => Deno.writeTextFileSync(`${dir}/old`, "old"),
    );
    assert.deepEqual(full, { tallied: undefined, walked: 4 });
  },
});

Deno.test("thread errors: class, fields, message, stack and cause survive a structured clone", () => {
  const cause = new SyscallError("open", 2, "/x/y");
  const e = new ErrBadArchive("./x", { detail: "bad", cause });
  const back = fromWireError(structuredClone(toWireError(e)));
  assert.ok(back instanceof ErrBadArchive);
  assert.equal(back.message, e.message);
  assert.equal(back.stack, e.stack);
  assert.equal((back as ErrBadArchive).id, "./x");
  assert.equal(back.name, "ErrBadArchive");
  const c = back.cause as SyscallError;
  assert.ok(c instanceof SyscallError);
  assert.deepEqual([c.syscall, c.errno, c.code, c.path], ["open", 2, "ENOENT", "/x/y"]);

  const nf = fromWireError(structuredClone(toWireError(new Deno.errors.NotFound("gone"))));
  assert.ok(nf instanceof Deno.errors.NotFound);
  assert.equal(nf.message, "gone");

  class Odd extends Error {}
  const odd = fromWireError(structuredClone(toWireError(new Odd("odd"))));
  assert.equal(Object.getPrototypeOf(odd), Error.prototype);
  assert.equal(odd.message, "odd");

  const s = fromWireError(structuredClone(toWireError("just text")));
  assert.equal(s.message, "just text");
  const withText = fromWireError(
    structuredClone(toWireError(new Error("outer", { cause: 42 }))),
  );
  assert.equal(withText.cause, "42");
});

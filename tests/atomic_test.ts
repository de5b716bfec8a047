import assert from "node:assert/strict";
import { atomicWriteFile, atomicWriteStream, syncDir } from "../lib/atomic.ts";
import { ErrFileWrite } from "../lib/errors.ts";
import { removeTree, tempDir } from "./helpers.ts";

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("atomicWriteFile writes content with mode 0600 by default and leaves no temp file", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/layers.json`;
    await atomicWriteFile(p, "[]");
    assert.equal(await Deno.readTextFile(p), "[]");
    assert.equal((await Deno.stat(p)).mode! & 0o7777, 0o600);
    await atomicWriteFile(p, new Uint8Array([1, 2, 3]), 0o644);
    assert.deepEqual(await Deno.readFile(p), new Uint8Array([1, 2, 3]));
    assert.equal((await Deno.stat(p)).mode! & 0o7777, 0o644);
    assert.deepEqual(await entries(dir), ["layers.json"]);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("atomicWriteFile applies the mode despite the umask", async () => {
  const dir = await tempDir();
  const old = Deno.umask(0o077);
  try {
    await atomicWriteFile(`${dir}/f`, "x", 0o664);
    assert.equal((await Deno.stat(`${dir}/f`)).mode! & 0o7777, 0o664);
  } finally {
    Deno.umask(old);
    await removeTree(dir);
  }
});

Deno.test("atomicWriteFile replaces a file that an open reader still sees whole", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/f`;
    await atomicWriteFile(p, "old content");
    const reader = await Deno.open(p);
    await atomicWriteFile(p, "new");
    const buf = new Uint8Array(64);
    const n = await reader.read(buf);
    reader.close();
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "old content");
    assert.equal(await Deno.readTextFile(p), "new");
  } finally {
    await removeTree(dir);
  }
});

Deno.test("atomicWriteFile into a missing directory fails and leaves nothing", async () => {
  const dir = await tempDir();
  try {
    await assert.rejects(atomicWriteFile(`${dir}/nope/f`, "x"), (e: unknown) => {
      // typed, naming the step and the temporary file
      assert.ok(e instanceof ErrFileWrite, String(e));
      assert.equal(e.code, "ENOENT");
      assert.ok(e.message.includes(`: open ${dir}/nope/.f.tmp-`), e.message);
      assert.ok(e.message.endsWith(": ENOENT (No such file or directory)"), e.message);
      return true;
    });
    assert.deepEqual(await entries(dir), []);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("atomicWriteFile failing at rename leaves the original intact and no temp file", async () => {
  const dir = await tempDir();
  try {
    // A non-empty directory at the target makes the rename fail after the temp file is written.
    await Deno.mkdir(`${dir}/target`);
    await Deno.writeTextFile(`${dir}/target/keep`, "original");
    await assert.rejects(atomicWriteFile(`${dir}/target`, "new"));
    assert.equal(await Deno.readTextFile(`${dir}/target/keep`), "original");
    assert.deepEqual(await entries(dir), ["target"]);
  } finally {
    await removeTree(dir);
  }
});

function streamOf(chunks: Uint8Array[], failAfter?: number): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(ctl) {
      if (failAfter !== undefined && i === failAfter) {
        ctl.error(new Error("source broke"));
        return;
      }
      if (i < chunks.length) ctl.enqueue(chunks[i++]);
      else ctl.close();
    },
  });
}

Deno.test("atomicWriteStream writes all chunks and returns the size", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/big`;
    const chunk = new Uint8Array(1 << 20).fill(7);
    const n = await atomicWriteStream(p, streamOf([chunk, chunk, new Uint8Array([1])]));
    assert.equal(n, 2 * (1 << 20) + 1);
    assert.equal((await Deno.stat(p)).size, n);
    assert.equal((await Deno.stat(p)).mode! & 0o7777, 0o600);
    assert.deepEqual(await entries(dir), ["big"]);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("atomicWriteStream: a failing stream leaves the original intact and no temp file", async () => {
  const dir = await tempDir();
  try {
    const p = `${dir}/f`;
    await atomicWriteFile(p, "original");
    await assert.rejects(
      atomicWriteStream(p, streamOf([new Uint8Array([1, 2]), new Uint8Array([3])], 1)),
      /source broke/,
    );
    assert.equal(await Deno.readTextFile(p), "original");
    assert.deepEqual(await entries(dir), ["f"]);
  } finally {
    await removeTree(dir);
  }
});

Deno.test("syncDir fsyncs a directory and reports a missing one", async () => {
  const dir = await tempDir();
  try {
    await syncDir(dir);
    await assert.rejects(syncDir(`${dir}/missing`), Deno.errors.NotFound);
  } finally {
    await removeTree(dir);
  }
});

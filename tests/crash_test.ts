/**
 * Crash safety: a child Deno process putting a large layer (a generated tar
 * announcing a 400 MB file, streamed slowly) is SIGKILLed half-way. The
 * next open — ours, or the reference CLI's — must delete the incomplete
 * layer and leave no orphan directory or file behind, and tell of it as a
 * logrus warning only with --debug, as the reference does.
 * @module
 */

import { join } from "node:path";
import { Store } from "../lib/store/mod.ts";
import { type LogLevel, setLogSink } from "../lib/log.ts";
import { isRoot, referenceCli, removeTree, run, tempDir } from "./helpers.ts";
import { assert, assertEquals, listDir, storeOpts } from "./store_helpers.ts";

const CHILD = new URL("./store_child.ts", import.meta.url).pathname;
const BIG = 400 * 1024 * 1024;

/** A ustar header for one regular file of `size` bytes. */
function fileHeader(name: string, size: number): Uint8Array {
  const enc = new TextEncoder();
  const b = new Uint8Array(512);
  const octal = (off: number, len: number, v: number) =>
    b.set(enc.encode(v.toString(8).padStart(len - 1, "0") + "\0"), off);
  b.set(enc.encode(name), 0);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 1600000000);
  b.fill(0x20, 148, 156);
  b[156] = "0".charCodeAt(0);
  b.set(enc.encode("ustar\x0000"), 257);
  let sum = 0;
  for (const x of b) sum += x;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

/** Whether layers.json at `root` holds a layer flagged incomplete. */
async function hasIncompleteLayer(root: string): Promise<boolean> {
  try {
    const layers = JSON.parse(await Deno.readTextFile(join(root, "g/vfs-layers/layers.json")));
    return layers.some((l: { flags?: { incomplete?: boolean } }) => l.flags?.incomplete === true);
  } catch {
    return false;
  }
}

/**
 * Starts a child putting the big layer, feeds it slowly until the layer's
 * directory holds some data, then SIGKILLs it. Returns the ID of the killed layer.
 */
async function killMidPut(root: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, "put", root, "big"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(fileHeader("./big", BIG));
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  let sent = 0;
  let id = "";
  // Slow: 1 MB every 5 ms, until the driver has written a good part of it.
  while (sent < BIG / 4) {
    await w.write(chunk);
    sent += chunk.length;
    await new Promise((r) => setTimeout(r, 5));
    if (!id && await hasIncompleteLayer(root)) {
      const layers = JSON.parse(await Deno.readTextFile(join(root, "g/vfs-layers/layers.json")));
      id = layers[0].id;
    }
  }
  assert(id, "the child never recorded the incomplete layer");
  const st = await Deno.stat(join(root, "g/vfs/dir", id, "big"));
  assert(st.size > 0, "nothing applied before the kill");
  child.kill("SIGKILL");
  await w.abort().catch(() => {});
  const status = await child.status;
  assertEquals(status.signal, "SIGKILL");
  assert(await hasIncompleteLayer(root));
  return id;
}

async function assertClean(root: string): Promise<void> {
  assertEquals(await listDir(join(root, "g/vfs/dir")), []);
  assertEquals(await listDir(join(root, "g/vfs-layers")), ["layers.json", "layers.lock"]);
  assertEquals(await Deno.readTextFile(join(root, "g/vfs-layers/layers.json")), "[]");
}

Deno.test({
  name: "SIGKILL during a large put: our next open cleans up",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("crash-ours-");
    try {
      const id = await killMidPut(root);
      const logged: [LogLevel, string][] = [];
      const previous = setLogSink((level, msg) => logged.push([level, msg]));
      let s: Store;
      try {
        s = await Store.open(storeOpts(root));
      } finally {
        setLogSink(previous);
      }
      assertEquals(logged, [["warning", `Found incomplete layer "${id}", deleting it`]]);
      assertEquals(await s.layers(), []);
      assert(!(await s.exists(id)));
      await s.shutdown(false);
      await assertClean(root);
    } finally {
      await removeTree(root);
    }
  },
});

Deno.test({
  name: "SIGKILL during a large put: the CLIs' next open cleans up, telling so only with --debug",
  ignore: !isRoot || !referenceCli,
  fn: async () => {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const clis: Record<string, (args: string[]) => ReturnType<typeof run>> = {
      ours: (args) => run(Deno.execPath(), ["run", "-A", cli, ...args]),
      reference: (args) => run(referenceCli!, args),
    };
    for (const [who, cs] of Object.entries(clis)) {
      for (const debug of [[], ["--debug"]]) {
        const what = `${who} ${debug.join("")}`;
        const root = await tempDir("crash-log-");
        try {
          const id = await killMidPut(root);
          const r = await cs([
            "-g",
            join(root, "g"),
            "-R",
            join(root, "r"),
            "-s",
            "vfs",
            ...debug,
            "layers",
          ]);
          assertEquals([r.code, r.stdout], [0, ""], `${what}: ${r.stderr}`);
          // logrus's warning line, shown at the debug level the reference sets with --debug
          const told = r.stderr.split("\n").filter((l) => l.includes("incomplete"));
          const line = `level=warning msg="Found incomplete layer \\"${id}\\", deleting it"`;
          assertEquals(
            told.map((l) =>
              l.replace(/^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)" /, "")
            ),
            debug.length > 0 ? [line] : [],
            what,
          );
          await assertClean(root);
        } finally {
          await removeTree(root);
        }
      }
    }
  },
});

/**
 * Progress on long work: the library's `onProgress` callback (putLayer,
 * applyDiff, diff) gets growing counts that end at the totals; the CLI draws
 * a progress line on stderr under a pseudo-terminal (`script` from
 * util-linux) and erases it, and without a terminal prints exactly what the
 * reference prints.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { Store } from "../lib/store/mod.ts";
import type { Progress } from "../lib/progress.ts";
import { formatBytes, formatDuration, showProgress } from "../lib/cli/progress.ts";
import { MemorySink } from "../lib/cli/io.ts";
import {
  isRoot,
  lookPath,
  notRootReason,
  randomBytes,
  referenceCli,
  run,
  tempDir,
} from "./helpers.ts";
import { dropRoot, ID, makeTarball, newRoot, ours, sameOn, theirs } from "./cli_harness.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { bytesOf, storeOpts } from "./store_helpers.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

/** 41 entries: the root (0755), directories, small files and one of 300 KiB. */
function fixture(): { tar: Uint8Array; entries: number } {
  const entries: FixtureEntry[] = [{ name: "./", type: "5" }, { name: "d/", type: "5" }];
  for (let i = 0; i < 38; i++) entries.push({ name: `d/f${i}`, data: `file ${i}\n` });
  entries.push({ name: "big", data: randomBytes(300 << 10) });
  return { tar: buildTar(entries), entries: entries.length };
}

/** Asserts that the counts only grow and that the last report is `last`. */
function assertProgress(seen: Progress[], last: Progress): void {
  assert.ok(seen.length > 1, `only ${seen.length} reports`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].bytes >= seen[i - 1].bytes, `bytes went back at report ${i}`);
    assert.ok(seen[i].entries >= seen[i - 1].entries, `entries went back at report ${i}`);
  }
  assert.deepEqual(seen.at(-1), last);
}

Deno.test("progress: putLayer, applyDiff and diff report growing counts ending at the totals", async () => {
  const dir = await tempDir("progress-lib-");
  // unprivileged, the layers' root (owner of their files) is the user
  const self = [{ container_id: 0, host_id: Deno.uid()!, size: 1 }];
  const group = [{ container_id: 0, host_id: Deno.gid()!, size: 1 }];
  const store = await Store.open(
    storeOpts(dir, isRoot ? {} : { uidMap: self, gidMap: group }),
  );
  try {
    const { tar, entries } = fixture();
    const gz = new Uint8Array(gzipSync(tar));
    let seen: Progress[] = [];
    const onProgress = (p: Progress) => void seen.push({ ...p });

    // compressed input: bytes as received, the total as the caller gave it
    const { layer } = await store.putLayer({
      diff: streamOf(gz, 8192),
      onProgress,
      expectedSize: gz.length,
    });
    assertProgress(seen, { bytes: gz.length, entries, total: gz.length });

    // no expected size: no total
    seen = [];
    const empty = await store.createLayer({ writeable: true });
    await store.applyDiff(empty.id, streamOf(tar, 8192), { onProgress });
    assertProgress(seen, { bytes: tar.length, entries });

    // the rebuilt tarball: its size is the recorded diff size
    seen = [];
    const out = await bytesOf(await store.diff("", layer.id, { compression: 0, onProgress }));
    assert.deepEqual(out, tar);
    assertProgress(seen, { bytes: tar.length, entries, total: tar.length });
  } finally {
    await store.shutdown(true);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("progress: the line is drawn at most every interval, with rate and ETA, then erased", () => {
  const err = new MemorySink();
  let now = 0;
  const display = showProgress(err, {
    label: "import-layer",
    expectedSize: 4 << 20,
    terminal: true,
    now: () => now,
    columns: 0,
  });
  const report = display.options.onProgress!;
  assert.equal(display.options.expectedSize, 4 << 20);
  for (const [t, bytes] of [[0, 0], [50, 1 << 20], [1000, 1 << 20], [1050, 2 << 20]]) {
    now = t;
    report({ bytes, entries: 3, total: 4 << 20 });
  }
  display.finish();
  display.finish();
  assert.equal(
    err.text,
    [
      "\r\x1b[Kimport-layer: 0 B of 4.0 MiB (0%), 3 entries",
      "\r\x1b[Kimport-layer: 1.0 MiB of 4.0 MiB (25%), 3 entries, 1.0 MiB/s, ETA 3s",
      "\r\x1b[K",
    ].join(""),
  );
});

Deno.test("progress: a line longer than the terminal is cut (a wrapped one could not be erased)", () => {
  const err = new MemorySink();
  const display = showProgress(err, { label: "import-layer", terminal: true, columns: 20 });
  display.options.onProgress!({ bytes: 5 << 20, entries: 1234 });
  display.finish();
  assert.equal(err.text, "\r\x1b[Kimport-layer: 5.0 M\r\x1b[K");
});

Deno.test("progress: a message written meanwhile gets a line of its own; the line comes back", () => {
  const err = new MemorySink();
  let now = 0;
  const display = showProgress(err, { label: "copy", terminal: true, columns: 0, now: () => now });
  const report = display.options.onProgress!;
  report({ bytes: 0, entries: 0 });
  display.err.write("a log line\n");
  now = 10;
  report({ bytes: 0, entries: 1 });
  display.finish();
  assert.equal(
    err.text,
    "\r\x1b[Kcopy: 0 B, 0 entries\r\x1b[Ka log line\n\r\x1b[Kcopy: 0 B, 1 entry\r\x1b[K",
  );
  const quiet = showProgress(err, { label: "copy", terminal: false });
  assert.equal(quiet.err, err);
});

Deno.test("progress: nothing is drawn or counted when stderr is no terminal", () => {
  const err = new MemorySink();
  const display = showProgress(err, { label: "diff", terminal: false });
  assert.equal(display.options.onProgress, undefined);
  display.finish();
  assert.equal(err.text, "");
  // a sink other than the process's stderr is never taken for a terminal
  assert.equal(showProgress(err, { label: "diff" }).options.onProgress, undefined);
});

Deno.test("progress: sizes and durations for people", () => {
  assert.deepEqual(
    [0, 512, 1536, 5 << 20, 3 * 2 ** 30].map(formatBytes),
    ["0 B", "512 B", "1.5 KiB", "5.0 MiB", "3.0 GiB"],
  );
  assert.deepEqual([0.2, 42, 185, 3720].map(formatDuration), ["1s", "42s", "3m05s", "1h02m"]);
});

const script = lookPath("script");

/** Runs `cmd` (a shell line) with stderr on a pseudo-terminal; returns what the terminal got. */
async function underTerminal(cmd: string, code = 0): Promise<string> {
  const r = await run(script!, ["-qec", cmd, "/dev/null"], { env: { TERM: "dumb" } });
  assert.equal(r.code, code, r.stdout + r.stderr);
  return r.stdout;
}

/** A progress line of `label` drawn, then erased as the last thing on the terminal. */
function assertDrawnAndErased(term: string, label: string): void {
  assert.match(term, new RegExp(`\\r\\x1b\\[K${label}: [0-9.]+ [KMG]?i?B.*, \\d+ entr`));
  assert.ok(term.endsWith("\r\x1b[K"), `not erased at the end: ${JSON.stringify(term.slice(-80))}`);
}

Deno.test({
  name:
    "progress: under a pseudo-terminal import-layer, applydiff, diff and copy draw and erase it",
  // the layer's files belong to root
  ignore: !script || !isRoot,
  async fn() {
    const dir = await tempDir("progress-tty-");
    try {
      await Deno.writeFile(`${dir}/l.tar`, fixture().tar);
      await Deno.writeTextFile(`${dir}/hello`, "hello\n");
      const cs = `'${Deno.execPath()}' run -A '${cli}' -g '${dir}/g' -R '${dir}/r' -s vfs`;
      const q = (s: string) => `'${s}'`;
      // stdout goes to a file: what the terminal shows is stderr alone
      const steps: [string, string][] = [
        ["import-layer", `import-layer -i ${ID.base} -f ${q(`${dir}/l.tar`)}`],
        ["applydiff", `create-layer -i ${ID.top} >/dev/null && ${cs} applydiff -f l.tar ${ID.top}`],
        ["diff", `diff -u -f ${q(`${dir}/out.tar`)} ${ID.base}`],
        ["copy", `copy ${q(`${dir}/hello`)} ${ID.top}:/hello`],
      ];
      for (const [label, args] of steps) {
        const term = await underTerminal(`cd ${q(dir)} && ${cs} ${args} > ${q(`${dir}/stdout`)}`);
        assertDrawnAndErased(term, label);
      }
      assert.deepEqual(await Deno.readFile(`${dir}/out.tar`), await Deno.readFile(`${dir}/l.tar`));
      assert.equal(await Deno.readTextFile(`${dir}/stdout`), "", "copy prints nothing");
      // a failure: the line is erased before the error is printed
      await Deno.writeFile(`${dir}/cut.tar`, fixture().tar.subarray(0, 100_000));
      const term = await underTerminal(`cd ${q(dir)} && ${cs} import-layer -f cut.tar`, 1);
      const at = term.lastIndexOf("\r\x1b[K");
      assert.ok(term.slice(0, at).includes("\r\x1b[Kimport-layer: "), JSON.stringify(term));
      assert.match(term.slice(at + 4), /^[^\r]*unexpected EOF\r\n$/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "progress: without a terminal the progress commands print exactly what the reference does",
  ignore: !referenceCli || !isRoot,
  async fn() {
    const [a, b] = [await newRoot("progress-a-"), await newRoot("progress-b-")];
    try {
      const tar = await makeTarball(a.dir, "l", { "etc/motd": "hi\n", "usr/bin/x": "#!/bin/sh\n" });
      const bytes = await Deno.readFile(tar);
      await sameOn(a, b, ["import-layer", "-i", ID.base, "-f", tar]);
      await sameOn(a, b, ["import-layer", "-j", "-i", ID.mid, ID.base], { stdin: bytes });
      await sameOn(a, b, ["create-layer", "-i", ID.top, ID.mid]);
      await sameOn(a, b, ["applydiff", "-f", tar, ID.top]);
      await sameOn(a, b, ["diff", "-u", ID.base]);
      await sameOn(a, b, ["copy", tar, `${ID.top}:/l.tar`]);
      await sameOn(a, b, ["applydiff", "-f", "/nonexistent/nope.tar", ID.top]);
      // the tarball on stdout, byte for byte
      const [r1, r2] = await Promise.all([
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", cli, "-g", a.graph, "-R", a.run, "-s", "vfs", "diff", "-u", ID.base],
          stdout: "piped",
          stderr: "piped",
        }).output(),
        new Deno.Command(referenceCli!, {
          args: ["-g", b.graph, "-R", b.run, "-s", "vfs", "diff", "-u", ID.base],
          stdout: "piped",
          stderr: "piped",
        }).output(),
      ]);
      assert.deepEqual([r1.stdout, r1.stderr], [r2.stdout, r2.stderr]);
      assert.deepEqual(r1.stdout, bytes);
      // ours and theirs are both usable in the other's store afterwards
      assert.equal((await theirs(a, ["layers"])).code, 0);
      assert.equal((await ours(b, ["layers"])).code, 0);
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

if (!isRoot) console.log(`progress tests of the CLI: ${notRootReason}`);

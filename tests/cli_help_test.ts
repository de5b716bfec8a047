/**
 * The CLI's usage texts, flag errors and argument-count errors, compared
 * byte for byte (stdout, stderr, exit code) with the reference CLI.
 */
import assert from "node:assert/strict";
import { commands } from "../lib/cli/commands.ts";
import { referenceCli, run, type RunResult } from "./helpers.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;
const noReference = referenceCli === undefined;
const store = ["-g", "/tmp/cli-help-g", "-R", "/tmp/cli-help-r", "-s", "vfs"];

function ours(args: string[], env?: Record<string, string>): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", cli, ...args], { env });
}

function theirs(args: string[], env?: Record<string, string>): Promise<RunResult> {
  // By name, so that its argv[0] (quoted in its messages) is "containers-storage".
  return run("bash", ["-c", 'exec -a containers-storage "$0" "$@"', referenceCli!, ...args], {
    env,
  });
}

/**
 * The reference's `copy` usage panics (its flag has an empty name): the
 * goroutine dump after the panic message holds addresses that vary, so
 * stderr is compared up to it.
 */
function withoutGoroutines(r: RunResult): RunResult {
  const head = "goroutine 1 [running]:\n";
  const at = r.stderr.indexOf(head);
  return at === -1 ? r : { ...r, stderr: r.stderr.slice(0, at + head.length) };
}

async function same(args: string[]): Promise<void> {
  const [a, b] = await Promise.all([ours(args), theirs(args)]);
  assert.deepEqual(a, withoutGoroutines(b), `output of ${args.join(" ")}`);
}

Deno.test({
  name: "cli help: every command's --help matches the reference",
  ignore: noReference,
  async fn() {
    for (const c of commands.filter((c) => !c.extension)) {
      for (const name of c.names) await same([...store, name, "--help"]);
    }
  },
});

Deno.test({
  name: "cli help: -h, global flags after the command, and --storage-opt defaults",
  ignore: noReference,
  async fn() {
    await same([...store, "layers", "-h"]);
    await same([...store, "--storage-opt", "vfs.ignore_chown_errors=true", "diff", "--help"]);
    await same(["-g", "/tmp/cli-help-g", "layers", "--help"]);
    await same(["-D", ...store, "create-layer", "--storage-opt=a=b", "--help"]);
  },
});

Deno.test({
  name: "cli help: program usage (--help, no arguments, -h, bad flag, flags only)",
  ignore: noReference,
  async fn() {
    for (
      const [args, code] of [
        [["--help"], 0],
        [[], 1],
        [["-h"], 1],
        [["--bogus", "layers"], 1],
        [store, 1],
      ] as const
    ) {
      const [a, b] = await Promise.all([ours([...args]), theirs([...args])]);
      assert.equal(b.code, code);
      assert.deepEqual(withoutExtensions(a, code === 0), b, `output of ${args.join(" ")}`);
    }
  },
});

/**
 * Our program usage is the reference's followed by our own commands under
 * "Extensions:" (on the stream the options went to); checks that part and
 * returns the result without it.
 */
function withoutExtensions(r: RunResult, onStdout: boolean): RunResult {
  const extensions = commands.filter((c) => c.extension);
  const stream = onStdout ? "stdout" : "stderr";
  const text = r[stream];
  if (extensions.length === 0) {
    assert.ok(!text.includes("\nExtensions:\n"), text);
    return r;
  }
  const lines = extensions.map((c) => `  ${c.names[0].padEnd(30)}${c.usage}\n`).join("");
  const block = `\nExtensions:\n\n${lines}`;
  assert.ok(text.endsWith(block), `no Extensions listing at the end of ${text}`);
  // -h prints the usage twice (as the reference does), each with its listing.
  return { ...r, [stream]: text.split(block).join("") };
}

Deno.test({
  name: "cli help: flag and argument errors match the reference",
  ignore: noReference,
  async fn() {
    const cases = [
      ["layers", "--bogus"],
      ["layers", "-q"],
      ["layers", "-jx"],
      ["layers", "-j=maybe"],
      ["diff", "-f"],
      ["layer"],
      ["get-names", "a", "b"],
      ["get-layer-data", "a"],
      ["applydiff", "a", "b"],
      ["status", "extra"],
      ["frobnicate"],
      ["images", "extra"],
      ["images-by-digest"],
      ["images-by-digest", "a", "b"],
      ["image"],
      ["create-image", "a", "b"],
      ["create-container"],
      ["create-container", "a", "b"],
      ["create-container", "--volatile=maybe", "a"],
      ["containers", "-q"],
      ["container"],
      ["list-image-data", "a", "b"],
      ["get-container-data", "a"],
      ["set-image-data", "-f"],
      ["delete-image", "-x", "a"],
      ["container-parent-owners"],
      ["copy", "a"],
      ["copy", "-h"],
      ["copy", "--bogus", "a", "b"],
      ["copy", "--chown"],
    ];
    for (const args of cases) await same([...store, ...args]);
  },
});

Deno.test("cli help: unknown command is reported on stdout with exit 1", async () => {
  const r = await ours([...store, "frobnicate"]);
  assert.deepEqual([r.code, r.stdout, r.stderr], [1, "frobnicate: unrecognized command.\n", ""]);
});

Deno.test("cli help: a command's --help exits 125 with usage on stdout, options on stderr", async () => {
  const r = await ours([...store, "diffsize", "--help"]);
  assert.equal(r.code, 125);
  assert.equal(
    r.stdout,
    "Usage: containers-storage diffsize [options [...]] layerNameOrID [referenceLayerNameOrID]\n\n" +
      "Compare two layers\n\nOptions:\n",
  );
  assert.match(r.stderr, /^\n {2}--debug, -D {2,}Print debugging information\n/);
  assert.match(r.stderr, /--graph, -g=\/tmp\/cli-help-g +Root of the storage tree\n/);
});

// The store paths must be fixed (they appear in the compared help text), so
// the roots the tools create for them are removed once this file's tests end.
Deno.test("cli help: remove the fixed store roots", async () => {
  for (const dir of ["/tmp/cli-help-g", "/tmp/cli-help-r"]) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  await assert.rejects(Deno.stat("/tmp/cli-help-g"), Deno.errors.NotFound);
});

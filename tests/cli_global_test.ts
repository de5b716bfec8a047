/**
 * Global flags of the CLI (--debug, --storage-opt, missing roots) and the
 * storage.conf defaults used when no global flag is given, compared with the
 * reference CLI.
 */
import assert from "node:assert/strict";
import { isRoot, referenceCli, run, type RunResult } from "./helpers.ts";
import { dropRoot, newRoot, ours, sameOnOne, theirs } from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;
const cli = new URL("../cli.ts", import.meta.url).pathname;

function oursBare(args: string[], env: Record<string, string>): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", cli, ...args], { env });
}

function theirsBare(args: string[], env: Record<string, string>): Promise<RunResult> {
  return run("bash", ["-c", 'exec -a containers-storage "$0" "$@"', referenceCli!, ...args], {
    env,
  });
}

Deno.test({
  name: "cli global: --debug prints the reference's first debug lines",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      const head = (r: RunResult) =>
        r.stderr.split("\n").slice(0, 4).map((l) => l.replace(/time="[^"]*"/, "T"));
      const a = await ours(root, ["--storage-opt", "vfs.ignore_chown_errors=true", "-D", "layers"]);
      const b = await theirs(root, [
        "--storage-opt",
        "vfs.ignore_chown_errors=true",
        "-D",
        "layers",
      ]);
      assert.deepEqual(head(a), head(b));
      assert.deepEqual([a.code, a.stdout], [b.code, b.stdout]);
      assert.match(
        a.stderr,
        /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)" level=debug msg="Root: /,
      );
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name: "cli global: --storage-opt reaches status; a store needs a root",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      await sameOnOne(root, ["--storage-opt", "vfs.ignore_chown_errors=true", "status"]);
      await sameOnOne(root, ["status", "-j", "--storage-opt=vfs.ignore_chown_errors=false"]);
      const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
      const [a, b] = [
        await oursBare(["-s", "vfs", "status"], env),
        await theirsBare(["-s", "vfs", "status"], env),
      ];
      assert.deepEqual(a, b);
      assert.equal(
        a.stdout,
        "error initializing: no storage runroot or graphroot specified: missing necessary StoreOptions\n",
      );
    } finally {
      await dropRoot(root);
    }
  },
});

Deno.test({
  name: "cli global: without global flags the defaults come from storage.conf",
  ignore,
  async fn() {
    const root = await newRoot();
    try {
      const conf = `${root.dir}/storage.conf`;
      await Deno.writeTextFile(
        conf,
        `[storage]\ndriver = "vfs"\ngraphroot = "${root.graph}"\nrunroot = "${root.run}"\n` +
          `[storage.options.vfs]\nignore_chown_errors = "true"\n`,
      );
      const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", CONTAINERS_STORAGE_CONF: conf };
      for (const args of [["layers", "--help"], ["status"], ["status", "-j"]]) {
        const [a, b] = [await oursBare(args, env), await theirsBare(args, env)];
        assert.deepEqual(a, b, args.join(" "));
      }
      const created = await oursBare(["create-layer", "-i", "a".repeat(64)], env);
      assert.deepEqual([created.code, created.stdout], [0, `${"a".repeat(64)}\n`]);
      assert.deepEqual(await oursBare(["layers"], env), await theirsBare(["layers"], env));
      assert.equal((await theirs(root, ["layers"])).stdout, `${"a".repeat(64)}\n`);
    } finally {
      await dropRoot(root);
    }
  },
});

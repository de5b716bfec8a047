import assert from "node:assert/strict";
import { run } from "./helpers.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

Deno.test("cli: version prints the package version", async () => {
  const r = await run(Deno.execPath(), ["run", "-A", cli, "version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Version: \d+\.\d+\.\d+/);
});

Deno.test("cli: --help lists commands and exits 0", async () => {
  const r = await run(Deno.execPath(), ["run", "-A", cli, "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: containers-storage command/);
});

Deno.test("cli: unknown command fails with the reference's message on stdout", async () => {
  const r = await run(Deno.execPath(), ["run", "-A", cli, "frobnicate"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "frobnicate: unrecognized command.\n");
});

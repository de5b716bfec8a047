import assert from "node:assert/strict";
import { run } from "./helpers.ts";

const demo = new URL("../demo.ts", import.meta.url).pathname;

Deno.test("demo: builds two layers, mounts the merged tree and rebuilds the diff byte for byte", async () => {
  const r = await run(Deno.execPath(), ["run", "-A", demo]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, / {2}\/etc\/os-release\n/);
  assert.doesNotMatch(r.stdout, / {2}\/etc\/motd\n/, "the whiteout hid motd");
  assert.match(r.stdout, /rebuilt from tar-split: byte-identical/);
  assert.match(r.stdout, /changes of top: M \/etc, D \/etc\/motd, A \/etc\/os-release/);
  const store = r.stdout.match(/^store: (\S+)/)?.[1];
  assert.ok(store);
  await assert.rejects(Deno.stat(store), Deno.errors.NotFound, "the demo removes its store");
});

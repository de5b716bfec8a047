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

Deno.test("cli: a layer linking outside its root is refused naming the entry, and leaves no layer", async () => {
  const { tempDir, removeTree } = await import("./helpers.ts");
  const { writeTar } = await import("../lib/archive/tar_writer.ts");
  const { emptyHeader, TypeFlag } = await import("../lib/archive/tar_header.ts");
  const root = await tempDir();
  try {
    // "..": the target is the layer's own /etc/passwd, which it does not have.
    const header = { ...emptyHeader("hl", TypeFlag.Link), linkname: "../../etc/passwd" };
    const tar = new Uint8Array(await new Response(writeTar([{ header }])).arrayBuffer());
    await Deno.writeFile(`${root}/esc.tar`, tar);
    const cs = ["run", "-A", cli, "-g", `${root}/g`, "-R", `${root}/r`, "-s", "vfs"];
    const r = await run(Deno.execPath(), [...cs, "import-layer", "-f", `${root}/esc.tar`]);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /"hl": parent directory \/etc does not exist/);
    const layers = await run(Deno.execPath(), [...cs, "layers"]);
    assert.equal(layers.code, 0, layers.stderr);
    assert.equal(layers.stdout, "");
  } finally {
    await removeTree(root);
  }
});

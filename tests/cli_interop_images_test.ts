/**
 * Images and containers shared both ways between our CLI and the reference
 * `containers-storage`, on vfs and overlay: what one tool creates (names,
 * metadata, big data with digests, a container whose mounted layer was
 * written to) the other lists, examines and mounts identically, and then
 * deletes, leaving the same layers gone for both.
 */
import assert from "node:assert/strict";
import { isRoot, referenceCli, type RunResult } from "./helpers.ts";
import {
  type CsOpts,
  dropRoot,
  ID,
  makeTarball,
  newRoot,
  ours,
  type Root,
  sameOnOne,
  theirs,
} from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;

type Tool = (root: Root, args: string[], opts?: CsOpts) => Promise<RunResult>;

/** Runs a command that must succeed; returns its stdout. */
async function ok(tool: Tool, root: Root, args: string[], stdin?: string): Promise<string> {
  const r = await tool(root, args, {
    stdin: stdin === undefined ? undefined : new TextEncoder().encode(stdin),
  });
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** With `writer`: two layers, an image with data, a container with data and a written file. */
async function populate(root: Root, writer: Tool): Promise<void> {
  const tar = await makeTarball(root.dir, "l1", { "etc/os": "base\n" });
  await ok(writer, root, ["import-layer", "-i", ID.base, "-n", "base", "-f", tar]);
  await ok(writer, root, ["create-layer", "-i", ID.mid, "base"]);
  await ok(writer, root, ["create-image", "-n", "web", "-n", "web:1", "-m", "image md", ID.mid]);
  await ok(writer, root, ["set-image-data", "web", "manifest"], '{"schemaVersion":2}');
  await ok(writer, root, ["set-image-data", "web", "sha256:config"], "{}");
  await ok(writer, root, ["create-container", "-n", "app", "-n", "app2", "-m", "ctr md", "web"]);
  await ok(writer, root, ["set-container-data", "app", "state"], "running");
  const mountpoint = (await ok(writer, root, ["mount", "app"])).trim();
  await Deno.writeTextFile(`${mountpoint}/written`, "by the writer\n");
  await ok(writer, root, ["unmount", "app"]);
}

/** What the other tool reads, examines, mounts and deletes; the store reads the same to both. */
async function use(root: Root, user: Tool): Promise<void> {
  const manifestDigest = (await ok(user, root, ["get-image-data-digest", "web", "manifest"]))
    .trim();
  for (
    const args of [
      ["images", "-j"],
      ["image", "web:1"],
      ["containers", "-j"],
      ["container", "app2"],
      ["get-image-data", "web", "sha256:config"],
      ["images-by-digest", manifestDigest],
      ["get-container-data", "app", "state"],
      ["layers", "-t"],
    ]
  ) {
    await sameOnOne(root, args);
  }
  const mountpoint = (await ok(user, root, ["mount", "app"])).trim();
  assert.equal(await Deno.readTextFile(`${mountpoint}/written`), "by the writer\n");
  assert.equal(await Deno.readTextFile(`${mountpoint}/etc/os`), "base\n");
  await ok(user, root, ["unmount", "app"]);
  if (root.driver === "overlay") {
    const ro = (await ok(user, root, ["mount", "-r", "web"])).trim();
    assert.equal(await Deno.readTextFile(`${ro}/etc/os`), "base\n");
    await ok(user, root, ["unmount", "web"]);
  }
  const containerLayer = JSON.parse(await ok(user, root, ["containers", "-j"]))[0].layer;
  await ok(user, root, ["delete-container", "app"]);
  const removed = await user(root, ["delete-image", "web"]);
  assert.deepEqual(removed, {
    code: 0,
    stdout: "",
    stderr: `web: ${ID.mid}\nweb: ${ID.base}\n`,
  });
  for (const args of [["images", "-j"], ["containers", "-j"]]) await sameOnOne(root, args);
  assert.equal((await sameOnOne(root, ["layers", "-j"])).stdout, "[]\n");
  for (const gone of [ID.base, ID.mid, containerLayer]) {
    await assert.rejects(Deno.stat(`${root.graph}/${root.driver}/${gone}`));
  }
}

for (const driver of ["vfs", "overlay"]) {
  for (const [writer, user, who] of [[ours, theirs, "us"], [theirs, ours, "the reference"]]) {
    Deno.test({
      name:
        `cli interop (${driver}): images and containers written by ${who} are used by the other`,
      ignore,
      async fn() {
        const root = await newRoot("cli-interop-", driver);
        try {
          await populate(root, writer as Tool);
          await use(root, user as Tool);
        } finally {
          await dropRoot(root);
        }
      },
    });
  }
}

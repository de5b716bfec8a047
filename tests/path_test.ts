/**
 * lib/path.ts gives the same results as node:path's POSIX functions, on
 * generated paths full of the awkward parts (empty, "//", ".", "..",
 * trailing slashes), relative and absolute.
 */
import assert from "node:assert/strict";
import * as node from "node:path";
import * as ours from "../lib/path.ts";

const ATOMS = [
  "",
  "/",
  "//",
  ".",
  "..",
  "a",
  "b",
  "a/",
  "/a",
  "a//b",
  "../x",
  "./y/",
  "c/..",
  "/..",
];

/** A deterministic stream of paths made of 1–4 atoms. */
function* paths(count: number): Generator<string> {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(next() * 4);
    yield Array.from({ length: n }, () => ATOMS[Math.floor(next() * ATOMS.length)]).join("");
  }
}

Deno.test("path: normalize, join, resolve, dirname, basename and relative match node:path", () => {
  const all = [...paths(6000)];
  for (let i = 0; i + 2 < all.length; i += 3) {
    const [x, y, z] = all.slice(i, i + 3);
    const at = JSON.stringify([x, y, z]);
    assert.equal(ours.normalize(x), node.normalize(x), `normalize ${at}`);
    assert.equal(ours.join(x, y, z), node.join(x, y, z), `join ${at}`);
    assert.equal(ours.join(), node.join(), "join()");
    assert.equal(ours.resolve(x, y), node.resolve(x, y), `resolve ${at}`);
    assert.equal(ours.dirname(x), node.dirname(x), `dirname ${at}`);
    assert.equal(ours.basename(x), node.basename(x), `basename ${at}`);
    assert.equal(ours.relative(x, y), node.relative(x, y), `relative ${at}`);
  }
});

Deno.test("path: the common cases", () => {
  assert.equal(
    ours.join("/var/lib/containers/storage", "vfs-layers"),
    "/var/lib/containers/storage/vfs-layers",
  );
  assert.equal(ours.dirname("/run/x/storage.lock"), "/run/x");
  assert.equal(ours.basename("/run/x/layers.json"), "layers.json");
  assert.equal(ours.resolve("/g/", "../r"), "/r");
  assert.equal(ours.relative("/a/b", "/a/c/d"), "../c/d");
});

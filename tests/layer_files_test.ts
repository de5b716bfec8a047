/**
 * LayerFiles opens a layer's files by entry name as SafeRoot resolves them
 * (chroot semantics at the layer: symlinked parents followed inside it,
 * absolute targets and `..` kept in), in one openat2 call, and fails as the
 * SafeRoot path fails: the same file for every name, the same error kind
 * for every bad one, and nothing outside the layer ever opened.
 */

import assert from "node:assert/strict";
import { LayerFiles } from "../lib/archive/layer_files.ts";
import { SafeRoot } from "../lib/archive/safe_path.ts";
import { RawFile } from "../ffi/file.ts";
import { O_NOFOLLOW, O_RDONLY } from "../ffi/libc.ts";
import { removeTree, tempDir } from "./helpers.ts";

function readAll(f: RawFile): string {
  const buf = new Uint8Array(256);
  const n = f.read(buf);
  f.close();
  return new TextDecoder().decode(buf.subarray(0, n));
}

/** What the slow path gives: the file's content, or the error's class and code. */
function viaSafeRoot(root: string, name: string): string {
  try {
    return readAll(RawFile.open(new SafeRoot(root).entryPath(name), O_RDONLY | O_NOFOLLOW));
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as { code?: string }).code ?? ""}`;
  }
}

function viaLayerFiles(files: LayerFiles, name: string): string {
  try {
    return readAll(files.open(name));
  } catch (e) {
    return `${(e as Error).constructor.name} ${(e as { code?: string }).code ?? ""}`;
  }
}

Deno.test("layer files: every name opens what SafeRoot resolves, or fails as it does, and never leaves the layer", async () => {
  const dir = await tempDir("layer-files-");
  try {
    const root = `${dir}/layer`;
    Deno.mkdirSync(`${root}/usr/lib`, { recursive: true });
    Deno.mkdirSync(`${root}/etc`);
    Deno.writeTextFileSync(`${root}/usr/lib/os-release`, "inside\n");
    Deno.writeTextFileSync(`${root}/etc/passwd`, "layer passwd\n");
    Deno.writeTextFileSync(`${dir}/secret`, "outside\n");
    Deno.mkdirSync(`${dir}/outdir`);
    Deno.writeTextFileSync(`${dir}/outdir/passwd`, "outside passwd\n");
    Deno.symlinkSync("usr/lib", `${root}/lib`); // relative, inside
    Deno.symlinkSync("/usr/lib", `${root}/abslib`); // absolute: the layer's /usr/lib
    Deno.symlinkSync("../../outdir", `${root}/usr/up`); // climbs: stops at the layer's root
    Deno.symlinkSync(`${dir}/outdir`, `${root}/hostdir`); // a host path: taken inside the layer
    Deno.symlinkSync("/etc", `${root}/etcl`);
    Deno.symlinkSync("os-release", `${root}/usr/lib/final-link`); // a final symlink: refused
    Deno.symlinkSync("loop2", `${root}/loop1`);
    Deno.symlinkSync("loop1", `${root}/loop2`);
    const names = [
      "./usr/lib/os-release",
      "usr/lib/os-release",
      "/usr/lib/os-release",
      "./usr//lib/./os-release",
      "../../usr/lib/os-release",
      "lib/os-release",
      "abslib/os-release",
      "usr/up/passwd",
      "usr/up/../etc/passwd",
      "hostdir/passwd",
      "etcl/passwd",
      "usr/lib/final-link",
      "usr/lib/missing",
      "missing/dir/file",
      "usr/lib/os-release/under-a-file",
      "loop1/x",
      "./",
    ];
    const files = new LayerFiles(root);
    try {
      for (const name of names) {
        const got = viaLayerFiles(files, name);
        assert.equal(got, viaSafeRoot(root, name), name);
        assert.ok(!got.includes("outside"), `${name} opened a file outside the layer`);
      }
      assert.equal(viaLayerFiles(files, "./usr/lib/os-release"), "inside\n");
      assert.equal(viaLayerFiles(files, "etcl/passwd"), "layer passwd\n");
      assert.match(viaLayerFiles(files, "usr/lib/final-link"), /ELOOP/);
      assert.match(viaLayerFiles(files, "missing/dir/file"), /ErrBadArchive/);
    } finally {
      files.close();
    }
    files.close(); // idempotent
    assert.equal(viaLayerFiles(files, "lib/os-release"), "inside\n", "reopens after close");
    files.close();
  } finally {
    await removeTree(dir);
  }
});

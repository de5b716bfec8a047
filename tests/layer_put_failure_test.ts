/**
 * putLayer failures, on vfs and overlay (issue 9, defect 1): a corrupt
 * compressed stream, a tar the parser refuses half-way, a name the file
 * system refuses and an input that fails to be read each reject with a
 * typed StorageError, and leave no layer record, no layer directory, no
 * tar-split and no temporary file.
 * @module
 */

import assert from "node:assert/strict";
import { constants, zstdCompressSync } from "node:zlib";
import { ErrBadArchive, StorageError } from "../lib/errors.ts";
import type { Store } from "../lib/store/mod.ts";
import { isRoot, pathsBelow, randomBytes, withStore } from "./helpers.ts";
import { buildTar } from "./tar_fixtures.ts";

/** A tar whose zstd form spans many blocks: text that compresses, and noise. */
function layerTar(): Uint8Array {
  return buildTar([
    { name: "./", type: "5" },
    { name: "./a.txt", data: "hello layer\n".repeat(40_000) },
    { name: "./noise", data: randomBytes(200_000) },
    { name: "./z.txt", data: "last\n" },
  ]);
}

function streamOf(bytes: Uint8Array, fail?: Error): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(ctl) {
      if (fail && at > bytes.length / 2) return ctl.error(fail);
      if (at >= bytes.length) return ctl.close();
      ctl.enqueue(bytes.slice(at, at + 8192));
      at += 8192;
    },
  });
}

/** Puts `diff` as a new layer, expects a StorageError and returns it, after checking nothing is left. */
async function failedPut(
  s: Store,
  root: string,
  diff: ReadableStream<Uint8Array>,
): Promise<StorageError> {
  const before = [pathsBelow(root), await s.layers()];
  const e = await s.putLayer({ diff }).then(() => undefined, (e) => e);
  assert.ok(e instanceof StorageError, `a typed error, got ${e}`);
  assert.doesNotMatch(e.message, /\n/);
  assert.deepEqual([pathsBelow(root), await s.layers()], before, "nothing left behind");
  return e;
}

for (const driver of ["vfs", "overlay"]) {
  Deno.test({
    name: `putLayer (${driver}): every failure is a typed error and leaves nothing`,
    ignore: !isRoot,
    async fn() {
      await withStore(driver, async (s, root) => {
        // a layer to put the others on, so that a failure has something to leave alone
        const base = await s.putLayer({ diff: streamOf(buildTar([{ name: "./b", data: "b" }])) });
        const tar = layerTar();

        // with a checksum, as the zstd tool writes: a byte flipped in a raw block is found
        const zst = zstdCompressSync(tar, { params: { [constants.ZSTD_c_checksumFlag]: 1 } });
        zst[Math.floor(zst.length / 2)] ^= 0xff;
        const corrupt = await failedPut(s, root, streamOf(zst));
        assert.ok(corrupt instanceof ErrBadArchive, corrupt.message);
        assert.match(corrupt.message, /invalid zstd data/);

        const cut = await failedPut(s, root, streamOf(zstdCompressSync(tar).subarray(0, 5000)));
        assert.match(cut.message, /truncated zstd data: unexpected EOF$/);

        // a valid entry, then a block that is no header
        const garbage = tar.slice(0, 2048 + 512);
        garbage.fill(0x41, 2048);
        const bad = await failedPut(s, root, streamOf(garbage));
        assert.ok(bad instanceof ErrBadArchive, bad.message);

        const long = buildTar([{ name: "./ok", data: "ok" }, { name: "x".repeat(300), data: "x" }]);
        const fsError = await failedPut(s, root, streamOf(long));
        assert.ok(!(fsError instanceof ErrBadArchive), "the file system, not the archive, refused");
        assert.match(fsError.message, /name too long/i);

        const reset = new Error("connection reset by peer");
        const readError = await failedPut(s, root, streamOf(tar, reset));
        assert.equal(readError.cause, reset);

        assert.deepEqual((await s.layers()).map((l) => l.id), [base.layer.id]);
      });
    },
  });
}

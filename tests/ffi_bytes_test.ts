/**
 * File names that are not UTF-8 through the libc bindings: every call that
 * takes a path passes its bytes (lib/os_string.ts), listings and link
 * targets come back losslessly, and failures are SyscallErrors naming the
 * path. Checked against ls(1), which sees the real bytes.
 * @module
 */

import assert from "node:assert/strict";
import { removeTree, tempDir } from "./helpers.ts";
import { SyscallError } from "../ffi/errors.ts";
import { listDir, removeAll } from "../ffi/dirent.ts";
import { RawFile } from "../ffi/file.ts";
import {
  chmod,
  lgetxattr,
  link,
  llistxattr,
  lsetxattr,
  lstatIfExists,
  lstatNs,
  mkdir,
  readlink,
  symlink,
  unlink,
} from "../ffi/fs.ts";
import { cpath, cstr, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY } from "../ffi/libc.ts";
import { decodeOsString } from "../lib/os_string.ts";

const enc = new TextEncoder();
/** The bytes ff fe, a lead byte alone and an encoded surrogate, as names. */
const FFFE = decodeOsString(new Uint8Array([0xff, 0xfe]));
const LEAD = decodeOsString(new Uint8Array([0x61, 0xc3]));
const SURROGATE = decodeOsString(new Uint8Array([0xed, 0xa0, 0x80]));

/** What ls(1) lists below `dir` (a UTF-8 path: Deno's argv cannot carry other bytes). */
async function ls(dir: string): Promise<string> {
  const out = await new Deno.Command("ls", { args: ["-1bAR", "."], cwd: dir, env: { LC_ALL: "C" } })
    .output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test("ffi bytes: names that are not UTF-8 are created, listed and read as their bytes", async () => {
  const dir = await tempDir("ffi-bytes-");
  try {
    mkdir(`${dir}/${FFFE}`, 0o755);
    const f = RawFile.open(`${dir}/${FFFE}/${LEAD}`, O_WRONLY | O_CREAT | O_EXCL, 0o600);
    f.writeAll(enc.encode("hello"));
    f.pwriteAll(enc.encode("J"), 0);
    f.truncate(4);
    f.close();
    chmod(`${dir}/${FFFE}/${LEAD}`, 0o640);
    link(`${dir}/${FFFE}/${LEAD}`, `${dir}/${SURROGATE}`);
    symlink(`${FFFE}/${LEAD}`, `${dir}/l${FFFE}`);
    lsetxattr(`${dir}/${SURROGATE}`, `user.${FFFE}`, enc.encode("v"));

    assert.equal(
      await ls(dir),
      ".:\nl\\377\\376\n\\355\\240\\200\n\\377\\376\n\n./\\377\\376:\na\\303\n",
    );
    assert.deepEqual(listDir(dir).map((e) => e.name).sort(), [`l${FFFE}`, SURROGATE, FFFE].sort());
    assert.equal(readlink(`${dir}/l${FFFE}`), `${FFFE}/${LEAD}`);
    assert.deepEqual(llistxattr(`${dir}/${SURROGATE}`), [`user.${FFFE}`]);
    assert.deepEqual(lgetxattr(`${dir}/${SURROGATE}`, `user.${FFFE}`), enc.encode("v"));
    const st = lstatNs(`${dir}/${SURROGATE}`);
    assert.equal(st.nlink, 2);
    assert.equal(st.mode & 0o7777, 0o640);
    const r = RawFile.open(`${dir}/l${FFFE}`, O_RDONLY); // through the symlink
    const buf = new Uint8Array(16);
    assert.equal(new TextDecoder().decode(buf.subarray(0, r.read(buf))), "Jell");
    assert.equal(r.read(buf), 0);
    r.close();

    unlink(`${dir}/${SURROGATE}`);
    removeAll(`${dir}/${FFFE}`);
    removeAll(`${dir}/${FFFE}`); // gone already: not an error
    assert.equal(lstatIfExists(`${dir}/${FFFE}`), null);
    assert.equal(await ls(dir), ".:\nl\\377\\376\n");
  } finally {
    await removeTree(dir);
  }
});

Deno.test("ffi bytes: failures are SyscallErrors with the errno and the path", async () => {
  const dir = await tempDir("ffi-bytes-");
  try {
    const missing = `${dir}/${FFFE}/x`;
    for (
      const [call, syscall, code] of [
        [() => mkdir(missing, 0o755), "mkdir", "ENOENT"],
        [() => RawFile.open(missing, O_RDONLY), "open", "ENOENT"],
        [() => readlink(dir), "readlink", "EINVAL"],
        [() => link(dir, `${dir}/d`), "link", "EPERM"],
        [() => unlink(dir), "unlink", "EISDIR"],
        [() => listDir(missing), "open", "ENOENT"],
      ] as const
    ) {
      assert.throws(call, (e) => {
        assert.ok(e instanceof SyscallError, String(e));
        assert.equal(e.syscall, syscall);
        assert.equal(e.code, code);
        assert.ok(e.path === missing || e.path === dir || e.path === `${dir}/d`, e.path);
        return true;
      });
    }
  } finally {
    await removeTree(dir);
  }
});

Deno.test("ffi: cpath gives the same bytes as cstr (ASCII by hand, anything else encoded), NUL-terminated", () => {
  const upTo = (b: Uint8Array) => b.subarray(0, b.indexOf(0) + 1);
  for (
    const s of [
      "",
      "/var/lib/containers/storage/overlay/abc/diff/usr/bin/env",
      "caf\u00e9/\u{1F600}",
      decodeOsString(new Uint8Array([0x66, 0xff, 0x2f, 0x80])), // not UTF-8
      "x".repeat(5000), // longer than the kernel takes: a fresh copy all the same
    ]
  ) {
    assert.deepEqual(upTo(cpath(s)), cstr(s), JSON.stringify(s.slice(0, 20)));
  }
  const first = cpath("/a/longer/path");
  cpath("/b");
  assert.deepEqual(upTo(first), enc.encode("/b\0"), "one buffer, valid until the next call");
});

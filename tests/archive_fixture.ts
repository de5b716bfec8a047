/**
 * Test fixtures for the archive tests: a directory tree exercising every
 * tar feature layers use, and GNU tar runs over it.
 * @module
 */

import { run } from "./helpers.ts";

/** A name longer than 255 bytes in total (components stay under NAME_MAX). */
export const LONG_DIR = "d".repeat(120) + "/" + "e".repeat(120);
/** A file name component over 100 bytes. */
export const LONG_FILE = "f".repeat(150);

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Fills `root` with long names (>100 and >255 bytes), hard links, symlinks
 * (one with a long target), xattrs, char/block devices, a FIFO, empty and
 * sparse-looking files, setuid/sticky modes, odd owners and characters that
 * JSON escapes. Needs root for devices and chown.
 */
export async function makeTree(root: string): Promise<void> {
  const enc = new TextEncoder();
  await Deno.mkdir(`${root}/${LONG_DIR}`, { recursive: true });
  await Deno.writeFile(`${root}/${LONG_DIR}/${LONG_FILE}`, enc.encode("long\n".repeat(300)));
  await Deno.writeFile(`${root}/hello.txt`, enc.encode("hello\n"));
  await Deno.link(`${root}/hello.txt`, `${root}/hardlink`);
  await Deno.symlink("hello.txt", `${root}/symlink`);
  await Deno.symlink(`${LONG_DIR}/${LONG_FILE}`, `${root}/longlink`);
  await Deno.writeFile(`${root}/empty`, new Uint8Array(0));
  const sparse = await Deno.open(`${root}/sparse`, { create: true, write: true });
  await sparse.truncate(1 << 20);
  await sparse.seek(500_000, Deno.SeekMode.Start);
  await sparse.write(enc.encode("data in the middle"));
  sparse.close();
  await Deno.writeFile(`${root}/a<b>&c "q".txt`, enc.encode("escape me\n"));
  await Deno.writeFile(`${root}/setuid`, enc.encode("#!/bin/sh\n"), { mode: 0o755 });
  await Deno.chmod(`${root}/setuid`, 0o4755);
  await Deno.mkdir(`${root}/sticky`);
  await Deno.chmod(`${root}/sticky`, 0o1777);
  await Deno.writeFile(`${root}/owned`, enc.encode("owned\n"));
  await Deno.chown(`${root}/owned`, 1234, 5678);
  await sh("setfattr", ["-n", "user.greeting", "-v", "hi", `${root}/hello.txt`]);
  await sh("setfattr", ["-n", "user.bin", "-v", "0x00ff10", `${root}/owned`]);
  await sh("mknod", [`${root}/chardev`, "c", "1", "3"]);
  await sh("mknod", [`${root}/blockdev`, "b", "7", "200"]);
  await sh("mkfifo", [`${root}/fifo`]);
  await sh("touch", ["-h", "-d", "@1700000000.123456789", `${root}/hello.txt`]);
}

/** Runs GNU tar to archive `dir` (as "./…" names) into `out` with extra options. */
export async function gnuTar(dir: string, out: string, opts: string[] = []): Promise<void> {
  await sh("tar", [...opts, "-cf", out, "-C", dir, "."]);
}

/** Extracts `tar` into `dir` with GNU tar (xattrs included). */
export async function gnuUntar(tar: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await sh("tar", ["--xattrs", "--xattrs-include=*", "-xpf", tar, "-C", dir]);
}

/** Bytes of a stream, concatenated. */
export async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A ReadableStream over `bytes`, split into chunks of `size` (default: one chunk). */
export function streamOf(bytes: Uint8Array, size = bytes.length || 1): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(ctl) {
      if (i >= bytes.length) return ctl.close();
      ctl.enqueue(bytes.subarray(i, i + size));
      i += size;
    },
  });
}

/** sha256 hex of bytes. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const { createHash } = await import("node:crypto");
  return createHash("sha256").update(bytes).digest("hex");
}

/** Concatenation of byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Shared test utilities: temporary roots, the reference CLI as an oracle,
 * and the root check that privileged tests use to skip with a reason.
 * @module
 */

import { Store } from "../lib/store/mod.ts";
import { storeOpts } from "./store_helpers.ts";

/** True when the tests run as root (mount, mknod, chown tests need it). */
export const isRoot: boolean = Deno.uid() === 0;

/** Reason printed by privileged tests that skip. */
export const notRootReason = "skipped: needs root (mount/mknod/chown)";

/**
 * The first executable `cmd` in `dirs` (by default PATH's), as Go's
 * exec.LookPath finds it, or undefined.
 */
export function lookPath(
  cmd: string,
  dirs: string[] = (Deno.env.get("PATH") ?? "/usr/bin").split(":"),
): string | undefined {
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const st = Deno.statSync(`${dir}/${cmd}`);
      if (st.isFile && (st.mode! & 0o111) !== 0) return `${dir}/${cmd}`;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Path of the reference `containers-storage` CLI, or undefined if not installed. */
export const referenceCli: string | undefined = lookPath("containers-storage");

/** Creates a temporary directory; the caller removes it with {@linkcode removeTree}. */
export async function tempDir(prefix = "cstest-"): Promise<string> {
  return await Deno.makeTempDir({ prefix });
}

/**
 * A copy of the checkout (without .git) in a 0755 temporary directory, so
 * that another user can read it even when the checkout sits in a directory
 * only root may enter (as CI's 0700 temporary clone does).
 */
export async function checkoutCopy(): Promise<{ dir: string; src: string }> {
  const checkout = new URL("..", import.meta.url).pathname;
  const dir = await tempDir("checkout-copy-");
  await Deno.chmod(dir, 0o755);
  const src = `${dir}/src`;
  await Deno.mkdir(src);
  await Deno.chmod(src, 0o755);
  for await (const e of Deno.readDir(checkout)) {
    if (e.name === ".git") continue;
    const r = await run("cp", ["-a", `${checkout}${e.name}`, `${src}/`]);
    if (r.code !== 0) throw new Error(`copying the checkout: ${r.stderr}`);
  }
  return { dir, src };
}

/**
 * Removes a tree, first detaching any mounts below it (the overlay driver
 * bind-mounts its home onto itself, and tests may leave layers mounted).
 */
export async function removeTree(path: string): Promise<void> {
  const mounts = (await Deno.readTextFile("/proc/self/mountinfo"))
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((m) => m && (m === path || m.startsWith(path + "/")))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    await new Deno.Command("umount", { args: ["-l", m], stderr: "null" }).output();
  }
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

/** `n` random bytes (getRandomValues fills at most 64 KiB a call): data that does not compress. */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(b.subarray(i, i + 65_536));
  return b;
}

/** Every path below `dir`, sorted: what a failed command must leave unchanged. */
export function pathsBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of Deno.readDirSync(`${dir}${rel}`)) {
      out.push(`${rel}/${e.name}`);
      if (e.isDirectory) walk(`${rel}/${e.name}`);
    }
  };
  walk("");
  return out.sort();
}

/** Result of running a command. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
}

/** Runs a command with optional stdin bytes and returns its output. */
export async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: Uint8Array; env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: opts.env,
    cwd: opts.cwd,
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Runs the reference CLI against a store (`-g graph -R run -s driver`) and
 * throws with its stderr when it fails. `env` adds to the environment (for
 * example CONTAINERS_STORAGE_CONF, see {@linkcode writeStorageConf}).
 */
export async function reference(
  root: { graph: string; run: string; driver: string },
  args: string[],
  opts: { stdin?: Uint8Array; env?: Record<string, string> } = {},
): Promise<RunResult> {
  if (!referenceCli) throw new Error("reference containers-storage CLI is not installed");
  const r = await run(referenceCli, [
    "-g",
    root.graph,
    "-R",
    root.run,
    "-s",
    root.driver,
    ...args,
  ], opts);
  if (r.code !== 0) {
    throw new Error(`containers-storage ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  }
  return r;
}

/** sha256 hex of a file, computed by streaming. */
export async function sha256File(path: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  const h = createHash("sha256");
  const f = await Deno.open(path);
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("hex");
}

/**
 * Writes a storage.conf naming only this store (driver, graph root, run
 * root) to `path`, so that tools pointed at it with CONTAINERS_STORAGE_CONF
 * ignore the machine's /etc/containers/storage.conf (mount programs,
 * additional image stores, options of the user's own setup).
 * @returns the environment entry to pass to the tools
 */
export async function writeStorageConf(
  path: string,
  root: { graph: string; run: string; driver: string },
): Promise<Record<string, string>> {
  await Deno.writeTextFile(
    path,
    `[storage]\ndriver = ${JSON.stringify(root.driver)}\n` +
      `graphroot = ${JSON.stringify(root.graph)}\nrunroot = ${JSON.stringify(root.run)}\n`,
  );
  return { CONTAINERS_STORAGE_CONF: path };
}

/** Opens a fresh store with `driver` in a temp dir, runs `fn`, then shuts it down and removes it. */
export async function withStore(
  driver: string,
  fn: (s: Store, root: string) => Promise<void>,
): Promise<void> {
  const root = await tempDir(`store-${driver}-`);
  const s = await Store.open(storeOpts(root, { graphDriverName: driver }));
  try {
    await fn(s, root);
  } finally {
    await s.shutdown(true).catch(() => {});
    await removeTree(root);
  }
}

/**
 * A listing of the tree below `dir` to compare two applies of one layer:
 * every entry with its type, mode, owner, size, link count, link target
 * and (for files and symlinks: directories may be made implicitly and
 * overlay's whiteout devices are made at the time of the apply) mtime; the
 * numbers of every device; a sha256 of every regular file; and every xattr
 * but the kernel's overlay bookkeeping
 * (which differs from mount to mount). Names are raw bytes (decoded as
 * latin1, so different bytes never compare equal).
 */
export async function layerTree(dir: string): Promise<string> {
  const script = `cd "$0" && ` +
    `find . -mindepth 1 \\( -type f -o -type l \\) -printf '%p %y %m %U %G %s %n %l %T@\\0' -o ` +
    `-printf '%p %y %m %U %G %s %n\\0' | LC_ALL=C sort -z | tr '\\0' '\\n' && ` +
    `find . \\( -type b -o -type c \\) -print0 | LC_ALL=C sort -z | xargs -0 -r stat -c '%n %t:%T' && ` +
    `find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum && ` +
    `{ LC_ALL=C getfattr -R -h -d -m - -e hex . 2>/dev/null | ` +
    `LC_ALL=C sed -E '/^trusted.overlay.(uuid|origin|impure)=/d'; true; }`;
  const out = await new Deno.Command("bash", { args: ["-c", script, dir], stderr: "piped" })
    .output();
  if (out.code !== 0) {
    throw new Error(`listing ${dir} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder("latin1").decode(out.stdout);
}

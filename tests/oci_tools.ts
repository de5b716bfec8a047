/**
 * The real tools built on containers/image (skopeo 1.9, podman 4.3) as the
 * interop tests run them: pointed at files of the test (storage.conf,
 * registries.conf, containers.conf, policy.json, runtime and temporary
 * directories), so the machine's or the user's configuration does not
 * change what they do, and with the podman flags this machine needs
 * (runc, cgroupfs, no events, no network, ulimits within the hard limits).
 * @module
 */

import { join } from "node:path";
import { lookPath, run, type RunResult, writeStorageConf } from "./helpers.ts";

/** PATH for finding and running the tools (runc included). */
export const TOOL_PATH = [
  ...(Deno.env.get("PATH") ?? "").split(":"),
  "/usr/sbin",
  "/sbin",
  "/usr/bin",
  "/bin",
];
/** skopeo, if installed. */
export const skopeo: string | undefined = lookPath("skopeo", TOOL_PATH);
/** podman, if installed. */
export const podman: string | undefined = lookPath("podman", TOOL_PATH);
/** runc, if installed. */
export const runc: string | undefined = lookPath("runc", TOOL_PATH);

/** A store's driver and roots. */
export interface StoreRoots {
  /** Graph root. */
  graph: string;
  /** Run root. */
  run: string;
  /** Driver. */
  driver: string;
}

/** A store's roots under `root`, as storeOpts lays them out. */
export function rootsOf(root: string, driver: string): StoreRoots {
  return { graph: join(root, "g"), run: join(root, "r"), driver };
}

/** `containers-storage:[driver@graph+run]name`, the transport naming this store. */
export function storageRef(root: string, driver: string, name: string): string {
  const r = rootsOf(root, driver);
  return `containers-storage:[${driver}@${r.graph}+${r.run}]${name}`;
}

/**
 * The environment of the tools: configuration files of the test's own
 * (an empty registries.conf and containers.conf, a storage.conf naming
 * `store`, a policy accepting anything), runtime and temporary directories
 * under `dir`, and a PATH that has runc.
 */
export async function toolEnv(dir: string, store: StoreRoots): Promise<Record<string, string>> {
  await Deno.mkdir(dir, { recursive: true });
  for (const d of ["xdg", "tmp", "config", "registries.d", "networks"]) {
    await Deno.mkdir(join(dir, d), { recursive: true, mode: 0o700 });
  }
  await Deno.writeTextFile(join(dir, "registries.conf"), "");
  await Deno.writeTextFile(join(dir, "containers.conf"), "");
  await Deno.writeTextFile(
    join(dir, "policy.json"),
    '{"default":[{"type":"insecureAcceptAnything"}]}',
  );
  return {
    ...(await writeStorageConf(join(dir, "storage.conf"), store)),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    CONTAINERS_CONF: join(dir, "containers.conf"),
    XDG_RUNTIME_DIR: join(dir, "xdg"),
    XDG_CONFIG_HOME: join(dir, "config"),
    TMPDIR: join(dir, "tmp"),
    PATH: TOOL_PATH.join(":"),
  };
}

/** Runs a tool and fails with its output when it fails. */
export async function tool(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<RunResult> {
  const r = await run(cmd, args, { env });
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** skopeo with the test's policy and registries.d (`dir` is toolEnv's). */
export function skopeoCmd(
  dir: string,
  env: Record<string, string>,
  ...args: string[]
): Promise<RunResult> {
  return tool(skopeo!, [
    "--policy",
    join(dir, "policy.json"),
    "--registries.d",
    join(dir, "registries.d"),
    ...args,
  ], env);
}

/** `skopeo copy` with the test's policy and registries.d. */
export function skopeoCopy(
  dir: string,
  env: Record<string, string>,
  from: string,
  to: string,
): Promise<RunResult> {
  return skopeoCmd(dir, env, "copy", "--quiet", from, to);
}

/** podman's global flags on one store and the flags `create`/`run` need on this machine. */
export function podmanCmd(
  dir: string,
  store: StoreRoots,
): { global: string[]; runFlags: string[] } {
  const global = [
    "--root",
    store.graph,
    "--runroot",
    store.run,
    "--storage-driver",
    store.driver,
    "--tmpdir",
    join(dir, "tmp"),
    "--network-config-dir",
    join(dir, "networks"),
    "--runtime",
    runc!,
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "none",
  ];
  const runFlags = [
    "--network",
    "none",
    "--pull=never",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
  ];
  return { global, runFlags };
}

/** Prints a file with the shell's builtins only (an image may have no cat). */
export const catScript = (path: string): string =>
  `while IFS= read -r l; do echo "$l"; done < ${path}`;

/**
 * Storage drivers: the contract between the layer store and a driver (a
 * driver owns the bytes of each layer on disk and how to mount them), and
 * the registry that loads a driver by name — only the driver asked for is
 * loaded — or picks one as containers/storage does when none is configured.
 * The drivers are `overlay` (alias `overlay2`) and `vfs`.
 *
 * Permissions: `--allow-ffi` (libc: mounts, ownership, xattrs, device
 * nodes), `--allow-read` and `--allow-write` for the driver's home and run
 * home; overlay also `--allow-run` for a configured `mount_program` and for
 * `unshare` (ID-mapped mounts). Mounting needs root (or a mount program).
 *
 * @example
 * ```ts
 * import { ChangeKind, driverNames, loadDriver } from "@denostore/storage/drivers";
 * import { emptyHeader, TypeFlag, writeTar } from "@denostore/storage/archive";
 *
 * if (!driverNames().includes("vfs")) throw new Error("no vfs driver");
 * // Root in the layer is the current user, so that this runs unprivileged too.
 * const mappings = {
 *   uidMap: [{ container_id: 0, host_id: Deno.uid() ?? 0, size: 1 }],
 *   gidMap: [{ container_id: 0, host_id: Deno.gid() ?? 0, size: 1 }],
 * };
 * const root = await Deno.makeTempDir();
 * const driver = await loadDriver("vfs", {
 *   home: `${root}/vfs`,
 *   runHome: `${root}/run`,
 *   options: [],
 *   idMappings: mappings,
 * });
 * try {
 *   const id = "a".repeat(64);
 *   await driver.create(id, "");
 *   const data = new TextEncoder().encode("hi\n");
 *   const diff = writeTar([
 *     { header: { ...emptyHeader("./", TypeFlag.Dir), mode: 0o755 } }, // the layer's root
 *     { header: { ...emptyHeader("hello.txt"), mode: 0o644, size: data.length }, body: [data] },
 *   ]);
 *   await driver.applyDiff(id, "", { diff, mappings });
 *   const rootfs = await driver.get(id);
 *   if (await Deno.readTextFile(`${rootfs}/hello.txt`) !== "hi\n") throw new Error("not applied");
 *   await driver.put(id);
 *   const changes = await driver.changes(id, mappings, "", undefined, "");
 *   if (changes[0]?.kind !== ChangeKind.Add) throw new Error("no change");
 *   await driver.remove(id);
 * } finally {
 *   await driver.cleanup();
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 * @module
 */

export * from "./drivers/driver.ts";
export {
  driverConfig,
  driverNames,
  type DriverRoots,
  loadDriver,
  pickDriver,
  PRIORITY,
} from "./drivers/registry.ts";
export type { IDMap, IDMappings } from "./lib/idmap.ts";

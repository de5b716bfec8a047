/**
 * Up-front checks of the Deno permissions a store needs, so a missing
 * flag fails at open time with an error naming the flag to add, instead
 * of a PermissionDenied deep inside an operation.
 *
 * @example
 * ```ts ignore
 * checkStorePermissions({ graphRoot: "/var/lib/containers/storage", runRoot: "/run/containers/storage" });
 * ```
 * @module
 */

import { ErrPermission } from "../errors.ts";

/** The command-line flag that grants a permission descriptor. */
function flagFor(desc: Deno.PermissionDescriptor): string {
  switch (desc.name) {
    case "read":
      return `--allow-read=${desc.path ?? ""}`;
    case "write":
      return `--allow-write=${desc.path ?? ""}`;
    case "env":
      return desc.variable ? `--allow-env=${desc.variable}` : "--allow-env";
    case "ffi":
      return "--allow-ffi";
    case "run":
      return desc.command ? `--allow-run=${desc.command}` : "--allow-run";
    default:
      return `--allow-${desc.name}`;
  }
}

/**
 * Throws ErrPermission naming the flag when `desc` is not granted (a
 * "prompt" state counts as missing: a store must not stop to ask).
 */
export function requirePermission(desc: Deno.PermissionDescriptor, why: string): void {
  if (Deno.permissions.querySync(desc).state !== "granted") {
    const flag = flagFor(desc);
    throw new ErrPermission(flag, { detail: `${why}; run deno with ${flag}` });
  }
}

/** What a store touches: its roots and the roots of additional image stores. */
export interface StorePaths {
  /** Graph root. */
  graphRoot: string;
  /** Run root. */
  runRoot: string;
  /** Additional (read-only) image stores. */
  imageStores?: string[];
}

/** Checks read/write access to the roots, read access to image stores, and FFI (locks, mounts). */
export function checkStorePermissions(paths: StorePaths): void {
  for (const path of [paths.graphRoot, paths.runRoot]) {
    requirePermission({ name: "read", path }, `the store reads ${path}`);
    requirePermission({ name: "write", path }, `the store writes ${path}`);
  }
  for (const path of paths.imageStores ?? []) {
    requirePermission({ name: "read", path }, `the additional image store ${path} is read`);
  }
  requirePermission({ name: "ffi" }, "locks, mounts and file attributes use libc through FFI");
}

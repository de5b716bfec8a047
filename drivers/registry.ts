/**
 * The driver registry: driver names mapped to their modules, loaded on
 * demand through static import specifiers (so `deno compile` bundles
 * them), and the choice of a driver when none is configured.
 *
 * @example
 * ```ts ignore
 * import { loadDriver, pickDriver } from "./registry.ts";
 * const vfs = await loadDriver("vfs", { home: "/g/vfs", runHome: "/r/vfs", options: [] });
 * const best = await pickDriver({ graphRoot: "/g", runRoot: "/r", options: [] });
 * ```
 * @module
 */

import { join } from "../lib/path.ts";
import { ErrDriverNotSupported } from "../lib/errors.ts";
import type { IDMappings } from "../lib/idmap.ts";
import type { Driver, DriverConfig, DriverModule } from "./driver.ts";

const modules: Record<string, () => Promise<{ default: DriverModule }>> = {
  overlay: () => import("./overlay/mod.ts"),
  // an alias, as in containers/storage: home <graphRoot>/overlay2, but the driver calls itself "overlay"
  overlay2: () => import("./overlay/mod.ts"),
  vfs: () => import("./vfs/mod.ts"),
};

/** containers/storage's order of preference when no driver is configured. */
export const PRIORITY: readonly string[] = ["overlay", "btrfs", "zfs", "vfs"];

/** Names of the drivers this build knows. */
export function driverNames(): string[] {
  return Object.keys(modules);
}

/** Loads and initialises a driver by name; unknown names reject with ErrDriverNotSupported. */
export async function loadDriver(name: string, config: DriverConfig): Promise<Driver> {
  const load = modules[name];
  if (!load) {
    throw new ErrDriverNotSupported(name, {
      detail: `failed to GetDriver graph ${name} ${config.home}`,
    });
  }
  const mod = (await load()).default;
  return await mod.init(config);
}

/** What the store knows when it has to pick a driver: roots, options, mappings. */
export interface DriverRoots {
  /** The store's graph root; a driver's home is `<graphRoot>/<name>`. */
  graphRoot: string;
  /** The store's run root; a driver's run home is `<runRoot>/<name>`. */
  runRoot: string;
  /** Driver options (`key=value`). */
  options: string[];
  /** Default ID mappings of the store. */
  idMappings?: IDMappings;
  /** Graph roots of additional image stores. */
  additionalImageStores?: string[];
}

/** The DriverConfig of driver `name` under the given roots. */
export function driverConfig(name: string, roots: DriverRoots): DriverConfig {
  return {
    home: join(roots.graphRoot, name),
    runHome: join(roots.runRoot, name),
    options: roots.options,
    idMappings: roots.idMappings,
    additionalImageStores: roots.additionalImageStores,
  };
}

/** Drivers whose home under the graph root already holds data. */
async function priorDrivers(graphRoot: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of PRIORITY) {
    if (!modules[name]) continue;
    try {
      for await (const _ of Deno.readDir(join(graphRoot, name))) {
        found.push(name);
        break;
      }
    } catch {
      // no such home
    }
  }
  return found;
}

/**
 * Loads `preferred` when given; otherwise the driver already used under the
 * graph root, else the first of {@linkcode PRIORITY} whose init does not
 * reject with ErrDriverNotSupported.
 */
export async function pickDriver(roots: DriverRoots, preferred?: string): Promise<Driver> {
  if (preferred) return await loadDriver(preferred, driverConfig(preferred, roots));
  const prior = await priorDrivers(roots.graphRoot);
  if (prior.length > 1) {
    throw new ErrDriverNotSupported(prior.join(","), {
      detail: `${roots.graphRoot} contains several valid graphdrivers: ${
        prior.join(", ")
      }; cleanup or explicitly choose storage driver (-s <DRIVER>)`,
    });
  }
  if (prior.length === 1) return await loadDriver(prior[0], driverConfig(prior[0], roots));
  const reasons: string[] = [];
  for (const name of PRIORITY) {
    if (!modules[name]) continue;
    try {
      return await loadDriver(name, driverConfig(name, roots));
    } catch (e) {
      if (!(e instanceof ErrDriverNotSupported)) throw e;
      reasons.push(e.message);
    }
  }
  throw new ErrDriverNotSupported(undefined, {
    detail: `no usable storage driver: ${reasons.join("; ")}`,
  });
}

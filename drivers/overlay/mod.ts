/**
 * The overlay driver module, as the driver registry loads it.
 *
 * @example
 * ```ts ignore
 * import overlay from "./mod.ts";
 * const driver = await overlay.init({ home: "/var/lib/containers/storage/overlay",
 *   runHome: "/run/containers/storage/overlay", options: ["overlay.mountopt=nodev"] });
 * console.log(await driver.status());
 * ```
 * @module
 */

import type { Driver, DriverConfig, DriverModule } from "../driver.ts";
import { OverlayDriver } from "./driver.ts";

export { OverlayDriver } from "./driver.ts";

const overlay: DriverModule = {
  name: "overlay",
  init: (config: DriverConfig): Promise<Driver> => OverlayDriver.init(config),
};

export default overlay;

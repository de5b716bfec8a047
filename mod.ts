/**
 * A Deno-native implementation of containers/storage: the store of image
 * layers, images and containers used by podman, buildah, CRI-O and skopeo,
 * with the same on-disk format as containers/storage 1.43.
 *
 * @example
 * ```ts
 * import { ErrLayerUnknown } from "./mod.ts";
 * console.log(new ErrLayerUnknown("abc").message);
 * ```
 * @module
 */

export * from "./lib/errors.ts";
export type { IDMap, IDMappings } from "./lib/idmap.ts";
export * from "./drivers/driver.ts";

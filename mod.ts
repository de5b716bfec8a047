/**
 * A Deno-native implementation of containers/storage: the store of image
 * layers, images and containers used by podman, buildah, CRI-O and skopeo,
 * with the same on-disk format as containers/storage 1.43, so both use the
 * same stores.
 *
 * This entry point is the {@linkcode Store}, its types, storage.conf and the
 * default store options, and the typed errors. The archive engine is
 * `@denostore/storage/archive`, the drivers `@denostore/storage/drivers`,
 * the lock files `@denostore/storage/lockfile`, the command-line tool
 * `@denostore/storage/cli`.
 *
 * Permissions: `--allow-ffi` (libc), `--allow-read` and `--allow-write` for
 * the graph root and run root, `--allow-read` of the storage.conf
 * directories and `--allow-env` for the default options, and `--allow-run`
 * for xz/bzip2 layers, overlay's `mount_program` and `unshare`.
 *
 * @example
 * ```ts
 * import { ErrLayerUnknown, Store } from "@denostore/storage";
 * import { emptyHeader, TypeFlag, writeTar } from "@denostore/storage/archive";
 *
 * // Root in the layers is the current user, so that this runs unprivileged too.
 * const uidMap = [{ container_id: 0, host_id: Deno.uid() ?? 0, size: 1 }];
 * const gidMap = [{ container_id: 0, host_id: Deno.gid() ?? 0, size: 1 }];
 * const root = await Deno.makeTempDir();
 * const store = await Store.open({
 *   graphRoot: `${root}/graph`,
 *   runRoot: `${root}/run`,
 *   graphDriverName: "vfs", // overlay needs root
 *   graphDriverOptions: [],
 *   uidMap,
 *   gidMap,
 *   imageStores: [],
 * });
 * try {
 *   const data = new TextEncoder().encode("hello\n");
 *   const diff = writeTar([
 *     { header: { ...emptyHeader("./", TypeFlag.Dir), mode: 0o755 } }, // the layer's root
 *     { header: { ...emptyHeader("hello.txt"), mode: 0o644, size: data.length }, body: [data] },
 *   ]);
 *   const { layer } = await store.putLayer({ diff });
 *   const image = await store.createImage(layer.id, { names: ["localhost/hello:latest"] });
 *   const container = await store.createContainer(image.id, { names: ["hello"], uidMap, gidMap });
 *   const rootfs = await store.mount(container.id);
 *   if (await Deno.readTextFile(`${rootfs}/hello.txt`) !== "hello\n") throw new Error("bad layer");
 *   await store.unmount(container.id);
 *   await store.deleteContainer(container.id);
 *   await store.deleteImage(image.id); // and its layer, which nothing else uses
 *   await store.layer(layer.id).then(() => {
 *     throw new Error("layer kept");
 *   }, (e) => {
 *     if (!(e instanceof ErrLayerUnknown)) throw e;
 *   });
 * } finally {
 *   await store.shutdown(true);
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 * @module
 */

export * from "./lib/errors.ts";
export { Store } from "./lib/store/mod.ts";
export type {
  CreateLayerOptions,
  Layer,
  LayerOptions,
  PutLayerOptions,
} from "./lib/layers/layer.ts";
export type {
  AutoUserNsOptions,
  ChainLayer,
  Container,
  CreateContainerOptions,
  CreateImageOptions,
  IDMappingOptions,
  Image,
  ImageBigDataItem,
  ManifestDigester,
  PutLayersOptions,
  StoreSettings,
} from "./lib/store/mod.ts";
export { isValidDigest, manifestDigest } from "./lib/images/manifest_digest.ts";
export type { StoredRecord } from "./lib/records/record_store.ts";
export {
  defaultStoreOptions,
  type DefaultStoreOptionsInput,
  type OverlayConf,
  type StorageConf,
  type StorageConfOptions,
  type StoreOptions,
} from "./lib/config.ts";
export { parseStorageConf } from "./lib/config_file.ts";
export { LockFile } from "./lib/lockfile.ts";
export { type LogLevel, type LogSink, setLogSink } from "./lib/log.ts";
export type { Progress, ProgressCallback, ProgressOptions } from "./lib/progress.ts";
export { generateID, isValidID, TruncIndex } from "./lib/ids.ts";
export { isIdentity, parseIDMap, toContainer, toHost } from "./lib/idmap.ts";
export type { IDMap, IDMappings } from "./lib/idmap.ts";
export { atomicWriteFile } from "./lib/atomic.ts";
export { SyscallError } from "./ffi/errors.ts";
// What the Store's own API names; the rest of the archive engine and the
// drivers are the ./archive and ./drivers entry points.
export type {
  ApplyDiffOpts,
  CreateOpts,
  Driver,
  FileGetter,
  FileReader,
  MountOpts,
} from "./drivers/driver.ts";
export { type Change, ChangeKind } from "./lib/archive/change.ts";
export { Compression } from "./lib/archive/compression.ts";

// Images in and out of the store: OCI layouts and archives, docker archives.
export {
  copyImage,
  type CopyImageOptions,
  type CopyImageResult,
  type CopyProgress,
} from "./lib/image_copy/copy.ts";
export { ErrInvalidImage, ErrInvalidReference } from "./lib/image_copy/errors.ts";
export type { LayerCompression } from "./lib/image_copy/oci_layout.ts";
export {
  type FileReference,
  type ImageReference,
  normalizeName,
  parseReference,
  type StoreReference,
  type StoreSpec,
} from "./lib/image_copy/reference.ts";
export {
  formatPlatform,
  hostPlatform,
  parsePlatform,
  type Platform,
} from "./lib/image_copy/platform.ts";

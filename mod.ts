/**
 * A Deno-native implementation of containers/storage: the store of image
 * layers used by podman, buildah, CRI-O and skopeo, with the same on-disk
 * format as containers/storage 1.43.
 *
 * @example
 * ```ts ignore
 * import { defaultStoreOptions, Store } from "./mod.ts";
 * const store = await Store.open(await defaultStoreOptions());
 * for (const image of await store.images()) console.log(image.id, image.names ?? []);
 * const c = await store.createContainer("alpine", { names: ["scratchpad"] });
 * console.log(await store.mount(c.id));
 * await store.unmount(c.id);
 * await store.deleteContainer(c.id);
 * await store.shutdown(false);
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
  Container,
  CreateContainerOptions,
  CreateImageOptions,
  IDMappingOptions,
  Image,
  ImageBigDataItem,
  ManifestDigester,
  StoreSettings,
} from "./lib/store/mod.ts";
export { isValidDigest, manifestDigest } from "./lib/images/manifest_digest.ts";
export type { StoredRecord } from "./lib/records/record_store.ts";
export {
  defaultStoreOptions,
  type DefaultStoreOptionsInput,
  type OverlayConf,
  parseStorageConf,
  type StorageConf,
  type StorageConfOptions,
  type StoreOptions,
} from "./lib/config.ts";
export { LockFile } from "./lib/lockfile.ts";
export { type LogLevel, type LogSink, setLogSink } from "./lib/log.ts";
export type { Progress, ProgressCallback, ProgressOptions } from "./lib/progress.ts";
export { generateID, isValidID, TruncIndex } from "./lib/ids.ts";
export { isIdentity, parseIDMap, toContainer, toHost } from "./lib/idmap.ts";
export type { IDMap, IDMappings } from "./lib/idmap.ts";
export { atomicWriteFile } from "./lib/atomic.ts";
export * from "./drivers/driver.ts";
export { driverNames, type DriverRoots, loadDriver, pickDriver } from "./drivers/registry.ts";
export { SyscallError } from "./ffi/errors.ts";

export {
  type SparseRegion,
  type TarHeader,
  type TarTime,
  TypeFlag,
} from "./lib/archive/tar_header.ts";
export { readTar, type ReadTarOptions, type TarEntry } from "./lib/archive/tar_reader.ts";
export {
  type TarFormat,
  type TarWriteEntry,
  type TarWriteOptions,
  TarWriter,
  writeTar,
} from "./lib/archive/tar_writer.ts";
export { rebuildTar, TarSplitPacker } from "./lib/archive/tar_split.ts";
export {
  Compression,
  compressStream,
  decompressStream,
  detectCompression,
} from "./lib/archive/compression.ts";
export {
  inspectLayer,
  type InspectLayerOptions,
  type LayerStreamInfo,
} from "./lib/archive/layer_stream.ts";
export { type ApplyOptions, type ApplyResult, applyTar } from "./lib/archive/apply.ts";
export {
  changesDirs,
  type ChangesDirsOptions,
  changesOverlay,
  changesSize,
} from "./lib/archive/changes.ts";
export {
  exportChanges,
  type ExportOptions,
  exportTree,
  type ExportTreeOptions,
} from "./lib/archive/export.ts";

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

/**
 * The media types of OCI and Docker schema 2 images that image copies
 * understand, and what each says about a layer's compression.
 *
 * @example
 * ```ts
 * import { isLayerType, OCI_MANIFEST } from "./media_types.ts";
 * console.log(OCI_MANIFEST, isLayerType("application/vnd.oci.image.layer.v1.tar+gzip"));
 * ```
 * @module
 */

/** OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** OCI layer, uncompressed. */
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
/** OCI layer, gzip. */
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
/** OCI layer, zstd. */
export const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
/** Docker schema 2 manifest. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list. */
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker image config. */
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** Docker layer, gzip (also what docker-archive sources name their uncompressed layers). */
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker layer, uncompressed. */
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";

const LAYER_TYPES = new Set([
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
]);

/** Whether `t` is a layer media type we can unpack. */
export function isLayerType(t: string): boolean {
  return LAYER_TYPES.has(t);
}

/** Whether `t` is an image config media type we can read. */
export function isConfigType(t: string): boolean {
  return t === OCI_CONFIG || t === DOCKER_CONFIG;
}

/** Whether `t` is a manifest list or image index. */
export function isIndexType(t: string): boolean {
  return t === OCI_INDEX || t === DOCKER_LIST;
}

/** Whether `t` is a single-image manifest. */
export function isManifestType(t: string): boolean {
  return t === OCI_MANIFEST || t === DOCKER_MANIFEST;
}

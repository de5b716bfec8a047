/**
 * Transport references of image copies, written as skopeo writes them:
 * `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME]`
 * and `containers-storage:[DRIVER@GRAPH+RUN]NAME` (or `@ID`), and image
 * names normalized as Docker references are (`busybox` is
 * `docker.io/library/busybox:latest`), which is how containers/image names
 * the images it stores.
 *
 * @example
 * ```ts
 * import { normalizeName, parseReference } from "./reference.ts";
 * console.log(parseReference("oci:/tmp/layout:latest"), normalizeName("busybox"));
 * ```
 * @module
 */

import type { Store } from "../store/mod.ts";
import { ErrInvalidReference } from "./errors.ts";

/** The roots and driver of a store named inside `containers-storage:[…]`. */
export interface StoreSpec {
  /** Driver ("overlay", "vfs"); the configured one when absent. */
  driver?: string;
  /** Graph root. */
  graphRoot: string;
  /** Run root; the configured one when absent. */
  runRoot?: string;
  /** Driver options after the colon. */
  options?: string[];
}

/** A file-based transport: an OCI layout, an OCI archive or a docker archive. */
export interface FileReference {
  /** Which. */
  transport: "oci" | "oci-archive" | "docker-archive";
  /** Directory (oci) or tar file (archives). */
  path: string;
  /** The image's ref name in a layout or OCI archive; a Docker name in a docker archive. */
  ref?: string;
}

/** An image in a store. */
export interface StoreReference {
  /** Which. */
  transport: "containers-storage";
  /** The image's name (normalized), when it has one. */
  name?: string;
  /** The image's ID, when given instead of (or with) a name. */
  id?: string;
  /** An open store to use; else {@linkcode spec}, else the configured default store. */
  store?: Store;
  /** The store named in the reference. */
  spec?: StoreSpec;
}

/** Where an image is copied from or to. */
export type ImageReference = FileReference | StoreReference;

const TRANSPORTS = ["oci", "oci-archive", "docker-archive", "containers-storage"];
const HEX64 = /^[0-9a-f]{64}$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * A name as a normalized Docker reference: a registry (docker.io when the
 * first component is not one), `library/` for docker.io's one-component
 * names, and the tag `latest` when none.
 * @throws {ErrInvalidReference} when it is not a valid reference.
 */
export function normalizeName(name: string): string {
  let rest = name;
  let tag = "latest";
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split("/");
  let domain = "docker.io";
  if (parts.length > 1 && (/[.:]/.test(parts[0]) || parts[0] === "localhost")) {
    domain = parts.shift()!;
  }
  if (domain === "docker.io" && parts.length === 1) parts.unshift("library");
  if (!TAG.test(tag) || parts.some((p) => !COMPONENT.test(p)) || !/^[\w.-]+(:\d+)?$/.test(domain)) {
    throw new ErrInvalidReference(name, { detail: "not a valid image name" });
  }
  return `${domain}/${parts.join("/")}:${tag}`;
}

/** Parses `[driver@graph+run:options]`. */
function parseStoreSpec(s: string, whole: string): StoreSpec {
  const colon = s.indexOf(":");
  const roots = colon < 0 ? s : s.slice(0, colon);
  const options = colon < 0 ? undefined : s.slice(colon + 1).split(",").filter((o) => o);
  const at = roots.indexOf("@");
  const driver = at < 0 ? undefined : roots.slice(0, at);
  const [graphRoot, runRoot, extra] = roots.slice(at + 1).split("+");
  if (!graphRoot?.startsWith("/") || (runRoot !== undefined && !runRoot.startsWith("/")) || extra) {
    throw new ErrInvalidReference(whole, {
      detail: "the store is [driver@graphroot+runroot] with absolute paths",
    });
  }
  return {
    graphRoot,
    ...(driver ? { driver } : {}),
    ...(runRoot ? { runRoot } : {}),
    ...(options ? { options } : {}),
  };
}

/**
 * Parses a transport reference as skopeo takes it.
 * @throws {ErrInvalidReference} for an unknown transport or a malformed reference.
 */
export function parseReference(s: string): ImageReference {
  const i = s.indexOf(":");
  const transport = i < 0 ? "" : s.slice(0, i);
  if (!TRANSPORTS.includes(transport)) {
    throw new ErrInvalidReference(s, {
      detail: `unknown transport, expected one of ${TRANSPORTS.join(", ")}`,
    });
  }
  const rest = s.slice(i + 1);
  if (transport !== "containers-storage") {
    const c = rest.indexOf(":");
    const path = c < 0 ? rest : rest.slice(0, c);
    const ref = c < 0 ? "" : rest.slice(c + 1);
    if (path === "") throw new ErrInvalidReference(s, { detail: "no path" });
    return {
      transport: transport as FileReference["transport"],
      path,
      ...(ref ? { ref } : {}),
    };
  }
  let name = rest;
  let spec: StoreSpec | undefined;
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0) throw new ErrInvalidReference(s, { detail: "no ] after the store" });
    spec = parseStoreSpec(rest.slice(1, end), s);
    name = rest.slice(end + 1);
  }
  const out: StoreReference = { transport: "containers-storage", ...(spec ? { spec } : {}) };
  const at = name.lastIndexOf("@");
  if (at >= 0 && HEX64.test(name.slice(at + 1))) {
    out.id = name.slice(at + 1);
    name = name.slice(0, at);
  } else if (HEX64.test(name)) {
    return { ...out, id: name };
  }
  if (name) out.name = normalizeName(name);
  if (!out.name && !out.id) throw new ErrInvalidReference(s, { detail: "no image name or ID" });
  return out;
}

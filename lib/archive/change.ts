/**
 * What changed between a layer and its parent, as containers/storage's
 * archive.Change: the archive engine computes and exports changes, and
 * drivers report them, so the type lives here rather than with drivers.
 *
 * @example
 * ```ts
 * import { type Change, ChangeKind } from "./change.ts";
 * const c: Change = { path: "/etc/passwd", kind: ChangeKind.Modify };
 * console.log(ChangeKind[c.kind]); // Modify
 * ```
 * @module
 */

/** One filesystem change between a layer and its parent. */
export interface Change {
  /** Absolute path inside the layer, e.g. "/etc/passwd". */
  path: string;
  /** What happened to it. */
  kind: ChangeKind;
}

/** Kinds of change, numbered as containers/storage's archive.ChangeType. */
export enum ChangeKind {
  /** Content or metadata changed. */
  Modify = 0,
  /** Newly created. */
  Add = 1,
  /** Removed. */
  Delete = 2,
}

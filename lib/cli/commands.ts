/**
 * The command table: every command group, listed in the order the
 * reference CLI's `--help` lists its commands.
 *
 * @example
 * ```ts ignore
 * import { findCommand } from "./commands.ts";
 * console.log(findCommand("umount")?.names[0]); // "unmount"
 * ```
 * @module
 */

import type { Command } from "./command.ts";
import { containerCommands } from "./containers.ts";
import { copyCommands } from "./copy.ts";
import { copyImageCommands } from "./copy_image.ts";
import { dataCommands } from "./data.ts";
import { deleteCommands } from "./delete.ts";
import { diffCommands } from "./diff.ts";
import { imageCommands } from "./images.ts";
import { layerCommands } from "./layers.ts";
import { miscCommands } from "./misc.ts";
import { mountCommands } from "./mount.ts";
import { nameCommands } from "./names.ts";

/** The reference's command order. */
const REFERENCE_ORDER = [
  "container",
  "list-container-data",
  "get-container-data",
  "get-container-data-size",
  "get-container-data-digest",
  "set-container-data",
  "get-container-dir",
  "get-container-run-dir",
  "container-parent-owners",
  "containers",
  "copy",
  "create-layer",
  "import-layer",
  "create-image",
  "create-container",
  "delete",
  "delete-layer",
  "delete-image",
  "delete-container",
  "changes",
  "diffsize",
  "diff",
  "applydiff",
  "exists",
  "image",
  "list-image-data",
  "get-image-data",
  "get-image-data-size",
  "get-image-data-digest",
  "set-image-data",
  "images",
  "images-by-digest",
  "layer",
  "layer-parent-owners",
  "list-layer-data",
  "get-layer-data",
  "set-layer-data",
  "layers",
  "metadata",
  "set-metadata",
  "mount",
  "unmount",
  "mounted",
  "get-names",
  "add-names",
  "set-names",
  "shutdown",
  "status",
  "version",
  "wipe",
];

function rank(c: Command): number {
  const i = REFERENCE_ORDER.indexOf(c.names[0]);
  return i === -1 ? REFERENCE_ORDER.length : i;
}

/** All commands, in help order. */
export const commands: readonly Command[] = [
  ...containerCommands,
  ...copyCommands,
  ...layerCommands,
  ...imageCommands,
  ...deleteCommands,
  ...diffCommands,
  ...dataCommands,
  ...nameCommands,
  ...mountCommands,
  ...miscCommands,
  ...copyImageCommands,
].sort((a, b) => rank(a) - rank(b));

/** The command with `name` as its name or an alias. */
export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.names.includes(name));
}

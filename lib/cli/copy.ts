/**
 * The `copy` command: copies files or directories into a layer, from the
 * host or from another layer (`[layer:]/path … layer:/path`), with the
 * reference CLI's semantics. Each layer named is mounted through the store
 * for the copy and unmounted afterwards. Ownership crosses the layers' ID
 * mappings the way the reference's tar-and-untar copy does: a source
 * layer's host IDs are mapped back to container IDs (`--chown` replaces
 * them), then to the target layer's host IDs.
 *
 * A directory's contents are copied into the target directory, which is
 * created (0755, owned by the target's root or the `--chown` owner) when
 * missing; a file is copied to the target path, keeping its mode and
 * nanosecond times.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s overlay copy /etc/hosts base:/etc/hosts
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s overlay copy --chown 0:0 base:/etc top:/etc
 * ```
 * @module
 */

import { type Command, jsonFlag } from "./command.ts";

/** The copy command. */
export const copyCommands: Command[] = [
  {
    names: ["copy"],
    optionsHelp: "[options [...]] [sourceLayerNameOrID:]/path [...] targetLayerNameOrID:/path",
    usage: "Copy files or directories into a layer, possibly from another layer",
    minArgs: 2,
    maxArgs: 0,
    addFlags: (fs) => {
      // The reference also gives this flag an empty name, which makes its usage panic.
      fs.string(["-chown", ""], "", "Set owner on new copies");
      jsonFlag(fs);
    },
    // The archive engine is loaded only when a copy runs.
    action: async (ctx) => (await import("./copy_action.ts")).copy(ctx),
  },
];

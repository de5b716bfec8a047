/**
 * `copy-image SRC DST` (an extension: the reference CLI has no such
 * command): copies an image between `oci:DIR[:REF]`,
 * `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME]` and
 * `containers-storage:[DRIVER@GRAPH+RUN]NAME` (a store reference without
 * brackets is the CLI's own store), as skopeo copy does. Prints the image
 * ID when the destination is a store, the digest of the manifest written
 * to a layout or OCI archive, the config digest for a docker archive. On a
 * terminal, stderr shows each layer's progress and the total.
 *
 * @example
 * ```sh
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s overlay copy-image oci:/tmp/layout:latest containers-storage:localhost/app
 * deno run -A cli.ts -g /tmp/g -R /tmp/r -s overlay copy-image --compress zstd containers-storage:localhost/app oci-archive:/tmp/app.tar
 * ```
 * @module
 */

import type { Command } from "./command.ts";

/** The image copy command. */
export const copyImageCommands: Command[] = [
  {
    names: ["copy-image"],
    optionsHelp: "[options [...]] SRC DST",
    usage: "Copy an image between OCI layouts, archives and the store",
    minArgs: 2,
    maxArgs: 2,
    extension: true,
    addFlags: (fs) => {
      fs.string(["-platform"], "", "Platform to pick from an index (os/arch[/variant])");
      fs.string(["-compress"], "", "Layer compression in layouts and archives (gzip, zstd, none)");
      fs.string(["-name"], "", "Name of the image in the destination");
    },
    // The image copy library is loaded only when the command runs.
    action: async (ctx) => (await import("./copy_image_action.ts")).copyImageAction(ctx),
  },
];

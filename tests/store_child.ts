/**
 * A child process for the store tests that need several processes:
 *
 * - `open <root>`: opens the vfs store at root (prints "ok" or the error).
 * - `put <root> <name>`: puts a layer named <name> from the tar on stdin, prints its ID.
 * - `many <root> <prefix> <n>`: puts <n> small layers named <prefix>-<i>, each on the previous.
 * @module
 */

import { Store } from "../lib/store/mod.ts";
import { storeOpts } from "./store_helpers.ts";
import { buildTar, streamOf } from "./tar_fixtures.ts";

const [cmd, root, ...rest] = Deno.args;

try {
  const s = await Store.open(storeOpts(root));
  if (cmd === "open") {
    console.log("ok");
  } else if (cmd === "put") {
    const { layer } = await s.putLayer({ names: [rest[0]], diff: Deno.stdin.readable });
    console.log(layer.id);
  } else if (cmd === "many") {
    const [prefix, n] = rest;
    let parent = "";
    for (let i = 0; i < Number(n); i++) {
      const tar = buildTar([{ name: `${prefix}/`, type: "5" }, {
        name: `${prefix}/f${i}`,
        data: `${prefix} ${i}\n`,
      }]);
      const { layer } = await s.putLayer({
        parent,
        names: [`${prefix}-${i}`],
        diff: streamOf(tar),
      });
      await s.setMetadata(layer.id, `${prefix} ${i}`);
      parent = layer.id;
    }
    console.log("done");
  }
  await s.shutdown(false);
} catch (e) {
  console.log(`${(e as Error).name}: ${(e as Error).message}`);
  Deno.exit(3);
}

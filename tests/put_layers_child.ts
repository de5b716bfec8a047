/**
 * A child process for the batch-put crash test: opens the overlay store at
 * `<root>` (`root/g`, `root/r`), prints "start", puts the fixture chain of
 * `<files>` files a layer with Store.putLayers, then prints "done".
 *
 * @example
 * ```sh
 * deno run -A tests/put_layers_child.ts /tmp/root 2000
 * ```
 * @module
 */

import { Store } from "../lib/store/mod.ts";
import { CHAIN_IDS, chainTars } from "./layer_chain_fixture.ts";
import { storeOpts } from "./store_helpers.ts";
import { streamOf } from "./tar_fixtures.ts";

const [root, files] = Deno.args;
const tars = chainTars({ files: Number(files) });
const s = await Store.open(storeOpts(root, { graphDriverName: "overlay" }));
console.log("start");
await s.putLayers({
  layers: tars.map((t, i) => ({ id: CHAIN_IDS[i], diff: streamOf(t, 64 << 10) })),
});
console.log("done");
await s.shutdown(false);

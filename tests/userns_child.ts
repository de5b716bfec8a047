/**
 * A child process for the automatic user namespace test: it runs in its
 * own mount namespace where /etc/subuid and /etc/subgid are bind-mounted
 * from the test's files, so the machine's real files are never touched.
 *
 * `deno run -A userns_child.ts <root> <driver> <image> <n> [size]` creates
 * `n` containers with `autoUserNs` on `image` and prints their mappings as
 * JSON, or `error: <message>`.
 * @module
 */

import { Store } from "../lib/store/mod.ts";
import { storeOpts } from "./store_helpers.ts";

const [root, driver, image, n, size] = Deno.args;
try {
  const s = await Store.open(storeOpts(root, { graphDriverName: driver }));
  const out = [];
  for (let i = 0; i < Number(n); i++) {
    const c = await s.createContainer(image, {
      autoUserNs: true,
      autoUserNsOptions: size ? { size: Number(size) } : {},
    });
    out.push({ uidmap: c.uidmap, gidmap: c.gidmap });
  }
  await s.shutdown(true);
  console.log(JSON.stringify(out));
} catch (e) {
  console.log(`error: ${(e as Error).message}`);
}

/**
 * A loose throughput check (the numbers belong to `deno task bench`): on a
 * generated rootfs-like layer, our import and diff through the Store must
 * stay within a generous multiple of what GNU tools need for the same work
 * on this machine (gzip -dc plus tar -x; tar -c). A regression that makes
 * either several times slower fails; noise on a busy machine does not.
 */

import assert from "node:assert/strict";
import { generate } from "../bench/generate.ts";
import { Store } from "../mod.ts";
import { isRoot, notRootReason, removeTree, tempDir } from "./helpers.ts";
import { storeOpts } from "./store_helpers.ts";

/** How many times the floor (plus a constant for start-up) our operations may take. */
const SLACK = 6;
const CONSTANT_S = 2;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function sh(script: string): Promise<number> {
  return await timed(async () => {
    const r = await new Deno.Command("sh", { args: ["-c", script], stderr: "piped" }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  });
}

Deno.test({
  name: "perf: import and diff of a 24 MB layer stay within a loose multiple of GNU tar's time",
  ignore: !isRoot,
  fn: async () => {
    const root = await tempDir("perf-");
    try {
      const src = `${root}/src`;
      generate(src, { bytes: 24 << 20, files: 1500 });
      const tar = `${root}/layer.tar`, gz = `${root}/layer.tar.gz`;
      await sh(`tar --numeric-owner -C ${src} -cf ${tar} . && gzip -1 -c ${tar} > ${gz}`);
      // best of three for the floors: the least disturbed run
      const floors = { x: Infinity, c: Infinity };
      for (let i = 0; i < 3; i++) {
        await Deno.remove(`${root}/x`, { recursive: true }).catch(() => {});
        Deno.mkdirSync(`${root}/x`);
        floors.x = Math.min(
          floors.x,
          await sh(`gzip -dc ${gz} > /dev/null && tar -C ${root}/x -xf ${tar}`),
        );
        floors.c = Math.min(floors.c, await sh(`tar -C ${root}/x -cf ${root}/c.tar .`));
      }
      const store = await Store.open(storeOpts(`${root}/store`));
      try {
        let id = "";
        const imp = await timed(async () => {
          const f = await Deno.open(gz);
          id = (await store.putLayer({ diff: f.readable })).layer.id;
        });
        let size = 0;
        const diff = await timed(async () => {
          for await (const c of await store.diff("", id, { compression: 0 })) size += c.length;
        });
        assert.equal(size, Deno.statSync(tar).size, "diff is the whole tarball");
        console.log(
          `import ${imp.toFixed(2)} s (floor ${floors.x.toFixed(2)} s), ` +
            `diff ${diff.toFixed(2)} s (floor ${floors.c.toFixed(2)} s)`,
        );
        assert.ok(imp < SLACK * floors.x + CONSTANT_S, `import took ${imp.toFixed(2)} s`);
        assert.ok(diff < SLACK * floors.c + CONSTANT_S, `diff took ${diff.toFixed(2)} s`);
      } finally {
        await store.shutdown(true);
      }
    } finally {
      await removeTree(root);
    }
  },
});

if (!isRoot) console.log(`perf throughput test ${notRootReason}`);

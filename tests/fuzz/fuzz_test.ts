/**
 * The fuzzer: property-based tests (fast-check) feeding generated and
 * mutated layer tarballs (tar_gen.ts) to our Store on vfs, and every
 * tenth case on overlay too, checking the properties of harness.ts for
 * each.
 *
 * `deno task test` runs 200 cases from a fixed seed; `deno task fuzz` runs
 * 2,000 from a random one. Environment: FUZZ_RUNS (number of cases),
 * FUZZ_SEED (the seed; printed at the start of every run), FUZZ_PATH (with
 * FUZZ_SEED, replays the one case fast-check reported as failing),
 * FUZZ_VERBOSE=1 (prints every case's outcome).
 * @module
 */

import fc from "fast-check";
import { isRoot, notRootReason, removeTree, tempDir } from "../helpers.ts";
import { canaryBaseline, FuzzFailure, runCase, trapUncaught } from "./harness.ts";
import { caseArb, caseBytes, type FuzzCase } from "./tar_gen.ts";

const LONG = Deno.env.get("FUZZ_LONG") === "1";
const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? (LONG ? 2000 : 200));
const SEED = Number(
  Deno.env.get("FUZZ_SEED") ?? (LONG ? Math.floor(Math.random() * 2 ** 31) : 20240917),
);
const PATH = Deno.env.get("FUZZ_PATH");
const VERBOSE = Deno.env.get("FUZZ_VERBOSE") === "1";
/** Every n-th case also runs on overlay. */
const OVERLAY_EVERY = 10;

Deno.test({
  name: `fuzz: ${RUNS} generated and mutated layers through putLayer and diff (seed ${SEED})`,
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    console.log(
      `fuzz seed ${SEED}, ${RUNS} cases; replay with FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}` +
        (PATH ? ` FUZZ_PATH=${PATH}` : ""),
    );
    const parent = await tempDir("cs-fuzz-");
    const trap = trapUncaught();
    const baseline = canaryBaseline();
    const stats = {
      cases: 0,
      accepted: 0,
      diffFails: 0,
      overlay: 0,
      byCompression: {} as Record<string, number>,
    };
    const t0 = performance.now();
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async (c: FuzzCase) => {
          const n = stats.cases++;
          const { input } = await caseBytes(c);
          const drivers = n % OVERLAY_EVERY === OVERLAY_EVERY - 1 ? ["vfs", "overlay"] : ["vfs"];
          for (const driver of drivers) {
            const out = await runCase(input, {
              parent,
              driver,
              chunk: c.chunk,
              baseline,
              trap,
            });
            if (out.diffError) stats.diffFails++;
            if (driver === "overlay") stats.overlay++;
            else if (out.accepted) {
              stats.accepted++;
              stats.byCompression[c.compression] = (stats.byCompression[c.compression] ?? 0) + 1;
            }
            if (VERBOSE) {
              console.log(
                `#${n} ${driver} ${c.compression} ${input.length} B: ${out.error ?? "ok"}`,
              );
            }
          }
        }),
        {
          seed: SEED,
          numRuns: RUNS,
          path: PATH,
          // a failing case is printed with its seed and path; shrinking gives the smallest one
          verbose: 0,
          reporter: (r) => {
            if (r.failed) {
              throw new FuzzFailure(
                `fuzz: case failed (replay with FUZZ_SEED=${r.seed} FUZZ_PATH=${r.counterexamplePath}):\n` +
                  `${(r.errorInstance as Error)?.message ?? r.errorInstance}\n` +
                  fc.defaultReportMessage(r),
              );
            }
          },
        },
      );
    } finally {
      trap.stop();
      await removeTree(parent);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `fuzz: ${stats.cases} cases in ${secs} s, ${stats.accepted} accepted on vfs ` +
          `(${JSON.stringify(stats.byCompression)}), ${stats.overlay} also on overlay; ` +
          `${stats.diffFails} diffs failed as the reference's do`,
      );
    }
  },
});

if (!isRoot) console.log(`fuzz ${notRootReason}`);

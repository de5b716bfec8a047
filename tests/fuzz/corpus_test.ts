/**
 * The fuzzer's fixed corpus (corpus.ts) against the reference CLI: each
 * layer goes through our Store (with every property of harness.ts) and
 * through the reference's `import-layer` into a store of its own, on vfs
 * (and overlay for the cases marked so). Both must make the same decision;
 * when both accept, the applied trees (layerTree: types, modes, owners,
 * sizes, links, times, device numbers, content hashes, xattrs) must be
 * equal and `diff -u` must give the same bytes, or fail in both.
 * @module
 */

import assert from "node:assert/strict";
import { isRoot, layerTree, notRootReason, referenceCli, removeTree, tempDir } from "../helpers.ts";
import {
  canaryBaseline,
  describeDifference,
  type Outcome,
  referenceImport,
  runCase,
  type Theirs,
  trapUncaught,
} from "./harness.ts";
import {
  CORPUS_SEED,
  type CorpusCase,
  corpusFiles,
  generated,
  HAND_PICKED,
  KNOWN_BUGS,
} from "./corpus.ts";

const ignore = !isRoot || !referenceCli;
if (ignore) {
  console.log(`fuzz corpus ${isRoot ? "skipped: reference CLI not installed" : notRootReason}`);
}

/** Generated cases in the corpus (FUZZ_GENERATED: more, to look for differences). */
const GENERATED = Number(Deno.env.get("FUZZ_GENERATED") ?? 10);
/** Their seed (FUZZ_GENERATED_SEED: others, to look for differences). */
const GENERATED_SEED = Number(Deno.env.get("FUZZ_GENERATED_SEED") ?? CORPUS_SEED);
/** Also run the cases of known bugs (known/, KNOWN_BUGS). */
const KNOWN = Deno.env.get("FUZZ_KNOWN") === "1";

/**
 * For a generated case, the deliberate difference (README, Layer tarballs)
 * that explains why the reference decided or diffed otherwise, if one does.
 */
function documented(ours: Outcome, ref: Theirs): string | undefined {
  if (
    !ours.accepted && ref.accepted && /the target's root can only be a directory/.test(ours.error!)
  ) {
    return "an entry that would replace the root with a non-directory is refused";
  }
  if (!ours.accepted || !ref.accepted || !ours.diff) return undefined;
  if (
    ref.diffError && /: open \//.test(ref.diffError) && !ref.diffError.includes(`${ref.layerDir}/`)
  ) {
    return "1.43's diff opens a '..' name beside the layer";
  }
  if (!ref.diff) return undefined;
  if (ref.diff.length < ours.diff.length && ref.diff.every((b, i) => b === ours.diff![i])) {
    return "1.43's tar-split drops the padding bytes it read";
  }
  if (new TextDecoder("latin1").decode(ours.diff).includes("GNU.sparse.")) {
    return "1.43's tar-split writes each expanded sparse file after its header";
  }
  return undefined;
}

async function compare(c: CorpusCase, driver: string, parent: string, ctx: {
  baseline: Set<string>;
  trap: ReturnType<typeof trapUncaught>;
}): Promise<string> {
  const input = await c.input();
  let tree: string | undefined;
  // the reference works in its own process meanwhile
  const [ours, ref]: [Outcome, Theirs] = await Promise.all([
    runCase(input, {
      parent,
      driver,
      baseline: ctx.baseline,
      trap: ctx.trap,
      inspect: async (o) => {
        if (o.accepted) tree = await layerTree(o.layerDir!);
      },
    }),
    referenceImport(input, driver, { tree: true }),
  ]);
  const what = `${c.name} (${driver})`;
  const why = c.generated ? documented(ours, ref) : undefined;
  if (why && (ours.accepted !== ref.accepted || tree === ref.tree)) {
    return `differs as README says: ${why}`;
  }
  assert.equal(
    ours.accepted,
    ref.accepted,
    `${what}: ours ${ours.accepted ? "accepts" : `refuses (${ours.error})`}, the reference ${
      ref.accepted ? "accepts" : `refuses (${ref.error})`
    }`,
  );
  if (!ours.accepted) return `refused: ${ours.error}`;
  assert.equal(tree, ref.tree, `${what}: applied trees`);
  const expected = c.theirDiff;
  if (expected) {
    // ours returns the input (runCase checked it); theirs as README says
    assert.ok(ours.diff, `${what}: our diff -u fails: ${ours.diffError}`);
    if (expected.kind === "fails") {
      assert.ok(ref.diff === undefined, `${what}: the reference's diff -u works now`);
    } else {
      assert.ok(ref.diff, `${what}: the reference's diff -u fails: ${ref.diffError}`);
      const head = ref.diff.length <= ours.diff.length &&
        ref.diff.every((b, i) => b === ours.diff![i]);
      const same = head && ref.diff.length === ours.diff.length;
      const prefix = head && !same;
      assert.ok(expected.kind === "shorter" ? prefix : !same, `${what}: the reference's diff -u`);
    }
    return `accepted, same tree; the reference's diff -u ${expected.kind}: ${expected.why}`;
  }
  if (ref.diff === undefined || ours.diff === undefined) {
    assert.ok(
      ref.diff === undefined && ours.diff === undefined,
      `${what}: diff -u: ours ${ours.diffError ?? "works"}, the reference's ${
        ref.diffError ?? "works"
      }`,
    );
    return `accepted, diff fails in both (${ours.diffError})`;
  }
  assert.ok(
    ours.diff.length === ref.diff.length && ours.diff.every((b, i) => b === ref.diff![i]),
    `${what}: diff -u differs: ${describeDifference(ours.diff, ref.diff)}`,
  );
  return "accepted, same tree and diff";
}

Deno.test({
  name: "fuzz corpus: our Store and the reference CLI decide alike, apply alike, diff alike",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const parent = await tempDir("cs-corpus-");
    const ctx = { baseline: canaryBaseline(), trap: trapUncaught() };
    try {
      const cases = [
        ...HAND_PICKED,
        ...await corpusFiles("corpus"),
        ...generated(GENERATED, GENERATED_SEED),
        ...KNOWN ? await corpusFiles("known") : [],
      ];
      for (const c of cases) {
        if (KNOWN_BUGS[c.name] && !KNOWN) {
          console.log(`${c.name}: left out, known bug: ${KNOWN_BUGS[c.name]}`);
          continue;
        }
        for (const driver of c.overlay ? ["vfs", "overlay"] : ["vfs"]) {
          await t.step(`${c.name} (${driver})`, async () => {
            console.log(`  ${await compare(c, driver, parent, ctx)}`);
          });
        }
      }
    } finally {
      ctx.trap.stop();
      await removeTree(parent);
    }
  },
});

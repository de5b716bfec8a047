/**
 * The package as Deno users get it: `deno publish --dry-run` passes without
 * a warning and publishes no tests, benchmarks, CI or demo; `deno doc --lint`
 * is clean on every entry point; every entry point's module example runs
 * (`deno test --doc`), as root and as an unprivileged user; and the published
 * code stays compilable by `deno compile`: dynamic imports only of string
 * literals naming a relative module, and no file found through
 * `import.meta.url`/`dirname`/`filename`/`resolve` (which would point into
 * the source tree, absent from a compiled binary).
 */
import assert from "node:assert/strict";
import { checkoutCopy, isRoot, removeTree, run, type RunResult } from "./helpers.ts";

const root = new URL("../", import.meta.url);
const repo = root.pathname;
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
  exports: Record<string, string>;
};
const entryPoints = Object.values(config.exports);

function deno(args: string[]): Promise<RunResult> {
  return run(Deno.execPath(), args, { cwd: repo, env: { NO_COLOR: "1" } });
}

/** A dynamic import whose argument is anything but a relative string literal. */
const COMPUTED_IMPORT = /\bimport\s*\((?!\s*"\.\.?\/[^"`$]+"\s*\))/;
/** import.meta used to find files (everything but `import.meta.main`). */
const SOURCE_RELATIVE = /\bimport\.meta\.(?:url|dirname|filename|resolve)\b/;

/** `text` without comments (JSDoc prose may say "import (…)" freely). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** The lines of `text` that break one of the rules above. */
function compileHazards(text: string): string[] {
  return code(text).split("\n").filter((l) => COMPUTED_IMPORT.test(l) || SOURCE_RELATIVE.test(l));
}

Deno.test("package: the hazard check finds computed imports and source-relative reads", () => {
  assert.deepEqual(compileHazards('const m = await import("./lib/config.ts");'), []);
  assert.deepEqual(compileHazards('vfs: () => import("../drivers/vfs/mod.ts"),'), []);
  assert.deepEqual(compileHazards("/** the layer's import (by index) */\n// import(x)"), []);
  assert.deepEqual(compileHazards("if (import.meta.main) main();"), []);
  for (
    const bad of [
      "await import(name);",
      "await import(`./drivers/${name}/mod.ts`);",
      'await import("./drivers/" + name + "/mod.ts");',
      'await import("npm:left-pad");',
      "await import ( spec )",
      'Deno.readFile(new URL("./data.bin", import.meta.url));',
      "Deno.readTextFile(`${import.meta.dirname}/x.json`);",
      'import.meta.resolve("./x.json")',
    ]
  ) {
    assert.deepEqual(compileHazards(bad), [bad], bad);
  }
});

/** What `deno publish --dry-run` printed and the files it would publish (relative paths). */
async function dryRun(): Promise<{ result: RunResult; files: string[] }> {
  // --allow-dirty: the check is about the package, not about the working tree being committed.
  const result = await deno(["publish", "--dry-run", "--allow-dirty"]);
  const files = [...result.stdout.concat(result.stderr).matchAll(/file:\/\/(\S+)/g)]
    .map(([, path]) => path)
    .filter((path) => path.startsWith(repo))
    .map((path) => path.slice(repo.length));
  return { result, files };
}

Deno.test("package: deno publish --dry-run succeeds with no warning and publishes only the package", async () => {
  const { result, files } = await dryRun();
  const output = result.stdout + result.stderr;
  assert.equal(result.code, 0, output);
  assert.match(output, /Dry run complete/);
  assert.doesNotMatch(output, /warning/i);
  for (const f of ["LICENSE", "README.md", "deno.json", ...entryPoints.map((e) => e.slice(2))]) {
    assert.ok(files.includes(f), `${f} is not published: ${files.join(" ")}`);
  }
  const unwanted = files.filter((f) => /^(tests|bench|\.ci)\/|^demo\.ts$/.test(f));
  assert.deepEqual(unwanted, []);
  assert.match(await Deno.readTextFile(new URL("LICENSE", root)), /Apache License\s+Version 2\.0/);

  // The published code compiles into a binary as it runs from source.
  const hazards: string[] = [];
  for (const f of files.filter((f) => /\.[jt]s$/.test(f))) {
    const text = await Deno.readTextFile(new URL(f, root));
    hazards.push(...compileHazards(text).map((l) => `${f}: ${l.trim()}`));
  }
  assert.deepEqual(hazards, []);
});

Deno.test("package: deno doc --lint is clean on every entry point", async () => {
  assert.deepEqual(entryPoints.sort(), [
    "./archive.ts",
    "./cli.ts",
    "./drivers.ts",
    "./lockfile.ts",
    "./mod.ts",
  ]);
  for (const entry of entryPoints) {
    const r = await deno(["doc", "--lint", entry]);
    assert.equal(r.code, 0, `${entry}: ${r.stdout}${r.stderr}`);
  }
});

/** Runs every entry point's examples; checks each had one and all passed. */
function assertDocTestsPassed(r: RunResult): void {
  const output = r.stdout + r.stderr;
  assert.equal(r.code, 0, output);
  for (const entry of entryPoints) {
    const name = entry.slice(2).replaceAll(".", "\\.");
    assert.match(output, new RegExp(`running [1-9]\\d* tests? from \\./${name}#`), entry);
  }
  assert.match(output, /ok \| \d+ passed \| 0 failed/);
}

Deno.test("package: every entry point's example runs (deno test --doc)", async () => {
  assertDocTestsPassed(await deno(["test", "--doc", "--allow-all", ...entryPoints]));
});

Deno.test({
  // Needs root to switch to nobody; unprivileged, the test above already is that run.
  name: "package: the examples run as an unprivileged user (nobody)",
  ignore: !isRoot,
}, async () => {
  // nobody gets its own DENO_DIR with a copy of our npm cache (no download),
  // its own temporary directory, and a copy of the checkout it can read but
  // not write (no lock file write): the checkout itself may sit in a
  // directory only root can enter.
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "package-nobody-" });
  const copy = await checkoutCopy();
  try {
    const info = JSON.parse((await deno(["info", "--json"])).stdout) as { npmCache: string };
    await run("cp", ["-r", info.npmCache, `${dir}/npm`]);
    await run("chmod", ["-R", "a+rwX", dir]);
    const env = { DENO_DIR: dir, HOME: dir, TMPDIR: dir, NO_COLOR: "1" };
    const asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let exe = Deno.execPath();
    if ((await run("setpriv", [...asNobody, exe, "--version"])).code !== 0) {
      exe = `${dir}/deno`; // our deno may sit where nobody cannot reach it
      await Deno.copyFile(Deno.execPath(), exe);
      await Deno.chmod(exe, 0o755);
    }
    const r = await run("setpriv", [
      ...asNobody,
      exe,
      "test",
      "--doc",
      "--allow-all",
      "--no-lock",
      "--cached-only",
      ...entryPoints,
    ], { env, cwd: copy.src });
    assertDocTestsPassed(r);
  } finally {
    await removeTree(dir);
    await removeTree(copy.dir);
  }
});

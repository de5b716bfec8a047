/**
 * Start-up: the CLI loads only what a command needs. `version` and `--help`
 * load no driver, no archive engine, no store, no storage.conf parser, no
 * FFI and no Node compatibility module; `layers` on vfs loads the vfs driver
 * and not overlay; `layers`, `images` and `containers` load no layer-write,
 * diff or archive code, no Node compatibility module, and no npm module
 * unless a storage.conf is there to parse. Checked twice: on the modules V8 actually compiled during
 * a run (its log of script events), and on the static import graph of
 * `cli.ts` (what any command loads before its own dynamic imports).
 */
import assert from "node:assert/strict";
import { removeTree, run, tempDir } from "./helpers.ts";

const root = new URL("../", import.meta.url);
const cli = new URL("cli.ts", root).pathname;

/** Modules the cheap commands must not load (paths relative to the repository). */
const FORBIDDEN: RegExp[] = [
  /^drivers\/(?!driver\.ts$)/, // the contract (types and ChangeKind) is fine, no driver is
  /^lib\/archive\/(?!change\.ts$)/, // the contract's Change type, nothing of the engine
  /^lib\/store\//,
  /^lib\/config(_file)?\.ts$/,
  /^ffi\//,
  /^npm:|registry\.npmjs\.org/,
  /^node:|^ext:deno_node\//,
];

function forbidden(modules: Iterable<string>): string[] {
  return [...modules].filter((m) => FORBIDDEN.some((re) => re.test(m)));
}

/**
 * The scripts V8 compiled while running `args` (ours, or `script` when given):
 * repository files relative to the repository root, npm files by URL, and
 * Deno's built-in `ext:` modules. Also the run's stdout and exit code.
 */
async function loadedBy(
  args: string[],
  script = cli,
  env?: Record<string, string>,
): Promise<{ modules: Set<string>; code: number; stdout: string }> {
  const dir = await tempDir("startup-");
  try {
    const log = `${dir}/v8.log`;
    const flags = `--log-function-events,--logfile=${log},--no-logfile-per-isolate`;
    const r = await run(Deno.execPath(), ["run", "-A", `--v8-flags=${flags}`, script, ...args], {
      env,
    });
    const text = await Deno.readTextFile(log);
    const modules = new Set<string>();
    for (const [url] of text.matchAll(/(?:file:\/\/|ext:)[^,\s]+/g)) {
      modules.add(url.startsWith(root.href) ? url.slice(root.href.length) : url);
    }
    return { modules, code: r.code, stdout: r.stdout };
  } finally {
    await removeTree(dir);
  }
}

/** Deno's own `ext:deno_node` modules loaded by a script that imports nothing. */
async function baselineNodeModules(): Promise<Set<string>> {
  const dir = await tempDir("startup-script-");
  try {
    await Deno.writeTextFile(`${dir}/empty.ts`, "console.log(1);\n");
    const { modules } = await loadedBy([], `${dir}/empty.ts`);
    return new Set([...modules].filter((m) => m.startsWith("ext:deno_node/")));
  } finally {
    await removeTree(dir);
  }
}

Deno.test("startup: version and --help load no driver, archive, store, config, FFI or Node module", async () => {
  const store = await tempDir("startup-store-");
  try {
    const baseline = await baselineNodeModules();
    const globals = ["-g", `${store}/g`, "-R", `${store}/r`, "-s", "vfs"];
    for (
      const args of [
        ["version"], // no global flags: storage.conf is not read for it either
        ["version", "-j"],
        [...globals, "version"],
        ["--help"],
        [...globals, "--help"],
      ]
    ) {
      const { modules, code, stdout } = await loadedBy(args);
      assert.equal(code, 0, args.join(" "));
      assert.match(stdout, args.includes("--help") ? /^Usage: containers-storage/ : /0\.|Version/);
      // The trace works: it saw our entry point and the command table.
      assert.ok(modules.has("cli.ts") && modules.has("lib/cli/commands.ts"), [...modules].join());
      const extra = [...modules].filter((m) => !baseline.has(m));
      assert.deepEqual(forbidden(extra), [], `${args.join(" ")} loaded them`);
    }
    // Nothing was created for the store the flags named.
    assert.deepEqual([...Deno.readDirSync(store)], []);
  } finally {
    await removeTree(store);
  }
});

Deno.test("startup: a store command loads only the driver in use", async () => {
  const store = await tempDir("startup-store-");
  try {
    const { modules, code } = await loadedBy([
      "-g",
      `${store}/g`,
      "-R",
      `${store}/r`,
      "-s",
      "vfs",
      "layers",
    ]);
    assert.equal(code, 0);
    assert.ok(modules.has("drivers/vfs/mod.ts"), [...modules].join());
    assert.ok(modules.has("lib/store/mod.ts"));
    assert.deepEqual([...modules].filter((m) => m.startsWith("drivers/overlay/")), []);
  } finally {
    await removeTree(store);
  }
});

/** What a listing must not load: the write/diff/archive side, Node compatibility modules, npm packages. */
const LISTING_FORBIDDEN: RegExp[] = [
  /^lib\/archive\/(?!change\.ts$)/, // tar, compression, tar-split, digests: only when a layer is written or read
  /^lib\/layers\/(put|put_chain|diff)\.ts$/,
  /^lib\/config_file\.ts$/,
  /^npm:|registry\.npmjs\.org/,
  /^node:|^ext:deno_node\//,
];

Deno.test("startup: layers, images and containers (and mount, create-container) load no archive, layer-write, Node or npm module without a storage.conf", async () => {
  const dir = await tempDir("startup-listing-");
  try {
    const baseline = await baselineNodeModules();
    const globals = ["-g", `${dir}/g`, "-R", `${dir}/r`, "-s", "vfs"];
    const noConf = { CONTAINERS_STORAGE_CONF: `${dir}/absent.conf` };
    // A layer, an image and a container, so that the listings have records to print.
    const ours = (args: string[]) =>
      run(Deno.execPath(), ["run", "-A", cli, ...globals, ...args], { env: noConf });
    const layer = await ours(["create-layer"]);
    assert.equal(layer.code, 0, layer.stderr);
    const image = await ours(["create-image", layer.stdout.trim()]);
    assert.equal(image.code, 0, image.stderr);
    const container = await ours(["create-container", image.stdout.trim()]);
    assert.equal(container.code, 0, container.stderr);
    for (const command of ["layers", "images", "containers"]) {
      const { modules, code, stdout } = await loadedBy([...globals, command], cli, noConf);
      assert.equal(code, 0, command);
      assert.ok(stdout.trim().length > 0, `${command} listed nothing`);
      assert.ok(modules.has("lib/store/mod.ts") && modules.has("drivers/vfs/mod.ts"), command);
      const extra = [...modules].filter((m) => !baseline.has(m));
      const bad = extra.filter((m) => LISTING_FORBIDDEN.some((re) => re.test(m)));
      assert.deepEqual(bad, [], `${command} loaded them`);
    }
    // Commands that write records but no diff load none of the heavy part either.
    const heavy =
      /^lib\/archive\/(compression|layer_stream|digest|tar_split|crc64|apply|export)\.ts$/;
    for (
      const args of [["mount", layer.stdout.trim()], ["create-container", image.stdout.trim()]]
    ) {
      const { modules, code } = await loadedBy([...globals, ...args], cli, noConf);
      assert.equal(code, 0, args[0]);
      const extra = [...modules].filter((m) => !baseline.has(m));
      const bad = extra.filter((m) => heavy.test(m) || /^node:|^ext:deno_node\/|npm/.test(m));
      assert.deepEqual(bad, [], `${args[0]} loaded them`);
    }
    // With a storage.conf present the parser does load: the check above sees npm modules when they are there.
    await Deno.writeTextFile(`${dir}/storage.conf`, `[storage]\ndriver = "vfs"\n`);
    const withConf = await loadedBy([...globals, "layers"], cli, {
      CONTAINERS_STORAGE_CONF: `${dir}/storage.conf`,
    });
    assert.equal(withConf.code, 0);
    assert.ok(withConf.modules.has("lib/config_file.ts"), [...withConf.modules].join());
    assert.ok([...withConf.modules].some((m) => /registry\.npmjs\.org\/smol-toml/.test(m)));
  } finally {
    await removeTree(dir);
  }
});

Deno.test("startup: import-layer, applydiff and diff start loading the layer engine while the store opens", async () => {
  const dir = await tempDir("startup-preload-");
  try {
    const globals = ["-g", `${dir}/g`, "-R", `${dir}/r`, "-s", "vfs"];
    const noConf = { CONTAINERS_STORAGE_CONF: `${dir}/absent.conf` };
    // Each fails before its action touches a layer (no such file, no such layer), so the
    // engine's modules are there only because the command asked for them up front.
    for (
      const [args, want] of [
        [["import-layer", "-f", `${dir}/absent.tar`], [
          "lib/archive/layer_stream.ts",
          "lib/archive/apply.ts",
        ]],
        [["applydiff", "-f", `${dir}/absent.tar`, "nolayer"], ["lib/layers/put.ts"]],
        [["diff", "nolayer"], ["lib/layers/diff.ts"]],
      ] as const
    ) {
      const { modules, code } = await loadedBy([...globals, ...args], cli, noConf);
      assert.equal(code, 1, args[0]);
      for (const m of want) assert.ok(modules.has(m), `${args[0]} did not load ${m}`);
    }
  } finally {
    await removeTree(dir);
  }
});

/** The modules `cli.ts` imports statically, directly or not (`deno info`'s graph). */
async function staticGraph(entry: string): Promise<Set<string>> {
  const r = await run(Deno.execPath(), ["info", "--json", entry]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as {
    roots: string[];
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
    }[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length > 0) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(d.code.specifier);
    }
  }
  return new Set([...seen].map((s) => s.startsWith(root.href) ? s.slice(root.href.length) : s));
}

Deno.test("startup: cli.ts statically imports no driver, archive, store, config, FFI or Node module", async () => {
  const graph = await staticGraph(cli);
  assert.ok(graph.has("lib/cli/commands.ts") && graph.has("lib/cli/flags.ts"), [...graph].join());
  assert.deepEqual(forbidden(graph), []);
});

Deno.test("startup: version skips storage.conf, but its usage and --debug still show the defaults from it", async () => {
  const dir = await tempDir("startup-conf-");
  try {
    const conf = `${dir}/storage.conf`;
    await Deno.writeTextFile(
      conf,
      `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/g"\nrunroot = "${dir}/r"\n`,
    );
    const ours = (args: string[], file = conf) =>
      run(Deno.execPath(), ["run", "-A", cli, ...args], {
        env: { CONTAINERS_STORAGE_CONF: file },
      });
    const help = await ours(["version", "--help"]);
    assert.equal(help.code, 125);
    assert.match(help.stderr, new RegExp(`--graph, -g=${dir}/g `));
    const debug = await ours(["version", "--debug"]);
    assert.equal(debug.code, 0);
    assert.match(debug.stderr, new RegExp(`Root: ${dir}/g`));
    // A storage.conf that does not parse is reported by commands that open a store, not by version.
    await Deno.writeTextFile(`${dir}/bad.conf`, "[storage\n");
    const version = await ours(["version"], `${dir}/bad.conf`);
    assert.deepEqual([version.code, version.stdout], [0, `Version: ${packageVersion()}\n`]);
    const layers = await ours(["layers"], `${dir}/bad.conf`);
    assert.equal(layers.code, 1);
    assert.match(layers.stdout, /^error initializing: /);
  } finally {
    await removeTree(dir);
  }
});

/** The package version, as `version` prints it. */
function packageVersion(): string {
  return JSON.parse(Deno.readTextFileSync(new URL("deno.json", root))).version;
}

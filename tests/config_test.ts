import assert from "node:assert/strict";
import {
  defaultConfigFile,
  defaultStoreOptions,
  driverOption,
  type StoreOptions,
  storeOptionsFromConf,
} from "../lib/config.ts";
import { parseStorageConf } from "../lib/config_file.ts";
import { ErrConfig } from "../lib/errors.ts";
import { isRoot, referenceCli, removeTree, run, tempDir } from "./helpers.ts";

const FULL = `# every key containers/storage 1.43 knows
[storage]
driver = "overlay"
runroot = "/tmp/cs-run"
graphroot = "/tmp/cs-graph"
rootless_storage_path = "$HOME/rl/$UID/$USER"

[storage.options]
additionalimagestores = ["/a", "/b"]
additionallayerstores = ["/l"]
size = "10G"
remap-uids = "0:100000:65536"
remap-gids = "0:200000:1000:1000:300000:10"
ignore_chown_errors = "true"
mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev"
skip_mount_home = "true"
force_mask = 0o755
root-auto-userns-user = "containers"
auto-userns-min-size = 1024
auto-userns-max-size = 65536
disable-volatile = true
pull_options = {enable_partial_images = "false", use_hard_links = "false"}

[storage.options.overlay]
ignore_chown_errors = "false"
mountopt = "nodev,metacopy=on"
mount_program = "/bin/true"
size = "5G"
inodes = "100"
skip_mount_home = "false"
force_mask = "shared"

[storage.options.vfs]
ignore_chown_errors = "true"

[storage.options.thinpool]
basesize = "1G"
`;

const FULL_OVERLAY_OPTIONS = [
  "overlay.imagestore=/a",
  "overlay.imagestore=/b",
  "overlay.additionallayerstore=/l",
  "overlay.size=10G",
  "overlay.mount_program=/usr/bin/fuse-overlayfs",
  "overlay.skip_mount_home=true",
  "overlay.ignore_chown_errors=true",
  "overlay.force_mask=755",
  "overlay.mountopt=nodev",
  "overlay.ignore_chown_errors=false",
  "overlay.mount_program=/bin/true",
  "overlay.mountopt=nodev,metacopy=on",
  "overlay.size=5G",
  "overlay.inodes=100",
  "overlay.skip_mount_home=false",
  "overlay.force_mask=shared",
];

/** Injected paths that do not exist, so no test reads the machine's own storage.conf. */
function isolated(dir: string) {
  return {
    systemConfigPath: `${dir}/no-etc.conf`,
    vendorConfigPath: `${dir}/no-usr.conf`,
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir("cscfg-");
  try {
    await fn(await Deno.realPath(dir));
  } finally {
    await removeTree(dir);
  }
}

function configErr(...parts: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof ErrConfig, `expected ErrConfig, got ${e}`);
    for (const p of parts) {
      assert.ok(e.message.includes(p), `${JSON.stringify(p)} not in: ${e.message}`);
    }
    return true;
  };
}

Deno.test("parseStorageConf reads every 1.43 key", () => {
  const conf = parseStorageConf(FULL, "full.conf");
  const s = conf.storage;
  assert.equal(s.driver, "overlay");
  assert.equal(s.runroot, "/tmp/cs-run");
  assert.equal(s.graphroot, "/tmp/cs-graph");
  assert.equal(s.rootless_storage_path, "$HOME/rl/$UID/$USER");
  const o = s.options;
  assert.deepEqual(o.additionalimagestores, ["/a", "/b"]);
  assert.deepEqual(o.additionallayerstores, ["/l"]);
  assert.equal(o.size, "10G");
  assert.equal(o["remap-uids"], "0:100000:65536");
  assert.equal(o.ignore_chown_errors, "true");
  assert.equal(o.mount_program, "/usr/bin/fuse-overlayfs");
  assert.equal(o.mountopt, "nodev");
  assert.equal(o.skip_mount_home, "true");
  assert.equal(o.force_mask, 0o755);
  assert.equal(o["root-auto-userns-user"], "containers");
  assert.equal(o["auto-userns-min-size"], 1024);
  assert.equal(o["auto-userns-max-size"], 65536);
  assert.equal(o["disable-volatile"], true);
  assert.deepEqual(o.pull_options, { enable_partial_images: "false", use_hard_links: "false" });
  assert.deepEqual(o.overlay, {
    ignore_chown_errors: "false",
    mountopt: "nodev,metacopy=on",
    mount_program: "/bin/true",
    size: "5G",
    inodes: "100",
    skip_mount_home: "false",
    force_mask: "shared",
  });
  assert.deepEqual(o.vfs, { ignore_chown_errors: "true" });
  assert.deepEqual(o.thinpool, { basesize: "1G" });
});

Deno.test("storeOptionsFromConf turns every key into options in 1.43's order", async () => {
  const opts = await storeOptionsFromConf(parseStorageConf(FULL, "full.conf"), { env: {} });
  assert.equal(opts.graphDriverName, "overlay");
  assert.equal(opts.runRoot, "/tmp/cs-run");
  assert.equal(opts.graphRoot, "/tmp/cs-graph");
  assert.equal(opts.rootlessStoragePath, "$HOME/rl/$UID/$USER");
  assert.deepEqual(opts.graphDriverOptions, FULL_OVERLAY_OPTIONS);
  assert.deepEqual(opts.imageStores, ["/a", "/b"]);
  assert.deepEqual(opts.uidMap, [{ container_id: 0, host_id: 100000, size: 65536 }]);
  assert.deepEqual(opts.gidMap, [
    { container_id: 0, host_id: 200000, size: 1000 },
    { container_id: 1000, host_id: 300000, size: 10 },
  ]);
  assert.equal(opts.rootAutoNsUser, "containers");
  assert.equal(opts.autoNsMinSize, 1024);
  assert.equal(opts.autoNsMaxSize, 65536);
  assert.equal(opts.disableVolatile, true);
  assert.deepEqual(opts.pullOptions, { enable_partial_images: "false", use_hard_links: "false" });
  // The driver table is emitted last, so its values are the effective ones.
  assert.equal(opts.mountOpt, "nodev,metacopy=on");
  assert.equal(opts.mountProgram, "/bin/true");
  assert.equal(opts.size, "5G");
  assert.equal(opts.ignoreChownErrors, false);
  assert.equal(opts.skipMountHome, false);
  assert.equal(opts.forceMask, "shared");
  assert.equal(opts.configFile, "full.conf");
});

Deno.test("driver tables of vfs, btrfs, zfs, aufs and devicemapper become driver options", async () => {
  const tables = `
[storage.options]
additionallayerstores = ["/l"]
mountopt = "top"
size = "9G"
[storage.options.vfs]
ignore_chown_errors = true
[storage.options.btrfs]
size = "2G"
[storage.options.zfs]
fsname = "z"
size = "3G"
[storage.options.aufs]
mountopt = "a"
[storage.options.thinpool]
autoextend_percent = "20"
directlvm_device = ""
log_level = "7"
metadatasize = "1G"
use_deferred_removal = "True"
`;
  const optionsFor = async (driver: string) => {
    const text = `[storage]\ndriver = "${driver}"\n${tables}`;
    return (await storeOptionsFromConf(parseStorageConf(text, "t.conf"), { env: {} }))
      .graphDriverOptions;
  };
  const top = (d: string) => [`${d}.additionallayerstore=/l`, `${d}.size=9G`, `${d}.mountopt=top`];
  assert.deepEqual(await optionsFor("vfs"), [...top("vfs"), "vfs.ignore_chown_errors=true"]);
  assert.deepEqual(await optionsFor("btrfs"), [...top("btrfs"), "btrfs.size=2G"]);
  assert.deepEqual(await optionsFor("zfs"), [
    ...top("zfs"),
    "zfs.fsname=z",
    "zfs.mountopt=top",
    "zfs.size=3G",
  ]);
  assert.deepEqual(await optionsFor("aufs"), [...top("aufs"), "aufs.mountopt=a"]);
  assert.deepEqual(await optionsFor("devicemapper"), [
    ...top("devicemapper"),
    "dm.thinp_autoextend_percent=20",
    "dm.libdm_log_level=7",
    "dm.metadata_size=1G",
    "devicemapper.mountopt=top",
    "devicemapper.size=9G",
    "dm.use_deferred_removal=True",
  ]);
  const minSpace =
    `[storage]\ndriver = "btrfs"\n[storage.options.btrfs]\nmin_space = "1G"\nsize = "2G"\n`;
  assert.deepEqual(
    (await storeOptionsFromConf(parseStorageConf(minSpace, "t.conf"), { env: {} }))
      .graphDriverOptions,
    ["btrfs.min_space=1G"],
  );
});

Deno.test("root defaults: no file gives /var/lib/containers/storage and /run/containers/storage", async () => {
  await withDir(async (dir) => {
    const opts = await defaultStoreOptions({ uid: 0, env: {}, ...isolated(dir) });
    assert.equal(opts.graphRoot, "/var/lib/containers/storage");
    assert.equal(opts.runRoot, "/run/containers/storage");
    assert.equal(opts.graphDriverName, "");
    assert.deepEqual(opts.graphDriverOptions, []);
    assert.equal(opts.configFile, undefined);
  });
});

Deno.test("root reads /etc's file when it exists, else /usr/share's, filling unset roots", async () => {
  await withDir(async (dir) => {
    const paths = { systemConfigPath: `${dir}/etc.conf`, vendorConfigPath: `${dir}/usr.conf` };
    await Deno.writeTextFile(paths.vendorConfigPath, '[storage]\ndriver = "vfs"\n');
    let opts = await defaultStoreOptions({ uid: 0, env: {}, ...paths });
    assert.equal(opts.graphDriverName, "vfs");
    assert.equal(opts.configFile, paths.vendorConfigPath);
    assert.equal(opts.graphRoot, "/var/lib/containers/storage");
    assert.equal(opts.runRoot, "/run/containers/storage");
    await Deno.writeTextFile(
      paths.systemConfigPath,
      `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/g/"\nrunroot = "${dir}/r"\n`,
    );
    opts = await defaultStoreOptions({ uid: 0, env: {}, ...paths });
    assert.equal(opts.graphDriverName, "overlay");
    assert.equal(opts.configFile, paths.systemConfigPath);
    assert.equal(opts.graphRoot, `${dir}/g`);
    assert.equal(opts.runRoot, `${dir}/r`);
    assert.equal(await defaultConfigFile({ uid: 0, env: {}, ...paths }), paths.systemConfigPath);
  });
});

Deno.test("rootless defaults: $HOME/.local/share and $XDG_RUNTIME_DIR/containers, vfs without a file", async () => {
  await withDir(async (dir) => {
    const env = { HOME: `${dir}/home`, XDG_RUNTIME_DIR: `${dir}/xdg-run` };
    const opts = await defaultStoreOptions({ uid: 1000, env, ...isolated(dir) });
    assert.equal(opts.graphRoot, `${dir}/home/.local/share/containers/storage`);
    assert.equal(opts.runRoot, `${dir}/xdg-run/containers`);
    assert.equal(opts.graphDriverName, "vfs");
    const xdg = await defaultStoreOptions({
      uid: 1000,
      env: { ...env, XDG_DATA_HOME: `${dir}/data` },
      ...isolated(dir),
    });
    assert.equal(xdg.graphRoot, `${dir}/data/containers/storage`);
    assert.equal(
      await defaultConfigFile({ uid: 1000, env }),
      `${dir}/home/.config/containers/storage.conf`,
    );
    assert.equal(
      await defaultConfigFile({ uid: 1000, env: { ...env, XDG_CONFIG_HOME: `${dir}/cfg` } }),
      `${dir}/cfg/containers/storage.conf`,
    );
  });
});

Deno.test("rootless users inherit a rootless-capable driver, ignore_chown_errors and rootless_storage_path", async () => {
  await withDir(async (dir) => {
    const system = `${dir}/etc.conf`;
    await Deno.writeTextFile(
      system,
      `[storage]
driver = "overlay"
rootless_storage_path = "$HOME/rl/$UID/$USER"
[storage.options]
ignore_chown_errors = "true"
mountopt = "nodev"
pull_options = {use_hard_links = "true"}
`,
    );
    const env = { HOME: `${dir}/home`, USER: "alice", XDG_RUNTIME_DIR: `${dir}/run` };
    const input = { uid: 1234, env, systemConfigPath: system, vendorConfigPath: `${dir}/none` };
    const opts = await defaultStoreOptions(input);
    assert.equal(opts.graphDriverName, "overlay");
    assert.deepEqual(opts.graphDriverOptions, ["overlay.ignore_chown_errors=true"]);
    assert.equal(opts.ignoreChownErrors, true);
    assert.equal(opts.graphRoot, `${dir}/home/rl/1234/alice`);
    assert.deepEqual(opts.pullOptions, { use_hard_links: "true" });

    await Deno.writeTextFile(system, '[storage]\ndriver = "devicemapper"\n');
    assert.equal((await defaultStoreOptions(input)).graphDriverName, "vfs");
  });
});

Deno.test("a rootless user's own file replaces the system one; unset roots use rootless defaults", async () => {
  await withDir(async (dir) => {
    const env = {
      HOME: `${dir}/home`,
      XDG_CONFIG_HOME: `${dir}/cfg`,
      XDG_RUNTIME_DIR: `${dir}/run`,
    };
    await Deno.mkdir(`${dir}/cfg/containers`, { recursive: true });
    const userFile = `${dir}/cfg/containers/storage.conf`;
    await Deno.writeTextFile(userFile, '[storage]\ndriver = "vfs"\n');
    const input = { uid: 1000, env, ...isolated(dir) };
    let opts = await defaultStoreOptions(input);
    assert.equal(opts.configFile, userFile);
    assert.equal(opts.graphDriverName, "vfs");
    assert.equal(opts.graphRoot, `${dir}/home/.local/share/containers/storage`);
    assert.equal(opts.runRoot, `${dir}/run/containers`);
    await Deno.writeTextFile(
      userFile,
      '[storage]\ndriver = "vfs"\nrootless_storage_path = "${HOME}/store-$UID"\n',
    );
    opts = await defaultStoreOptions(input);
    assert.equal(opts.graphRoot, `${dir}/home/store-1000`);
    assert.equal(opts.rootlessStoragePath, `${dir}/home/store-1000`);
  });
});

Deno.test("CONTAINERS_STORAGE_CONF names the file; configPath wins over it; a missing file means defaults", async () => {
  await withDir(async (dir) => {
    const a = `${dir}/a.conf`;
    const b = `${dir}/b.conf`;
    await Deno.writeTextFile(a, `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/ga"\n`);
    await Deno.writeTextFile(b, `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/gb"\n`);
    const base = { uid: 0, ...isolated(dir) };
    let opts = await defaultStoreOptions({ ...base, env: { CONTAINERS_STORAGE_CONF: a } });
    assert.equal(opts.graphRoot, `${dir}/ga`);
    assert.equal(opts.configFile, a);
    opts = await defaultStoreOptions({
      ...base,
      env: { CONTAINERS_STORAGE_CONF: a },
      configPath: b,
    });
    assert.equal(opts.graphRoot, `${dir}/gb`);
    opts = await defaultStoreOptions({
      ...base,
      env: { CONTAINERS_STORAGE_CONF: `${dir}/missing.conf` },
    });
    assert.equal(opts.graphRoot, "/var/lib/containers/storage");
    assert.equal(opts.configFile, undefined);
    assert.equal(
      await defaultConfigFile({ uid: 1000, env: { CONTAINERS_STORAGE_CONF: a, HOME: dir } }),
      a,
    );
  });
});

Deno.test("STORAGE_DRIVER overrides the driver; overlay2 means overlay", async () => {
  const text = '[storage]\ndriver = "vfs"\n[storage.options]\nmountopt = "nodev"\n';
  const conf = parseStorageConf(text, "t.conf");
  let opts = await storeOptionsFromConf(conf, { env: { STORAGE_DRIVER: "overlay" } });
  assert.equal(opts.graphDriverName, "overlay");
  assert.deepEqual(opts.graphDriverOptions, ["overlay.mountopt=nodev", "overlay.mountopt=nodev"]);
  // 1.43 prefixes top-level options with the name as given, table options with the normalized one.
  opts = await storeOptionsFromConf(conf, { env: { STORAGE_DRIVER: "overlay2" } });
  assert.equal(opts.graphDriverName, "overlay");
  assert.deepEqual(opts.graphDriverOptions, ["overlay2.mountopt=nodev", "overlay.mountopt=nodev"]);
  assert.equal(opts.mountOpt, "nodev");
});

Deno.test("STORAGE_OPTS replaces the driver options; an empty one clears them", async () => {
  await withDir(async (dir) => {
    const f = `${dir}/s.conf`;
    await Deno.writeTextFile(f, '[storage]\ndriver = "vfs"\n[storage.options]\nsize = "1G"\n');
    const base = { uid: 0, configPath: f };
    let opts = await defaultStoreOptions({ ...base, env: { STORAGE_OPTS: "vfs.a=1,vfs.b=2" } });
    assert.deepEqual(opts.graphDriverOptions, ["vfs.a=1", "vfs.b=2"]);
    opts = await defaultStoreOptions({ ...base, env: { STORAGE_OPTS: "" } });
    assert.deepEqual(opts.graphDriverOptions, []);
    opts = await defaultStoreOptions({ ...base, env: {} });
    assert.deepEqual(opts.graphDriverOptions, ["vfs.size=1G"]);
    const rootless = await defaultStoreOptions({
      uid: 1000,
      env: {
        HOME: dir,
        XDG_RUNTIME_DIR: dir,
        STORAGE_DRIVER: "overlay",
        STORAGE_OPTS: "overlay.x=1",
      },
      ...isolated(dir),
    });
    assert.equal(rootless.graphDriverName, "overlay");
    assert.deepEqual(rootless.graphDriverOptions, ["overlay.x=1"]);
  });
});

Deno.test("bad TOML is an ErrConfig naming the file and the line", async () => {
  assert.throws(
    () => parseStorageConf('[storage]\ndriver = "vfs"\nrunroot = \n', "/etc/x/storage.conf"),
    configErr("/etc/x/storage.conf", "line 3", '"storage.runroot"'),
  );
  assert.throws(
    () => parseStorageConf('[storage]\ndriver = "vfs"\ndriver = "overlay"\n', "dup.conf"),
    configErr("dup.conf", "line 3"),
  );
  await withDir(async (dir) => {
    const f = `${dir}/bad.conf`;
    await Deno.writeTextFile(f, "[storage\n");
    await assert.rejects(
      defaultStoreOptions({ uid: 0, env: {}, configPath: f }),
      configErr(f, "line 1", "[storage"),
    );
  });
});

Deno.test("an unknown key or table is an ErrConfig naming the key and its line", () => {
  const cases: [string, string, string][] = [
    [
      '[storage]\ndriver = "vfs"\n\n[storage.options]\nbogus = 1\n',
      "storage.options.bogus",
      "line 5",
    ],
    [
      '[storage]\ndriver = "vfs"\n[storage.options.overlay]\nmountopt = "x"\nnope = "y"\n',
      "storage.options.overlay.nope",
      "line 5",
    ],
    ['[storage]\noptions.overlay.bad_key = "x"\n', "storage.options.overlay.bad_key", "line 2"],
    [
      '[storage]\ndriver = "vfs"\n[storage.options.lvm]\nx = "1"\n',
      "storage.options.lvm",
      "line 3",
    ],
    ['top = 1\n[storage]\ndriver = "vfs"\n', "top", "line 1"],
    ['[storage]\n"quoted key" = "x"\n', "storage.quoted key", "line 2"],
    [
      '[storage]\ntransient_store = true\n[storage.options]\nostree_repo = "x"\n',
      "storage.options.ostree_repo",
      "line 4",
    ],
  ];
  for (const [text, key, line] of cases) {
    assert.throws(
      () => parseStorageConf(text, "u.conf"),
      configErr("u.conf", `"${key}"`, line, "unknown key"),
    );
  }
});

Deno.test("a value of the wrong type is an ErrConfig naming the key and its line", () => {
  const cases: [string, string, string][] = [
    ["[storage]\ndriver = 1\n", "storage.driver", "line 2"],
    ["[storage]\n[storage.options]\nsize = 10\n", "storage.options.size", "line 3"],
    [
      '[storage]\n[storage.options]\nforce_mask = "shared"\n',
      "storage.options.force_mask",
      "line 3",
    ],
    [
      '[storage]\n[storage.options]\nadditionalimagestores = "/a"\n',
      "storage.options.additionalimagestores",
      "line 3",
    ],
    [
      "[storage]\n[storage.options]\nauto-userns-max-size = -1\n",
      "storage.options.auto-userns-max-size",
      "line 3",
    ],
    [
      "[storage]\n[storage.options]\npull_options = {a = 1}\n",
      "storage.options.pull_options",
      "line 3",
    ],
    ['[storage]\noptions = "x"\n', "storage.options", "line 2"],
  ];
  for (const [text, key, line] of cases) {
    assert.throws(() => parseStorageConf(text, "w.conf"), configErr("w.conf", `"${key}"`, line));
  }
});

Deno.test("boolean-like string options accept TOML booleans; force_mask accepts octal digit strings", async () => {
  const text = `[storage]
driver = "overlay"
[storage.options]
skip_mount_home = true
force_mask = "0700"
[storage.options.overlay]
ignore_chown_errors = true
`;
  const opts = await storeOptionsFromConf(parseStorageConf(text, "b.conf"), { env: {} });
  assert.deepEqual(opts.graphDriverOptions, [
    "overlay.skip_mount_home=true",
    "overlay.force_mask=700",
    "overlay.ignore_chown_errors=true",
    "overlay.skip_mount_home=true",
    "overlay.force_mask=700",
  ]);
  assert.equal(opts.skipMountHome, true);
  assert.equal(opts.ignoreChownErrors, true);
});

Deno.test("bad remap-uids is an ErrConfig naming the key and line; remap-user reads subuid/subgid", async () => {
  const bad = '[storage]\ndriver = "vfs"\n[storage.options]\nremap-gids = "0:1:2,x"\n';
  await assert.rejects(
    storeOptionsFromConf(parseStorageConf(bad, "r.conf"), { env: {} }),
    configErr("r.conf", "line 4", '"storage.options.remap-gids"'),
  );
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/subuid`, "csuser:500000:65536\n");
    await Deno.writeTextFile(`${dir}/subgid`, "csuser:600000:65536\ncsuser:400000:100\n");
    const files = { env: {}, subuidFile: `${dir}/subuid`, subgidFile: `${dir}/subgid` };
    const text = '[storage]\ndriver = "vfs"\n[storage.options]\nremap-user = "csuser"\n';
    const opts = await storeOptionsFromConf(parseStorageConf(text, "r.conf"), files);
    assert.deepEqual(opts.uidMap, [{ container_id: 0, host_id: 500000, size: 65536 }]);
    assert.deepEqual(opts.gidMap, [
      { container_id: 0, host_id: 400000, size: 100 },
      { container_id: 100, host_id: 600000, size: 65536 },
    ]);
    const unknown = '[storage]\n[storage.options]\nremap-group = "ghost"\n';
    await assert.rejects(
      storeOptionsFromConf(parseStorageConf(unknown, "r.conf"), files),
      configErr("r.conf", "line 3", "remap-group", "ghost"),
    );
  });
});

Deno.test("driverOption finds the last value under the driver's, the bare and overlay2 spellings", () => {
  const opts = ["overlay.mountopt=a", ".MountOpt=b", "vfs.mountopt=c", "overlay2.size=1G"];
  assert.equal(driverOption(opts, "overlay", "mountopt"), "b");
  assert.equal(driverOption(opts, "overlay", "size"), "1G");
  assert.equal(driverOption(opts, "vfs", "mountopt"), "c");
  assert.equal(driverOption(opts, "vfs", "size"), undefined);
});

/** Runs the reference CLI with CONTAINERS_STORAGE_CONF and reads what it resolved from its debug output. */
async function referenceResolve(
  conf: string,
  env: Record<string, string> = {},
): Promise<Pick<StoreOptions, "graphRoot" | "runRoot" | "graphDriverName" | "graphDriverOptions">> {
  const r = await run(referenceCli!, ["--debug", "status"], {
    env: { ...env, CONTAINERS_STORAGE_CONF: conf },
  });
  const field = (name: string) => {
    const m = r.stderr.match(new RegExp(`msg="${name}: ([^"]*)"`));
    assert.ok(m, `no "${name}" in reference output: ${r.stderr}`);
    return m[1];
  };
  const list = field("Driver Options").replace(/^\[|\]$/g, "");
  return {
    graphRoot: field("Root"),
    runRoot: field("Run Root"),
    graphDriverName: field("Driver Name"),
    graphDriverOptions: list === "" ? [] : list.split(" "),
  };
}

Deno.test({
  name: "resolved options match the reference CLI for the same storage.conf and env",
  ignore: !referenceCli || !isRoot,
  fn: async () => {
    await withDir(async (dir) => {
      const roots = `runroot = "${dir}/run"\ngraphroot = "${dir}/graph"\n`;
      const full = FULL.replace(/^runroot.*\ngraphroot.*\n/m, roots)
        .replace('["/a", "/b"]', `["${dir}/a", "${dir}/b"]`);
      const cases: [string, Record<string, string>][] = [
        [full, {}],
        [full.replace('driver = "overlay"', 'driver = "vfs"'), {}],
        [`[storage]\ndriver = "vfs"\n${roots}[storage.options]\nsize = "1G"\n`, {
          STORAGE_OPTS: "vfs.a=1,vfs.b=2",
        }],
        [`[storage]\ndriver = "vfs"\n${roots}[storage.options]\nmountopt = "nodev"\n`, {
          STORAGE_DRIVER: "overlay2",
        }],
      ];
      for (const [i, [text, env]] of cases.entries()) {
        const file = `${dir}/c${i}.conf`;
        await Deno.writeTextFile(file, text);
        const want = await referenceResolve(file, env);
        const got = await defaultStoreOptions({ uid: 0, env: { ...env }, configPath: file });
        assert.deepEqual(
          {
            graphRoot: got.graphRoot,
            runRoot: got.runRoot,
            graphDriverName: got.graphDriverName,
            graphDriverOptions: got.graphDriverOptions,
          },
          want,
          `case ${i}`,
        );
        await removeTree(`${dir}/graph`);
      }
    });
  },
});

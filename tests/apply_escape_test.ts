/**
 * Hostile tarballs: every way an entry could reach outside the target
 * directory (`..`, absolute names, symlinks planted by the tarball or
 * already in the tree, hard links, whiteouts, opaque markers) must either be
 * rejected with ErrBadArchive or stay inside the target. Each case proves
 * that nothing in a sentinel directory beside the target changed.
 */
import assert from "node:assert/strict";
import { applyTar } from "../lib/archive/apply.ts";
import { ErrBadArchive } from "../lib/errors.ts";
import { buildTar, type FixtureEntry, streamOf } from "./tar_fixtures.ts";
import { isRoot, removeTree, run, tempDir } from "./helpers.ts";

interface Sandbox {
  tmp: string;
  target: string;
  outside: string;
}

async function sandbox(): Promise<Sandbox> {
  const tmp = await tempDir("escape-");
  const target = `${tmp}/target`, outside = `${tmp}/outside`;
  await Deno.mkdir(target);
  await Deno.mkdir(`${outside}/dir`, { recursive: true });
  await Deno.writeTextFile(`${outside}/secret`, "do not touch");
  await Deno.writeTextFile(`${outside}/dir/inner`, "inner");
  return { tmp, target, outside };
}

/** Every path, type, mode, owner, size, mtime, link and content hash below `dir`. */
async function snapshot(dir: string): Promise<string> {
  const meta = await run("find", [".", "-printf", "%p %M %U:%G %s %T@ %l\\n"], { cwd: dir });
  const sums = await run("bash", ["-c", "find . -type f -print0 | sort -z | xargs -0r sha256sum"], {
    cwd: dir,
  });
  const attrs = await run("getfattr", ["-R", "-d", "-m", "-", "."], { cwd: dir });
  return [meta.stdout.split("\n").sort().join("\n"), sums.stdout, attrs.stdout].join("\n--\n");
}

/**
 * Applies `entries` onto the sandbox's target (after `prepare`), expecting
 * ErrBadArchive when `rejects` is set, and checks the sentinel is unchanged.
 */
async function attempt(
  entries: (s: Sandbox) => FixtureEntry[],
  opts: { rejects: boolean; format?: "aufs" | "overlay"; prepare?: (s: Sandbox) => Promise<void> },
): Promise<Sandbox> {
  const s = await sandbox();
  await opts.prepare?.(s);
  const before = await snapshot(s.outside);
  const beforeParent = (await run("ls", ["-A", s.tmp])).stdout;
  const p = applyTar(streamOf(buildTar(entries(s))), s.target, {
    whiteoutFormat: opts.format ?? "aufs",
  });
  if (opts.rejects) {
    await assert.rejects(p, (e) => {
      assert.ok(e instanceof ErrBadArchive, `expected ErrBadArchive, got ${e}`);
      return true;
    });
  } else {
    await p;
  }
  assert.equal(await snapshot(s.outside), before, "the sentinel directory changed");
  assert.equal(
    (await run("ls", ["-A", s.tmp])).stdout,
    beforeParent,
    "something appeared beside the target",
  );
  return s;
}

function exists(p: string): boolean {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

const formats = ["aufs", "overlay"] as const;

Deno.test(
  { name: "escape: .. in entry names and link targets stops at the target", ignore: !isRoot },
  async () => {
    for (const format of formats) {
      const s = await attempt(() => [
        { name: "../outside/evil", data: "1" },
        { name: "a/../../outside/secret", data: "2" },
        { name: "./../outside/sub/", type: "5", mode: 0o700 },
        { name: "../../hl", type: "1", link: "../../outside/secret" },
        { name: "../.wh.gone", data: "" },
        { name: "../outside/.wh.dir", data: "" },
      ], { rejects: false, format });
      try {
        assert.equal(await Deno.readTextFile(`${s.target}/outside/evil`), "1");
        assert.equal(await Deno.readTextFile(`${s.target}/hl`), "2");
        assert.equal(Deno.lstatSync(`${s.target}/hl`).nlink, 2);
        assert.equal(Deno.lstatSync(`${s.target}/outside/sub`).mode! & 0o777, 0o700);
        assert.equal(exists(`${s.target}/outside/dir`), format === "overlay"); // a whiteout there
      } finally {
        await removeTree(s.tmp);
      }
    }
    // ".." is the target itself, which only a directory entry can be.
    const s = await attempt(() => [{ name: "..", data: "pwned" }], { rejects: true });
    await removeTree(s.tmp);
  },
);

Deno.test({ name: "escape: absolute names land inside the target", ignore: !isRoot }, async () => {
  const s = await attempt((s) => [
    { name: `${s.outside}/secret`, data: "pwned" },
    { name: "/../../evil", data: "clamped" },
  ], { rejects: false });
  try {
    assert.equal(await Deno.readTextFile(`${s.target}${s.outside}/secret`), "pwned");
    assert.equal(await Deno.readTextFile(`${s.target}/evil`), "clamped");
  } finally {
    await removeTree(s.tmp);
  }
});

Deno.test({
  name: "escape: writing through a symlink planted earlier in the tarball",
  ignore: !isRoot,
}, async () => {
  const cases: ((s: Sandbox) => FixtureEntry[])[] = [
    () => [{ name: "esc", type: "2", link: "../outside" }, { name: "esc/evil", data: "pwned" }],
    (s) => [{ name: "esc", type: "2", link: s.outside }, { name: "esc/secret", data: "pwned" }],
    (s) => [{ name: "esc", type: "2", link: s.outside }, { name: "esc/dir/inner", data: "pwned" }],
    () => [
      { name: "a", type: "2", link: "b" },
      { name: "b", type: "2", link: "../../../../outside" },
      { name: "a/new", type: "5" },
    ],
    (
      s,
    ) => [{ name: "esc", type: "2", link: s.outside }, {
      name: "esc/dev",
      type: "3",
      devmajor: 1,
      devminor: 3,
    }],
    (
      s,
    ) => [{ name: "esc", type: "2", link: s.outside }, {
      name: "esc/l",
      type: "2",
      link: "/etc/passwd",
    }],
  ];
  for (const c of cases) {
    const s = await attempt(c, { rejects: true });
    await removeTree(s.tmp);
  }
});

Deno.test(
  { name: "escape: writing through a symlink already in the tree", ignore: !isRoot },
  async () => {
    for (const link of ["abs", "rel"]) {
      const s = await attempt(
        () => [{ name: "pre/secret", data: "pwned" }, { name: "pre/dir/", type: "5", mode: 0o777 }],
        {
          rejects: true,
          prepare: async (s) => {
            await Deno.symlink(link === "abs" ? s.outside : "../outside", `${s.target}/pre`);
          },
        },
      );
      await removeTree(s.tmp);
    }
  },
);

Deno.test({
  name: "escape: replacing a symlink to outside replaces the link only",
  ignore: !isRoot,
}, async () => {
  const s = await attempt(() => [
    { name: "pre", data: "new content" },
    { name: "predir", type: "5", mode: 0o777 },
    { name: "prelink", type: "1", link: "pre" },
  ], {
    rejects: false,
    prepare: async (s) => {
      await Deno.symlink(`${s.outside}/secret`, `${s.target}/pre`);
      await Deno.symlink(`${s.outside}/dir`, `${s.target}/predir`);
      await Deno.symlink(`${s.outside}/secret`, `${s.target}/prelink`);
    },
  });
  try {
    assert.equal(await Deno.readTextFile(`${s.target}/pre`), "new content");
    assert.ok(Deno.lstatSync(`${s.target}/predir`).isDirectory);
  } finally {
    await removeTree(s.tmp);
  }
});

Deno.test(
  { name: "escape: hard links to outside files are rejected", ignore: !isRoot },
  async () => {
    const cases: ((s: Sandbox) => FixtureEntry[])[] = [
      () => [{ name: "hl", type: "1", link: "../outside/secret" }],
      (s) => [{ name: "hl", type: "1", link: `${s.outside}/secret` }],
      (
        s,
      ) => [{ name: "esc", type: "2", link: s.outside }, {
        name: "hl",
        type: "1",
        link: "esc/secret",
      }],
      () => [{ name: "esc", type: "2", link: "../outside/secret" }, {
        name: "hl",
        type: "1",
        link: "esc",
      }, {
        name: "hl",
        data: "overwrite the link's target?",
      }],
    ];
    for (const [i, c] of cases.entries()) {
      const s = await attempt(c, { rejects: i !== 3 });
      await removeTree(s.tmp);
    }
  },
);

Deno.test(
  { name: "escape: whiteouts and opaque markers naming outside paths", ignore: !isRoot },
  async () => {
    for (const format of formats) {
      const cases: ((s: Sandbox) => FixtureEntry[])[] = [
        () => [{ name: ".wh..", data: "" }],
        () => [{ name: "a/.wh..", data: "" }],
        (s) => [{ name: "esc", type: "2", link: s.outside }, { name: "esc/.wh.secret", data: "" }],
        () => [{ name: "esc", type: "2", link: "../outside" }, { name: "esc/.wh.dir", data: "" }],
        (
          s,
        ) => [{ name: "esc", type: "2", link: s.outside }, { name: "esc/.wh..wh..opq", data: "" }],
        () => [{ name: "pre/.wh.secret", data: "" }],
        () => [{ name: "pre/.wh..wh..opq", data: "" }],
      ];
      for (const c of cases) {
        const s = await attempt(c, {
          rejects: true,
          format,
          prepare: async (s) => {
            await Deno.symlink(s.outside, `${s.target}/pre`);
          },
        });
        await removeTree(s.tmp);
      }
    }
  },
);

Deno.test(
  { name: "escape: symlinks resolve inside the target like a chroot", ignore: !isRoot },
  async () => {
    // The last entry fails (its parent would have to be created behind a link); the rest is applied.
    const s = await attempt((s) => [
      { name: "usr/lib/", type: "5" },
      { name: "lib", type: "2", link: "usr/lib" },
      { name: "lib/libc.so", data: "relative link, followed inside" },
      { name: "abs", type: "2", link: "/usr" },
      { name: "abs/lib/doc", data: "absolute link, rebased on the target" },
      { name: "up", type: "2", link: "../../../../usr" },
      { name: "up/lib/bin", data: ".. stops at the target" },
      { name: "host", type: "2", link: s.outside },
      { name: "abs/missing/x", data: "no directory is created behind a symlink" },
    ], { rejects: true });
    try {
      assert.equal(
        await Deno.readTextFile(`${s.target}/usr/lib/libc.so`),
        "relative link, followed inside",
      );
      assert.ok(exists(`${s.target}/usr/lib/doc`));
      assert.ok(exists(`${s.target}/usr/lib/bin`));
      // A symlink may point anywhere: only following it is confined.
      assert.equal(await Deno.readLink(`${s.target}/host`), s.outside);
    } finally {
      await removeTree(s.tmp);
    }
  },
);

Deno.test({ name: "escape: symlink loops are rejected", ignore: !isRoot }, async () => {
  const s = await attempt(() => [
    { name: "a", type: "2", link: "b" },
    { name: "b", type: "2", link: "a" },
    { name: "a/x", data: "" },
  ], { rejects: true });
  await removeTree(s.tmp);
});

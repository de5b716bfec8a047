/**
 * The CLI runs with exactly the permissions README gives (no --allow-all),
 * and a missing one is reported naming the flag.
 */
import assert from "node:assert/strict";
import { isRoot, notRootReason, removeTree, run, sha256File, tempDir } from "./helpers.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

function minimalFlags(root: string): string[] {
  return [
    "--allow-ffi",
    `--allow-read=${root},/etc/containers,/usr/share/containers`,
    `--allow-write=${root}`,
    "--allow-env",
  ];
}

async function makeTar(root: string): Promise<string> {
  await Deno.mkdir(`${root}/src/etc`, { recursive: true });
  await Deno.writeTextFile(`${root}/src/etc/hostname`, "minimal\n");
  await Deno.symlink("/etc/hostname", `${root}/src/etc/link`);
  const tar = `${root}/layer.tar`;
  const r = await run("tar", ["-C", `${root}/src`, "-cf", tar, "etc"]);
  assert.equal(r.code, 0, r.stderr);
  return tar;
}

for (const driver of ["vfs", "overlay"]) {
  Deno.test({
    name: `permissions: README's minimal flags import, mount, diff and shut down (${driver})`,
    ignore: !isRoot,
    fn: async () => {
      const root = await tempDir();
      try {
        const tar = await makeTar(root);
        const cs = async (...args: string[]) => {
          const r = await run(Deno.execPath(), [
            "run",
            ...minimalFlags(root),
            cli,
            "-g",
            `${root}/g`,
            "-R",
            `${root}/r`,
            "-s",
            driver,
            ...args,
          ]);
          assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
          return r.stdout.trim();
        };
        const id = await cs("import-layer", "-f", tar);
        assert.match(id, /^[0-9a-f]{64}$/);
        const mnt = await cs("mount", id);
        assert.equal(await Deno.readLink(`${mnt}/etc/link`), "/etc/hostname");
        await cs("unmount", id);
        await cs("diff", "-u", "-f", `${root}/out.tar`, id);
        assert.equal(await sha256File(`${root}/out.tar`), await sha256File(tar));
        await cs("shutdown");
      } finally {
        await removeTree(root);
      }
    },
  });
}
if (!isRoot) console.log(`permissions tests: ${notRootReason}`);

// Each missing grant is reported naming the flag to add.
for (const [flag, drop] of [["--allow-ffi", "--allow-ffi"], ["--allow-write", "--allow-write="]]) {
  Deno.test(`permissions: without ${flag} the error names the flag`, async () => {
    const root = await tempDir();
    try {
      const r = await run(Deno.execPath(), [
        "run",
        ...minimalFlags(root).filter((f) => !f.startsWith(drop)),
        cli,
        "-g",
        `${root}/g`,
        "-R",
        `${root}/r`,
        "-s",
        "vfs",
        "layers",
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, new RegExp(flag));
    } finally {
      await removeTree(root);
    }
  });
}

/**
 * The demo (`deno task demo`) run from a copy of the checkout, as a fresh
 * clone would be: as root (overlay) and as an unprivileged user (vfs with
 * ignore_chown_errors), each narrating every step, rebuilding the layer's
 * tarball byte for byte and leaving nothing behind.
 */
import assert from "node:assert/strict";
import { checkoutCopy as freshCopy, isRoot, lookPath, notRootReason, run } from "./helpers.ts";

const NOBODY = 65534;

/** What every run of the demo must print, and that it removed its store. */
async function assertDemo(r: { code: number; stdout: string; stderr: string }, driver: string) {
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;
  assert.match(out, new RegExp(`: the ${driver} driver`));
  for (let step = 1; step <= 7; step++) assert.match(out, new RegExp(`^${step}\\. `, "m"));
  assert.match(out, /Imported it as layer [0-9a-f]{12}/);
  assert.match(out, /named localhost\/demo:latest, demo/);
  assert.match(out, /big data: manifest \(\d+ bytes\), config \(\d+ bytes\)/);
  assert.match(out, /it sees: NAME="denostore demo"/);
  assert.match(out, /\n {5}M \/etc\n {5}A \/etc\/greeting\n {5}D \/etc\/hostname\.bak\n/);
  assert.match(out, /size of its diff: 25 bytes/);
  assert.match(out, /byte for byte the tarball imported/);
  assert.match(out, /layers left: 0/);
  const store = out.match(/a throwaway store in (\S+)/)?.[1];
  assert.ok(store, out);
  await assert.rejects(Deno.stat(store), Deno.errors.NotFound, "the demo removes its store");
}

Deno.test({
  name: "demo: deno task demo from a fresh copy, as root on overlay",
  ignore: !isRoot,
  async fn() {
    const { dir, src } = await freshCopy();
    try {
      await assertDemo(await run(Deno.execPath(), ["task", "demo"], { cwd: src }), "overlay");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const setpriv = lookPath("setpriv");

Deno.test({
  name: "demo: as root without the right to mount (a container, say) it falls back to vfs",
  ignore: !isRoot || !setpriv,
  async fn() {
    const { dir, src } = await freshCopy();
    try {
      const noMounts = ["--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"];
      const r = await run(setpriv!, [...noMounts, Deno.execPath(), "task", "demo"], { cwd: src });
      await assertDemo(r, "vfs");
      assert.match(r.stdout, /overlay cannot be used here: the vfs driver\n.*EPERM/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "demo: deno task demo from a fresh copy, as an unprivileged user on vfs",
  // as root it drops to nobody with setpriv; otherwise it runs as the user it is
  ignore: isRoot && !setpriv,
  async fn() {
    const { dir, src } = await freshCopy();
    try {
      let r;
      if (isRoot) {
        // nobody's own Deno cache, seeded with ours (npm packages), so no network is needed
        const denoDir = `${dir}/deno`;
        await Deno.mkdir(denoDir);
        const info = await run(Deno.execPath(), ["info", "--json"]);
        const npm = `${JSON.parse(info.stdout).denoDir}/npm`;
        if (await Deno.stat(npm).catch(() => undefined)) {
          assert.equal((await run("cp", ["-a", npm, denoDir])).code, 0);
        }
        assert.equal((await run("chown", ["-R", `${NOBODY}:${NOBODY}`, denoDir])).code, 0);
        r = await run(setpriv!, [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          "--clear-groups",
          "env",
          `HOME=${dir}`,
          `DENO_DIR=${denoDir}`,
          Deno.execPath(),
          "task",
          "demo",
        ], { cwd: src });
      } else {
        r = await run(Deno.execPath(), ["task", "demo"], { cwd: src });
      }
      await assertDemo(r, "vfs");
      const uid = isRoot ? NOBODY : Deno.uid();
      assert.match(r.stdout, new RegExp(`running as UID ${uid}: .*ignore_chown_errors=true`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (!isRoot) console.log(`demo test on overlay: ${notRootReason}`);

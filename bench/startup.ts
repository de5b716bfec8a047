/**
 * Start-up of small commands: ours (`deno run --allow-all cli.ts`) against
 * the reference `containers-storage`, on a one-layer vfs store the
 * reference made, and `deno run` of a one-line script as Deno's own floor.
 * Runs alternate between the tools (so load from elsewhere hits both
 * alike); each figure is the median wall time of `STARTUP_RUNS` runs (10).
 *
 * @example
 * ```sh
 * deno task bench-startup
 * STARTUP_RUNS=30 deno run --allow-all bench/startup.ts
 * ```
 * @module
 */

const runs = Number(Deno.env.get("STARTUP_RUNS") ?? "10");
const cli = new URL("../cli.ts", import.meta.url).pathname;

/** Wall milliseconds of one run; throws if it fails. */
async function time(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  const ms = performance.now() - t0;
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const dir = await Deno.makeTempDir({ prefix: "startup-bench-" });
try {
  const store = ["-g", `${dir}/g`, "-R", `${dir}/r`, "-s", "vfs"];
  await Deno.mkdir(`${dir}/layer/etc`, { recursive: true });
  await Deno.writeTextFile(`${dir}/layer/etc/hostname`, "bench\n");
  await time("tar", ["-C", `${dir}/layer`, "-cf", `${dir}/layer.tar`, "."]);
  await time("containers-storage", [...store, "import-layer", "-f", `${dir}/layer.tar`]);
  await Deno.writeTextFile(`${dir}/one.ts`, "console.log(1);\n");

  const floor: number[] = [];
  for (let i = 0; i < runs; i++) floor.push(await time(Deno.execPath(), ["run", `${dir}/one.ts`]));
  console.log(`deno run of a one-line script: ${median(floor).toFixed(0)} ms (median of ${runs})`);
  console.log("| command | ours ms | reference ms | ours / deno floor |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const command of [["version"], ["--help"], ["layers"], ["images"], ["containers"]]) {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs; i++) {
      ours.push(await time(Deno.execPath(), ["run", "--allow-all", cli, ...store, ...command]));
      theirs.push(await time("containers-storage", [...store, ...command]));
    }
    const [o, t] = [median(ours), median(theirs)];
    console.log(
      `| ${command.join(" ")} | ${o.toFixed(0)} | ${t.toFixed(0)} | ${
        (o / median(floor)).toFixed(2)
      } |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

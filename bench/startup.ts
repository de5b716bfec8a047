/**
 * Start-up of small commands: ours (`deno run --allow-all cli.ts`) against
 * the reference `containers-storage`, on a one-layer vfs store the
 * reference made, and `deno run` of a one-line script as Deno's own floor.
 * Runs alternate between the floor and the tools (so load from elsewhere
 * hits all alike, and each row has its own floor); each figure is the
 * median wall time of `STARTUP_RUNS` runs (10).
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

/** The output of a run that must succeed, trimmed. */
async function output(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout).trim();
}

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
  const layer = await output("containers-storage", [
    ...store,
    "import-layer",
    "-f",
    `${dir}/layer.tar`,
  ]);
  const image = await output("containers-storage", [...store, "create-image", layer]);
  await Deno.writeTextFile(`${dir}/one.ts`, "console.log(1);\n");

  console.log(`median of ${runs} runs, wall ms`);
  console.log("| command | ours ms | reference ms | deno floor ms | ours / floor |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  const commands = [
    ["version"],
    ["--help"],
    ["layers"],
    ["images"],
    ["containers"],
    ["mount", layer],
    ["create-container", image],
  ];
  for (const command of commands) {
    const ours: number[] = [];
    const theirs: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < runs; i++) {
      floor.push(await time(Deno.execPath(), ["run", `${dir}/one.ts`]));
      ours.push(
        await time(Deno.execPath(), ["run", "--allow-all", cli, ...store, ...command]),
      );
      theirs.push(await time("containers-storage", [...store, ...command]));
    }
    const [o, t, f] = [median(ours), median(theirs), median(floor)];
    console.log(
      `| ${command[0]} | ${o.toFixed(0)} | ${t.toFixed(0)} | ${f.toFixed(0)} | ${
        (o / f).toFixed(2)
      } |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

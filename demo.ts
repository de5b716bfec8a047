/**
 * A walk through a temporary store: two layers (the second deletes a file
 * of the first with a whiteout), a mount of the merged tree, the diff
 * rebuilt byte for byte from tar-split, and — when the reference
 * `containers-storage` CLI is installed — the same store listed by it.
 *
 * Run as root for the overlay driver; otherwise vfs is used.
 *
 * @example
 * ```sh
 * deno task demo
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { emptyHeader, type TarHeader, TypeFlag } from "./lib/archive/tar_header.ts";
import { writeTar } from "./lib/archive/tar_writer.ts";
import { Store } from "./lib/store/mod.ts";

const enc = new TextEncoder();

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

async function listTree(root: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  const names = [];
  for await (const e of Deno.readDir(`${root}/${prefix}`)) names.push(e);
  names.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of names) {
    const rel = prefix + e.name;
    out.push(e.isDirectory ? rel + "/" : rel);
    if (e.isDirectory) out.push(...await listTree(root, rel + "/"));
  }
  return out;
}

async function main(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denostore-demo-" });
  const driver = Deno.uid() === 0 ? "overlay" : "vfs";
  console.log(`store: ${root} (driver ${driver})`);
  const store = await Store.open({
    graphRoot: `${root}/graph`,
    runRoot: `${root}/run`,
    graphDriverName: driver,
    graphDriverOptions: [],
    uidMap: [],
    gidMap: [],
    imageStores: [],
  });
  try {
    // Each layer is a tarball built in memory and streamed into the store.
    const putTarLayer = async (name: string, parent: string, files: Record<string, string>) => {
      const tar = await collect(writeTar(layerTarEntries(files)));
      const { layer } = await store.putLayer({
        parent,
        names: [name],
        diff: ReadableStream.from([tar]),
      });
      return { layer, tar };
    };
    const { layer: base } = await putTarLayer("demo-base", "", {
      "etc/": "",
      "etc/hostname": "demo\n",
      "etc/motd": "hello from the base layer\n",
    });
    console.log(`base layer  ${base.id}  diff ${base["diff-digest"]}`);
    const { layer: top, tar: topTar } = await putTarLayer("demo-top", base.id, {
      "etc/": "",
      "etc/.wh.motd": "",
      "etc/os-release": "NAME=demo\n",
    });
    console.log(`top layer   ${top.id}  parent ${top.parent?.slice(0, 12)}`);

    const mnt = await store.mount(top.id);
    console.log(`mounted at ${mnt}:`);
    for (const p of await listTree(mnt)) console.log(`  /${p}`);
    await store.unmount(top.id, false);

    const rebuilt = await collect(await store.diff("", top.id));
    const same = sha256(rebuilt) === sha256(topTar);
    console.log(`diff of top rebuilt from tar-split: ${same ? "byte-identical" : "DIFFERENT"}`);
    console.log(
      `changes of top: ${
        (await store.changes("", top.id)).map((c) => `${["M", "A", "D"][c.kind]} ${c.path}`)
          .join(", ")
      }`,
    );

    const ref = await new Deno.Command("containers-storage", {
      args: ["-g", store.graphRoot, "-R", store.runRoot, "-s", driver, "layers"],
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => undefined);
    if (ref?.success) {
      console.log("the reference containers-storage CLI sees:");
      console.log(new TextDecoder().decode(ref.stdout).trimEnd());
    }
  } finally {
    await store.shutdown(true);
    await Deno.remove(root, { recursive: true });
  }
}

/** Tar entries for `files` (names ending in "/" are directories). */
function layerTarEntries(files: Record<string, string>) {
  return Object.entries(files).map(([name, content]) => {
    const dir = name.endsWith("/");
    const body = enc.encode(content);
    const header: TarHeader = {
      ...emptyHeader(name, dir ? TypeFlag.Dir : TypeFlag.Reg),
      mode: dir ? 0o40755 : 0o100644,
      size: dir ? 0 : body.length,
      mtime: { sec: 1700000000, nsec: 0 },
    };
    return { header, body: dir ? undefined : [body] };
  });
}

if (import.meta.main) await main();

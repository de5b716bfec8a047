/**
 * The demo (`deno task demo`): a walk through a throwaway store that needs
 * nothing but Deno. It builds a small rootfs-like layer in memory (our own
 * tar writer, no tar(1)), imports it, makes an image with names and big data,
 * a container on it, mounts the container and writes a file, shows the
 * container's changes and the size of its diff, rebuilds the layer's tarball
 * from tar-split and checks it byte for byte against what was imported, and
 * removes everything.
 *
 * As root it uses the overlay driver (vfs where overlay cannot be used, in
 * a container without the right to mount, say); as any other user, vfs with
 * `vfs.ignore_chown_errors`, and the store's ID mapping makes the layer's
 * root (the owner of its files) the user running the demo, who can own them.
 *
 * @example
 * ```sh
 * deno task demo
 * ```
 * @module
 */

import { createHash } from "node:crypto";
import { emptyHeader, type TarHeader, TypeFlag } from "./lib/archive/tar_header.ts";
import { type TarWriteEntry, writeTar } from "./lib/archive/tar_writer.ts";
import { ChangeKind } from "./drivers/driver.ts";
import { Store } from "./lib/store/mod.ts";

const enc = new TextEncoder();

/** One step's narration: a numbered headline and indented details. */
function say(headline: string, ...details: string[]): void {
  console.log(headline);
  for (const d of details) console.log(`     ${d}`);
}

function sha256(b: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(b).digest("hex");
}

function short(id: string): string {
  return id.slice(0, 12);
}

/** Entries of a small root file system: directories, files, a symlink, a hard link. */
function rootfsEntries(): TarWriteEntry[] {
  const mtime = { sec: 1_700_000_000, nsec: 0 };
  const dir = (name: string, mode = 0o755): TarWriteEntry => ({
    header: { ...emptyHeader(name, TypeFlag.Dir), mode, mtime },
  });
  const file = (name: string, text: string, mode = 0o644): TarWriteEntry => {
    const body = enc.encode(text);
    const header: TarHeader = {
      ...emptyHeader(name, TypeFlag.Reg),
      mode,
      size: body.length,
      mtime,
    };
    return { header, body: [body] };
  };
  const link = (name: string, target: string, typeflag: string): TarWriteEntry => ({
    header: { ...emptyHeader(name, typeflag), mode: 0o777, linkname: target, mtime },
  });
  return [
    // the root itself, as `tar -C rootfs .` writes it: 0755, so that its owner can fill it
    dir("./"),
    dir("bin/"),
    file("bin/hello", "#!/bin/sh\necho hello from the demo layer\n", 0o755),
    link("bin/hi", "hello", TypeFlag.Symlink),
    dir("etc/"),
    file("etc/hostname", "demo\n"),
    file("etc/os-release", 'NAME="denostore demo"\nID=demo\n'),
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    file("etc/group", "root:x:0:\n"),
    link("etc/hostname.bak", "etc/hostname", TypeFlag.Link),
    dir("root/", 0o700),
    dir("tmp/", 0o1777),
    dir("usr/"),
    dir("usr/share/"),
    file("usr/share/motd", "Welcome to a layer built by denostore.\n".repeat(100)),
    dir("var/"),
    dir("var/log/"),
  ];
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Opens the store under `root`: overlay as root, or vfs when overlay cannot
 * be used there (no mount privilege in a container, say); unprivileged, vfs
 * with ignore_chown_errors and the layer's root mapped to the user.
 */
async function openStore(root: string): Promise<Store> {
  const where = { graphRoot: `${root}/graph`, runRoot: `${root}/run`, imageStores: [] };
  const plain = { graphDriverOptions: [], uidMap: [], gidMap: [] };
  if (Deno.uid() === 0) {
    try {
      const store = await Store.open({ ...where, ...plain, graphDriverName: "overlay" });
      say("     running as root: the overlay driver");
      return store;
    } catch (e) {
      say(
        "     running as root, but overlay cannot be used here: the vfs driver",
        `(${(e as Error).message})`,
      );
      for (const dir of [where.graphRoot, where.runRoot]) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
      return await Store.open({ ...where, ...plain, graphDriverName: "vfs" });
    }
  }
  say(
    `     running as UID ${Deno.uid()}: the vfs driver with vfs.ignore_chown_errors=true,`,
    "the layer's root mapped to this user (chown to root would fail)",
  );
  return await Store.open({
    ...where,
    graphDriverName: "vfs",
    graphDriverOptions: ["vfs.ignore_chown_errors=true"],
    uidMap: [{ container_id: 0, host_id: Deno.uid()!, size: 1 }],
    gidMap: [{ container_id: 0, host_id: Deno.gid()!, size: 1 }],
  });
}

async function main(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "denostore-demo-" });
  say(`denostore demo: a throwaway store in ${root}`);
  let store: Store | undefined;
  try {
    store = await openStore(root);

    const entries = rootfsEntries();
    const tarball = await collect(writeTar(entries));
    say(
      `1. Built a rootfs-like layer in memory: ${entries.length} entries, ${tarball.length} bytes`,
      "the root and bin etc root tmp usr var, files, a symlink (bin/hi), a hard link",
    );

    const { layer } = await store.putLayer({ diff: ReadableStream.from([tarball]) });
    say(
      `2. Imported it as layer ${short(layer.id)}`,
      `diff digest ${layer["diff-digest"]}, ${layer["diff-size"]} bytes`,
    );

    const config = enc.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [layer["diff-digest"]] },
      config: { Cmd: ["/bin/hello"] },
    }));
    const manifest = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: [{
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: layer["compressed-diff-digest"],
        size: layer["compressed-size"],
      }],
    }));
    const image = await store.createImage(layer.id, {
      names: ["localhost/demo:latest", "demo"],
      bigData: [
        { key: "manifest", data: manifest },
        { key: sha256(config), data: config },
      ],
    });
    say(
      `3. Created image ${short(image.id)} named ${(image.names ?? []).join(", ")}`,
      `big data: manifest (${manifest.length} bytes), config (${config.length} bytes)`,
      `image digest ${image.digest}`,
    );

    const container = await store.createContainer(image.id, {
      names: ["demo-ctr"],
      uidMap: store.uidMap,
      gidMap: store.gidMap,
    });
    const mountpoint = await store.mount(container.id);
    say(
      `4. Created container ${short(container.id)} (demo-ctr) and mounted it`,
      `at ${mountpoint}`,
      `it sees: ${(await Deno.readTextFile(`${mountpoint}/etc/os-release`)).split("\n")[0]}`,
    );

    await Deno.writeTextFile(`${mountpoint}/etc/greeting`, "written in the container\n");
    await Deno.remove(`${mountpoint}/etc/hostname.bak`);
    await store.unmount(container.id);
    const kinds = { [ChangeKind.Add]: "A", [ChangeKind.Modify]: "M", [ChangeKind.Delete]: "D" };
    const changes = await store.changes("", container.layer);
    const diffSize = await store.diffSize("", container.layer);
    say(
      "5. Wrote /etc/greeting and removed /etc/hostname.bak in it; its changes:",
      ...changes.map((c) => `${kinds[c.kind]} ${c.path}`),
      `size of its diff: ${diffSize} bytes`,
    );

    const rebuilt = await collect(await store.diff("", layer.id));
    const same = rebuilt.length === tarball.length && sha256(rebuilt) === sha256(tarball);
    say(
      `6. Rebuilt the image layer's tarball from its tar-split: ${rebuilt.length} bytes`,
      same
        ? `byte for byte the tarball imported (${sha256(rebuilt)})`
        : "DIFFERENT from the tarball imported",
    );
    if (!same) throw new Error("the rebuilt tarball differs from the imported one");

    await store.deleteContainer(container.id);
    await store.deleteImage(image.id);
    say(
      "7. Deleted the container and the image (and its layer, which nothing else used)",
      `layers left: ${(await store.layers()).length}`,
    );
  } finally {
    await store?.shutdown(true);
    await Deno.remove(root, { recursive: true });
  }
  say(`Removed ${root}. Done.`);
}

if (import.meta.main) await main();

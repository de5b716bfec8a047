/**
 * A multi-layer OCI image built from the host for the image copy tests
 * (no network): a base layer with /bin/sh, the libraries `ldd /bin/sh`
 * names, /usr/share/zoneinfo and an /etc/os-release; a second layer with
 * part of /usr/share/doc and an /opt/app directory; a third with
 * whiteouts (a file, a directory) and an opaque /opt/app, and the final
 * /etc/os-release. Layers are gzip, uncompressed and zstd in turn, and the
 * layout may list the image through an index with another platform beside
 * it.
 * @module
 */

import { gzipSync, zstdCompressSync } from "node:zlib";
import { join } from "node:path";
import { lookPath, run } from "./helpers.ts";
import { buildTar, type FixtureEntry } from "./tar_fixtures.ts";
import { sha } from "./store_helpers.ts";
import { TOOL_PATH } from "./oci_tools.ts";

const enc = new TextEncoder();
const ldd = lookPath("ldd", TOOL_PATH);
/** Why the fixture cannot be built here, if it cannot. */
export const fixtureSkip: string | undefined = ldd ? undefined : "skipped: ldd is not installed";

/** The /etc/os-release the image ends with. */
export const OS_RELEASE = `NAME="denostore copy test"\nID=denostore\nVERSION_ID="${Date.now()}"\n`;

/**
 * Entries for the host tree at `src` (files, symlinks, directories), named
 * `dst`…, at most `limit` entries per directory; none when it is missing.
 */
async function hostTree(src: string, dst: string, limit = Infinity): Promise<FixtureEntry[]> {
  const out: FixtureEntry[] = [];
  const walk = async (dir: string, name: string) => {
    const st = await Deno.lstat(dir);
    out.push({ name: name + "/", type: "5", mode: st.mode! & 0o7777 });
    const kids = [];
    for await (const e of Deno.readDir(dir)) kids.push(e.name);
    for (const k of kids.sort().slice(0, limit)) {
      const p = join(dir, k);
      const s = await Deno.lstat(p);
      if (s.isDirectory) await walk(p, `${name}/${k}`);
      else if (s.isSymlink) {
        out.push({ name: `${name}/${k}`, type: "2", link: await Deno.readLink(p) });
      } else if (s.isFile) {
        out.push({ name: `${name}/${k}`, data: await Deno.readFile(p), mode: s.mode! & 0o7777 });
      }
    }
  };
  try {
    await Deno.lstat(src);
  } catch {
    return out; // a bare machine may lack it: the synthetic entries stand in
  }
  await walk(src, dst);
  return out;
}

/** Directory entries for every parent of `paths`. */
function parents(paths: string[]): FixtureEntry[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/") + "/");
  }
  return [...dirs].sort().map((name) => ({ name, type: "5" }));
}

/** The entries with the first of each name (ldd may name one library twice). */
function unique(entries: FixtureEntry[]): FixtureEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => !seen.has(String(e.name)) && !!seen.add(String(e.name)));
}

/** The three layer tars (uncompressed). */
export async function hostLayers(): Promise<Uint8Array[]> {
  const out = await run(ldd!, ["/bin/sh"]);
  const libs = [...out.stdout.matchAll(/(\/[^\s]+) \(0x/g)].map((m) => m[1]);
  const files: FixtureEntry[] = [
    { name: "bin/sh", data: await Deno.readFile(await Deno.realPath("/bin/sh")), mode: 0o755 },
    { name: "etc/os-release", data: 'NAME="base"\n' },
    { name: "etc/base-only", data: "base\n" },
  ];
  for (const lib of libs) {
    files.push({
      name: lib.slice(1),
      data: await Deno.readFile(await Deno.realPath(lib)),
      mode: 0o755,
    });
  }
  const base = [
    ...parents([...files.map((f) => String(f.name)), "usr/share/x"]),
    ...files,
    ...(await hostTree("/usr/share/zoneinfo", "usr/share/zoneinfo")),
    // what the tests look for, when the host has no zoneinfo
    { name: "usr/share/zoneinfo/", type: "5" },
    { name: "usr/share/zoneinfo/UTC", data: "TZif" },
    { name: "usr/share/zoneinfo/Africa/", type: "5" },
    { name: "usr/share/zoneinfo/Africa/Abidjan", data: "TZif" },
  ];
  const second = [
    ...parents(["usr/share/doc/x", "opt/app/x"]),
    ...(await hostTree("/usr/share/doc", "usr/share/doc", 25)),
    { name: "opt/app/old.txt", data: "old\n" },
    { name: "opt/app/sub/", type: "5" },
    { name: "opt/app/sub/deep.txt", data: "deep\n" },
  ];
  const third: FixtureEntry[] = [
    ...parents(["etc/x", "opt/app/x", "usr/share/zoneinfo/x"]),
    { name: "etc/.wh.base-only", data: "" },
    { name: "etc/os-release", data: OS_RELEASE },
    { name: "usr/share/zoneinfo/.wh.Africa", data: "" },
    { name: "opt/app/.wh..wh..opq", data: "" },
    { name: "opt/app/new.txt", data: "new\n" },
  ];
  return [base, second, third].map((entries) => buildTar(unique(entries)));
}

/** Compression of a fixture layer blob. */
export type FixtureCompression = "gzip" | "none" | "zstd";

/** An OCI layout on disk and what went into it. */
export interface OciFixture {
  /** The layout's directory. */
  dir: string;
  /** The layers, uncompressed. */
  tars: Uint8Array[];
  /** The layer blobs as stored. */
  blobs: Uint8Array[];
  config: Uint8Array;
  manifest: Uint8Array;
  /** The index blob, when the layout lists the image through one. */
  index?: Uint8Array;
  /** The config's "created". */
  created: string;
}

const hex = (b: Uint8Array) => sha(b).slice(7);

/** Writes blobs into a layout's blobs/sha256. */
async function putBlobs(dir: string, ...blobs: Uint8Array[]): Promise<void> {
  await Deno.mkdir(join(dir, "blobs/sha256"), { recursive: true });
  for (const b of blobs) await Deno.writeFile(join(dir, "blobs/sha256", hex(b)), b);
}

/**
 * Writes an OCI layout of the image made of `tars` (named "latest"),
 * compressed as `compressions` says (gzip, none, zstd in turn by default);
 * with `index`, index.json names an image index listing it for linux/amd64
 * and another config for linux/arm64.
 */
export async function writeFixtureLayout(
  dir: string,
  tars: Uint8Array[],
  opts: { index?: boolean; compressions?: FixtureCompression[] } = {},
): Promise<OciFixture> {
  const comps = opts.compressions ?? ["gzip", "none", "zstd"];
  const blobs = tars.map((t, i) => {
    const c = comps[i % comps.length];
    return c === "gzip"
      ? new Uint8Array(gzipSync(t))
      : c === "zstd"
      ? new Uint8Array(zstdCompressSync(t))
      : t;
  });
  const created = "2024-05-06T07:08:09.250000000Z";
  const configOf = (architecture: string) =>
    enc.encode(JSON.stringify({
      created,
      architecture,
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: tars.map(sha) },
      history: tars.map(() => ({ created, created_by: "denostore copy test" })),
    }));
  const manifestOf = (config: Uint8Array) =>
    enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha(config),
        size: config.length,
      },
      layers: blobs.map((b, i) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar" +
          { gzip: "+gzip", zstd: "+zstd", none: "" }[comps[i % comps.length]],
        digest: sha(b),
        size: b.length,
      })),
    }));
  const config = configOf("amd64");
  const manifest = manifestOf(config);
  await putBlobs(dir, ...blobs, config, manifest);
  const desc = (m: Uint8Array, mediaType: string, extra: Record<string, unknown> = {}) => ({
    mediaType,
    digest: sha(m),
    size: m.length,
    ...extra,
  });
  let top = desc(manifest, "application/vnd.oci.image.manifest.v1+json");
  let index: Uint8Array | undefined;
  if (opts.index) {
    const armConfig = configOf("arm64");
    const armManifest = manifestOf(armConfig);
    index = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        desc(armManifest, "application/vnd.oci.image.manifest.v1+json", {
          platform: { architecture: "arm64", os: "linux", variant: "v8" },
        }),
        desc(manifest, "application/vnd.oci.image.manifest.v1+json", {
          platform: { architecture: "amd64", os: "linux" },
        }),
      ],
    }));
    await putBlobs(dir, armConfig, armManifest, index);
    top = desc(index, "application/vnd.oci.image.index.v1+json");
  }
  await Deno.writeTextFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": "latest" } }],
    }),
  );
  return { dir, tars, blobs, config, manifest, index, created };
}

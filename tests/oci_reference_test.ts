/**
 * The parsing parts of image copies, without a store: transport references
 * as skopeo writes them, Docker name normalization, platforms and the
 * choice of an index entry, manifest media types guessed as containers/image
 * guesses them, and refusals of malformed documents with typed errors.
 * @module
 */

import { ErrInvalidImage, ErrInvalidReference } from "../lib/image_copy/errors.ts";
import { parseConfig, parseManifest } from "../lib/image_copy/manifest.ts";
import {
  chooseInstance,
  formatPlatform,
  hostPlatform,
  parsePlatform,
} from "../lib/image_copy/platform.ts";
import { normalizeName, parseReference } from "../lib/image_copy/reference.ts";
import { layerID } from "../lib/image_copy/store_dest.ts";
import { assertEquals, assertRejects } from "./store_helpers.ts";

const enc = new TextEncoder();
const D = (c: string) => "sha256:" + c.repeat(64);
const throws = <E extends Error>(fn: () => unknown, cls: new (...a: any[]) => E) =>
  assertRejects<E>(() => Promise.resolve().then(fn), cls);

Deno.test("parseReference: the transports as skopeo writes them", () => {
  assertEquals(parseReference("oci:/tmp/l:latest"), {
    transport: "oci",
    path: "/tmp/l",
    ref: "latest",
  });
  assertEquals(parseReference("oci:/tmp/l"), { transport: "oci", path: "/tmp/l" });
  assertEquals(parseReference("docker-archive:/x.tar:busybox:1"), {
    transport: "docker-archive",
    path: "/x.tar",
    ref: "busybox:1",
  });
  assertEquals(parseReference("containers-storage:[overlay@/g+/r]localhost/a:b"), {
    transport: "containers-storage",
    spec: { graphRoot: "/g", driver: "overlay", runRoot: "/r" },
    name: "localhost/a:b",
  });
  assertEquals(parseReference("containers-storage:[/g]busybox"), {
    transport: "containers-storage",
    spec: { graphRoot: "/g" },
    name: "docker.io/library/busybox:latest",
  });
  assertEquals(parseReference(`containers-storage:${"a".repeat(64)}`), {
    transport: "containers-storage",
    id: "a".repeat(64),
  });
  assertEquals(parseReference(`containers-storage:x/y@${"b".repeat(64)}`), {
    transport: "containers-storage",
    id: "b".repeat(64),
    name: "docker.io/x/y:latest",
  });
});

Deno.test("parseReference and normalizeName refuse what is not a reference", async () => {
  for (
    const bad of [
      "docker://busybox",
      "oci:",
      "containers-storage:",
      "containers-storage:[overlay@relative+/r]x",
      "containers-storage:[/g",
      "containers-storage:UPPER",
    ]
  ) {
    const e = await throws(() => parseReference(bad), ErrInvalidReference);
    assertEquals(e.id, bad.startsWith("containers-storage:UPPER") ? "UPPER" : bad);
  }
  assertEquals(normalizeName("quay.io/a/b:c"), "quay.io/a/b:c");
  assertEquals(normalizeName("localhost:5000/a"), "localhost:5000/a:latest");
  assertEquals(normalizeName("docker.io/busybox"), "docker.io/library/busybox:latest");
  await throws(() => normalizeName("a//b"), ErrInvalidReference);
});

Deno.test("platforms: parsed, formatted, the host's, and the index entry chosen", async () => {
  assertEquals(parsePlatform("linux/arm64/v8"), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assertEquals(formatPlatform(parsePlatform("linux/amd64")), "linux/amd64");
  await throws(() => parsePlatform("linux"), ErrInvalidReference);
  await throws(() => parsePlatform("linux/amd64/v1/x"), ErrInvalidReference);
  assertEquals(hostPlatform().os, "linux");
  const entries = [
    {
      mediaType: "m",
      digest: D("1"),
      size: 1,
      platform: { os: "linux", architecture: "arm64", variant: "v7" },
    },
    {
      mediaType: "m",
      digest: D("2"),
      size: 1,
      platform: { os: "linux", architecture: "arm64", variant: "v8" },
    },
    { mediaType: "m", digest: D("3"), size: 1, platform: { os: "linux", architecture: "amd64" } },
  ];
  assertEquals(chooseInstance(entries, parsePlatform("linux/amd64"), "i").digest, D("3"));
  assertEquals(chooseInstance(entries, parsePlatform("linux/arm64/v8"), "i").digest, D("2"));
  assertEquals(chooseInstance(entries, parsePlatform("linux/arm64"), "i").digest, D("1"));
  const e = await throws(
    () => chooseInstance(entries, parsePlatform("linux/s390x"), "i"),
    ErrInvalidImage,
  );
  assertEquals(e.id, "i");
});

Deno.test("parseManifest: media types guessed as containers/image does; malformed refused", async () => {
  const desc = { digest: D("c"), size: 2 };
  const m = (o: unknown) => enc.encode(JSON.stringify(o));
  const oci = parseManifest(
    m({
      schemaVersion: 2,
      config: { ...desc, mediaType: "application/vnd.oci.image.config.v1+json" },
      layers: [],
    }),
    "x",
  );
  assertEquals([oci.kind, oci.mediaType], [
    "manifest",
    "application/vnd.oci.image.manifest.v1+json",
  ]);
  const docker = parseManifest(
    m({
      schemaVersion: 2,
      config: { ...desc, mediaType: "application/vnd.docker.container.image.v1+json" },
      layers: [{ ...desc, mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" }],
    }),
    "x",
  );
  assertEquals(docker.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  const list = parseManifest(
    m({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
      manifests: [],
    }),
    "x",
  );
  assertEquals(list.kind, "index");
  for (
    const [bad, says] of [
      [enc.encode("[1]"), /not a JSON object/],
      [m({ schemaVersion: 1, fsLayers: [] }), /unsupported manifest media type/],
      [m({ schemaVersion: 2, config: { ...desc, size: -1 }, layers: [] }), /invalid size/],
      [
        m({ schemaVersion: 2, config: { ...desc, mediaType: "application/x-helm" }, layers: [] }),
        /config media type/,
      ],
      [m({ schemaVersion: 2, manifests: {} }), /no manifests list/],
    ] as const
  ) {
    const e = await throws(() => parseManifest(bad, "doc"), ErrInvalidImage);
    assertEquals(says.test(e.message), true, e.message);
  }
  assertEquals(parseConfig(m({ rootfs: { diff_ids: [D("1")] }, created: "t" }), "c"), {
    diffIDs: [D("1")],
    created: "t",
    os: undefined,
    architecture: undefined,
  });
  await throws(() => parseConfig(m({ rootfs: { diff_ids: ["md5:1"] } }), "c"), ErrInvalidImage);
});

Deno.test("layerID: the base's diff_id, then sha256 of '<parent>+<diff_id hex>' (containers/image)", () => {
  assertEquals(layerID("", D("1")), "1".repeat(64));
  assertEquals(
    layerID("1".repeat(64), D("2")),
    "bc3f520ac697f7fabf60ea74c96b8a1f9c2e2bbe9b3446d340b3798416c5842e",
  );
});

/**
 * The image and container record stores on their own: names moving between
 * records, digests of big data, lookups by digest and by layer, read-only
 * stores, locking against other processes, and files byte-identical to
 * what the reference CLI writes.
 * @module
 */

import { join } from "node:path";
import { ContainerStore } from "../lib/containers/container_store.ts";
import {
  ErrContainerUnknown,
  ErrDigestUnknown,
  ErrDuplicateID,
  ErrDuplicateName,
  ErrImageUnknown,
  ErrInvalidBigDataName,
  ErrInvalidIDMap,
  ErrStoreIsReadOnly,
  StorageError,
} from "../lib/errors.ts";
import { ImageStore } from "../lib/images/image_store.ts";
import { manifestDigest } from "../lib/images/manifest_digest.ts";
import { isRoot, reference, referenceCli, removeTree, tempDir } from "./helpers.ts";
import { buildTar } from "./tar_fixtures.ts";
import { assert, assertEquals, assertRejects, sha } from "./store_helpers.ts";

const enc = new TextEncoder();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir("records-");
  try {
    await fn(dir);
  } finally {
    await removeTree(dir);
  }
}

Deno.test("image store: create, names move between images with history, metadata, flags", async () => {
  await withDir(async (dir) => {
    const s = await ImageStore.open({ dir: join(dir, "vfs-images") });
    await s.writing(async () => {
      const a = await s.create({ names: ["a", "shared"], layer: "l".repeat(64), metadata: "m" });
      const b = await s.create({ id: "b".repeat(64), names: ["b"] });
      await assertRejects(() => s.create({ id: b.id }), ErrDuplicateID);
      await assertRejects(() => s.create({ names: ["shared"] }), ErrDuplicateName);
      await s.addNames(b.id, ["shared"]);
      assertEquals(s.get(a.id).names, ["a"]);
      assertEquals(s.get("shared").id, b.id);
      assertEquals(s.get(b.id)["names-history"], ["shared", "b"]);
      await s.removeNames(b.id, ["b"]);
      assertEquals(s.get(b.id).names, ["shared"]);
      assertEquals(s.get("bbbb").id, b.id, "unique prefix");
      await s.setMetadata("a", "new");
      assertEquals(s.metadata(a.id), "new");
      await s.setFlag(a.id, "k", { z: 1, a: [2] });
      await s.clearFlag(a.id, "nope");
      assertEquals(s.get(a.id).flags, { k: { z: 1, a: [2] } });
      assertEquals(s.get(a.id).layer, "l".repeat(64));
      await assertRejects(() => s.setMetadata("missing", ""), ErrImageUnknown);
    });
    // Another store object (as another process would) sees the same file.
    const text = await Deno.readTextFile(join(dir, "vfs-images", "images.json"));
    assert(text.includes('"flags":{"k":{"a":[2],"z":1}}'), text);
    assert(!text.includes("readonly"));
  });
});

Deno.test("image store: big data digests, manifest digests fill in the image digest, ByDigest", async () => {
  await withDir(async (dir) => {
    const s = await ImageStore.open({ dir: join(dir, "vfs-images") });
    await s.writing(async () => {
      const img = await s.create({ names: ["x"] });
      const config = enc.encode('{"config":true}');
      const manifest = enc.encode('{"schemaVersion":2}');
      await s.setBigData(img.id, "sha256:abc", config);
      assertEquals(s.get(img.id).digest, undefined);
      await s.setBigData(img.id, "manifest-sha256:1", manifest);
      await s.setBigData(img.id, "manifest", manifest);
      const got = s.get(img.id);
      assertEquals(got.digest, sha(manifest));
      assertEquals(got["big-data-names"], ["sha256:abc", "manifest-sha256:1", "manifest"]);
      assertEquals(got["big-data-sizes"]!["sha256:abc"], config.length);
      assertEquals(s.bigDataDigest(img.id, "sha256:abc"), sha(config));
      assertEquals(await s.bigData(img.id, "manifest"), manifest);
      assertEquals(s.byDigest(sha(manifest)).map((i) => i.id), [img.id]);
      assertEquals(s.byDigest(sha(config)), [], "only manifest digests are searchable");
      // A second manifest with another digest makes the image findable by both.
      const other = enc.encode('{"schemaVersion":2,"x":1}');
      await s.setBigData(img.id, "manifest-sha256:2", other);
      assertEquals(s.digests(img.id), [sha(manifest), sha(other)]);
      assertEquals(s.byDigest(sha(other)).map((i) => i.id), [img.id]);
      // A caller-supplied digester decides the digest of manifest items.
      await s.setBigData(img.id, "manifest-custom", other, () => "sha256:" + "0".repeat(64));
      assertEquals(s.bigDataDigest(img.id, "manifest-custom"), "sha256:" + "0".repeat(64));
      // The key "=" + base64 naming of containers/storage.
      await Deno.stat(join(dir, "vfs-images", img.id, "=c2hhMjU2OmFiYw=="));
      await Deno.stat(join(dir, "vfs-images", img.id, "manifest"));
      await assertRejects(() => s.setBigData(img.id, "", config), ErrInvalidBigDataName);
      await assertRejects(() => s.bigData(img.id, "nope"), Deno.errors.NotFound);
      await s.delete(img.id);
      assertEquals(s.byDigest(sha(manifest)), []);
      await assertRejects(() => Deno.stat(join(dir, "vfs-images", img.id)), Deno.errors.NotFound);
    });
  });
});

Deno.test("image store: invalid digests are refused", async () => {
  await withDir(async (dir) => {
    const s = await ImageStore.open({ dir: join(dir, "vfs-images") });
    await s.writing(async () => {
      await assertRejects(() => s.create({ digest: "sha256:xyz" }), StorageError);
      assertEquals(s.list(), []);
      const img = await s.create({});
      await assertRejects(
        () => s.setBigData(img.id, "manifest", enc.encode("{}"), () => "md5:00"),
        StorageError,
      );
    });
  });
});

Deno.test("manifest digest: a signed schema 1 manifest is digested without its signatures", () => {
  const body = '{\n   "schemaVersion": 1,\n   "name": "x"';
  const tail = "\n}";
  const b64url = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const protectedHeader = b64url(
    JSON.stringify({ formatLength: enc.encode(body).length, formatTail: b64url(tail) }),
  );
  const signed = body + `,\n   "signatures": [{"protected": "${protectedHeader}"}]` + tail;
  assertEquals(manifestDigest(enc.encode(signed)), sha(enc.encode(body + tail)));
  // Unsigned or not JSON: the bytes' digest.
  assertEquals(manifestDigest(enc.encode("not json")), sha(enc.encode("not json")));
  const broken = body +
    `,\n   "signatures": [{"protected": "${b64url('{"formatLength":9999}')}"}]` +
    tail;
  let err: unknown;
  try {
    manifestDigest(enc.encode(broken));
  } catch (e) {
    err = e;
  }
  assert(err instanceof ErrDigestUnknown);
});

Deno.test("container store: create with flags, lookup by layer, names, big data, overlapping maps", async () => {
  await withDir(async (dir) => {
    const s = await ContainerStore.open({ dir: join(dir, "vfs-containers") });
    await s.writing(async () => {
      const layer = "e".repeat(64);
      const c = await s.create({
        names: ["web"],
        image: "i".repeat(64),
        layer,
        flags: { MountLabel: "", ProcessLabel: "" },
        mountOpts: ["nodev"],
        volatile: true,
        uidMap: [{ container_id: 0, host_id: 100000, size: 65536 }],
      });
      assertEquals(s.get(layer).id, c.id, "found by its layer");
      assertEquals(s.byLayer(layer)?.id, c.id);
      assertEquals(s.get("web").flags, {
        MountLabel: "",
        ProcessLabel: "",
        MountOpts: ["nodev"],
        Volatile: true,
      });
      await assertRejects(
        () => s.create({ names: ["web"], image: "", layer: "f".repeat(64) }),
        ErrDuplicateName,
      );
      await assertRejects(
        () =>
          s.create({
            image: "",
            layer: "f".repeat(64),
            uidMap: [
              { container_id: 0, host_id: 1000, size: 10 },
              { container_id: 5, host_id: 5000, size: 10 },
            ],
          }),
        ErrInvalidIDMap,
      );
      const data = enc.encode("state");
      await s.setBigData(c.id, "state.json", data);
      assertEquals(await s.bigDataSize(c.id, "state.json"), data.length);
      assertEquals(await s.bigDataDigest(c.id, "state.json"), sha(data));
      assertEquals(await s.bigDataDigest(c.id, "none"), undefined);
      await s.setNames(c.id, ["api"]);
      await assertRejects(() => Promise.resolve().then(() => s.get("web")), ErrContainerUnknown);
      await s.delete("api");
      assertEquals(s.list(), []);
    });
  });
});

Deno.test("record stores: a read-only store refuses changes and marks images read-only", async () => {
  await withDir(async (dir) => {
    // Written as another machine would have: a lock file and images.json, nothing else.
    const path = join(dir, "vfs-images");
    await Deno.mkdir(path);
    await Deno.writeFile(join(path, "images.lock"), new Uint8Array(64));
    const id = "d".repeat(64);
    const file = `[{"id":"${id}","names":["ro"],"created":"2026-01-01T00:00:00Z"}]`;
    await Deno.writeTextFile(join(path, "images.json"), file);
    const ro = await ImageStore.open({ dir: path, readOnly: true });
    await ro.reading(() => {
      assertEquals(ro.get("ro").readonly, true);
      assertEquals(ro.list()[0].id, id);
    });
    await assertRejects(() => ro.writing(() => {}), ErrStoreIsReadOnly);
    await assertRejects(() => ro.setMetadata(id, "x"), ErrStoreIsReadOnly);
    assertEquals(await Deno.readTextFile(join(path, "images.json")), file);
    const none = await ImageStore.open({ dir: join(dir, "none"), readOnly: true });
    assertEquals(await none.reading(() => none.list()), []);
  });
});

Deno.test("record stores: duplicate names in a file are repaired under the write lock", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "vfs-containers");
    await Deno.mkdir(path, { recursive: true });
    const c = (id: string) => ({ id: id.repeat(64), names: ["dup"], image: "", layer: id });
    await Deno.writeTextFile(join(path, "containers.json"), JSON.stringify([c("a"), c("b")]));
    const s = await ContainerStore.open({ dir: path });
    await s.reading(() => {
      assertEquals(s.get("dup").id, "b".repeat(64));
      assertEquals(s.get("a".repeat(64)).names ?? [], []);
    });
    const saved = JSON.parse(await Deno.readTextFile(join(path, "containers.json")));
    assertEquals(saved[0].names, undefined);
    await Deno.writeTextFile(join(path, "containers.json"), "[{not json");
    // A write within the clock tick of the store's own save keeps the mtime it knows.
    await Deno.utime(join(path, "containers.json"), 1, 1);
    await assertRejects(() => s.reading(() => {}), StorageError);
  });
});

Deno.test({
  name:
    "record stores: images.json and containers.json written by the reference round-trip byte for byte",
  ignore: !isRoot || !referenceCli,
  fn: async () => {
    await withDir(async (dir) => {
      const ref = { graph: join(dir, "g"), run: join(dir, "r"), driver: "vfs" };
      const tar = join(dir, "l.tar");
      await Deno.writeFile(tar, buildTar([{ name: "./f", data: "x" }]));
      const layer = (await reference(ref, ["import-layer", "-f", tar])).stdout.split("\n")[0];
      await reference(ref, ["create-image", "-n", "one", "-n", "two<&>", "-m", "m<", layer]);
      const data = join(dir, "data");
      await Deno.writeTextFile(data, '{"schemaVersion":2}');
      await reference(ref, ["set-image-data", "-f", data, "one", "manifest"]);
      await reference(ref, ["set-image-data", "-f", data, "one", "Key:Upper"]);
      await reference(ref, ["add-names", "-n", "three", "one"]);
      await reference(ref, ["create-container", "-n", "c1", "-m", "meta", "one"]);
      await reference(ref, ["set-container-data", "-f", data, "c1", "k"]);
      const imagesPath = join(ref.graph, "vfs-images", "images.json");
      const containersPath = join(ref.graph, "vfs-containers", "containers.json");
      const imagesBefore = await Deno.readTextFile(imagesPath);
      const containersBefore = await Deno.readTextFile(containersPath);

      const images = await ImageStore.open({ dir: join(ref.graph, "vfs-images") });
      const containers = await ContainerStore.open({ dir: join(ref.graph, "vfs-containers") });
      const img = await images.reading(() => images.get("three"));
      assertEquals(img.names, ["one", "two<&>", "three"]);
      assertEquals(img.digest, sha(enc.encode('{"schemaVersion":2}')));
      // Saving what we loaded (metadata set to itself) must reproduce the file.
      await images.writing(() => images.setMetadata(img.id, images.metadata(img.id)));
      const c = await containers.reading(() => containers.get("c1"));
      await containers.writing(() => containers.setMetadata(c.id, "meta"));
      assertEquals(await Deno.readTextFile(imagesPath), imagesBefore);
      assertEquals(await Deno.readTextFile(containersPath), containersBefore);
      // And the reference reads what we then change.
      await images.writing(() => images.addNames(img.id, ["four"]));
      await containers.writing(() => containers.setBigData(c.id, "more", enc.encode("1")));
      const listed = JSON.parse((await reference(ref, ["images", "-j"])).stdout);
      assertEquals(listed[0].names, ["one", "two<&>", "three", "four"]);
      assertEquals(
        (await reference(ref, ["get-container-data", "c1", "more"])).stdout,
        "1",
      );
    });
  },
});

/**
 * The image commands of our CLI against the reference `containers-storage`
 * (vfs driver): the same command sequence on twin stores (one written by
 * each tool) must print the same bytes and exit codes, every error path
 * included, and leave stores that the reference lists the same; images of
 * an additional (read-only) image store written by the reference read the
 * same and stay untouched.
 */
import assert from "node:assert/strict";
import { isRoot, referenceCli, run } from "./helpers.ts";
import {
  bigDataSteps,
  CONTAINER_ID,
  dropRoot,
  ID,
  IMAGE_ID,
  makeTarball,
  newRoot,
  type Step,
  step,
  theirs,
  Twins,
} from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;

/** The sha256 of "hello", the manifest the steps store. */
const HELLO = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const NO_SUCH_DIGEST = "sha256:" + "d".repeat(64);

Deno.test({
  name: "cli images: image commands on twin stores print the same and leave the same stores",
  ignore,
  async fn() {
    const a = await newRoot("cli-img-ours-");
    const b = await newRoot("cli-img-ref-");
    try {
      const twins = new Twins(a, b);
      const tar = await makeTarball(a.dir, "l1", { "a.txt": "hello\n", "d/b": "x\n" });
      const md = `${a.dir}/md.txt`;
      await Deno.writeTextFile(md, "from a file\n");
      const creation: Step[] = [
        step("import-layer", "-i", ID.base, "-n", "base", "-f", tar),
        step("create-layer", "-i", ID.mid, "-n", "mid", "base"),
        step("create-image", "-i", IMAGE_ID.one, "-n", "img1", "-n", "img1b", "-m", "meta", "base"),
        step("create-image", "-j", "-n", "img2", "-f", md, "mid"),
        step("create-image", "-j", "-i", IMAGE_ID.two, "--digest", "sha256:" + "c".repeat(64)),
        step("create-image", "--name", "img3", "--metadata-file", md),
        // errors: name in use, unknown layer, ID in use, unreadable metadata, bad digests
        step("create-image", "-n", "img1", "base"),
        step("create-image", "nope"),
        step("create-image", "-i", IMAGE_ID.one, "base"),
        step("create-image", "-f", "/nonexistent/md", "base"),
        step("create-image", "-d", "foo", "base"),
        step("create-image", "-d", "md5:ab", "base"),
        step("create-image", "-d", "sha256:ab", "base"),
        step("create-image", "-d", "sha256:ab", "-n", "img1", "base"),
        step("create-image", "-d", "sha256:ab", "nope"),
      ];
      await twins.run(creation);
      await twins.sameContent();
      const data = bigDataSteps("image", {
        name: "img1",
        id: IMAGE_ID.one,
        bare: "img2",
        file: md,
        out: `${a.dir}/out`,
      });
      await twins.run(data.writes);
      await twins.run(data.reads, { concurrently: true });
      const reading: Step[] = [
        step("images"),
        step("images", "-j"),
        step("images", "-q"),
        step("image", "img1", IMAGE_ID.two, "img2"),
        step("image", "img1", "nope"),
        step("image", "-j", "img1", "nope"),
        step("image", "-j", "nope"),
        step("images-by-digest", HELLO),
        step("images-by-digest", "-j", HELLO),
        step("images-by-digest", "-q", "sha256:" + "c".repeat(64)),
        step("images-by-digest", "-j", NO_SUCH_DIGEST),
        step("images-by-digest", NO_SUCH_DIGEST),
        step("images-by-digest", "sha256:abc"),
        step("images-by-digest", "foo"),
        step("images-by-digest", "md5:abc"),
        step("images-by-digest", "Sha256:abc"),
        step("layers"),
        step("layers", "-t"),
        step("exists", "-i", "img1"),
        step("exists", "-i", "base"),
        step("exists", "-l", "img1"),
        step("exists", "-c", "img1"),
        step("exists", "-j", "-i", "img1", "img3", "nope"),
        { args: ["exists", "img1", "base", "nope"], unordered: true },
      ];
      await twins.run(reading, { concurrently: true });
      const naming: Step[] = [
        step("get-names", "img1"),
        step("get-names", "-j", IMAGE_ID.one.slice(0, 8)),
        step("add-names", "-n", "img1c", "img1"),
        step("add-names", "-j", "-n", "img2", "img1"),
        step("set-names", "-j", "-n", "img3", "-n", "img3", "img2"),
        step("set-names", "-n", "base", "img1"),
        step("get-names", "base"),
        step("set-names", "-j", IMAGE_ID.two),
        step("add-names", "-n", "x", "nope"),
        step("images"),
        step("set-metadata", "-m", "new\n", "img3"),
        step("set-metadata", "-f", md, IMAGE_ID.two),
        step("set-metadata", "img3"),
        step("set-metadata", "-m", "x", "nope"),
        step("metadata", "img3", IMAGE_ID.two, "nope"),
        step("metadata", "-q", "img3"),
        step("metadata", "-j", "img3", IMAGE_ID.two, "nope"),
      ];
      await twins.run(naming);
      await twins.sameContent();
      const deleting: Step[] = [
        step("delete-image", "-t", IMAGE_ID.one),
        step("delete-image", "-t", "-j", IMAGE_ID.one),
        step("delete-image", "-j", "img3", "nope"),
        step("delete-image", "nope"),
        step("delete", "-j", IMAGE_ID.two),
        step("delete", "nope"),
        step("delete-image", IMAGE_ID.one),
        step("images"),
        step("layers"),
        step("images", "-j"),
        step("wipe", "-j"),
        step("images"),
      ];
      await twins.run(deleting);
      await twins.sameContent();
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

Deno.test({
  name: "cli images: an image of an additional image store reads the same and is never written",
  ignore,
  async fn() {
    const shared = await newRoot("cli-img-ro-");
    const a = await newRoot("cli-img-ours-");
    const b = await newRoot("cli-img-ref-");
    try {
      const tar = await makeTarball(shared.dir, "l1", { "a.txt": "hello\n" });
      for (
        const [args, stdin] of [
          [["import-layer", "-i", ID.base, "-f", tar]],
          [["create-image", "-i", IMAGE_ID.one, "-n", "ro", "-m", "md", ID.base]],
          [["set-image-data", "ro", "manifest"], "hello"],
        ] as [string[], string?][]
      ) {
        const input = stdin === undefined ? undefined : new TextEncoder().encode(stdin);
        const r = await theirs(shared, args, { stdin: input });
        assert.equal(r.code, 0, r.stderr);
      }
      const before = await treeDigest(shared.graph);
      const withRO = (...args: string[]) =>
        step(args[0], "--storage-opt", `vfs.imagestore=${shared.graph}`, ...args.slice(1));
      await new Twins(a, b).run([
        withRO("images"),
        withRO("image", "ro"),
        withRO("layers", "-t"),
        withRO("exists", "-i", "ro"),
        withRO("images-by-digest", HELLO),
        withRO("get-image-data", "ro", "manifest"),
        withRO("create-container", "-i", CONTAINER_ID.one, "-n", "ctr", "ro"),
        withRO("container", "ctr"),
        withRO("delete-image", "ro"),
        withRO("mount", "-r", "ro"),
        withRO("metadata", "ro"),
        // new names and data go to a record of the image in our own store
        withRO("set-names", "-n", "mine", "ro"),
        withRO("images"),
        { ...withRO("set-image-data", "ro", "note"), stdin: "x" },
        withRO("list-image-data", "ro"),
        withRO("get-image-data", "ro", "manifest"),
        withRO("get-image-data-size", "ro", "manifest"),
        withRO("get-image-data-digest", "ro", "manifest"),
        withRO("image", "mine"),
        withRO("delete-container", "ctr"),
        withRO("layers"),
      ]);
      assert.equal(await treeDigest(shared.graph), before, "the additional store is unchanged");
    } finally {
      await dropRoot(shared);
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

/** Every path, mode and file content under `dir`, hashed: any write changes it. */
async function treeDigest(dir: string): Promise<string> {
  const r = await run("sh", [
    "-c",
    `cd "$0" && find . -printf '%p %m %s %T@\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum`,
    dir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

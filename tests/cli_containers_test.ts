/**
 * The container commands of our CLI, and the commands that act on any
 * kind (mount, unmount, mounted, names, metadata, exists, delete, layers,
 * wipe) applied to images and containers, against the reference
 * `containers-storage`: the same command sequence on twin stores must print
 * the same bytes and exit codes, every error path included. vfs for
 * everything, overlay for read-only image mounts and ID-mapped containers.
 */
import { isRoot, referenceCli } from "./helpers.ts";
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
  Twins,
} from "./cli_harness.ts";

const ignore = !referenceCli || !isRoot;

/** A layer, an image on it and a second image without layers. */
async function base(dir: string): Promise<Step[]> {
  const tar = await makeTarball(dir, "l1", { "a.txt": "hello\n", "d/b": "x\n" });
  return [
    step("import-layer", "-i", ID.base, "-n", "base", "-f", tar),
    step("create-layer", "-i", ID.mid, "-n", "mid", "base"),
    step("create-image", "-i", IMAGE_ID.one, "-n", "img1", "-n", "img1b", "mid"),
    step("create-image", "-i", IMAGE_ID.two, "-n", "empty"),
  ];
}

Deno.test({
  name:
    "cli containers: container commands on twin stores print the same and leave the same stores",
  ignore,
  async fn() {
    const a = await newRoot("cli-ctr-ours-");
    const b = await newRoot("cli-ctr-ref-");
    try {
      const twins = new Twins(a, b);
      const md = `${a.dir}/md.txt`;
      await Deno.writeTextFile(md, "from a file\n");
      await twins.run(await base(a.dir));
      const creation: Step[] = [
        step(
          "create-container",
          "-i",
          CONTAINER_ID.one,
          "-n",
          "ctr1",
          "-n",
          "ctr1b",
          "-m",
          "m",
          "img1",
        ),
        step("create-container", "-j", "--volatile", "-n", "ctr2", "-f", md, "img1"),
        step(
          "create-container",
          "-n",
          "ctr3",
          "--uidmap",
          "0:1000:100",
          "--gidmap",
          "0:2000:100",
          "img1",
        ),
        step("create-container", "-j", "--hostuidmap", "--hostgidmap", "empty"),
        step("create-container", "-j", ""),
        // errors: name and ID in use, unknown image, bad mappings, unreadable metadata
        step("create-container", "-n", "ctr1", "img1"),
        step("create-container", "-i", CONTAINER_ID.one, "img1"),
        step("create-container", "nope"),
        step("create-container", "--hostuidmap", "--uidmap", "0:1:1", "img1"),
        step("create-container", "--hostgidmap", "--subgidmap", "nobody", "img1"),
        step("create-container", "--uidmap", "0:1", "img1"),
        step("create-container", "--subuidmap", "no-such-user", "img1"),
        step("create-container", "-f", "/nonexistent/md", "img1"),
      ];
      await twins.run(creation);
      await twins.sameContent();
      const data = bigDataSteps("container", {
        name: "ctr1",
        id: CONTAINER_ID.one,
        bare: "ctr2",
        file: md,
        out: `${a.dir}/out`,
      });
      await twins.run(data.writes);
      const dataReads: Step[] = [
        ...data.reads,
        step("get-container-dir", "ctr1"),
        step("get-container-run-dir", CONTAINER_ID.one, "ignored"),
        step("get-container-dir", "nope"),
        step("get-container-run-dir", "nope"),
      ];
      await twins.run(dataReads, { concurrently: true });
      const reading: Step[] = [
        step("containers"),
        step("containers", "-j"),
        step("container", "ctr1", "ctr2", "ctr3"),
        step("container", "ctr1", "nope"),
        step("container", "-j", "ctr1", "nope"),
        step("container", "-j", "nope"),
        step("container-parent-owners", "ctr1", "ctr2"),
        step("container-parent-owners", "-j", "ctr1", "nope"),
        step("container-parent-owners", "ctr1", "ctr3"),
        step("container-parent-owners", "nope"),
        step("layers"),
        step("layers", "-t"),
        step("exists", "-c", "ctr1"),
        step("exists", "-c", "img1"),
        step("exists", "-i", "ctr1"),
        step("exists", "-l", "ctr1"),
        step("exists", "-j", "-c", "ctr1", "nope"),
        { args: ["exists", "ctr1", "img1", "base", "nope"], unordered: true },
        step("get-names", "-j", "ctr1"),
      ];
      await twins.run(reading, { concurrently: true });
      const naming: Step[] = [
        step("add-names", "-j", "-n", "ctr1c", "ctr1"),
        step("set-names", "-j", "-n", "img1", "-n", "img1", "ctr2"),
        step("set-names", "-n", "ctr1", "ctr3"),
        step("get-names", CONTAINER_ID.one.slice(0, 8)),
        step("set-metadata", "-m", "cmd\n", "ctr3"),
        step("metadata", "ctr3", "ctr1", "img1"),
        step("metadata", "-j", "ctr3", "nope"),
        step("containers"),
      ];
      await twins.run(naming);
      await twins.sameContent();
      const mounting: Step[] = [
        step("mount", "ctr1"),
        step("mount", "-j", CONTAINER_ID.one),
        step("mounted", "ctr1", "img1", "base"),
        step("layers", "-t"),
        // vfs refuses the options of a read-only image mount
        step("mount", "-r", "img1"),
        step("mount", "-r", "-j", "img1", "ctr1"),
        step("mount", "-r", "nope"),
        step("unmount", "img1"),
        step("unmount", "ctr1"),
        step("unmount", "-j", "ctr1", "nope"),
        step("unmount", "ctr1"),
        step("unmount", "nope"),
        step("mount", "-l", "label", "ctr3"),
        step("unmount", "-f", "ctr3"),
        step("mounted", "-j", "ctr3"),
      ];
      await twins.run(mounting);
      const deleting: Step[] = [
        step("delete-image", "img1"),
        step("delete-image", "-j", "img1", "nope"),
        step("delete-container", "nope"),
        step("delete-container", "-j", "nope", "ctr3"),
        step("delete-container", "ctr2"),
        step("delete", "-j", "ctr1"),
        step("delete", "img1"),
        step("containers"),
        step("images"),
        step("layers", "-t"),
        step("wipe"),
        step("containers", "-j"),
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
  name: "cli containers: overlay: read-only image mounts, mapped containers, unmount of images",
  ignore,
  async fn() {
    const a = await newRoot("cli-ctr-ours-", "overlay");
    const b = await newRoot("cli-ctr-ref-", "overlay");
    try {
      const twins = new Twins(a, b);
      await twins.run(await base(a.dir));
      await twins.run([
        step("create-container", "-i", CONTAINER_ID.one, "-n", "ctr1", "img1"),
        step("mount", "ctr1"),
        step("mount", "-r", "img1"),
        step("mount", "-r", "-j", "img1", "nope"),
        step("mount", "-r", "ctr1"),
        step("mounted", "img1", "ctr1", ID.mid),
        step("layers", "-t"),
        step("unmount", "img1"),
        step("unmount", "-j", "img1", "ctr1"),
        step("unmount", "-f", "img1"),
        step("layers", "-t"),
        step(
          "create-container",
          "-n",
          "ctr2",
          "--uidmap",
          "0:1000:100",
          "--gidmap",
          "0:2000:100",
          "img1",
        ),
        step("mount", "ctr2"),
        step("container-parent-owners", "ctr2"),
        step("container-parent-owners", "-j", "ctr2"),
        step("unmount", "ctr2"),
        step("image", "img1"),
        step("container", "ctr1", "ctr2"),
        step("layers"),
        step("delete-image", "img1"),
        step("delete-container", "ctr1"),
        step("delete-container", "ctr2"),
        step("delete-image", "-j", "img1"),
        step("layers"),
      ]);
      await twins.sameContent();
    } finally {
      await dropRoot(a);
      await dropRoot(b);
    }
  },
});

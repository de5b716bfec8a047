import assert from "node:assert/strict";
import { ErrBadArchive } from "../lib/errors.ts";
import { emptyHeader, type TarHeader, TypeFlag } from "../lib/archive/tar_header.ts";
import { readTar, TarParser } from "../lib/archive/tar_reader.ts";
import { encodeHeader, TarWriter, writeTar } from "../lib/archive/tar_writer.ts";
import {
  isRoot,
  notRootReason,
  reference,
  referenceCli,
  removeTree,
  run,
  tempDir,
} from "./helpers.ts";
import {
  collect,
  concat,
  gnuTar,
  LONG_DIR,
  LONG_FILE,
  makeTree,
  sha256,
  streamOf,
} from "./archive_fixture.ts";

interface Read {
  header: TarHeader;
  sha: string;
  offset: number;
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Read[]> {
  const out: Read[] = [];
  for await (const e of readTar(s)) {
    const parts: Uint8Array[] = [];
    for await (const b of e.body) parts.push(b.slice());
    out.push({ header: e.header, sha: await sha256(concat(parts)), offset: e.offset });
  }
  return out;
}

async function rewrite(tar: Uint8Array, format?: "ustar" | "pax" | "gnu"): Promise<Uint8Array> {
  async function* entries() {
    for await (const e of readTar(streamOf(tar, 7000))) yield { header: e.header, body: e.body };
  }
  return await collect(writeTar(entries(), { format }));
}

const enc = new TextEncoder();

Deno.test({
  name:
    "tar: GNU tar archives (gnu, posix+xattrs, ustar-free) read → write → read give identical entries",
  ignore: !isRoot,
  async fn() {
    const dir = await tempDir();
    try {
      await makeTree(`${dir}/tree`);
      const cases: [string, string[], "pax" | "gnu" | undefined][] = [
        ["gnu", ["--format=gnu"], "gnu"],
        ["posix", ["--format=posix", "--xattrs", "--xattrs-include=*"], "pax"],
        ["oldgnu", ["--format=oldgnu"], "gnu"],
      ];
      for (const [label, opts, fmt] of cases) {
        await gnuTar(`${dir}/tree`, `${dir}/${label}.tar`, opts);
        const orig = await Deno.readFile(`${dir}/${label}.tar`);
        const a = await readAll(streamOf(orig, 4096));
        const names = a.map((e) => e.header.name);
        assert.ok(names.includes(`./${LONG_DIR}/${LONG_FILE}`), `${label}: long name read`);
        const byName = Object.fromEntries(a.map((e) => [e.header.name, e.header]));
        assert.equal(
          byName["./hardlink"].typeflag === TypeFlag.Link ||
            byName["./hello.txt"].typeflag === TypeFlag.Link,
          true,
        );
        assert.equal(byName["./symlink"].linkname, "hello.txt");
        assert.equal(byName["./longlink"].linkname, `${LONG_DIR}/${LONG_FILE}`);
        assert.equal(byName["./chardev"].typeflag, TypeFlag.Char);
        assert.deepEqual([byName["./blockdev"].devmajor, byName["./blockdev"].devminor], [7, 200]);
        assert.equal(byName["./fifo"].typeflag, TypeFlag.Fifo);
        assert.equal(byName["./setuid"].mode & 0o7777, 0o4755);
        assert.equal(byName["./sticky/"].mode & 0o7777, 0o1777);
        assert.deepEqual([byName["./owned"].uid, byName["./owned"].gid], [1234, 5678]);
        assert.equal(byName["./sparse"].size, 1 << 20);
        const hello = byName["./hello.txt"].typeflag === TypeFlag.Reg
          ? byName["./hello.txt"]
          : byName["./hardlink"];
        if (label === "posix") {
          assert.deepEqual(byName["./owned"].xattrs["user.bin"], new Uint8Array([0, 0xff, 0x10]));
          assert.equal(new TextDecoder().decode(hello.xattrs["user.greeting"]), "hi");
          assert.deepEqual(hello.mtime, { sec: 1700000000, nsec: 123456789 });
        }
        const again = await readAll(streamOf(await rewrite(orig, fmt), 1000));
        assert.deepEqual(
          again.map((e) => [e.header, e.sha]),
          a.map((e) => [e.header, e.sha]),
          label,
        );
        // GNU tar agrees that what we wrote describes the tree.
        await Deno.writeFile(`${dir}/${label}.ours.tar`, await rewrite(orig, fmt));
        const cmp = await run("tar", [
          "--compare",
          "-f",
          `${dir}/${label}.ours.tar`,
          "-C",
          `${dir}/tree`,
        ]);
        assert.equal(cmp.code, 0, `${label}: ${cmp.stdout}${cmp.stderr}`);
      }
    } finally {
      await removeTree(dir);
    }
  },
});

Deno.test("tar: v7 and ustar-prefix archives read like Go reads them", async () => {
  const dir = await tempDir();
  try {
    await Deno.mkdir(`${dir}/t/${"p".repeat(90)}/${"q".repeat(60)}`, { recursive: true });
    await Deno.writeFile(`${dir}/t/${"p".repeat(90)}/${"q".repeat(60)}/file`, enc.encode("x"));
    await Deno.mkdir(`${dir}/short`);
    await Deno.writeFile(`${dir}/short/f`, enc.encode("x"));
    for (const fmt of ["v7", "ustar"]) {
      await gnuTar(`${dir}/${fmt === "v7" ? "short" : "t"}`, `${dir}/${fmt}.tar`, [
        `--format=${fmt}`,
      ]);
      const entries = await readAll((await Deno.open(`${dir}/${fmt}.tar`)).readable);
      const names = entries.map((e) => e.header.name);
      if (fmt === "ustar") assert.ok(names.includes(`./${"p".repeat(90)}/${"q".repeat(60)}/file`));
      else assert.ok(names.includes("./"), "v7 reads");
      if (fmt === "v7") assert.equal(entries[0].header.uname, "", "v7 has no uname field");
    }
  } finally {
    await removeTree(dir);
  }
});

Deno.test("tar: writer reproduces containers-storage diff headers byte for byte", {
  ignore: !isRoot || !referenceCli,
}, async () => {
  const dir = await tempDir();
  try {
    const root = { graph: `${dir}/g`, run: `${dir}/r`, driver: "vfs" };
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeFile(`${dir}/src/base`, enc.encode("base\n"));
    await gnuTar(`${dir}/src`, `${dir}/base.tar`);
    const base = (await reference(root, ["import-layer", "-f", `${dir}/base.tar`])).stdout.trim();
    const layer = (await reference(root, ["create-layer", base])).stdout.trim();
    const m = (await reference(root, ["mount", layer])).stdout.trim();
    await Deno.writeFile(`${m}/new`, enc.encode("new\n"));
    await Deno.writeFile(`${m}/${"n".repeat(150)}`, enc.encode("q".repeat(600)));
    await Deno.mkdir(`${m}/${"p".repeat(90)}/${"q".repeat(90)}`, { recursive: true });
    await Deno.symlink("/x/y", `${m}/link`);
    await run("setfattr", ["-n", "user.k", "-v", "v", `${m}/new`]);
    await run("mknod", [`${m}/cdev`, "c", "5", "1"]);
    await Deno.remove(`${m}/base`);
    await reference(root, ["unmount", layer]);
    await reference(root, ["diff", "-u", "-f", `${dir}/diff.tar`, layer]);
    const diff = await Deno.readFile(`${dir}/diff.tar`);
    const ours = await rewrite(diff, "pax");
    assert.equal(await sha256(ours), await sha256(diff));
    const headers = (await readAll(streamOf(diff))).map((e) => e.header);
    assert.ok(headers.some((h) => h.name === "new" && h.mode === 0o100644 && h.xattrs["user.k"]));
    assert.ok(headers.some((h) => h.name === ".wh.base"));
  } finally {
    await removeTree(dir);
  }
});

Deno.test("tar: writer chooses USTAR, PAX or GNU like Go", async () => {
  const h = { ...emptyHeader("a.txt"), mode: 0o644, size: 3, mtime: { sec: 1, nsec: 0 } };
  // Fits USTAR: one block, ustar magic.
  const u = encodeHeader(h, { format: "pax" });
  assert.equal(u.length, 512);
  assert.equal(new TextDecoder().decode(u.subarray(257, 265)), "ustar\x0000");
  // Sub-second mtime: PAX with format "pax", rounded away without a format.
  const sub = { ...h, mtime: { sec: 10, nsec: 600_000_000 } };
  assert.equal(encodeHeader(sub, { format: "pax" }).length, 1536);
  const rounded = await readAll(
    streamOf(await collect(writeTar([{ header: sub, body: [enc.encode("abc")] }]))),
  );
  assert.deepEqual(rounded[0].header.mtime, { sec: 11, nsec: 0 });
  // Large uid: PAX record under pax, base-256 under gnu; both read back.
  for (const format of ["pax", "gnu"] as const) {
    const big = { ...h, uid: 1 << 30, gid: 3_000_000 };
    const back = await readAll(
      streamOf(await collect(writeTar([{ header: big, body: [enc.encode("abc")] }], { format }))),
    );
    assert.deepEqual([back[0].header.uid, back[0].header.gid], [1 << 30, 3_000_000], format);
  }
  // Negative PAX time and non-UTF-8 names survive a round trip.
  const odd = { ...h, name: "f\udcff.t", mtime: { sec: -5, nsec: 250_000_000 } };
  const back = await readAll(
    streamOf(
      await collect(writeTar([{ header: odd, body: [enc.encode("abc")] }], { format: "pax" })),
    ),
  );
  assert.deepEqual(back[0].header.mtime, { sec: -5, nsec: 250_000_000 });
  assert.equal(back[0].header.name, "f\udcff.t"); // the byte 0xff, kept
  // Go refuses what no format can carry.
  assert.throws(() =>
    encodeHeader({ ...h, xattrs: { "user.a": enc.encode("b") } }, { format: "gnu" })
  );
  // Body length is enforced.
  await assert.rejects(collect(writeTar([{ header: h, body: [enc.encode("toolong")] }])));
});

Deno.test("tar: TarWriter push API writes what writeTar writes", async () => {
  const h = { ...emptyHeader("x"), mode: 0o600, size: 2 };
  const w = new TarWriter({ format: "pax" });
  const out = collect(w.readable);
  await w.add(h, [enc.encode("hi")]);
  await w.add({ ...emptyHeader("d/", TypeFlag.Dir), mode: 0o755 });
  await w.close();
  const expect = await collect(writeTar([{ header: h, body: [enc.encode("hi")] }, {
    header: { ...emptyHeader("d/", TypeFlag.Dir), mode: 0o755 },
  }], { format: "pax" }));
  assert.deepEqual(await out, expect);
});

Deno.test("tar: raw bytes plus bodies reassemble the stream exactly", async () => {
  const dir = await tempDir();
  try {
    await Deno.mkdir(`${dir}/t/sub`, { recursive: true });
    await Deno.writeFile(`${dir}/t/sub/${"z".repeat(200)}`, enc.encode("z".repeat(1001)));
    await gnuTar(`${dir}/t`, `${dir}/a.tar`, ["--format=gnu"]);
    const orig = await Deno.readFile(`${dir}/a.tar`);
    const parts: Uint8Array[] = [];
    const p = new TarParser({
      raw: (b) => parts.push(b.slice()),
      trailing: (b) => parts.push(b.slice()),
      header: () => {},
      data: (b) => parts.push(b.slice()),
      entryEnd: () => {},
    });
    for (let i = 0; i < orig.length; i += 333) p.push(orig.subarray(i, i + 333));
    p.end();
    assert.deepEqual(concat(parts), orig);
  } finally {
    await removeTree(dir);
  }
});

/** A two-entry archive; the second header starts at 1024. */
async function sample(): Promise<Uint8Array> {
  return await collect(writeTar([
    { header: { ...emptyHeader("first.txt"), mode: 0o644, size: 5 }, body: [enc.encode("first")] },
    {
      header: { ...emptyHeader("second.txt"), mode: 0o644, size: 6 },
      body: [enc.encode("second")],
    },
  ]));
}

function fixChecksum(b: Uint8Array, at: number): void {
  b.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[at + i];
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), at + 148);
}

async function expectBad(
  bytes: Uint8Array,
  name: string,
  offset: number,
  what: RegExp,
): Promise<void> {
  await assert.rejects(readAll(streamOf(bytes, 100)), (e: unknown) => {
    assert.ok(e instanceof ErrBadArchive, String(e));
    assert.match(e.message, what);
    assert.ok(e.message.includes(JSON.stringify(name)), `names ${name}: ${e.message}`);
    assert.ok(e.message.includes(`byte offset ${offset}`), `offset ${offset}: ${e.message}`);
    return true;
  });
}

Deno.test("tar: bad checksum is rejected naming entry and offset", async () => {
  const b = await sample();
  b[1024 + 300] ^= 1;
  await expectBad(b, "second.txt", 1024, /checksum.*: archive\/tar: invalid tar header$/);
});

Deno.test("tar: truncated header is rejected", async () => {
  const b = (await sample()).subarray(0, 1024 + 200);
  await expectBad(
    b,
    "second.txt",
    1024,
    /truncated header \(200 of 512 bytes\).*: unexpected EOF$/,
  );
});

Deno.test("tar: truncated body is rejected", async () => {
  const b = (await sample()).subarray(0, 1024 + 512 + 3);
  await expectBad(b, "second.txt", 1539, /truncated body.*: unexpected EOF$/);
});

Deno.test("tar: negative size (base-256) is rejected", async () => {
  const b = await sample();
  b.fill(0xff, 1024 + 124, 1024 + 136);
  fixChecksum(b, 1024);
  await expectBad(b, "second.txt", 1024, /negative size -1.*: archive\/tar: invalid tar header$/);
});

Deno.test("tar: absurd size (base-256 beyond 2^53) is rejected", async () => {
  const b = await sample();
  b.fill(0, 1024 + 124, 1024 + 136);
  b[1024 + 124] = 0x80;
  b[1024 + 128] = 0x10; // 2^60
  fixChecksum(b, 1024);
  await expectBad(b, "second.txt", 1024, /out of range/);
});

Deno.test("tar: bad octal in a numeric field is rejected", async () => {
  const b = await sample();
  b.set(enc.encode("0000000009x\0"), 1024 + 124);
  fixChecksum(b, 1024);
  await expectBad(b, "second.txt", 1024, /invalid octal number "0000000009x" in size field/);
});

Deno.test("tar: malformed PAX record and zero block before a header are rejected", async () => {
  const h = { ...emptyHeader("p.txt"), mode: 0o644, size: 1, mtime: { sec: 0, nsec: 5 } };
  const b = await collect(writeTar([{ header: h, body: [enc.encode("p")] }], { format: "pax" }));
  b[512] = 0x39; // record length "9…" no longer matches
  await expectBad(b, "PaxHeaders.0/p.txt", 512, /malformed PAX record/);
  const z = await sample();
  const withZero = new Uint8Array(z.length + 512);
  withZero.set(z.subarray(0, 1024));
  withZero.set(z.subarray(1024), 1536);
  await expectBad(withZero, "second.txt", 1536, /non-zero block after an end-of-archive block/);
});

Deno.test("tar: skipping bodies and partial reads work; offsets are header positions", async () => {
  const b = await sample();
  const offsets: number[] = [];
  for await (const e of readTar(streamOf(b, 1))) {
    offsets.push(e.offset);
    if (e.header.name === "first.txt") {
      for await (const c of e.body) {
        assert.equal(c.length, 1);
        break;
      }
    }
  }
  assert.deepEqual(offsets, [0, 1024]);
});

Deno.test({
  name: "tar: GNU tar lists what we write, devices and long names included",
  ignore: !isRoot,
  async fn() {
    const long = `${"a".repeat(150)}/${"b".repeat(150)}`;
    const tar = await collect(writeTar([
      { header: { ...emptyHeader(long, TypeFlag.Dir), mode: 0o755 } },
      { header: { ...emptyHeader("dev", TypeFlag.Char), mode: 0o600, devmajor: 1, devminor: 5 } },
      { header: { ...emptyHeader("ln", TypeFlag.Symlink), linkname: long } },
    ], { format: "pax" }));
    const r = await run("tar", ["-tvf", "-"], { stdin: tar });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^d.* ${long}$`, "m"));
    assert.match(r.stdout, /crw------- .* 1,5 .*dev/);
  },
});

if (!isRoot) console.log(`tar_test: some tests ${notRootReason}`);

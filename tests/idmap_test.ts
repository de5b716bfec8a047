import assert from "node:assert/strict";
import {
  idMappingsForUser,
  isIdentity,
  OVERFLOW_ID,
  parseIDMap,
  parseSubIDs,
  rootPair,
  toContainer,
  toHost,
  toHostOverflow,
} from "../lib/idmap.ts";
import { ErrInvalidIDMap, ErrUnmappedID } from "../lib/errors.ts";
import { removeTree, tempDir } from "./helpers.ts";

Deno.test("parseIDMap parses one triple, joined triples, commas and lists", () => {
  assert.deepEqual(parseIDMap("0:100000:65536"), [
    { container_id: 0, host_id: 100000, size: 65536 },
  ]);
  const two = [
    { container_id: 0, host_id: 200000, size: 1000 },
    { container_id: 1000, host_id: 300000, size: 10 },
  ];
  assert.deepEqual(parseIDMap("0:200000:1000:1000:300000:10"), two);
  assert.deepEqual(parseIDMap("0:200000:1000, 1000:300000:10"), two);
  assert.deepEqual(parseIDMap(["0:200000:1000", "1000:300000:10"]), two);
  assert.deepEqual(parseIDMap(""), []);
  assert.deepEqual(parseIDMap([""]), []);
  assert.deepEqual(parseIDMap("1:1:4294967295"), [
    { container_id: 1, host_id: 1, size: 4294967295 },
  ]);
});

Deno.test("parseIDMap rejects malformed specs with the setting name", () => {
  const bad = [
    "0:100000",
    "0:100000:65536:1",
    "a:1:2",
    "-1:1:2",
    "0:1:0",
    "0:1:1.5",
    "4294967296:0:1",
    "1:0:4294967296",
    "2:0:4294967295",
    "0:100:10,5:200:10",
    "0:100:10,20:105:10",
  ];
  for (const spec of bad) {
    assert.throws(
      () => parseIDMap(spec, "remap-uids"),
      (e) => e instanceof ErrInvalidIDMap && e.message.includes("remap-uids"),
      spec,
    );
  }
});

Deno.test("toHost and toContainer map both ways across ranges", () => {
  const m = parseIDMap("0:100000:1000,1000:300000:10");
  assert.equal(toHost(0, m), 100000);
  assert.equal(toHost(999, m), 100999);
  assert.equal(toHost(1005, m), 300005);
  assert.equal(toContainer(100000, m), 0);
  assert.equal(toContainer(300009, m), 1009);
  for (let id = 0; id < 1010; id += 37) assert.equal(toContainer(toHost(id, m), m), id);
});

Deno.test("unmapped IDs throw ErrUnmappedID naming the ID", () => {
  const m = parseIDMap("0:100000:1000");
  assert.throws(() => toHost(1000, m), (e) => e instanceof ErrUnmappedID && e.id === "1000");
  assert.throws(() => toContainer(99999, m), (e) => e instanceof ErrUnmappedID && e.id === "99999");
  assert.throws(() => toContainer(101000, m), ErrUnmappedID);
});

Deno.test("an empty mapping is the identity", () => {
  assert.equal(toHost(12345, []), 12345);
  assert.equal(toContainer(12345, []), 12345);
  assert.ok(isIdentity([]));
  assert.ok(isIdentity(parseIDMap("0:0:65536")));
  assert.ok(!isIdentity(parseIDMap("0:1:65536")));
  assert.ok(isIdentity({ uidMap: [], gidMap: parseIDMap("5:5:1") }));
  assert.ok(!isIdentity({ uidMap: [], gidMap: parseIDMap("5:6:1") }));
});

Deno.test("parseSubIDs lays ranges out from container ID 0 in host order", () => {
  const text = "# comment\nother:1:2\nalice:600000:100\n\nalice:500000:65536\nALL:900000:5\n";
  assert.deepEqual(parseSubIDs(text, "alice"), [
    { container_id: 0, host_id: 500000, size: 65536 },
    { container_id: 65536, host_id: 600000, size: 100 },
    { container_id: 65636, host_id: 900000, size: 5 },
  ]);
  assert.throws(
    () => parseSubIDs("bob:1:2\n", "alice", "/etc/subuid"),
    (e) => e instanceof ErrInvalidIDMap && e.message.includes("/etc/subuid"),
  );
  assert.throws(
    () => parseSubIDs("alice:x:2\n", "alice", "/etc/subuid"),
    (e) => e instanceof ErrInvalidIDMap && e.message.includes("/etc/subuid:1"),
  );
});

Deno.test("idMappingsForUser reads subuid and subgid files", async () => {
  const dir = await tempDir();
  try {
    await Deno.writeTextFile(`${dir}/subuid`, "csuser:500000:65536\n");
    await Deno.writeTextFile(`${dir}/subgid`, "csgroup:600000:65536\n");
    const m = await idMappingsForUser("csuser", "csgroup", {
      subuid: `${dir}/subuid`,
      subgid: `${dir}/subgid`,
    });
    assert.deepEqual(m.uidMap, [{ container_id: 0, host_id: 500000, size: 65536 }]);
    assert.deepEqual(m.gidMap, [{ container_id: 0, host_id: 600000, size: 65536 }]);
    await assert.rejects(
      idMappingsForUser("nobody-here", "csgroup", {
        subuid: `${dir}/subuid`,
        subgid: `${dir}/missing`,
      }),
      ErrInvalidIDMap,
    );
  } finally {
    await removeTree(dir);
  }
});

Deno.test("rootPair and toHostOverflow follow idtools' GetRootUIDGID and ToHostOverflow", () => {
  const m = { uidMap: parseIDMap("0:1000:100"), gidMap: parseIDMap("0:2000:100") };
  assert.deepEqual(rootPair(m), { uid: 1000, gid: 2000 });
  // a mapping of one ID gives root that ID, whatever its container ID
  assert.deepEqual(rootPair({ uidMap: parseIDMap("7:3000:1"), gidMap: [] }), { uid: 3000, gid: 0 });
  assert.throws(() => rootPair({ uidMap: parseIDMap("1:1000:10"), gidMap: [] }), ErrUnmappedID);
  assert.deepEqual(toHostOverflow({ uid: 5, gid: 99 }, m), { uid: 1005, gid: 2099 });
  assert.deepEqual(toHostOverflow({ uid: 100, gid: 70000 }, m), {
    uid: OVERFLOW_ID,
    gid: OVERFLOW_ID,
  });
  // an ID equal to root's host ID is kept, mapped or not
  assert.deepEqual(toHostOverflow({ uid: 1000, gid: 2000 }, m), { uid: 1000, gid: 2000 });
  // without a root, nothing is kept: every ID is mapped or overflows
  const rootless = { uidMap: parseIDMap("1:1000:10"), gidMap: parseIDMap("1:2000:10") };
  assert.deepEqual(toHostOverflow({ uid: 2, gid: 0 }, rootless), { uid: 1001, gid: OVERFLOW_ID });
  assert.deepEqual(toHostOverflow({ uid: 3, gid: 4 }, { uidMap: [], gidMap: [] }), {
    uid: 3,
    gid: 4,
  });
});

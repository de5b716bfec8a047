/**
 * Automatic user namespace arithmetic: ID sets, allocation around used
 * ranges, caller-supplied ranges, and sizing from passwd/group files.
 * @module
 */

import { autoUserNsMappings, IDSet, sizeForUserFiles } from "../lib/store/userns.ts";
import { StorageError } from "../lib/errors.ts";
import { assert, assertEquals } from "./store_helpers.ts";

Deno.test("IDSet: merge, subtract, take and zip", () => {
  const s = new IDSet([[10, 20], [15, 30], [40, 50], [30, 35]]);
  assertEquals(s.intervals, [[10, 35], [40, 50]]);
  assertEquals(s.size, 35);
  assertEquals(s.subtract(new IDSet([[12, 14], [34, 45]])).intervals, [[10, 12], [14, 34], [
    45,
    50,
  ]]);
  assertEquals(s.take(27).intervals, [[10, 35], [40, 42]]);
  let err: unknown;
  try {
    s.take(36);
  } catch (e) {
    err = e;
  }
  assert(err instanceof StorageError && /not find enough available IDs/.test(err.message));
  assertEquals(new IDSet([[100, 103], [200, 202]]).zip(new IDSet([[0, 4], [10, 11]])), [
    { container_id: 0, host_id: 100, size: 3 },
    { container_id: 3, host_id: 200, size: 1 },
    { container_id: 10, host_id: 201, size: 1 },
  ]);
});

Deno.test("autoUserNsMappings: skips host IDs other containers use and keeps caller ranges", () => {
  const available = new IDSet([[100000, 165536]]);
  const m = autoUserNsMappings({
    size: 1024,
    availableUIDs: available,
    availableGIDs: available,
    usedUIDs: [{ container_id: 0, host_id: 100000, size: 1024 }],
    usedGIDs: [],
    additionalUIDs: [{ container_id: 0, host_id: 5000, size: 1 }],
  });
  assertEquals(m.uidMap, [
    { container_id: 1, host_id: 101024, size: 1023 },
    { container_id: 0, host_id: 5000, size: 1 },
  ]);
  assertEquals(m.gidMap, [{ container_id: 0, host_id: 100000, size: 1024 }]);
});

Deno.test("sizeForUserFiles: highest ID plus one, nobody and junk ignored", () => {
  const passwd =
    "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/x\napp:x:1500:70::/:/x\nbad\n";
  const group = "root:x:0:\nnogroup:x:65533:\nnobody:x:65534:\n";
  assertEquals(sizeForUserFiles(passwd, ""), 1501);
  assertEquals(sizeForUserFiles(passwd, group), 65534);
  assertEquals(sizeForUserFiles("", ""), 0);
});

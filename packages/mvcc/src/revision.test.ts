import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareBytes } from "@etcd-ts/storage";
import {
  RevisionSet,
  decodeRevisionKey,
  decodeUint64,
  encodeRevisionKey,
  encodeUint64,
  mainOfRevisionKey,
  subOfRevisionKey,
} from "./revision.js";
import { isMvccError } from "./errors.js";

describe("revision keys (etcd's key bucket layout)", () => {
  it("is 8-byte big-endian main, '_', 8-byte big-endian sub, and a 't' for tombstones", () => {
    assert.equal(Buffer.from(encodeRevisionKey(1, 0)).toString("hex"), "0000000000000001" + "5f" + "0000000000000000");
    assert.equal(
      Buffer.from(encodeRevisionKey(0x1_0203_0405, 7, true)).toString("hex"),
      "0000000102030405" + "5f" + "0000000000000007" + "74",
    );
  });

  it("round-trips, up to 2^53", () => {
    for (const [main, sub] of [
      [0, 0],
      [1, 2],
      [2 ** 32 - 1, 2 ** 32],
      [2 ** 53 - 1, 12345],
    ] as const) {
      for (const tombstone of [false, true]) {
        const key = encodeRevisionKey(main, sub, tombstone);
        assert.deepEqual(decodeRevisionKey(key), { main, sub, tombstone });
        assert.equal(mainOfRevisionKey(key), main);
        assert.equal(subOfRevisionKey(key), sub);
      }
    }
  });

  it("sorts bytewise in revision order, a tombstone right after its revision", () => {
    const keys = [
      encodeRevisionKey(2, 0),
      encodeRevisionKey(1, 1, true),
      encodeRevisionKey(1, 1),
      encodeRevisionKey(256, 0),
      encodeRevisionKey(1, 0),
      encodeRevisionKey(1, 2),
    ];
    keys.sort(compareBytes);
    assert.deepEqual(
      keys.map((k) => {
        const r = decodeRevisionKey(k);
        return `${r.main}.${r.sub}${r.tombstone ? "t" : ""}`;
      }),
      ["1.0", "1.1", "1.1t", "1.2", "2.0", "256.0"],
    );
  });

  it("rejects keys that are not revisions", () => {
    for (const bad of [new Uint8Array(16), new Uint8Array(17), Uint8Array.from([...encodeRevisionKey(1, 1), 0x78])]) {
      assert.throws(
        () => decodeRevisionKey(bad),
        (e) => isMvccError(e, "Corrupt"),
      );
    }
  });

  it("encodes the consistent index as 8 bytes big-endian", () => {
    assert.equal(Buffer.from(encodeUint64(258)).toString("hex"), "0000000000000102");
    assert.equal(decodeUint64(encodeUint64(2 ** 40 + 3)), 2 ** 40 + 3);
  });
});

describe("RevisionSet", () => {
  it("holds revisions with and without sub", () => {
    const set = new RevisionSet();
    set.add(5, 0);
    set.add(5, 2);
    set.add(5, 2);
    set.add(7, 1);
    assert.equal(set.size, 3);
    assert.ok(set.has(5, 0) && set.has(5, 2) && set.has(7, 1));
    assert.ok(!set.has(5, 1) && !set.has(7, 0));
    set.delete(5, 2);
    set.delete(9, 9);
    assert.equal(set.size, 2);
    assert.ok(!set.has(5, 2));
  });
});

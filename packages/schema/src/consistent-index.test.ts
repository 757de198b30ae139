import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openMemoryBackend } from "@etcd-ts/storage";
import { META_BUCKET } from "./buckets.js";
import {
  decodeConsistentIndex,
  encodeConsistentIndex,
  isConsistentIndexRow,
  readConsistentIndex,
  writeConsistentIndex,
} from "./consistent-index.js";
import { CONSISTENT_INDEX_KEY } from "./keys.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("consistent index", () => {
  it("is 8 bytes big-endian, as etcd stores it", () => {
    assert.equal(hex(encodeConsistentIndex(0)), "0000000000000000");
    assert.equal(hex(encodeConsistentIndex(258)), "0000000000000102");
    assert.equal(hex(encodeConsistentIndex(2 ** 40 + 3)), "0000010000000003");
    assert.equal(hex(encodeConsistentIndex(Number.MAX_SAFE_INTEGER)), "001fffffffffffff");
  });

  it("decodes what it encodes, and nothing that is not 8 bytes", () => {
    for (const index of [0, 1, 0xffff_ffff, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      assert.equal(decodeConsistentIndex(encodeConsistentIndex(index)), index);
    }
    assert.equal(decodeConsistentIndex(new Uint8Array(7)), undefined);
    assert.equal(decodeConsistentIndex(new Uint8Array(9)), undefined);
    const offset = new Uint8Array(12);
    offset.set(encodeConsistentIndex(77), 4);
    assert.equal(decodeConsistentIndex(offset.subarray(4)), 77);
  });

  it("reads 0 from a `meta` without one and the written index after a write", async () => {
    const backend = openMemoryBackend();
    await backend.update((txn) => txn.createBucket(META_BUCKET));
    assert.equal(
      backend.view((txn) => readConsistentIndex(txn)),
      0,
    );
    await backend.update((txn) => writeConsistentIndex(txn, 1234));
    assert.equal(
      backend.view((txn) => readConsistentIndex(txn)),
      1234,
    );
    assert.equal(hex(backend.view((txn) => txn.get(META_BUCKET, CONSISTENT_INDEX_KEY))!), "00000000000004d2");
    await backend.update((txn) => txn.put(META_BUCKET, CONSISTENT_INDEX_KEY, new Uint8Array(3)));
    assert.equal(
      backend.view((txn) => readConsistentIndex(txn)),
      0,
    );
    await backend.close();
  });

  it("names its own row only", () => {
    assert.equal(isConsistentIndexRow(META_BUCKET, new TextEncoder().encode("consistent_index")), true);
    assert.equal(isConsistentIndexRow(META_BUCKET, new TextEncoder().encode("consistent_indexx")), false);
    assert.equal(isConsistentIndexRow(META_BUCKET, new TextEncoder().encode("finishedCompactRev")), false);
    assert.equal(isConsistentIndexRow("key", new TextEncoder().encode("consistent_index")), false);
  });
});

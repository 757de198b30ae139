import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isRaftError } from "./errors.js";
import { MemoryStorage } from "./storage.js";
import { entry } from "./testing/network.js";

/** Storage holding a snapshot at 3 (term 3) and entries 4 (term 4), 5 (term 5). */
function storage(): MemoryStorage {
  const s = new MemoryStorage({ confState: { voters: [1n], learners: [] } });
  s.append([entry(1, 1), entry(2, 2), entry(3, 3), entry(4, 4), entry(5, 5)]);
  s.createSnapshot(3, undefined, new Uint8Array([3]));
  s.compact(3);
  return s;
}

describe("MemoryStorage", () => {
  test("term(i): the snapshot index has its term; earlier is Compacted, later is Unavailable", () => {
    const s = storage();
    assert.throws(
      () => s.term(2),
      (e: unknown) => isRaftError(e, "Compacted"),
    );
    assert.equal(s.term(3), 3);
    assert.equal(s.term(5), 5);
    assert.throws(
      () => s.term(6),
      (e: unknown) => isRaftError(e, "Unavailable"),
    );
  });

  test("entries(lo, hi, maxSize): Compacted below the first index, Unavailable past the end, size-limited but never empty", () => {
    const s = storage();
    assert.throws(
      () => s.entries(3, 5, Infinity),
      (e: unknown) => isRaftError(e, "Compacted"),
    );
    assert.throws(
      () => s.entries(4, 7, Infinity),
      (e: unknown) => isRaftError(e, "Unavailable"),
    );
    assert.deepEqual(
      s.entries(4, 6, Infinity).map((e) => e.index),
      [4, 5],
    );
    assert.deepEqual(
      s.entries(4, 6, 0).map((e) => e.index),
      [4],
    );
    assert.deepEqual(
      s.entries(4, 6, 32).map((e) => e.index),
      [4, 5],
    );
  });

  test("firstIndex and lastIndex follow compaction", () => {
    const s = storage();
    assert.equal(s.firstIndex(), 4);
    assert.equal(s.lastIndex(), 5);
    s.compact(4);
    assert.equal(s.firstIndex(), 5);
    assert.throws(
      () => s.compact(4),
      (e: unknown) => isRaftError(e, "Compacted"),
    );
    assert.throws(
      () => s.compact(9),
      (e: unknown) => isRaftError(e, "Unavailable"),
    );
  });

  test("append replaces a conflicting suffix and ignores what the snapshot covers", () => {
    const s = storage();
    s.append([entry(2, 2), entry(3, 3), entry(4, 6), entry(5, 6), entry(6, 6)]);
    assert.deepEqual(
      s.entries(4, 7, Infinity).map((e) => e.term),
      [6, 6, 6],
    );
    s.append([entry(5, 7)]);
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(5), 7);
    assert.throws(() => s.append([entry(9, 7)]), /missing log entry/);
  });

  test("applySnapshot replaces the log; an older snapshot is SnapshotOutOfDate", () => {
    const s = storage();
    const snap = { data: new Uint8Array(), metadata: { index: 10, term: 8, confState: { voters: [1n, 2n], learners: [] } } };
    s.applySnapshot(snap);
    assert.equal(s.firstIndex(), 11);
    assert.equal(s.lastIndex(), 10);
    assert.equal(s.term(10), 8);
    assert.deepEqual(s.initialState().confState.voters, [1n, 2n]);
    assert.throws(
      () => s.applySnapshot({ ...snap, metadata: { ...snap.metadata, index: 9 } }),
      (e: unknown) => isRaftError(e, "SnapshotOutOfDate"),
    );
  });

  test("createSnapshot records the data and ConfState at an index; older requests are SnapshotOutOfDate", () => {
    const s = storage();
    const snap = s.createSnapshot(5, { voters: [1n, 2n], learners: [3n] }, new Uint8Array([5]));
    assert.equal(snap.metadata.term, 5);
    assert.deepEqual(s.snapshot().metadata.confState.learners, [3n]);
    assert.throws(
      () => s.createSnapshot(4, undefined, new Uint8Array()),
      (e: unknown) => isRaftError(e, "SnapshotOutOfDate"),
    );
  });

  test("setHardState is returned by initialState", () => {
    const s = new MemoryStorage();
    s.setHardState({ term: 3, vote: 2n, commit: 0 });
    assert.deepEqual(s.initialState().hardState, { term: 3, vote: 2n, commit: 0 });
  });
});

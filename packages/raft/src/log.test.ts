import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isRaftError } from "./errors.js";
import { RaftLog } from "./log.js";
import { silentLogger } from "./logger.js";
import { MemoryStorage } from "./storage.js";
import { entry } from "./testing/network.js";

function logWith(terms: number[]): RaftLog {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => entry(i + 1, t)));
  return new RaftLog(s, silentLogger);
}

describe("RaftLog", () => {
  test("findConflict returns the first entry not in the log, or 0", () => {
    const log = logWith([1, 2, 3]);
    assert.equal(log.findConflict([]), 0);
    assert.equal(log.findConflict([entry(1, 1), entry(2, 2)]), 0);
    assert.equal(log.findConflict([entry(2, 2), entry(3, 3), entry(4, 4)]), 4);
    assert.equal(log.findConflict([entry(2, 1), entry(3, 4)]), 2);
  });

  test("findConflictByTerm skips back to the last index whose term is <= the given term", () => {
    const log = logWith([1, 1, 3, 3, 5, 5]);
    assert.equal(log.findConflictByTerm(6, 4), 4);
    assert.equal(log.findConflictByTerm(6, 2), 2);
    assert.equal(log.findConflictByTerm(6, 5), 6);
    assert.equal(log.findConflictByTerm(6, 0), 0);
    assert.equal(log.findConflictByTerm(10, 1), 10, "beyond the log: unchanged");
  });

  test("maybeAppend checks the previous entry, truncates conflicts, and commits up to the last new entry", () => {
    const log = logWith([1, 2, 3]);
    assert.equal(log.maybeAppend(3, 2, 3, [entry(4, 4)]), undefined, "mismatching previous term");
    assert.equal(log.maybeAppend(2, 2, 10, [entry(3, 4)]), 3);
    assert.equal(log.lastTerm(), 4);
    assert.equal(log.committed, 3, "commit is capped at the last new entry");
    assert.throws(() => log.maybeAppend(1, 1, 3, [entry(2, 5)]), /conflicts with committed entry/);
  });

  test("unstable entries, stableTo and nextEntries", () => {
    const log = logWith([1]);
    log.append([entry(2, 1), entry(3, 1)]);
    assert.deepEqual(
      log.unstableEntries().map((e) => e.index),
      [2, 3],
    );
    log.commitTo(3);
    assert.deepEqual(
      log.nextEntries().map((e) => e.index),
      [1, 2, 3],
    );
    log.stableTo(3, 1);
    assert.equal(log.unstableEntries().length, 0);
    log.appliedTo(3);
    assert.equal(log.hasNextEntries(), false);
  });

  test("stableTo ignores an entry that was overwritten since the Ready was taken", () => {
    const log = logWith([]);
    log.append([entry(1, 1)]);
    log.append([entry(1, 2)]);
    log.stableTo(1, 1);
    assert.equal(log.unstableEntries().length, 1);
  });

  test("isUpToDate compares the last term, then the last index (§5.4.1)", () => {
    const log = logWith([1, 2, 3]);
    assert.equal(log.isUpToDate(3, 3), true);
    assert.equal(log.isUpToDate(2, 3), false);
    assert.equal(log.isUpToDate(1, 4), true);
    assert.equal(log.isUpToDate(9, 2), false);
  });

  test("maybeCommit only commits an index whose entry has the given term", () => {
    const log = logWith([1, 2]);
    assert.equal(log.maybeCommit(2, 1), false);
    assert.equal(log.maybeCommit(2, 2), true);
    assert.equal(log.committed, 2);
  });

  test("slice below the first index throws Compacted", () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.createSnapshot(2, undefined, new Uint8Array());
    s.compact(2);
    const log = new RaftLog(s, silentLogger);
    assert.throws(
      () => log.slice(1, 3, Infinity),
      (e: unknown) => isRaftError(e, "Compacted"),
    );
    assert.deepEqual(
      log.slice(3, 4, Infinity).map((e) => e.index),
      [3],
    );
  });

  test("restore moves the log to a snapshot", () => {
    const log = logWith([1, 1]);
    log.restore({ data: new Uint8Array(), metadata: { index: 10, term: 3, confState: { voters: [], learners: [] } } });
    assert.equal(log.committed, 10);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.firstIndex(), 11);
    assert.equal(log.term(10), 3);
  });
});

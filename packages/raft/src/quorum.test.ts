import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { majorityCommittedIndex, majorityVoteResult, VoteResult } from "./quorum.js";
import { Inflights } from "./tracker/inflights.js";
import { Progress, ProgressState } from "./tracker/progress.js";

describe("quorum", () => {
  test("the committed index is the highest index a majority has acknowledged", () => {
    const voters = new Set([1n, 2n, 3n]);
    const acked = (m: Record<string, number>) => (id: bigint) => m[String(id)];
    assert.equal(majorityCommittedIndex(voters, acked({ 1: 5, 2: 3, 3: 1 })), 3);
    assert.equal(majorityCommittedIndex(voters, acked({ 1: 5 })), 0);
    assert.equal(majorityCommittedIndex(voters, acked({ 1: 5, 2: 5 })), 5);
    assert.equal(majorityCommittedIndex(new Set([1n, 2n, 3n, 4n]), acked({ 1: 9, 2: 8, 3: 7, 4: 1 })), 7, "4 voters: 3 must hold it");
    assert.equal(majorityCommittedIndex(new Set(), acked({})), Infinity);
    const many = new Set(Array.from({ length: 9 }, (_, i) => BigInt(i + 1)));
    assert.equal(
      majorityCommittedIndex(many, (id) => Number(id)),
      5,
    );
  });

  test("vote results: won with a majority of grants, lost once a majority is impossible, pending otherwise", () => {
    const voters = new Set([1n, 2n, 3n]);
    assert.equal(
      majorityVoteResult(
        voters,
        new Map([
          [1n, true],
          [2n, true],
        ]),
      ),
      VoteResult.Won,
    );
    assert.equal(majorityVoteResult(voters, new Map([[1n, true]])), VoteResult.Pending);
    assert.equal(
      majorityVoteResult(
        voters,
        new Map([
          [1n, true],
          [2n, false],
          [3n, false],
        ]),
      ),
      VoteResult.Lost,
    );
    assert.equal(majorityVoteResult(new Set(), new Map()), VoteResult.Won);
  });
});

describe("tracker", () => {
  test("inflights is a bounded FIFO freed by acknowledgement", () => {
    const inf = new Inflights(3);
    inf.add(1);
    inf.add(2);
    inf.add(5);
    assert.equal(inf.full(), true);
    assert.throws(() => inf.add(6));
    inf.freeLE(2);
    assert.equal(inf.length(), 1);
    inf.add(6);
    inf.add(7);
    inf.freeFirstOne();
    assert.equal(inf.length(), 2);
    inf.freeLE(100);
    assert.equal(inf.length(), 0);
  });

  test("progress: a probe rejection backs off to the hint; a stale rejection changes nothing", () => {
    const pr = new Progress(10, 4, false);
    assert.equal(pr.maybeDecrTo(5, 3), false, "not the latest probe");
    assert.equal(pr.maybeDecrTo(9, 3), true);
    assert.equal(pr.next, 4);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    assert.equal(pr.maybeDecrTo(2, 2), false, "already matched");
    assert.equal(pr.maybeDecrTo(8, 2), true);
    assert.equal(pr.next, 4);
  });

  test("progress: after a snapshot, probing resumes past the snapshot", () => {
    const pr = new Progress(1, 4, false);
    pr.becomeSnapshot(20);
    assert.equal(pr.isPaused(), true);
    pr.becomeProbe();
    assert.equal(pr.state, ProgressState.Probe);
    assert.equal(pr.next, 21);
  });
});

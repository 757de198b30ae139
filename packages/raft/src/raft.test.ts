// Features beyond the paper's core: pre-vote, check-quorum and the leader lease, flow control and
// batching, snapshots to lagging followers, leader transfer.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isRaftError } from "./errors.js";
import { Raft } from "./raft.js";
import { MemoryStorage } from "./storage.js";
import { Network, entry, hup, ids, newTestRaft, prop, readMessages } from "./testing/network.js";
import { ProgressState } from "./tracker/progress.js";
import type { NodeId } from "./types.js";
import { MessageType, StateType, newMessage } from "./types.js";

const [n1, n2, n3] = ids(1, 2, 3) as [NodeId, NodeId, NodeId];

function electLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
  readMessages(r);
}

describe("pre-vote", () => {
  test("a partitioned node with pre-vote does not raise its term, so it cannot disrupt the cluster on return", () => {
    const nt = Network.ofSize(3, { preVote: true });
    nt.send(hup(n1));
    nt.isolate(n3);
    nt.send(prop(n1)); // the cluster moves on; n3's log falls behind
    for (let i = 0; i < 5; i++) nt.send(hup(n3));
    assert.equal(nt.node(3).term, 1);
    assert.equal(nt.node(3).state, StateType.PreCandidate);
    nt.recover();
    nt.send(hup(n3));
    // n1 stays leader, nobody's term moved.
    assert.equal(nt.node(1).state, StateType.Leader);
    assert.equal(nt.node(1).term, 1);
  });

  test("without pre-vote the same node forces an election with its higher term", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.isolate(n3);
    nt.send(prop(n1));
    for (let i = 0; i < 5; i++) nt.send(hup(n3));
    assert.equal(nt.node(3).term, 6);
    nt.recover();
    nt.send(hup(n3));
    assert.notEqual(nt.node(1).state, StateType.Leader);
    assert.ok(nt.node(1).term >= 7);
  });

  test("a pre-candidate that wins the pre-vote runs a real election at the next term", () => {
    const nt = Network.ofSize(3, { preVote: true });
    nt.send(hup(n1));
    assert.equal(nt.node(1).state, StateType.Leader);
    assert.equal(nt.node(1).term, 1);
    assert.equal(nt.node(2).vote, n1);
  });
});

describe("check-quorum and the leader lease", () => {
  test("a leader that does not hear from a quorum within an election timeout steps down", () => {
    const nt = Network.ofSize(3, { checkQuorum: true });
    nt.send(hup(n1));
    nt.isolate(n1);
    const r = nt.node(1);
    // Followers were active in the round that just started; the next check finds them silent.
    for (let i = 0; i < 2 * r.electionTimeout; i++) r.tick();
    assert.equal(r.state, StateType.Follower);
  });

  test("a leader that hears from a quorum keeps leading", () => {
    const nt = Network.ofSize(3, { checkQuorum: true });
    nt.send(hup(n1));
    for (let i = 0; i < 50; i++) nt.tick(n1);
    assert.equal(nt.node(1).state, StateType.Leader);
  });

  test("with check-quorum, a follower that heard from its leader within the election timeout ignores vote requests", () => {
    const nt = Network.ofSize(3, { checkQuorum: true });
    nt.send(hup(n1));
    const f = nt.node(2);
    f.step(newMessage({ type: MessageType.Vote, from: n3, to: n2, term: 5, index: 10, logTerm: 5 }));
    assert.equal(f.term, 1, "lease: the request is ignored, the term does not move");
    assert.equal(readMessages(f).length, 0);
    // Once the lease has expired the request is considered.
    for (let i = 0; i < f.electionTimeout; i++) f.tick();
    f.becomeFollower(f.term, n1);
    f.electionElapsed = f.electionTimeout;
    f.step(newMessage({ type: MessageType.Vote, from: n3, to: n2, term: 5, index: 10, logTerm: 5 }));
    assert.equal(f.term, 5);
  });

  test("a leader transfer's vote requests bypass the lease", () => {
    const nt = Network.ofSize(3, { checkQuorum: true });
    nt.send(hup(n1));
    nt.send(newMessage({ type: MessageType.TransferLeader, from: n2, to: n1 }));
    assert.equal(nt.node(2).state, StateType.Leader);
  });

  test("a node with a stale term answers a leader's heartbeat so that the stale leader learns the new term", () => {
    const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { checkQuorum: true });
    r.becomeFollower(5, n2);
    r.step(newMessage({ type: MessageType.Heartbeat, from: n3, to: n1, term: 3 }));
    const m = readMessages(r);
    assert.deepEqual(
      m.map((x) => [x.type, x.term]),
      [[MessageType.AppResp, 5]],
    );
  });
});

describe("replication flow control", () => {
  test("a follower in probe state gets one MsgApp until it answers", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    const pr = r.trk.progress.get(n2)!;
    assert.equal(pr.state, ProgressState.Probe);
    r.step(prop(n1));
    r.step(prop(n1));
    r.step(prop(n1));
    const apps = readMessages(r).filter((m) => m.type === MessageType.App);
    assert.equal(apps.length, 1, "paused after the first probe");
  });

  test("in replicate state the leader pipelines up to maxInflightMsgs messages, then pauses", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { maxInflightMsgs: 3 });
    electLeader(r);
    r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index: 1 }));
    readMessages(r);
    assert.equal(r.trk.progress.get(n2)!.state, ProgressState.Replicate);
    for (let i = 0; i < 10; i++) r.step(prop(n1));
    const apps = readMessages(r).filter((m) => m.type === MessageType.App);
    assert.equal(apps.length, 3);
    // An ack frees the window: the rest goes out in one batched message.
    r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index: apps[2]!.entries.at(-1)!.index }));
    const more = readMessages(r).filter((m) => m.type === MessageType.App);
    assert.equal(more.length, 1);
    assert.equal(more[0]!.entries.length, 7);
  });

  test("MsgApp batches are bounded by maxSizePerMsg (but carry at least one entry)", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { maxSizePerMsg: 100 });
    electLeader(r);
    for (let i = 0; i < 10; i++) r.step(prop(n1, "x".repeat(30))); // 46 bytes each with overhead
    readMessages(r);
    r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index: 1 }));
    const apps = readMessages(r).filter((m) => m.type === MessageType.App);
    assert.ok(apps.length > 1);
    for (const m of apps) assert.ok(m.entries.length >= 1 && m.entries.length <= 2, `${m.entries.length} entries`);
  });

  test("an unreachable follower in replicate state goes back to probing", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index: 1 }));
    assert.equal(r.trk.progress.get(n2)!.state, ProgressState.Replicate);
    r.step(newMessage({ type: MessageType.Unreachable, from: n2, to: n1 }));
    assert.equal(r.trk.progress.get(n2)!.state, ProgressState.Probe);
  });

  test("a heartbeat response unpauses a probing follower and resends", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    r.step(prop(n1));
    readMessages(r);
    assert.equal(r.trk.progress.get(n2)!.probeSent, true);
    r.step(newMessage({ type: MessageType.HeartbeatResp, from: n2, to: n1, term: r.term }));
    const apps = readMessages(r).filter((m) => m.type === MessageType.App);
    assert.equal(apps.length, 1);
  });
});

describe("uncommitted size limit", () => {
  test("a leader drops proposals beyond maxUncommittedEntriesSize until entries commit", () => {
    const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { maxUncommittedEntriesSize: 100 });
    electLeader(r);
    const data = "x".repeat(40);
    r.step(prop(n1, data));
    r.step(prop(n1, data));
    assert.throws(
      () => r.step(prop(n1, data)),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
    );
    // Once the application has taken the committed entries, there is room again.
    const li = r.raftLog.lastIndex();
    r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index: li }));
    r.reduceUncommittedSize(r.raftLog.nextEntries());
    assert.equal(r.uncommittedSize, 0);
    r.step(prop(n1, data));
  });

  test("a single proposal larger than the limit is accepted when nothing is uncommitted", () => {
    const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { maxUncommittedEntriesSize: 10 });
    electLeader(r);
    r.step(prop(n1, "y".repeat(50)));
    assert.equal(r.raftLog.lastIndex(), 2);
  });
});

describe("snapshots", () => {
  function compactedLeader(): Raft {
    const s = new MemoryStorage({ confState: { voters: ids(1, 2), learners: [] } });
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.createSnapshot(3, undefined, new TextEncoder().encode("state@3"));
    s.compact(3);
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { storage: s });
    r.term = 1;
    electLeader(r);
    return r;
  }

  test("the leader sends a snapshot to a follower that needs compacted entries", () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(n2)!;
    pr.recentActive = true;
    pr.next = 2;
    r.sendAppend(n2);
    const m = readMessages(r)[0]!;
    assert.equal(m.type, MessageType.Snap);
    assert.equal(m.snapshot!.metadata.index, 3);
    assert.equal(pr.state, ProgressState.Snapshot);
    assert.equal(pr.pendingSnapshot, 3);
    // Nothing more is sent while the snapshot is in flight.
    r.step(prop(n1));
    assert.equal(readMessages(r).filter((x) => x.to === n2).length, 0);
  });

  test("a snapshot report of failure makes the leader probe again; success resumes after the snapshot", () => {
    for (const reject of [true, false]) {
      const r = compactedLeader();
      const pr = r.trk.progress.get(n2)!;
      pr.recentActive = true;
      pr.becomeSnapshot(3);
      r.step(newMessage({ type: MessageType.SnapStatus, from: n2, to: n1, reject }));
      assert.equal(pr.state, ProgressState.Probe);
      assert.equal(pr.next, reject ? 1 : 4);
      assert.equal(pr.probeSent, true, "waits for the follower's answer");
    }
  });

  test("a follower installs a newer snapshot, replacing its log and configuration", () => {
    const r = newTestRaft(n2, ids(1, 2));
    r.becomeFollower(1, n1);
    const snap = { data: new Uint8Array([1]), metadata: { index: 11, term: 11, confState: { voters: ids(1, 2, 3), learners: [] } } };
    r.step(newMessage({ type: MessageType.Snap, from: n1, to: n2, term: 1, snapshot: snap }));
    assert.equal(r.raftLog.committed, 11);
    assert.equal(r.raftLog.lastIndex(), 11);
    assert.deepEqual(r.trk.voterIds(), ids(1, 2, 3));
    assert.ok(r.raftLog.hasPendingSnapshot());
    assert.deepEqual(
      readMessages(r).map((m) => [m.type, m.index]),
      [[MessageType.AppResp, 11]],
    );
  });

  test("a follower ignores a snapshot that is not newer than its commit index", () => {
    const r = newTestRaft(n2, ids(1, 2));
    r.becomeFollower(1, n1);
    r.step(newMessage({ type: MessageType.App, from: n1, to: n2, term: 1, entries: [entry(1, 1), entry(2, 1)], commit: 2 }));
    readMessages(r);
    const snap = { data: new Uint8Array(), metadata: { index: 2, term: 1, confState: { voters: ids(1, 2), learners: [] } } };
    r.step(newMessage({ type: MessageType.Snap, from: n1, to: n2, term: 1, snapshot: snap }));
    assert.equal(r.raftLog.hasPendingSnapshot(), false);
    assert.deepEqual(
      readMessages(r).map((m) => [m.type, m.index]),
      [[MessageType.AppResp, 2]],
    );
  });

  test("a node does not campaign while a snapshot is pending installation", () => {
    const r = newTestRaft(n2, ids(1, 2));
    r.becomeFollower(1, n1);
    const snap = { data: new Uint8Array(), metadata: { index: 5, term: 1, confState: { voters: ids(1, 2), learners: [] } } };
    r.step(newMessage({ type: MessageType.Snap, from: n1, to: n2, term: 1, snapshot: snap }));
    r.step(hup(n2));
    assert.equal(r.state, StateType.Follower);
  });
});

describe("leader transfer", () => {
  test("transfer to an up-to-date follower: TimeoutNow, and it wins at once", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.send(newMessage({ type: MessageType.TransferLeader, from: n2, to: n1 }));
    assert.equal(nt.node(2).state, StateType.Leader);
    assert.equal(nt.node(1).state, StateType.Follower);
  });

  test("transfer to a lagging follower waits until it has caught up", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.isolate(n3);
    nt.send(prop(n1));
    nt.recover();
    let timeoutNowBeforeCatchUp = false;
    nt.msgHook = (m) => {
      if (m.type === MessageType.TimeoutNow && nt.node(3).raftLog.lastIndex() < nt.node(1).raftLog.lastIndex())
        timeoutNowBeforeCatchUp = true;
      return true;
    };
    nt.send(newMessage({ type: MessageType.TransferLeader, from: n3, to: n1 }));
    assert.equal(timeoutNowBeforeCatchUp, false);
    assert.equal(nt.node(3).state, StateType.Leader);
  });

  test("transfer to a learner is refused", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { learners: [n3] });
    electLeader(r);
    r.step(newMessage({ type: MessageType.TransferLeader, from: n3, to: n1 }));
    assert.equal(r.leadTransferee, 0n);
    assert.equal(readMessages(r).length, 0);
  });

  test("a transfer that does not finish within an election timeout is aborted", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    electLeader(r);
    r.step(newMessage({ type: MessageType.TransferLeader, from: n2, to: n1 }));
    assert.equal(r.leadTransferee, n2);
    assert.throws(
      () => r.step(prop(n1)),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
      "proposals are refused during a transfer",
    );
    for (let i = 0; i < r.electionTimeout; i++) r.tick();
    assert.equal(r.leadTransferee, 0n);
    r.step(prop(n1));
  });

  test("a follower forwards a transfer request to the leader", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.send(newMessage({ type: MessageType.TransferLeader, from: n3, to: n2 }));
    assert.equal(nt.node(3).state, StateType.Leader);
  });
});

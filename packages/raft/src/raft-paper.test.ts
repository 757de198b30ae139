// One test per claim of the Raft paper ("In Search of an Understandable Consensus Algorithm", extended
// version), named after the claim. Section numbers refer to the paper.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeConfChange } from "./codec.js";
import { isRaftError } from "./errors.js";
import { Raft } from "./raft.js";
import { SeededRand } from "./rand.js";
import { Network, entry, hup, ids, newTestRaft, prop, readMessages, storageWithTerms } from "./testing/network.js";
import type { Message, NodeId } from "./types.js";
import { ConfChangeType, EntryType, MessageType, None, StateType, newMessage } from "./types.js";

const [n1, n2, n3, n4, n5] = ids(1, 2, 3, 4, 5) as [NodeId, NodeId, NodeId, NodeId, NodeId];

function sortMsgs(ms: Message[]): Message[] {
  return [...ms].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
}

/** Makes r the leader of a cluster of `peers` by granting it votes directly. */
function electLeader(r: Raft): void {
  r.becomeCandidate();
  r.becomeLeader();
  readMessages(r);
}

/** Commits the leader's no-op: every follower acks the last index. */
function commitNoop(r: Raft): void {
  for (const id of r.trk.voterIds()) {
    if (id === r.id) continue;
    r.step(newMessage({ type: MessageType.AppResp, from: id, to: r.id, term: r.term, index: r.raftLog.lastIndex() }));
  }
  readMessages(r);
}

describe("§5.1 terms", () => {
  for (const state of [StateType.Follower, StateType.Candidate, StateType.Leader]) {
    test(`a ${StateType[state]} that sees a higher term updates its term and reverts to follower`, () => {
      const r = newTestRaft(n1, ids(1, 2, 3));
      if (state === StateType.Candidate) r.becomeCandidate();
      if (state === StateType.Leader) electLeader(r);
      r.step(newMessage({ type: MessageType.App, from: n2, to: n1, term: 2 }));
      assert.equal(r.term, 2);
      assert.equal(r.state, StateType.Follower);
      assert.equal(r.lead, n2);
    });
  }

  test("a server ignores a request with a stale term", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    r.becomeFollower(2, n2);
    r.step(newMessage({ type: MessageType.App, from: n3, to: n1, term: 1, entries: [entry(1, 1)] }));
    assert.equal(r.raftLog.lastIndex(), 0);
    assert.equal(r.term, 2);
    assert.equal(r.lead, n2);
  });
});

describe("§5.2 leader election", () => {
  test("servers start up as followers", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    assert.equal(r.state, StateType.Follower);
    assert.equal(r.term, 0);
  });

  test("a leader sends periodic heartbeats to all followers to maintain its authority", () => {
    const hb = 1;
    const r = newTestRaft(n1, ids(1, 2, 3), 10, hb);
    electLeader(r);
    for (let i = 0; i < hb; i++) r.tick();
    const msgs = sortMsgs(readMessages(r));
    assert.deepEqual(
      msgs.map((m) => [m.type, m.to, m.term]),
      [
        [MessageType.Heartbeat, n2, 1],
        [MessageType.Heartbeat, n3, 1],
      ],
    );
  });

  for (const state of [StateType.Follower, StateType.Candidate]) {
    test(`a ${StateType[state]} that hears nothing for an election timeout starts an election: increments its term, votes for itself, requests votes`, () => {
      const et = 10;
      const r = newTestRaft(n1, ids(1, 2, 3), et, 1);
      if (state === StateType.Candidate) r.becomeCandidate();
      const startTerm = r.term;
      for (let i = 0; i < 2 * et && r.term === startTerm; i++) r.tick();
      assert.equal(r.term, startTerm + 1);
      assert.equal(r.state, StateType.Candidate);
      assert.equal(r.vote, n1);
      assert.equal(r.trk.votes.get(n1), true);
      const msgs = sortMsgs(readMessages(r));
      assert.deepEqual(
        msgs.map((m) => [m.type, m.to, m.term]),
        [
          [MessageType.Vote, n2, startTerm + 1],
          [MessageType.Vote, n3, startTerm + 1],
        ],
      );
    });
  }

  test("a candidate wins an election if it receives votes from a majority of the servers", () => {
    const cases: { size: number; votes: Map<NodeId, boolean>; state: StateType }[] = [
      { size: 1, votes: new Map(), state: StateType.Leader },
      {
        size: 3,
        votes: new Map([
          [n2, true],
          [n3, true],
        ]),
        state: StateType.Leader,
      },
      { size: 3, votes: new Map([[n2, true]]), state: StateType.Leader },
      {
        size: 5,
        votes: new Map([
          [n2, true],
          [n3, true],
          [n4, true],
          [n5, true],
        ]),
        state: StateType.Leader,
      },
      {
        size: 5,
        votes: new Map([
          [n2, true],
          [n3, true],
        ]),
        state: StateType.Leader,
      },
      {
        size: 3,
        votes: new Map([
          [n2, false],
          [n3, false],
        ]),
        state: StateType.Follower,
      },
      {
        size: 5,
        votes: new Map([
          [n2, false],
          [n3, false],
          [n4, false],
        ]),
        state: StateType.Follower,
      },
      { size: 5, votes: new Map([[n2, true]]), state: StateType.Candidate },
      {
        size: 5,
        votes: new Map([
          [n2, true],
          [n3, false],
          [n4, false],
        ]),
        state: StateType.Candidate,
      },
    ];
    for (const c of cases) {
      const r = newTestRaft(n1, ids(...Array.from({ length: c.size }, (_, i) => i + 1)));
      r.step(hup(n1));
      for (const [id, granted] of c.votes) {
        r.step(newMessage({ type: MessageType.VoteResp, from: id, to: n1, term: r.term, reject: !granted }));
      }
      assert.equal(r.state, c.state, `size ${c.size} votes ${[...c.votes].join(",")}`);
      if (c.state !== StateType.Follower) assert.equal(r.term, 1);
    }
  });

  test("each server votes for at most one candidate in a given term, on a first-come-first-served basis", () => {
    for (const [vote, nvote, wreject] of [
      [None, n2, false],
      [None, n3, false],
      [n2, n2, false],
      [n3, n3, false],
      [n2, n3, true],
      [n3, n2, true],
    ] as [NodeId, NodeId, boolean][]) {
      const r = newTestRaft(n1, ids(1, 2, 3));
      r.term = 1;
      r.vote = vote;
      r.step(newMessage({ type: MessageType.Vote, from: nvote, to: n1, term: 1 }));
      const msgs = readMessages(r);
      assert.equal(msgs.length, 1);
      assert.equal(msgs[0]!.type, MessageType.VoteResp);
      assert.equal(msgs[0]!.reject, wreject, `vote ${vote} then ${nvote}`);
    }
  });

  test("a candidate that receives AppendEntries from a leader of at least its term returns to follower", () => {
    for (const term of [1, 2]) {
      const r = newTestRaft(n1, ids(1, 2, 3));
      r.step(hup(n1));
      assert.equal(r.state, StateType.Candidate);
      r.step(newMessage({ type: MessageType.App, from: n2, to: n1, term }));
      assert.equal(r.state, StateType.Follower);
      assert.equal(r.term, term);
      assert.equal(r.lead, n2);
    }
  });

  test("a candidate that neither wins nor loses (split vote) times out and starts a new election", () => {
    const r = newTestRaft(n1, ids(1, 2, 3, 4));
    r.step(hup(n1));
    r.step(newMessage({ type: MessageType.VoteResp, from: n2, to: n1, term: 1 }));
    r.step(newMessage({ type: MessageType.VoteResp, from: n3, to: n1, term: 1, reject: true }));
    assert.equal(r.state, StateType.Candidate);
    for (let i = 0; i < 2 * r.electionTimeout; i++) r.tick();
    assert.equal(r.state, StateType.Candidate);
    assert.equal(r.term, 2);
  });

  test("election timeouts are chosen randomly from a fixed interval [T, 2T)", () => {
    const et = 10;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const r = newTestRaft(n1, ids(1, 2, 3), et, 1, { rand: new SeededRand(seed) });
      let ticks = 0;
      while (r.state === StateType.Follower) {
        r.tick();
        ticks++;
      }
      assert.ok(ticks >= et && ticks < 2 * et, `timeout ${ticks}`);
      seen.add(ticks);
    }
    // Every value of the interval shows up: servers rarely time out together.
    assert.equal(seen.size, et);
  });

  test("randomized timeouts make a split vote unlikely: one node usually times out first and wins", () => {
    let wins = 0;
    for (let seed = 0; seed < 50; seed++) {
      const nodes = ids(1, 2, 3).map((id) => newTestRaft(id, ids(1, 2, 3), 10, 1, { rand: new SeededRand(seed * 3 + Number(id)) }));
      const nt = new Network(nodes);
      for (let t = 0; t < 20 && !nodes.some((n) => n.state === StateType.Leader); t++) {
        for (const n of nodes) nt.tick(n.id);
      }
      if (nodes.filter((n) => n.state === StateType.Leader).length === 1 && nodes.every((n) => n.term === 1)) wins++;
    }
    assert.ok(wins >= 40, `first election decided in term 1 in ${wins}/50 runs`);
  });
});

describe("§5.3 log replication", () => {
  test("the leader appends a command to its log and issues AppendEntries to each follower", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    electLeader(r);
    commitNoop(r);
    r.step(prop(n1, "some data"));
    assert.equal(r.raftLog.lastIndex(), 2);
    const msgs = sortMsgs(readMessages(r));
    assert.deepEqual(
      msgs.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit, m.entries.map((e) => [e.index, e.term])]),
      [
        [MessageType.App, n2, 1, 1, 1, [[2, 1]]],
        [MessageType.App, n3, 1, 1, 1, [[2, 1]]],
      ],
    );
  });

  test("an entry is committed once the leader has replicated it on a majority of the servers", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    electLeader(r);
    commitNoop(r);
    r.step(prop(n1, "some data"));
    const msgs = readMessages(r);
    assert.equal(r.raftLog.committed, 1);
    r.step(newMessage({ type: MessageType.AppResp, from: msgs[0]!.to, to: n1, term: 1, index: 2 }));
    assert.equal(r.raftLog.committed, 2);
    assert.deepEqual(
      r.raftLog.nextEntries().map((e) => e.index),
      [1, 2],
    );
    // The new commit index is sent to the followers.
    const after = readMessages(r);
    assert.ok(after.every((m) => m.type === MessageType.App && m.commit === 2));
  });

  test("the leader commits when a majority acknowledges, for clusters of 1, 3 and 5", () => {
    const cases: [number, NodeId[], boolean][] = [
      [1, [], true],
      [3, [], false],
      [3, [n2], true],
      [3, [n2, n3], true],
      [5, [], false],
      [5, [n2], false],
      [5, [n2, n3], true],
      [5, [n2, n3, n4, n5], true],
    ];
    for (const [size, acks, wcommit] of cases) {
      const r = newTestRaft(n1, ids(...Array.from({ length: size }, (_, i) => i + 1)));
      electLeader(r);
      commitNoop(r);
      r.step(prop(n1));
      readMessages(r);
      for (const id of acks) r.step(newMessage({ type: MessageType.AppResp, from: id, to: n1, term: 1, index: 2 }));
      assert.equal(r.raftLog.committed > 1, wcommit, `size ${size} acks ${acks.join(",")}`);
    }
  });

  test("committing an entry also commits all preceding entries, including those of previous leaders", () => {
    for (const terms of [[], [2], [1, 1], [1, 2]]) {
      const s = storageWithTerms(ids(1, 2, 3), terms);
      const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { storage: s });
      r.term = 2;
      electLeader(r);
      r.step(prop(n1));
      for (const m of readMessages(r)) {
        r.step(newMessage({ type: MessageType.AppResp, from: m.to, to: n1, term: r.term, index: terms.length + 2 }));
      }
      const li = terms.length;
      assert.deepEqual(
        r.raftLog.nextEntries().map((e) => e.index),
        Array.from({ length: li + 2 }, (_, i) => i + 1),
      );
    }
  });

  test("once a follower learns an entry is committed, it applies the entry to its state machine, in log order", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    r.becomeFollower(1, n2);
    const ents = [entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")];
    r.step(newMessage({ type: MessageType.App, from: n2, to: n1, term: 1, logTerm: 0, index: 0, entries: ents, commit: 2 }));
    assert.equal(r.raftLog.committed, 2);
    assert.deepEqual(
      r.raftLog.nextEntries().map((e) => e.index),
      [1, 2],
    );
  });

  test("a follower refuses AppendEntries if it does not find an entry with the same index and term (log matching)", () => {
    const s = storageWithTerms(ids(1, 2, 3), [1, 2]);
    const cases: [number, number, boolean, number][] = [
      // index, logTerm, reject, rejectHint
      [0, 0, false, 0],
      [1, 1, false, 0],
      [2, 2, false, 0],
      [2, 1, true, 1],
      [3, 3, true, 2],
    ];
    for (const [index, logTerm, wreject, whint] of cases) {
      const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { storage: s });
      r.becomeFollower(2, n2);
      r.step(newMessage({ type: MessageType.App, from: n2, to: n1, term: 2, logTerm, index, commit: 0 }));
      const m = readMessages(r)[0]!;
      assert.equal(m.reject, wreject, `index ${index} logTerm ${logTerm}`);
      if (wreject) assert.equal(m.rejectHint, whint);
    }
  });

  test("a follower deletes a conflicting entry and all that follow it, and appends the leader's new entries", () => {
    const cases: [number, number, [number, number][], [number, number][]][] = [
      [
        2,
        2,
        [[3, 3]],
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
      ],
      [
        1,
        1,
        [
          [2, 3],
          [3, 4],
        ],
        [
          [1, 1],
          [2, 3],
          [3, 4],
        ],
      ],
      [
        0,
        0,
        [[1, 1]],
        [
          [1, 1],
          [2, 2],
        ],
      ],
      [0, 0, [[1, 3]], [[1, 3]]],
    ];
    for (const [index, logTerm, ents, want] of cases) {
      const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { storage: storageWithTerms(ids(1, 2, 3), [1, 2]) });
      r.becomeFollower(2, n2);
      r.step(newMessage({ type: MessageType.App, from: n2, to: n1, term: 2, logTerm, index, entries: ents.map(([i, t]) => entry(i, t)) }));
      assert.deepEqual(
        r.raftLog.allEntries().map((e) => [e.index, e.term]),
        want,
      );
    }
  });

  test("the leader brings followers' logs into consistency with its own (Figure 7)", () => {
    const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers = [
      [1, 1, 1, 4, 4, 5, 5, 6, 6],
      [1, 1, 1, 4],
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      [1, 1, 1, 4, 4, 4, 4],
      [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for (const ft of followers) {
      const lead = newTestRaft(n1, ids(1, 2, 3), 10, 1, { storage: storageWithTerms(ids(1, 2, 3), leaderTerms) });
      lead.term = 8;
      lead.raftLog.committed = leaderTerms.length;
      const follower = newTestRaft(n2, ids(1, 2, 3), 10, 1, { storage: storageWithTerms(ids(1, 2, 3), ft) });
      follower.term = 7;
      // n3 votes for the leader and otherwise stays out of the way.
      const n3node = newTestRaft(n3, ids(1, 2, 3));
      const nt = new Network([lead, follower, n3node]);
      nt.send(hup(n1));
      // The vote from n3 suffices; the follower may reject (its log can be more up to date).
      nt.send(prop(n1));
      assert.equal(lead.state, StateType.Leader);
      assert.deepEqual(
        follower.raftLog.allEntries().map((e) => [e.index, e.term]),
        lead.raftLog.allEntries().map((e) => [e.index, e.term]),
        `follower log ${ft.join(",")}`,
      );
    }
  });

  test("after a rejection the leader backs off a whole term per round trip (fast back-off via the reject hint)", () => {
    // Leader has 1..10 at term 1 and 11..20 at term 3; the follower has 1..10 at term 1 and 11..100 at term 2.
    const leaderTerms = [...Array<number>(10).fill(1), ...Array<number>(10).fill(3)];
    const followerTerms = [...Array<number>(10).fill(1), ...Array<number>(90).fill(2)];
    const lead = newTestRaft(n1, ids(1, 2), 10, 1, { storage: storageWithTerms(ids(1, 2), leaderTerms) });
    lead.term = 3;
    electLeader(lead);
    const follower = newTestRaft(n2, ids(1, 2), 10, 1, { storage: storageWithTerms(ids(1, 2), followerTerms) });
    follower.becomeFollower(4, n1);
    let appRounds = 0;
    const nt = new Network([lead, follower]);
    nt.msgHook = (m) => {
      if (m.type === MessageType.App && m.to === n2) appRounds++;
      return true;
    };
    lead.sendAppend(n2);
    nt.send(...readMessages(lead));
    assert.deepEqual(
      follower.raftLog.allEntries().map((e) => e.term),
      lead.raftLog.allEntries().map((e) => e.term),
    );
    // One probe at 21, one after the hint skips all of term 2, then the entries: far fewer than 90.
    assert.ok(appRounds <= 4, `took ${appRounds} MsgApps`);
  });
});

describe("§5.4 safety", () => {
  test("a voter denies its vote if its own log is more up-to-date than the candidate's (election restriction)", () => {
    const cases: [number, number, boolean][] = [
      // candidate's last term, last index, reject; the voter has terms [1, 2] (last term 2, index 2)
      [1, 1, true],
      [1, 2, true],
      [1, 3, true],
      [2, 1, true],
      [2, 2, false],
      [2, 3, false],
      [3, 1, false],
    ];
    for (const [logTerm, index, wreject] of cases) {
      const r = newTestRaft(n1, ids(1, 2, 3), 10, 1, { storage: storageWithTerms(ids(1, 2, 3), [1, 2]) });
      r.step(newMessage({ type: MessageType.Vote, from: n2, to: n1, term: 3, logTerm, index }));
      const m = readMessages(r)[0]!;
      assert.equal(m.reject, wreject, `logTerm ${logTerm} index ${index}`);
    }
  });

  test("a leader only commits entries from its current term by counting replicas (Figure 8)", () => {
    // Entries 1 and 2 are from term 1; the leader is at term 2.
    for (const [index, wcommit] of [
      [1, 0],
      [2, 0],
      [3, 3],
    ] as [number, number][]) {
      const r = newTestRaft(n1, ids(1, 2), 10, 1, { storage: storageWithTerms(ids(1, 2), [1, 1]) });
      r.term = 1;
      electLeader(r);
      assert.equal(r.term, 2);
      r.step(newMessage({ type: MessageType.AppResp, from: n2, to: n1, term: r.term, index }));
      assert.equal(r.raftLog.committed, wcommit, `ack of ${index}`);
    }
  });

  test("leader completeness: a newly elected leader holds every committed entry", () => {
    const nt = Network.ofSize(5);
    nt.send(hup(n1));
    nt.send(prop(n1, "a"), prop(n1, "b"));
    const committed = nt.node(1).raftLog.committed;
    // n1 is partitioned away; an election among the rest must elect a node holding the committed entries.
    nt.isolate(n1);
    nt.send(hup(n2));
    const leader = [...nt.peers.values()].find((r) => r.state === StateType.Leader && r.id !== n1)!;
    assert.ok(leader);
    assert.ok(leader.raftLog.lastIndex() >= committed);
    assert.deepEqual(
      leader.raftLog.slice(1, committed + 1, Infinity).map((e) => [e.index, e.term]),
      nt
        .node(1)
        .raftLog.slice(1, committed + 1, Infinity)
        .map((e) => [e.index, e.term]),
    );
  });

  test("a node whose log lacks committed entries cannot win an election", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.cut(n1, n3);
    nt.cut(n2, n3);
    nt.send(prop(n1, "a"));
    nt.recover();
    // n3 missed the committed entry: n1 and n2 reject it.
    nt.send(hup(n3));
    assert.notEqual(nt.node(3).state, StateType.Leader);
  });
});

describe("§6 cluster membership changes", () => {
  function ccEntry(type: ConfChangeType, nodeId: NodeId): Message {
    return newMessage({
      type: MessageType.Prop,
      from: n1,
      to: n1,
      entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange({ type, nodeId, context: new Uint8Array() }) }],
    });
  }

  test("an added voter receives the log and counts toward the quorum", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    r.applyConfChange({ type: ConfChangeType.AddNode, nodeId: n3, context: new Uint8Array() });
    assert.deepEqual(r.trk.voterIds(), ids(1, 2, 3));
    assert.ok(r.trk.progress.has(n3));
    // With 3 voters, acks from n1 (self) and n3 commit.
    r.step(prop(n1));
    r.step(newMessage({ type: MessageType.AppResp, from: n3, to: n1, term: r.term, index: 2 }));
    assert.equal(r.raftLog.committed, 2);
  });

  test("removing a voter shrinks the quorum, so entries waiting for it commit", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    r.step(prop(n1));
    assert.equal(r.raftLog.committed, 0);
    r.applyConfChange({ type: ConfChangeType.RemoveNode, nodeId: n2, context: new Uint8Array() });
    assert.equal(r.raftLog.committed, 2);
  });

  test("a learner receives the log but neither votes nor counts toward commitment", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { learners: [n3] });
    electLeader(r);
    r.step(prop(n1));
    const msgs = readMessages(r);
    assert.ok(
      msgs.some((m) => m.type === MessageType.App && m.to === n3),
      "learner receives MsgApp",
    );
    r.step(newMessage({ type: MessageType.AppResp, from: n3, to: n1, term: r.term, index: 2 }));
    assert.equal(r.raftLog.committed, 0, "a learner's ack does not commit");
    // A learner never campaigns and is not asked for votes.
    const learner = newTestRaft(n3, ids(1, 2), 10, 1, { learners: [n3] });
    for (let i = 0; i < 100; i++) learner.tick();
    assert.equal(learner.state, StateType.Follower);
    const cand = newTestRaft(n2, ids(1, 2), 10, 1, { learners: [n3] });
    cand.step(hup(n2));
    assert.ok(readMessages(cand).every((m) => m.to !== n3));
  });

  test("a learner can be promoted to voter and then counts toward the quorum", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { learners: [n3] });
    electLeader(r);
    r.applyConfChange({ type: ConfChangeType.AddNode, nodeId: n3, context: new Uint8Array() });
    assert.deepEqual(r.trk.voterIds(), ids(1, 2, 3));
    assert.equal(r.trk.progress.get(n3)!.isLearner, false);
    r.step(newMessage({ type: MessageType.AppResp, from: n3, to: n1, term: r.term, index: 1 }));
    assert.equal(r.raftLog.committed, 1);
  });

  test("only one configuration change may be pending: a second one is replaced by an empty entry", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    commitNoop(r);
    r.raftLog.appliedTo(1);
    r.step(ccEntry(ConfChangeType.AddNode, n3));
    r.step(ccEntry(ConfChangeType.AddNode, n4));
    const ents = r.raftLog.allEntries();
    assert.deepEqual(
      ents.map((e) => e.type),
      [EntryType.Normal, EntryType.ConfChange, EntryType.Normal],
    );
  });

  test("a new leader may not propose a configuration change until it has applied its log", () => {
    const r = newTestRaft(n1, ids(1, 2), 10, 1, { storage: storageWithTerms(ids(1, 2), [1, 1]) });
    r.term = 1;
    electLeader(r);
    // pendingConfIndex covers the whole log at election (index 2); applied is 0.
    r.step(ccEntry(ConfChangeType.AddNode, n3));
    assert.equal(r.raftLog.allEntries()[3]!.type, EntryType.Normal);
  });

  test("a node with an unapplied committed configuration change does not campaign", () => {
    const r = newTestRaft(n1, ids(1, 2));
    r.becomeFollower(1, n2);
    r.step(
      newMessage({
        type: MessageType.App,
        from: n2,
        to: n1,
        term: 1,
        entries: [
          {
            term: 1,
            index: 1,
            type: EntryType.ConfChange,
            data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: n3, context: new Uint8Array() }),
          },
        ],
        commit: 1,
      }),
    );
    r.step(hup(n1));
    assert.equal(r.state, StateType.Follower);
  });

  test("a leader that removed itself steps down and accepts no more proposals", () => {
    const r = newTestRaft(n1, ids(1, 2));
    electLeader(r);
    r.applyConfChange({ type: ConfChangeType.RemoveNode, nodeId: n1, context: new Uint8Array() });
    assert.equal(r.state, StateType.Follower);
    assert.throws(
      () => r.step(prop(n1)),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
    );
    for (let i = 0; i < 100; i++) r.tick();
    assert.equal(r.state, StateType.Follower, "a removed node never campaigns");
  });
});

describe("§8 client interaction", () => {
  test("a new leader commits a blank no-op entry at the start of its term", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    const r = nt.node(1);
    const ents = r.raftLog.allEntries();
    assert.equal(ents.length, 1);
    assert.equal(ents[0]!.data.length, 0);
    assert.equal(ents[0]!.term, r.term);
    assert.equal(r.raftLog.committed, 1);
  });

  test("clients may contact any server: followers forward proposals to the leader", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.send(prop(n2, "via follower"));
    for (const r of nt.peers.values()) {
      assert.equal(r.raftLog.committed, 2);
      assert.equal(new TextDecoder().decode(r.raftLog.allEntries()[1]!.data), "via follower");
    }
  });

  test("a proposal to a server that knows no leader is dropped with ProposalDropped", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    assert.throws(
      () => r.step(prop(n1)),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
    );
    r.step(hup(n1));
    assert.throws(
      () => r.step(prop(n1)),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
    );
  });

  test("read-only requests are answered after the leader confirms its leadership with a heartbeat quorum, without writing the log", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    const r = nt.node(1);
    const lastIndex = r.raftLog.lastIndex();
    const ctx = new TextEncoder().encode("read-1");
    // Without acks the read is not answered.
    nt.cut(n1, n2);
    nt.cut(n1, n3);
    nt.send(newMessage({ type: MessageType.ReadIndex, from: n1, to: n1, entries: [entry(0, 0, "read-1")] }));
    assert.equal(r.readStates.length, 0);
    nt.recover();
    nt.tick(n1); // the next heartbeat carries the pending request's context
    assert.equal(r.readStates.length, 1);
    assert.deepEqual(r.readStates[0], { index: r.raftLog.committed, requestCtx: ctx });
    assert.equal(r.raftLog.lastIndex(), lastIndex, "no log entry written");
  });

  test("a leader answers ReadIndex only after it has committed an entry of its own term", () => {
    const r = newTestRaft(n1, ids(1, 2, 3));
    electLeader(r);
    r.step(newMessage({ type: MessageType.ReadIndex, from: n1, to: n1, entries: [entry(0, 0, "ctx")] }));
    assert.equal(readMessages(r).length, 0, "no heartbeat round before the no-op commits");
    commitNoop(r);
    // The deferred request was released when the no-op committed: its heartbeat round went out.
    r.step(newMessage({ type: MessageType.HeartbeatResp, from: n2, to: n1, term: r.term, context: new TextEncoder().encode("ctx") }));
    assert.equal(r.readStates.length, 1);
    assert.equal(r.readStates[0]!.index, 1);
  });

  test("followers forward ReadIndex to the leader and get the read index back", () => {
    const nt = Network.ofSize(3);
    nt.send(hup(n1));
    nt.send(newMessage({ type: MessageType.ReadIndex, from: n2, to: n2, entries: [entry(0, 0, "f-read")] }));
    const f = nt.node(2);
    assert.equal(f.readStates.length, 1);
    assert.equal(f.readStates[0]!.index, nt.node(1).raftLog.committed);
  });
});

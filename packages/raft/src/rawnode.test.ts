import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeConfChange } from "./codec.js";
import { isRaftError } from "./errors.js";
import { SeededRand } from "./rand.js";
import { RawNode } from "./rawnode.js";
import { MemoryStorage } from "./storage.js";
import { ConfChangeType, EntryType, MessageType, StateType, newMessage } from "./types.js";

function singleNode(storage = new MemoryStorage()): RawNode {
  return new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, rand: new SeededRand(1) });
}

/** The persist → send → apply → advance loop for one node; returns what was applied. */
function drain(node: RawNode, storage: MemoryStorage): string[] {
  const applied: string[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) node.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) applied.push(new TextDecoder().decode(e.data));
    }
    node.advance();
  }
  return applied;
}

describe("RawNode", () => {
  test("bootstrap, campaign, propose: a single node commits and hands out each entry once", () => {
    const storage = new MemoryStorage();
    const node = singleNode(storage);
    node.bootstrap([1n]);
    drain(node, storage);
    node.campaign();
    const rd = node.ready();
    assert.equal(rd.softState?.raftState, StateType.Leader);
    assert.equal(rd.hardState?.term, 2);
    assert.equal(rd.mustSync, true);
    storage.append(rd.entries);
    node.advance();
    node.propose(new TextEncoder().encode("hello"));
    assert.deepEqual(drain(node, storage), ["hello"]);
    assert.equal(node.hasReady(), false);
    assert.equal(node.status().applied, storage.lastIndex());
  });

  test("a restarted node reloads its hard state and log and re-applies from the applied index", () => {
    const storage = new MemoryStorage();
    const node = singleNode(storage);
    node.bootstrap([1n]);
    drain(node, storage); // apply the membership before campaigning
    node.campaign();
    drain(node, storage);
    node.propose(new TextEncoder().encode("a"));
    node.propose(new TextEncoder().encode("b"));
    drain(node, storage);
    const restarted = singleNode(storage);
    const st = restarted.status();
    assert.equal(st.hardState.term, 2);
    assert.equal(st.hardState.commit, storage.lastIndex());
    assert.equal(st.softState.raftState, StateType.Follower);
    // Nothing was applied in this incarnation: the committed entries come out again.
    assert.deepEqual(drain(restarted, storage), ["a", "b"]);
  });

  test("bootstrap refuses a non-empty storage", () => {
    const storage = new MemoryStorage();
    const node = singleNode(storage);
    node.bootstrap([1n]);
    drain(node, storage);
    assert.throws(() => singleNode(storage).bootstrap([1n]), /nonempty/);
  });

  test("step refuses local messages and responses from unknown peers", () => {
    const storage = new MemoryStorage({ confState: { voters: [1n, 2n], learners: [] } });
    const node = singleNode(storage);
    assert.throws(
      () => node.step(newMessage({ type: MessageType.Hup })),
      (e: unknown) => isRaftError(e, "StepLocalMessage"),
    );
    assert.throws(
      () => node.step(newMessage({ type: MessageType.AppResp, from: 9n, to: 1n, term: 1 })),
      (e: unknown) => isRaftError(e, "StepPeerNotFound"),
    );
  });

  test("propose without a leader throws ProposalDropped", () => {
    const node = singleNode(new MemoryStorage({ confState: { voters: [1n, 2n], learners: [] } }));
    assert.throws(
      () => node.propose(new Uint8Array([1])),
      (e: unknown) => isRaftError(e, "ProposalDropped"),
    );
  });

  test("proposeConfChange and applyConfChange change the membership", () => {
    const storage = new MemoryStorage();
    const node = singleNode(storage);
    node.bootstrap([1n]);
    drain(node, storage); // apply the membership before campaigning
    node.campaign();
    drain(node, storage);
    node.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 2n, context: new Uint8Array() });
    drain(node, storage);
    assert.deepEqual(node.status().confState, { voters: [1n], learners: [2n] });
  });

  test("readIndex on a single-node leader answers at once with the commit index", () => {
    const storage = new MemoryStorage();
    const node = singleNode(storage);
    node.bootstrap([1n]);
    drain(node, storage); // apply the membership before campaigning
    node.campaign();
    drain(node, storage);
    node.readIndex(new TextEncoder().encode("ctx"));
    const rd = node.ready();
    assert.deepEqual(rd.readStates, [{ index: node.status().hardState.commit, requestCtx: new TextEncoder().encode("ctx") }]);
    node.advance();
  });

  test("a Ready with a snapshot advances the applied index to it", () => {
    const storage = new MemoryStorage({ confState: { voters: [1n, 2n], learners: [] } });
    const node = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage });
    node.step(
      newMessage({
        type: MessageType.Snap,
        from: 1n,
        to: 2n,
        term: 1,
        snapshot: { data: new Uint8Array(), metadata: { index: 10, term: 1, confState: { voters: [1n, 2n], learners: [] } } },
      }),
    );
    const rd = node.ready();
    assert.equal(rd.snapshot?.metadata.index, 10);
    storage.applySnapshot(rd.snapshot);
    node.advance();
    assert.equal(node.status().applied, 10);
    assert.equal(node.hasReady(), false);
  });

  test("the configuration is validated", () => {
    assert.throws(() => new RawNode({ id: 0n, electionTick: 10, heartbeatTick: 1, storage: new MemoryStorage() }), /none as id/);
    assert.throws(() => new RawNode({ id: 1n, electionTick: 1, heartbeatTick: 1, storage: new MemoryStorage() }), /election tick/);
  });
});

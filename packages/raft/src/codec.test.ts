import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  decodeConfChange,
  decodeConfChangeV2,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
} from "./codec.js";
import * as pb from "./gen/raft/raftpb_pb.js";
import { ConfChangeType, EntryType, MessageType, newMessage } from "./types.js";

describe("codec", () => {
  test("a message with entries, snapshot and 64-bit ids survives a round trip", () => {
    const m = newMessage({
      type: MessageType.App,
      to: 0xfedcba9876543210n,
      from: 0x1234567890abcdefn,
      term: 7,
      logTerm: 6,
      index: 100,
      entries: [
        { term: 7, index: 101, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) },
        { term: 7, index: 102, type: EntryType.ConfChange, data: new Uint8Array([9]) },
      ],
      commit: 99,
      reject: true,
      rejectHint: 42,
      context: new Uint8Array([5]),
      snapshot: { data: new Uint8Array([4]), metadata: { index: 50, term: 3, confState: { voters: [1n, 2n], learners: [3n] } } },
    });
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  });

  test("zero-valued fields decode to the core's defaults", () => {
    const m = newMessage({ type: MessageType.Heartbeat, to: 2n, from: 1n, term: 1 });
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
  });

  test("conf changes, hard state, entries and snapshots round-trip", () => {
    const cc = { type: ConfChangeType.AddLearnerNode, nodeId: 0xffffffffffffffffn, context: new Uint8Array([1]) };
    assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
    const hs = { term: 3, vote: 2n, commit: 9 };
    assert.deepEqual(decodeHardState(encodeHardState(hs)), hs);
    const e = { term: 2 ** 40, index: 2 ** 50, type: EntryType.Normal, data: new Uint8Array([7]) };
    assert.deepEqual(decodeEntry(encodeEntry(e)), e);
    const s = { data: new Uint8Array([1]), metadata: { index: 5, term: 2, confState: { voters: [1n], learners: [] } } };
    assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s);
  });

  test("a ConfChangeV2 with a single change decodes; joint changes are refused", () => {
    const one = toBinary(
      pb.ConfChangeV2Schema,
      create(pb.ConfChangeV2Schema, { changes: [{ type: pb.ConfChangeType.CONF_CHANGE_REMOVE_NODE, nodeId: 4n }] }),
    );
    assert.deepEqual(decodeConfChangeV2(one), { type: ConfChangeType.RemoveNode, nodeId: 4n, context: new Uint8Array() });
    const two = toBinary(pb.ConfChangeV2Schema, create(pb.ConfChangeV2Schema, { changes: [{ nodeId: 4n }, { nodeId: 5n }] }));
    assert.throws(() => decodeConfChangeV2(two), /joint consensus/);
  });
});

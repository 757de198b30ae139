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
import { ConfChangeType, EntryType, MessageType, newMessage, type Entry, type Message } from "./types.js";
import { encodeMessageFrames } from "./codec.js";

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

  describe("the hand-written Message and Entry wire format", () => {
    // A small deterministic generator (xorshift) keeps this test reproducible without a dependency.
    let state = 0x9e3779b9;
    const next = (): number => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    const int = (max: number): number => Math.floor(next() * max);
    const uint = (): number =>
      [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, int(1000), int(2 ** 40)][int(13)]!;
    const id = (): bigint =>
      [0n, 1n, 0xffffffffffffffffn, 0x8000000000000000n, (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32))][int(5)]!;
    const bytes = (): Uint8Array => Uint8Array.from({ length: [0, 1, 200, int(40)][int(4)]! }, () => int(256));
    const entry = (): Entry => ({
      term: uint(),
      index: uint(),
      type: [EntryType.Normal, EntryType.ConfChange, EntryType.ConfChangeV2][int(3)]!,
      data: bytes(),
    });
    const message = (): Message =>
      newMessage({
        type: Object.values(MessageType).filter((v) => typeof v === "number")[int(19)]!,
        to: id(),
        from: id(),
        term: uint(),
        logTerm: uint(),
        index: uint(),
        entries: Array.from({ length: int(4) }, entry),
        commit: uint(),
        reject: int(2) === 1,
        rejectHint: uint(),
        context: bytes(),
        snapshot:
          int(5) === 0
            ? { data: bytes(), metadata: { index: uint(), term: uint(), confState: { voters: [id()], learners: [] } } }
            : undefined,
      });
    // The core's enums mirror raftpb's value for value: a cast through number (as codec.ts does).
    /* eslint-disable @typescript-eslint/no-unsafe-enum-assignment, @typescript-eslint/no-unnecessary-type-assertion */
    const viaProtobufEs = (m: Message): Uint8Array =>
      toBinary(
        pb.MessageSchema,
        create(pb.MessageSchema, {
          type: m.type as number as pb.MessageType,
          to: m.to,
          from: m.from,
          term: BigInt(m.term),
          logTerm: BigInt(m.logTerm),
          index: BigInt(m.index),
          entries: m.entries.map((e) => ({
            term: BigInt(e.term),
            index: BigInt(e.index),
            type: e.type as number as pb.EntryType,
            data: e.data,
          })),
          commit: BigInt(m.commit),
          reject: m.reject,
          rejectHint: BigInt(m.rejectHint),
          context: m.context,
          ...(m.snapshot
            ? {
                snapshot: {
                  data: m.snapshot.data,
                  metadata: {
                    index: BigInt(m.snapshot.metadata.index),
                    term: BigInt(m.snapshot.metadata.term),
                    confState: { voters: m.snapshot.metadata.confState.voters, learners: m.snapshot.metadata.confState.learners },
                  },
                },
              }
            : {}),
        }),
      );

    test("writes the bytes protobuf-es writes, and reads them back, for 3000 generated messages", () => {
      for (let i = 0; i < 3000; i++) {
        const m = message();
        const expected = viaProtobufEs(m);
        assert.deepEqual(encodeMessage(m), expected, `message ${i}`);
        assert.deepEqual(decodeMessage(expected), m, `message ${i}`);
        for (const e of m.entries) assert.deepEqual(decodeEntry(encodeEntry(e)), e);
      }
    });

    test("frames several messages, each behind its 4-byte big-endian length", () => {
      const messages = Array.from({ length: 5 }, message);
      const frames = encodeMessageFrames(messages);
      const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
      let pos = 0;
      for (const m of messages) {
        const length = view.getUint32(pos);
        assert.deepEqual(decodeMessage(frames.subarray(pos + 4, pos + 4 + length)), m);
        pos += 4 + length;
      }
      assert.equal(pos, frames.byteLength);
    });

    test("reads fields in any order and skips unknown ones", () => {
      // type=MsgApp(3), an unknown fixed32 field 13, term=5, an unknown varint field 100, to=2 (field 2 after 4).
      const bytes = Uint8Array.from([0x08, 3, 0x6d, 1, 2, 3, 4, 0x20, 5, 0xa0, 0x06, 7, 0x10, 2]);
      const m = decodeMessage(bytes);
      assert.equal(m.type, MessageType.App);
      assert.equal(m.term, 5);
      assert.equal(m.to, 2n);
    });

    test("refuses truncated and malformed input", () => {
      const whole = encodeMessage(message());
      for (let cut = 1; cut < whole.byteLength; cut++) {
        try {
          decodeMessage(whole.subarray(0, cut));
        } catch (error) {
          assert.match(String(error), /raft: /);
        }
      }
      assert.throws(() => decodeMessage(Uint8Array.from([0x3a, 10, 1])), /premature end/);
      assert.throws(
        () => decodeMessage(Uint8Array.from([0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
        /invalid varint/,
      );
      assert.throws(() => decodeMessage(Uint8Array.from([0x22, 1, 1])), /wire type/);
      assert.throws(() => decodeMessage(Uint8Array.from([0x08, 99])), /unknown message type/);
      assert.throws(() => decodeMessage(Uint8Array.from([0x6b])), /unsupported wire type/);
    });
  });
});

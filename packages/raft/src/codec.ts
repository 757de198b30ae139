// Converts between the core's plain objects and the protobuf wire messages of proto/raft/raftpb.proto.
// The core does not use the generated types directly: they carry 64-bit terms and indexes as bigint and a
// $typeName tag, and building them costs more than plain objects on the hot path (see README).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as pb from "./gen/raft/raftpb_pb.js";
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from "./types.js";
import { ConfChangeType, EntryType, MessageType } from "./types.js";

// The core's enums mirror raftpb's value for value (types.ts), so converting one to the other is a cast
// through number, spelled out even where the receiver would take the number alone.
/* eslint-disable @typescript-eslint/no-unsafe-enum-assignment, @typescript-eslint/no-unnecessary-type-assertion */

function entryToPb(e: Entry): pb.Entry {
  return create(pb.EntrySchema, {
    term: BigInt(e.term),
    index: BigInt(e.index),
    type: e.type as number as pb.EntryType,
    data: e.data,
  });
}

function entryFromPb(e: pb.Entry): Entry {
  return { term: Number(e.term), index: Number(e.index), type: e.type as number as EntryType, data: e.data };
}

function confStateToPb(cs: ConfState): pb.ConfState {
  return create(pb.ConfStateSchema, { voters: cs.voters, learners: cs.learners });
}

function confStateFromPb(cs: pb.ConfState | undefined): ConfState {
  return { voters: cs ? [...cs.voters] : [], learners: cs ? [...cs.learners] : [] };
}

function snapshotToPb(s: Snapshot): pb.Snapshot {
  return create(pb.SnapshotSchema, {
    data: s.data,
    metadata: {
      index: BigInt(s.metadata.index),
      term: BigInt(s.metadata.term),
      confState: confStateToPb(s.metadata.confState),
    },
  });
}

function snapshotFromPb(s: pb.Snapshot): Snapshot {
  const md = s.metadata;
  return {
    data: s.data,
    metadata: {
      index: md ? Number(md.index) : 0,
      term: md ? Number(md.term) : 0,
      confState: confStateFromPb(md?.confState),
    },
  };
}

/** Serializes a message for the transport between members. */
export function encodeMessage(m: Message): Uint8Array {
  const msg = create(pb.MessageSchema, {
    type: m.type as number as pb.MessageType,
    to: m.to,
    from: m.from,
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map(entryToPb),
    commit: BigInt(m.commit),
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
    context: m.context,
  });
  if (m.snapshot) msg.snapshot = snapshotToPb(m.snapshot);
  return toBinary(pb.MessageSchema, msg);
}

/** Parses a message received from another member. */
export function decodeMessage(bytes: Uint8Array): Message {
  const m = fromBinary(pb.MessageSchema, bytes);
  if (!(m.type in MessageType)) throw new Error(`raft: unknown message type ${m.type}`);
  return {
    type: m.type as number as MessageType,
    to: m.to,
    from: m.from,
    term: Number(m.term),
    logTerm: Number(m.logTerm),
    index: Number(m.index),
    entries: m.entries.map(entryFromPb),
    commit: Number(m.commit),
    snapshot: m.snapshot ? snapshotFromPb(m.snapshot) : undefined,
    reject: m.reject,
    rejectHint: Number(m.rejectHint),
    context: m.context,
  };
}

/** Serializes a ConfChange: the data of an EntryType.ConfChange entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return toBinary(
    pb.ConfChangeSchema,
    create(pb.ConfChangeSchema, {
      type: cc.type as number as pb.ConfChangeType,
      nodeId: cc.nodeId,
      context: cc.context,
    }),
  );
}

/** Parses the data of an EntryType.ConfChange entry. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const cc = fromBinary(pb.ConfChangeSchema, bytes);
  return { type: cc.type as number as ConfChangeType, nodeId: cc.nodeId, context: cc.context };
}

/**
 * Parses the data of an EntryType.ConfChangeV2 entry into the single change it may hold (this library
 * makes one change at a time). @throws Error for more than one change or an explicit joint transition.
 */
export function decodeConfChangeV2(bytes: Uint8Array): ConfChange {
  const cc = fromBinary(pb.ConfChangeV2Schema, bytes);
  if (cc.changes.length > 1 || (cc.transition as number) !== 0) {
    throw new Error("raft: joint consensus (ConfChangeV2 with several changes) is not supported");
  }
  const c = cc.changes[0];
  return {
    type: (c ? c.type : 0) as number as ConfChangeType,
    nodeId: c ? c.nodeId : 0n,
    context: cc.context,
  };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return toBinary(pb.HardStateSchema, create(pb.HardStateSchema, { term: BigInt(hs.term), vote: hs.vote, commit: BigInt(hs.commit) }));
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const hs = fromBinary(pb.HardStateSchema, bytes);
  return { term: Number(hs.term), vote: hs.vote, commit: Number(hs.commit) };
}

/** Serializes a log entry (for a WAL). */
export function encodeEntry(e: Entry): Uint8Array {
  return toBinary(pb.EntrySchema, entryToPb(e));
}

export function decodeEntry(bytes: Uint8Array): Entry {
  return entryFromPb(fromBinary(pb.EntrySchema, bytes));
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return toBinary(pb.SnapshotSchema, snapshotToPb(s));
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  return snapshotFromPb(fromBinary(pb.SnapshotSchema, bytes));
}

export function encodeConfState(cs: ConfState): Uint8Array {
  return toBinary(pb.ConfStateSchema, confStateToPb(cs));
}

export function decodeConfState(bytes: Uint8Array): ConfState {
  return confStateFromPb(fromBinary(pb.ConfStateSchema, bytes));
}

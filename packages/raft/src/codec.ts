// Converts between the core's plain objects and the protobuf wire messages of proto/raft/raftpb.proto.
// The core does not use the generated types directly: they carry 64-bit terms and indexes as bigint and a
// $typeName tag, and building them costs more than plain objects on the hot path (see README).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as pb from "./gen/raft/raftpb_pb.js";
import type { ConfChange, ConfState, Entry, HardState, Message, Snapshot } from "./types.js";
import { ConfChangeType, MessageType } from "./types.js";
import { entrySize, messageSize, readEntryBytes, readMessage, writeEntry, writeMessage } from "./wire.js";

// The core's enums mirror raftpb's value for value (types.ts), so converting one to the other is a cast
// through number, spelled out even where the receiver would take the number alone.
/* eslint-disable @typescript-eslint/no-unsafe-enum-assignment, @typescript-eslint/no-unnecessary-type-assertion */

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
  const snapshot = m.snapshot ? encodeSnapshot(m.snapshot) : undefined;
  const bytes = new Uint8Array(messageSize(m, snapshot));
  writeMessage(bytes, 0, m, snapshot);
  return bytes;
}

/**
 * Serializes messages as frames, each a 4-byte big-endian length and the message, into one buffer (the
 * peer transport's stream format).
 */
export function encodeMessageFrames(messages: readonly Message[]): Uint8Array {
  const snapshots = messages.map((m) => (m.snapshot ? encodeSnapshot(m.snapshot) : undefined));
  const sizes = messages.map((m, i) => messageSize(m, snapshots[i]));
  const bytes = new Uint8Array(sizes.reduce((total, size) => total + 4 + size, 0));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  for (let i = 0; i < messages.length; i++) {
    view.setUint32(pos, sizes[i]!);
    pos = writeMessage(bytes, pos + 4, messages[i]!, snapshots[i]);
  }
  return bytes;
}

/** Parses a message received from another member; its entries' data are views of `bytes`. */
export function decodeMessage(bytes: Uint8Array): Message {
  const { message, snapshot } = readMessage(bytes);
  if (!(message.type in MessageType)) throw new Error(`raft: unknown message type ${message.type}`);
  if (snapshot !== undefined) message.snapshot = decodeSnapshot(snapshot);
  return message;
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
  const bytes = new Uint8Array(entrySize(e));
  writeEntry(bytes, 0, e);
  return bytes;
}

export function decodeEntry(bytes: Uint8Array): Entry {
  return readEntryBytes(bytes);
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

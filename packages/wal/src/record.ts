// The WAL's record framing and payload codecs. Internal: the file format is described in README.md.
//
// A record is a 16-byte frame header followed by its payload:
//
//   0..4    u32 LE  payload length
//   4       u8      record type (RecordType)
//   5..8    3 bytes FRAME_MAGIC — never zero, so a zero-filled (never written) frame cannot pass
//   8..12   u32 LE  header checksum: CRC-32 of bytes 0..8
//   12..16  u32 LE  record checksum: CRC-32 of bytes 0..8 and the payload, seeded with the record
//                   checksum of the previous record (the chain); the first record of a segment (the
//                   segment header) is seeded with the chain value stored in its own payload
//   16..    payload
//
// The header checksum lets a reader trust the length before it reads the payload: a flipped bit in a
// length field is then reported as corruption instead of looking like a record cut off by the end of
// the file (which open() would "repair" by truncation). The chained record checksum makes a dropped,
// duplicated or reordered record fail even when every record is intact on its own.
//
// Integers wider than 32 bits (terms, indexes) are written as two u32 LE halves; they are < 2^53.

import { crc32 } from "node:zlib";
import type { Entry, HardState } from "@etcd-ts/raft";
import { WalError } from "./errors.js";

export const FRAME_HEADER_SIZE = 16;
const FRAME_MAGIC = [0x57, 0x41, 0x4c] as const; // "WAL"

/** Refuse to write (and treat as corrupt when read) a payload above this size. */
export const MAX_PAYLOAD_SIZE = 256 * 1024 * 1024;

export enum RecordType {
  /** First record of every segment: magic, version, sequence number, chain value of the previous segment. */
  SegmentHeader = 1,
  /** The opaque metadata given to Wal.create (member and cluster IDs); repeated in every segment. */
  Metadata = 2,
  Entry = 3,
  HardState = 4,
  /** A snapshot's (index, term): the log may be read starting after it. */
  SnapshotMarker = 5,
}

export interface SnapshotMarker {
  index: number;
  term: number;
}

/** A snapshot marker as stored: `replacesLog` marks a snapshot installed from the leader, which
 * discards every entry the log held (as MemoryStorage.applySnapshot does). */
export interface StoredSnapshotMarker extends SnapshotMarker {
  replacesLog: boolean;
}

const SEGMENT_MAGIC = Buffer.from("etswal01", "latin1");
export const SEGMENT_HEADER_PAYLOAD_SIZE = 8 + 8 + 4;
const ENTRY_FIXED_SIZE = 17;
/** The most data one raft entry can carry: a larger entry cannot be written to the WAL. */
export const MAX_ENTRY_DATA_BYTES = MAX_PAYLOAD_SIZE - ENTRY_FIXED_SIZE;
const HARD_STATE_SIZE = 24;
const SNAPSHOT_MARKER_SIZE = 17;

/** One record to encode: its type, payload size and a function that writes the payload in place. */
export interface RecordSpec {
  type: RecordType;
  size: number;
  fill(buf: Buffer, at: number): void;
}

export function writeU64(buf: Buffer, n: number, at: number): void {
  buf.writeUInt32LE(n >>> 0, at);
  buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), at + 4);
}

/** Reads a u64 that must be a safe integer; undefined when it is not (the caller reports corruption). */
export function readU64(buf: Buffer, at: number): number | undefined {
  const hi = buf.readUInt32LE(at + 4);
  if (hi >= 0x20_0000) return undefined;
  return hi * 0x1_0000_0000 + buf.readUInt32LE(at);
}

/**
 * Encodes records into one buffer, continuing the checksum chain from `chain`.
 * Returns the buffer and the new chain value (the last record's checksum).
 */
export function encodeRecords(chain: number, records: readonly RecordSpec[]): { buf: Buffer; chain: number } {
  let total = 0;
  for (const r of records) {
    if (r.size > MAX_PAYLOAD_SIZE) {
      throw new WalError("InvalidArgument", `a record of ${r.size} bytes exceeds the limit of ${MAX_PAYLOAD_SIZE}`);
    }
    total += FRAME_HEADER_SIZE + r.size;
  }
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (const r of records) {
    buf.writeUInt32LE(r.size, at);
    buf[at + 4] = r.type;
    buf[at + 5] = FRAME_MAGIC[0];
    buf[at + 6] = FRAME_MAGIC[1];
    buf[at + 7] = FRAME_MAGIC[2];
    const head = buf.subarray(at, at + 8);
    buf.writeUInt32LE(crc32(head), at + 8);
    r.fill(buf, at + FRAME_HEADER_SIZE);
    const payload = buf.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + r.size);
    const seed = r.type === RecordType.SegmentHeader ? payload.readUInt32LE(16) : chain;
    chain = crc32(payload, crc32(head, seed));
    buf.writeUInt32LE(chain, at + 12);
    at += FRAME_HEADER_SIZE + r.size;
  }
  return { buf, chain };
}

/** Result of checking one frame at `off`: a record, or why it is not one. */
export type FrameCheck =
  { ok: true; type: RecordType; payloadStart: number; end: number; chain: number } | { ok: false; reason: string; regionEnd: number };

/**
 * Checks the frame at `off`. `chain` is the previous record's checksum (ignored for a segment header,
 * which carries its own seed). Pure: reads `buf` only.
 */
export function checkFrame(buf: Buffer, off: number, chain: number): FrameCheck {
  if (off + FRAME_HEADER_SIZE > buf.length) {
    return { ok: false, reason: "incomplete frame header", regionEnd: off + FRAME_HEADER_SIZE };
  }
  const head = buf.subarray(off, off + 8);
  // A frame's type byte: checked against RecordType's range below, after the header checksum.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  const type: RecordType = buf[off + 4]!;
  if (
    buf.readUInt32LE(off + 8) !== crc32(head) ||
    buf[off + 5] !== FRAME_MAGIC[0] ||
    buf[off + 6] !== FRAME_MAGIC[1] ||
    buf[off + 7] !== FRAME_MAGIC[2]
  ) {
    return { ok: false, reason: "frame header checksum mismatch", regionEnd: off + FRAME_HEADER_SIZE };
  }
  if (type < RecordType.SegmentHeader || type > RecordType.SnapshotMarker) {
    // The header checksum passed, so this was written like that: not a torn write.
    return { ok: false, reason: `unknown record type ${type}`, regionEnd: -1 };
  }
  const size = buf.readUInt32LE(off);
  if (size > MAX_PAYLOAD_SIZE) return { ok: false, reason: `record length ${size} too large`, regionEnd: -1 };
  const payloadStart = off + FRAME_HEADER_SIZE;
  const end = payloadStart + size;
  if (end > buf.length) return { ok: false, reason: "record extends past the end of the file", regionEnd: end };
  const payload = buf.subarray(payloadStart, end);
  let seed = chain;
  if (type === RecordType.SegmentHeader) {
    if (size !== SEGMENT_HEADER_PAYLOAD_SIZE) return { ok: false, reason: "bad segment header size", regionEnd: -1 };
    seed = payload.readUInt32LE(16);
  }
  const sum = crc32(payload, crc32(head, seed));
  if (sum !== buf.readUInt32LE(off + 12)) {
    return { ok: false, reason: "record checksum mismatch", regionEnd: end };
  }
  return { ok: true, type, payloadStart, end, chain: sum };
}

// --- payload codecs -------------------------------------------------------------------------------

export function segmentHeaderRecord(seq: number, prevChain: number): RecordSpec {
  return {
    type: RecordType.SegmentHeader,
    size: SEGMENT_HEADER_PAYLOAD_SIZE,
    fill(buf, at) {
      SEGMENT_MAGIC.copy(buf, at);
      writeU64(buf, seq, at + 8);
      buf.writeUInt32LE(prevChain, at + 16);
    },
  };
}

export function decodeSegmentHeader(payload: Buffer): { seq: number; prevChain: number } | undefined {
  if (payload.length !== SEGMENT_HEADER_PAYLOAD_SIZE || !payload.subarray(0, 8).equals(SEGMENT_MAGIC)) return undefined;
  const seq = readU64(payload, 8);
  if (seq === undefined) return undefined;
  return { seq, prevChain: payload.readUInt32LE(16) };
}

export function metadataRecord(metadata: Uint8Array): RecordSpec {
  return {
    type: RecordType.Metadata,
    size: metadata.length,
    fill(buf, at) {
      buf.set(metadata, at);
    },
  };
}

export function entryRecord(e: Entry): RecordSpec {
  return {
    type: RecordType.Entry,
    size: ENTRY_FIXED_SIZE + e.data.length,
    fill(buf, at) {
      writeU64(buf, e.term, at);
      writeU64(buf, e.index, at + 8);
      buf[at + 16] = e.type;
      buf.set(e.data, at + ENTRY_FIXED_SIZE);
    },
  };
}

/** Decodes an entry; the data is copied so the segment buffer can be freed. */
export function decodeEntry(payload: Buffer): Entry | undefined {
  if (payload.length < ENTRY_FIXED_SIZE) return undefined;
  const term = readU64(payload, 0);
  const index = readU64(payload, 8);
  if (term === undefined || index === undefined) return undefined;
  const data = new Uint8Array(payload.length - ENTRY_FIXED_SIZE);
  data.set(payload.subarray(ENTRY_FIXED_SIZE));
  // The type byte as encodeEntry wrote it from the entry's EntryType.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  return { term, index, type: payload[16]!, data };
}

export function hardStateRecord(hs: HardState): RecordSpec {
  return {
    type: RecordType.HardState,
    size: HARD_STATE_SIZE,
    fill(buf, at) {
      writeU64(buf, hs.term, at);
      buf.writeBigUInt64LE(hs.vote, at + 8);
      writeU64(buf, hs.commit, at + 16);
    },
  };
}

export function decodeHardState(payload: Buffer): HardState | undefined {
  if (payload.length !== HARD_STATE_SIZE) return undefined;
  const term = readU64(payload, 0);
  const commit = readU64(payload, 16);
  if (term === undefined || commit === undefined) return undefined;
  return { term, vote: payload.readBigUInt64LE(8), commit };
}

export function snapshotMarkerRecord(m: StoredSnapshotMarker): RecordSpec {
  return {
    type: RecordType.SnapshotMarker,
    size: SNAPSHOT_MARKER_SIZE,
    fill(buf, at) {
      writeU64(buf, m.index, at);
      writeU64(buf, m.term, at + 8);
      buf[at + 16] = m.replacesLog ? 1 : 0;
    },
  };
}

export function decodeSnapshotMarker(payload: Buffer): StoredSnapshotMarker | undefined {
  if (payload.length !== SNAPSHOT_MARKER_SIZE) return undefined;
  const index = readU64(payload, 0);
  const term = readU64(payload, 8);
  const flags = payload[16]!;
  if (index === undefined || term === undefined || flags > 1) return undefined;
  return { index, term, replacesLog: flags === 1 };
}

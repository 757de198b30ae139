// The protobuf wire format of raftpb's Message and Entry, written by hand: members exchange several of
// these per client write, and building protobuf-es objects (bigint fields, $typeName, a growing writer)
// for each cost more than the rest of the transport. The bytes are exactly those protobuf-es writes for
// proto/raft/raftpb.proto (fields in number order, proto3 zero values left out; codec.test.ts compares
// the two); the reader takes any valid encoding of these messages (any field order, unknown fields).
// Snapshots are rare and large: they go through the generated types (codec.ts).

import { EntryType, MessageType, newMessage, EMPTY_BYTES, type Entry, type Message } from "./types.js";

// Enum values read from the wire are cast: raftpb's values are the core's (types.ts), and a message type
// the core does not know is refused by decodeMessage.
/* eslint-disable @typescript-eslint/no-unsafe-enum-assignment, @typescript-eslint/no-unnecessary-type-assertion */

const TWO_POW_32 = 2 ** 32;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** Bytes of the varint of a non-negative integer below 2^64 (exact: every step divides by a power of two). */
function numberVarintSize(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 64) throw new RangeError(`raft: cannot encode ${n} as uint64`);
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function bigintVarintSize(n: bigint): number {
  if (n < 0n || n >= 1n << 64n) throw new RangeError(`raft: cannot encode ${n} as uint64`);
  let size = 1;
  while (n >= 128n) {
    n >>= 7n;
    size++;
  }
  return size;
}

/** Writes a varint from its low and high 32 bits; returns the position after it. */
function writeVarint64(buf: Uint8Array, pos: number, lo: number, hi: number): number {
  while (hi > 0 || lo > 127) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi = hi >>> 7;
  }
  buf[pos++] = lo;
  return pos;
}

function writeNumber(buf: Uint8Array, pos: number, n: number): number {
  if (n < 128) {
    buf[pos] = n;
    return pos + 1;
  }
  return writeVarint64(buf, pos, n >>> 0, Math.floor(n / TWO_POW_32));
}

function writeBigint(buf: Uint8Array, pos: number, n: bigint): number {
  return writeVarint64(buf, pos, Number(n & 0xffffffffn), Number(n >> 32n));
}

/** A uint64 field (tag + varint), or nothing for zero. */
function numberFieldSize(n: number): number {
  return n === 0 ? 0 : 1 + numberVarintSize(n);
}

function bigintFieldSize(n: bigint): number {
  return n === 0n ? 0 : 1 + bigintVarintSize(n);
}

/** A length-delimited field (tag, length, body), written even when empty: an entry, a snapshot. */
function delimitedFieldSize(length: number): number {
  return 1 + numberVarintSize(length) + length;
}

/** A bytes field, or nothing when empty (proto3). */
function bytesFieldSize(length: number): number {
  return length === 0 ? 0 : delimitedFieldSize(length);
}

/** Tags of the fields written here (numbers 1–15) take one byte. */
function writeTag(buf: Uint8Array, pos: number, field: number, wireType: number): number {
  buf[pos] = (field << 3) | wireType;
  return pos + 1;
}

/** A length-delimited field: tag, length, bytes. */
function writeBytesField(buf: Uint8Array, pos: number, field: number, bytes: Uint8Array): number {
  pos = writeNumber(buf, writeTag(buf, pos, field, WIRE_BYTES), bytes.byteLength);
  buf.set(bytes, pos);
  return pos + bytes.byteLength;
}

/** The encoded size of an entry (as a log record, or as the body of a message's entries field). */
export function entrySize(e: Entry): number {
  return numberFieldSize(e.type) + numberFieldSize(e.term) + numberFieldSize(e.index) + bytesFieldSize(e.data.byteLength);
}

/** Writes an entry at `pos` (exactly `entrySize(e)` bytes); returns the position after it. */
export function writeEntry(buf: Uint8Array, pos: number, e: Entry): number {
  if (e.type !== EntryType.Normal) pos = writeNumber(buf, writeTag(buf, pos, 1, WIRE_VARINT), e.type);
  if (e.term !== 0) pos = writeNumber(buf, writeTag(buf, pos, 2, WIRE_VARINT), e.term);
  if (e.index !== 0) pos = writeNumber(buf, writeTag(buf, pos, 3, WIRE_VARINT), e.index);
  if (e.data.byteLength > 0) pos = writeBytesField(buf, pos, 4, e.data);
  return pos;
}

/** The encoded size of a message whose snapshot, if any, is already encoded as `snapshot`. */
export function messageSize(m: Message, snapshot?: Uint8Array): number {
  let size =
    numberFieldSize(m.type) +
    bigintFieldSize(m.to) +
    bigintFieldSize(m.from) +
    numberFieldSize(m.term) +
    numberFieldSize(m.logTerm) +
    numberFieldSize(m.index) +
    numberFieldSize(m.commit) +
    (m.reject ? 2 : 0) +
    numberFieldSize(m.rejectHint) +
    bytesFieldSize(m.context.byteLength);
  for (const e of m.entries) size += delimitedFieldSize(entrySize(e));
  if (snapshot !== undefined) size += delimitedFieldSize(snapshot.byteLength);
  return size;
}

/** Writes a message at `pos` (exactly `messageSize(m, snapshot)` bytes); returns the position after it. */
export function writeMessage(buf: Uint8Array, pos: number, m: Message, snapshot?: Uint8Array): number {
  if (m.type !== MessageType.Hup) pos = writeNumber(buf, writeTag(buf, pos, 1, WIRE_VARINT), m.type);
  if (m.to !== 0n) pos = writeBigint(buf, writeTag(buf, pos, 2, WIRE_VARINT), m.to);
  if (m.from !== 0n) pos = writeBigint(buf, writeTag(buf, pos, 3, WIRE_VARINT), m.from);
  if (m.term !== 0) pos = writeNumber(buf, writeTag(buf, pos, 4, WIRE_VARINT), m.term);
  if (m.logTerm !== 0) pos = writeNumber(buf, writeTag(buf, pos, 5, WIRE_VARINT), m.logTerm);
  if (m.index !== 0) pos = writeNumber(buf, writeTag(buf, pos, 6, WIRE_VARINT), m.index);
  for (const e of m.entries) {
    pos = writeNumber(buf, writeTag(buf, pos, 7, WIRE_BYTES), entrySize(e));
    pos = writeEntry(buf, pos, e);
  }
  if (m.commit !== 0) pos = writeNumber(buf, writeTag(buf, pos, 8, WIRE_VARINT), m.commit);
  if (snapshot !== undefined) pos = writeBytesField(buf, pos, 9, snapshot);
  if (m.reject) pos = writeNumber(buf, writeTag(buf, pos, 10, WIRE_VARINT), 1);
  if (m.rejectHint !== 0) pos = writeNumber(buf, writeTag(buf, pos, 11, WIRE_VARINT), m.rejectHint);
  if (m.context.byteLength > 0) pos = writeBytesField(buf, pos, 12, m.context);
  return pos;
}

/** Reads protobuf fields from a byte range; throws on anything truncated or malformed. */
class WireReader {
  pos: number;
  lo = 0;
  hi = 0;

  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** Reads a varint into lo/hi (its low and high 32 bits). */
  varint(): void {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("raft: premature end of message");
      const b = this.buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
      shift += 7;
    }
    throw new Error("raft: invalid varint");
  }

  /** An enum value (int32 on the wire). */
  int32(): number {
    this.varint();
    return this.lo | 0;
  }

  bool(): boolean {
    this.varint();
    return (this.lo | this.hi) !== 0;
  }

  number(): number {
    this.varint();
    return this.hi * TWO_POW_32 + this.lo;
  }

  bigint(): bigint {
    this.varint();
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** The wire type of the field whose tag `tag()` read last. */
  wireType = 0;

  /** Reads a field's tag: returns its number and keeps its wire type. */
  tag(): number {
    this.varint();
    const field = this.lo >>> 3;
    if (this.hi !== 0 || field === 0) throw new Error("raft: invalid field number");
    this.wireType = this.lo & 7;
    return field;
  }

  private expect(wireType: number): void {
    if (this.wireType !== wireType) throw new Error(`raft: a field has wire type ${this.wireType}, want ${wireType}`);
  }

  /** The current field as a uint64 read into a number. */
  uint64Field(): number {
    this.expect(WIRE_VARINT);
    return this.number();
  }

  uint64BigintField(): bigint {
    this.expect(WIRE_VARINT);
    return this.bigint();
  }

  enumField(): number {
    this.expect(WIRE_VARINT);
    return this.int32();
  }

  boolField(): boolean {
    this.expect(WIRE_VARINT);
    return this.bool();
  }

  /** The current field as bytes: a view of the buffer. */
  bytesField(): Uint8Array {
    this.expect(WIRE_BYTES);
    const start = this.bytesStart();
    return this.buf.subarray(start, this.pos);
  }

  /** A length-delimited field's body: its start, leaving pos at its end. */
  bytesStart(): number {
    const length = this.number();
    const start = this.pos;
    if (length > this.end - start) throw new Error("raft: premature end of message");
    this.pos = start + length;
    return start;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_BYTES:
        this.bytesStart();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new Error(`raft: unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Error("raft: premature end of message");
    this.pos += n;
  }
}

function readEntry(r: WireReader): Entry {
  const e: Entry = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
  while (r.pos < r.end) {
    const field = r.tag();
    if (field === 1) e.type = r.enumField() as EntryType;
    else if (field === 2) e.term = r.uint64Field();
    else if (field === 3) e.index = r.uint64Field();
    else if (field === 4) e.data = r.bytesField();
    else r.skip(r.wireType);
  }
  return e;
}

/** The fields of a decoded message, with its snapshot left encoded. */
export interface WireMessage {
  readonly message: Message;
  readonly snapshot: Uint8Array | undefined;
}

/** Reads a message; its entries' data and context are views of `buf`. */
export function readMessage(buf: Uint8Array): WireMessage {
  const r = new WireReader(buf, 0, buf.byteLength);
  const m = newMessage({ type: MessageType.Hup });
  let snapshot: Uint8Array | undefined;
  while (r.pos < r.end) {
    switch (r.tag()) {
      case 1:
        m.type = r.enumField() as MessageType;
        break;
      case 2:
        m.to = r.uint64BigintField();
        break;
      case 3:
        m.from = r.uint64BigintField();
        break;
      case 4:
        m.term = r.uint64Field();
        break;
      case 5:
        m.logTerm = r.uint64Field();
        break;
      case 6:
        m.index = r.uint64Field();
        break;
      case 7: {
        const body = r.bytesField();
        m.entries.push(readEntry(new WireReader(body, 0, body.byteLength)));
        break;
      }
      case 8:
        m.commit = r.uint64Field();
        break;
      case 9:
        snapshot = r.bytesField();
        break;
      case 10:
        m.reject = r.boolField();
        break;
      case 11:
        m.rejectHint = r.uint64Field();
        break;
      case 12:
        m.context = r.bytesField();
        break;
      default:
        r.skip(r.wireType);
    }
  }
  return { message: m, snapshot };
}

/** Reads an entry. */
export function readEntryBytes(buf: Uint8Array): Entry {
  return readEntry(new WireReader(buf, 0, buf.byteLength));
}

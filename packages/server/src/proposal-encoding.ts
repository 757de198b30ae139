import { toBinary } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema, type InternalRaftRequest, type PutRequest } from "@etcd-ts/api";

/**
 * A proposal's log entry: the bytes `toBinary(InternalRaftRequestSchema, message)` gives, exactly. A put
 * without an auth header (the common write) is written straight into one buffer of its final size:
 * protobuf-es' writer grows its buffer by doubling and copies the result out, which for a put's value is
 * several allocations and copies on every write. Anything else is encoded by protobuf-es.
 */
export function encodeProposal(message: InternalRaftRequest): Uint8Array {
  const request = message.request;
  if (request.case !== "put" || message.header !== undefined || message.$unknown !== undefined) {
    return toBinary(InternalRaftRequestSchema, message);
  }
  const put = request.value;
  // Unknown fields are appended by protobuf-es after the known ones: left to it.
  if (put.$unknown !== undefined) return toBinary(InternalRaftRequestSchema, message);
  const putSize = putRequestSize(put);
  // Fields in field-number order, as protobuf-es writes them: ID (1), then the request's field.
  const id = BigInt.asUintN(64, message.ID);
  const size = (id !== 0n ? 1 + varint64Size(id) : 0) + 1 + varint32Size(putSize) + putSize;
  const out = new Uint8Array(size);
  let pos = 0;
  if (id !== 0n) {
    out[pos++] = (1 << 3) | WIRE_VARINT;
    pos = writeVarint64(out, pos, id);
  }
  out[pos++] = (4 << 3) | WIRE_LENGTH_DELIMITED;
  pos = writeVarint32(out, pos, putSize);
  pos = writePutRequest(out, pos, put);
  if (pos !== size) throw new Error(`a put proposal encoded to ${pos} bytes, not the ${size} measured`);
  return out;
}

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

// PutRequest: key = 1 (bytes), value = 2 (bytes), lease = 3 (int64), prev_kv = 4, ignore_value = 5,
// ignore_lease = 6 (bool); all with implicit presence, so a zero value is not written.
function putRequestSize(put: PutRequest): number {
  let size = 0;
  if (put.key.byteLength > 0) size += 1 + varint32Size(put.key.byteLength) + put.key.byteLength;
  if (put.value.byteLength > 0) size += 1 + varint32Size(put.value.byteLength) + put.value.byteLength;
  if (put.lease !== 0n) size += 1 + varint64Size(BigInt.asUintN(64, put.lease));
  if (put.prevKv) size += 2;
  if (put.ignoreValue) size += 2;
  if (put.ignoreLease) size += 2;
  return size;
}

function writePutRequest(out: Uint8Array, start: number, put: PutRequest): number {
  let pos = start;
  if (put.key.byteLength > 0) {
    out[pos++] = (1 << 3) | WIRE_LENGTH_DELIMITED;
    pos = writeVarint32(out, pos, put.key.byteLength);
    out.set(put.key, pos);
    pos += put.key.byteLength;
  }
  if (put.value.byteLength > 0) {
    out[pos++] = (2 << 3) | WIRE_LENGTH_DELIMITED;
    pos = writeVarint32(out, pos, put.value.byteLength);
    out.set(put.value, pos);
    pos += put.value.byteLength;
  }
  if (put.lease !== 0n) {
    out[pos++] = (3 << 3) | WIRE_VARINT;
    pos = writeVarint64(out, pos, BigInt.asUintN(64, put.lease));
  }
  if (put.prevKv) pos = writeTrue(out, pos, 4);
  if (put.ignoreValue) pos = writeTrue(out, pos, 5);
  if (put.ignoreLease) pos = writeTrue(out, pos, 6);
  return pos;
}

function writeTrue(out: Uint8Array, pos: number, field: number): number {
  out[pos] = (field << 3) | WIRE_VARINT;
  out[pos + 1] = 1;
  return pos + 2;
}

function varint32Size(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint32(out: Uint8Array, start: number, value: number): number {
  let pos = start;
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/** `value` is unsigned (below 2^64): a negative int64 is written as its two's complement. */
function varint64Size(value: bigint): number {
  let low = Number(value & 0xffffffffn);
  let high = Number(value >> 32n);
  let size = 1;
  while (high > 0 || low >= 0x80) {
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high = high >>> 7;
    size++;
  }
  return size;
}

function writeVarint64(out: Uint8Array, start: number, value: bigint): number {
  let pos = start;
  let low = Number(value & 0xffffffffn);
  let high = Number(value >> 32n);
  while (high > 0 || low >= 0x80) {
    out[pos++] = (low & 0x7f) | 0x80;
    low = ((low >>> 7) | (high << 25)) >>> 0;
    high = high >>> 7;
  }
  out[pos++] = low;
  return pos;
}

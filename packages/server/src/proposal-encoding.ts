import { toBinary } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema, type InternalRaftRequest, type PutRequest } from "@etcd-ts/api";
import {
  WIRE_LENGTH_DELIMITED,
  WIRE_VARINT,
  bytesFieldSize,
  int64FieldSize,
  varint32Size,
  varint64Size,
  writeBytesField,
  writeInt64Field,
  writeTrue,
  writeVarint32,
  writeVarint64,
} from "./wire-writing.js";

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

// PutRequest: key = 1 (bytes), value = 2 (bytes), lease = 3 (int64), prev_kv = 4, ignore_value = 5,
// ignore_lease = 6 (bool); all with implicit presence, so a zero value is not written.
function putRequestSize(put: PutRequest): number {
  let size = bytesFieldSize(put.key) + bytesFieldSize(put.value) + int64FieldSize(put.lease);
  if (put.prevKv) size += 2;
  if (put.ignoreValue) size += 2;
  if (put.ignoreLease) size += 2;
  return size;
}

function writePutRequest(out: Uint8Array, start: number, put: PutRequest): number {
  let pos = writeBytesField(out, start, 1, put.key);
  pos = writeBytesField(out, pos, 2, put.value);
  pos = writeInt64Field(out, pos, 3, put.lease);
  if (put.prevKv) pos = writeTrue(out, pos, 4);
  if (put.ignoreValue) pos = writeTrue(out, pos, 5);
  if (put.ignoreLease) pos = writeTrue(out, pos, 6);
  return pos;
}

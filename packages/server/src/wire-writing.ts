/**
 * The pieces of protobuf's wire format that the hand-written encoders share (protobuf-es' writer grows
 * its buffer by doubling and copies the result out; these write into a buffer sized in advance).
 */

export const WIRE_VARINT = 0;
export const WIRE_LENGTH_DELIMITED = 2;

export function writeTrue(out: Uint8Array, pos: number, field: number): number {
  out[pos] = (field << 3) | WIRE_VARINT;
  out[pos + 1] = 1;
  return pos + 2;
}

export function varint32Size(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

export function writeVarint32(out: Uint8Array, start: number, value: number): number {
  let pos = start;
  while (value >= 0x80) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/** `value` is unsigned (below 2^64): a negative int64 is written as its two's complement. */
export function varint64Size(value: bigint): number {
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

export function writeVarint64(out: Uint8Array, start: number, value: bigint): number {
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

/** The size of a bytes field with a one-byte tag (0 when empty: proto3 leaves it out). */
export function bytesFieldSize(bytes: Uint8Array): number {
  return bytes.byteLength === 0 ? 0 : 1 + varint32Size(bytes.byteLength) + bytes.byteLength;
}

/** Writes a bytes field (field number below 16) unless empty. */
export function writeBytesField(out: Uint8Array, start: number, field: number, bytes: Uint8Array): number {
  if (bytes.byteLength === 0) return start;
  let pos = start;
  out[pos++] = (field << 3) | WIRE_LENGTH_DELIMITED;
  pos = writeVarint32(out, pos, bytes.byteLength);
  out.set(bytes, pos);
  return pos + bytes.byteLength;
}

/** The size of an int64 field with a one-byte tag (0 when zero). */
export function int64FieldSize(value: bigint): number {
  return value === 0n ? 0 : 1 + varint64Size(BigInt.asUintN(64, value));
}

/** Writes an int64 field (field number below 16) unless zero; a negative value as its two's complement. */
export function writeInt64Field(out: Uint8Array, start: number, field: number, value: bigint): number {
  if (value === 0n) return start;
  out[start] = (field << 3) | WIRE_VARINT;
  return writeVarint64(out, start + 1, BigInt.asUintN(64, value));
}

/** Writes a non-negative integer below 2^53 as a varint field (field number below 16) unless zero. */
export function writeUintField(out: Uint8Array, start: number, field: number, value: number): number {
  if (value === 0) return start;
  out[start] = (field << 3) | WIRE_VARINT;
  return writeVarint32(out, start + 1, value);
}

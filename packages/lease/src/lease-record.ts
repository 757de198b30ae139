import { LeaseError } from "./errors.js";

/**
 * The on-disk form of a lease, byte for byte etcd's: the `lease` bucket maps the lease ID as 8 bytes
 * big-endian (the int64's two's complement) to the protobuf encoding of
 *
 *     message Lease { int64 ID = 1; int64 TTL = 2; int64 RemainingTTL = 3; }   // etcd lease/leasepb
 *
 * Encoding is what gogoproto's `Marshal` produces: fields in number order, zero values omitted, int64 as a
 * varint of its 64-bit two's complement (a negative value takes 10 bytes). Decoding accepts any valid
 * encoding of the message: fields in any order, repeated (the last wins), unknown fields skipped.
 */

export interface LeaseRecord {
  readonly id: bigint;
  /** Granted TTL in seconds (already raised to the minimum when it was granted). */
  readonly ttl: bigint;
  /** The last checkpointed remaining TTL in seconds; 0 means none. */
  readonly remainingTTL: bigint;
}

const UINT64_MASK = (1n << 64n) - 1n;

/** The bucket key of a lease: its ID as 8 bytes big-endian two's complement. */
export function leaseIdKey(id: bigint): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt.asUintN(64, id), false);
  return key;
}

/** The lease ID a bucket key names; throws `LeaseError` `Corrupt` unless the key is 8 bytes. */
export function leaseIdFromKey(key: Uint8Array): bigint {
  if (key.length !== 8) throw new LeaseError("Corrupt", `lease bucket key has ${key.length} bytes, not 8`);
  return new DataView(key.buffer, key.byteOffset, 8).getBigInt64(0, false);
}

function varintLength(value: bigint): number {
  let v = value & UINT64_MASK;
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function writeVarint(out: Uint8Array, pos: number, value: bigint): number {
  let v = value & UINT64_MASK;
  while (v >= 0x80n) {
    out[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out[pos++] = Number(v);
  return pos;
}

export function encodeLeaseRecord(record: LeaseRecord): Uint8Array {
  const fields: [tag: number, value: bigint][] = [];
  if (record.id !== 0n) fields.push([0x08, record.id]);
  if (record.ttl !== 0n) fields.push([0x10, record.ttl]);
  if (record.remainingTTL !== 0n) fields.push([0x18, record.remainingTTL]);
  let size = 0;
  for (const [, value] of fields) size += 1 + varintLength(value);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const [tag, value] of fields) {
    out[pos++] = tag;
    pos = writeVarint(out, pos, value);
  }
  return out;
}

export function decodeLeaseRecord(bytes: Uint8Array): LeaseRecord {
  let pos = 0;
  const fail = (what: string): never => {
    throw new LeaseError("Corrupt", `lease record: ${what} at byte ${pos} of ${bytes.length}`);
  };
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.length) fail("truncated varint");
      const b = bytes[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result & UINT64_MASK;
    }
    return fail("varint longer than 10 bytes");
  };
  const skip = (n: number): void => {
    if (pos + n > bytes.length) fail("truncated field");
    pos += n;
  };
  let id = 0n;
  let ttl = 0n;
  let remainingTTL = 0n;
  while (pos < bytes.length) {
    const tag = readVarint();
    const fieldNumber = tag >> 3n;
    const wireType = Number(tag & 7n);
    if (fieldNumber === 0n) fail("field number 0");
    switch (wireType) {
      case 0: {
        const value = BigInt.asIntN(64, readVarint());
        if (fieldNumber === 1n) id = value;
        else if (fieldNumber === 2n) ttl = value;
        else if (fieldNumber === 3n) remainingTTL = value;
        break;
      }
      case 1:
        if (fieldNumber <= 3n) fail(`field ${fieldNumber} with wire type 1`);
        skip(8);
        break;
      case 2: {
        if (fieldNumber <= 3n) fail(`field ${fieldNumber} with wire type 2`);
        const length = readVarint();
        if (length > BigInt(bytes.length)) fail("length beyond the record");
        skip(Number(length));
        break;
      }
      case 5:
        if (fieldNumber <= 3n) fail(`field ${fieldNumber} with wire type 5`);
        skip(4);
        break;
      default:
        fail(`unsupported wire type ${wireType}`);
    }
  }
  return { id, ttl, remainingTTL };
}

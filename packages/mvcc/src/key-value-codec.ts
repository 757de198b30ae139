import type { KeyValue } from "@etcd-ts/api";
import { MvccError } from "./errors.js";

/**
 * A hand-written codec for `mvccpb.KeyValue`, the value of every row in the `key` bucket. The bytes are
 * exactly what etcd's gogoproto marshaler (and protobuf-es `toBinary`) writes: fields in number order,
 * proto3 defaults (0, empty) left out. It exists because it is on the hot path of every put and every
 * range, where the reflective `toBinary`/`fromBinary` cost several times more.
 *
 *   1 key bytes | 2 create_revision int64 | 3 mod_revision int64 | 4 version int64 | 5 value bytes | 6 lease int64
 */

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Encoded values are carved out of shared 64 KiB slabs: a typed array above 64 bytes gets its own
 * off-heap buffer, which costs about 1 µs to allocate plus GC work, more than all the rest of a put.
 * A slab is never written twice, so a carved value stays valid for as long as anyone holds it (and
 * keeps its slab alive: fine, as backends copy what they store).
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_VALUE = 4096;
let slab = new Uint8Array(SLAB_BYTES);
let slabOffset = 0;

function allocate(size: number): Uint8Array {
  if (size > SLAB_MAX_VALUE) return new Uint8Array(size);
  if (slabOffset + size > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + size);
  slabOffset += size;
  return out;
}

/** Byte length of the varint of a non-negative integer below 2^53. */
function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 128) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/** int64 as protobuf writes it: negative values as their 64-bit two's complement (10 bytes). */
function bigVarintBytes(n: bigint): number[] {
  let u = BigInt.asUintN(64, n);
  const bytes: number[] = [];
  while (u >= 128n) {
    bytes.push(Number(u & 0x7fn) | 0x80);
    u >>= 7n;
  }
  bytes.push(Number(u));
  return bytes;
}

/**
 * Encodes a KeyValue from plain numbers. Revisions and version are non-negative and below 2^53; the
 * lease is any int64.
 */
export function encodeKeyValue(
  key: Uint8Array,
  createRevision: number,
  modRevision: number,
  version: number,
  value: Uint8Array,
  lease: bigint,
): Uint8Array {
  const leaseBytes = lease === 0n ? undefined : bigVarintBytes(lease);
  let size = 0;
  if (key.length > 0) size += 1 + varintLength(key.length) + key.length;
  if (createRevision !== 0) size += 1 + varintLength(createRevision);
  if (modRevision !== 0) size += 1 + varintLength(modRevision);
  if (version !== 0) size += 1 + varintLength(version);
  if (value.length > 0) size += 1 + varintLength(value.length) + value.length;
  if (leaseBytes !== undefined) size += 1 + leaseBytes.length;
  const out = allocate(size);
  let pos = 0;
  if (key.length > 0) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, key.length);
    out.set(key, pos);
    pos += key.length;
  }
  if (createRevision !== 0) {
    out[pos++] = 0x10;
    pos = writeVarint(out, pos, createRevision);
  }
  if (modRevision !== 0) {
    out[pos++] = 0x18;
    pos = writeVarint(out, pos, modRevision);
  }
  if (version !== 0) {
    out[pos++] = 0x20;
    pos = writeVarint(out, pos, version);
  }
  if (value.length > 0) {
    out[pos++] = 0x2a;
    pos = writeVarint(out, pos, value.length);
    out.set(value, pos);
    pos += value.length;
  }
  if (leaseBytes !== undefined) {
    out[pos++] = 0x30;
    for (const b of leaseBytes) out[pos++] = b;
  }
  return out;
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** A protobuf-es `KeyValue` built without `create()` (same shape: `$typeName` plus every field). */
export function makeKeyValue(
  key: Uint8Array,
  createRevision: bigint,
  modRevision: bigint,
  version: bigint,
  value: Uint8Array,
  lease: bigint,
): KeyValue {
  return { $typeName: "mvccpb.KeyValue", key, createRevision, modRevision, version, value, lease };
}

function corrupt(what: string): never {
  throw new MvccError("Corrupt", `mvcc: cannot decode KeyValue: ${what}`);
}

/**
 * Decodes a KeyValue. `key` and `value` are views into `bytes` (no copy): the caller owns `bytes` (the
 * backend hands out owned values). Unknown fields are skipped, as protobuf requires.
 */
export function decodeKeyValue(bytes: Uint8Array): KeyValue {
  let key: Uint8Array = EMPTY;
  let value: Uint8Array = EMPTY;
  let createRevision = 0n;
  let modRevision = 0n;
  let version = 0n;
  let lease = 0n;
  let pos = 0;
  const end = bytes.length;

  // Reads a varint as [lo32, hi32] in two numbers, the fast path for every int64 field.
  let lo = 0;
  let hi = 0;
  const readVarint = (): void => {
    lo = 0;
    hi = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) corrupt("truncated varint");
      const b = bytes[pos++]!;
      if (shift < 28) {
        lo |= (b & 0x7f) << shift;
      } else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else if (shift < 64) {
        hi |= (b & 0x7f) << (shift - 32);
      }
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift >= 70) corrupt("varint too long");
    }
    lo >>>= 0;
    hi >>>= 0;
  };
  const int64 = (): bigint => {
    if (hi === 0) return BigInt(lo);
    if (hi < 0x200000) return BigInt(hi * TWO_POW_32 + lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  };
  const length = (): number => {
    readVarint();
    if (hi !== 0 || pos + lo > end) corrupt("bad length");
    return lo;
  };

  while (pos < end) {
    const tag = bytes[pos++]!;
    switch (tag) {
      case 0x0a: {
        const n = length();
        key = bytes.subarray(pos, pos + n);
        pos += n;
        break;
      }
      case 0x10:
        readVarint();
        createRevision = int64();
        break;
      case 0x18:
        readVarint();
        modRevision = int64();
        break;
      case 0x20:
        readVarint();
        version = int64();
        break;
      case 0x2a: {
        const n = length();
        value = bytes.subarray(pos, pos + n);
        pos += n;
        break;
      }
      case 0x30:
        readVarint();
        lease = int64();
        break;
      default: {
        // An unknown field (or a multi-byte tag): skip it by wire type.
        pos--;
        readVarint();
        const wireType = lo & 7;
        if (wireType === 0) readVarint();
        else if (wireType === 1) pos += 8;
        else if (wireType === 2) {
          const n = length(); // not `pos += length()`: that would read pos before length() advances it
          pos += n;
        }
        else if (wireType === 5) pos += 4;
        else corrupt(`wire type ${wireType}`);
        if (pos > end) corrupt("truncated field");
      }
    }
  }
  return makeKeyValue(key, createRevision, modRevision, version, value, lease);
}

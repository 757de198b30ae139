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

// The decoder's cursor: module state instead of closures (the decoder runs once per row read).
let buf: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
/** The last varint read, as its low and high 32 bits. */
let lo = 0;
let hi = 0;

function readVarint(): void {
  lo = 0;
  hi = 0;
  let shift = 0;
  for (;;) {
    if (pos >= end) corrupt("truncated varint");
    const b = buf[pos++]!;
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
}

/** The last varint as an int64. */
function varintBigint(): bigint {
  if (hi === 0) return BigInt(lo);
  if (hi < 0x200000) return BigInt(hi * TWO_POW_32 + lo);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

/** The last varint as a number (exact below 2^53: revisions and versions are). */
function varintNumber(): number {
  return hi * TWO_POW_32 + lo;
}

function readLength(): number {
  readVarint();
  if (hi !== 0 || pos + lo > end) corrupt("bad length");
  return lo;
}

/** Skips the field whose tag byte is at `pos` (an unknown field, or one with a multi-byte tag). */
function skipField(): void {
  readVarint();
  const wireType = lo & 7;
  if (wireType === 0) readVarint();
  else if (wireType === 1) pos += 8;
  else if (wireType === 2) {
    const n = readLength();
    pos += n;
  } else if (wireType === 5) pos += 4;
  else corrupt(`wire type ${wireType}`);
  if (pos > end) corrupt("truncated field");
}

/**
 * Decodes a KeyValue. `key` and `value` are views into `bytes` (no copy): the caller owns `bytes` (the
 * backend hands out owned values). Unknown fields are skipped, as protobuf requires.
 */
export function decodeKeyValue(bytes: Uint8Array): KeyValue {
  buf = bytes;
  pos = 0;
  end = bytes.length;
  let key: Uint8Array = EMPTY;
  let value: Uint8Array = EMPTY;
  let createRevision = 0n;
  let modRevision = 0n;
  let version = 0n;
  let lease = 0n;
  try {
    while (pos < end) {
      switch (buf[pos]) {
        case 0x0a: {
          pos++;
          const n = readLength();
          key = bytes.subarray(pos, pos + n);
          pos += n;
          break;
        }
        case 0x10:
          pos++;
          readVarint();
          createRevision = varintBigint();
          break;
        case 0x18:
          pos++;
          readVarint();
          modRevision = varintBigint();
          break;
        case 0x20:
          pos++;
          readVarint();
          version = varintBigint();
          break;
        case 0x2a: {
          pos++;
          const n = readLength();
          value = bytes.subarray(pos, pos + n);
          pos += n;
          break;
        }
        case 0x30:
          pos++;
          readVarint();
          lease = varintBigint();
          break;
        default:
          skipField();
      }
    }
  } finally {
    buf = EMPTY;
  }
  return makeKeyValue(key, createRevision, modRevision, version, value, lease);
}

/** The fields the key index needs from a row, as `decodeIndexFields` fills them. */
export interface IndexFields {
  key: Uint8Array;
  createRevision: number;
  version: number;
  lease: bigint;
}

/**
 * Reads only what rebuilding the index needs (key, create revision, version, lease) into `out`, without
 * building a message: opening a store decodes every row once.
 */
export function decodeIndexFields(bytes: Uint8Array, out: IndexFields): void {
  buf = bytes;
  pos = 0;
  end = bytes.length;
  out.key = EMPTY;
  out.createRevision = 0;
  out.version = 0;
  out.lease = 0n;
  try {
    while (pos < end) {
      switch (buf[pos]) {
        case 0x0a: {
          pos++;
          const n = readLength();
          out.key = bytes.subarray(pos, pos + n);
          pos += n;
          break;
        }
        case 0x10:
          pos++;
          readVarint();
          out.createRevision = varintNumber();
          break;
        case 0x20:
          pos++;
          readVarint();
          out.version = varintNumber();
          break;
        case 0x30:
          pos++;
          readVarint();
          out.lease = varintBigint();
          break;
        default:
          skipField();
      }
    }
  } finally {
    buf = EMPTY;
  }
}

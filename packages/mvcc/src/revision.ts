import { MvccError } from "./errors.js";

/**
 * Revisions and their on-disk form, exactly as etcd lays them out in its `key` bucket, so that a
 * snapshot of our backend reads like etcd's:
 *
 *   8-byte big-endian main | '_' | 8-byte big-endian sub            (17 bytes, a put)
 *   8-byte big-endian main | '_' | 8-byte big-endian sub | 't'      (18 bytes, a tombstone)
 *
 * Big-endian fixed width makes the bucket's byte order the revision order. Internally a revision is two
 * plain numbers (main, sub): main counts write transactions and sub the changes within one, both far
 * below 2^53.
 */

export const REVISION_BYTES = 17;
export const MARKED_REVISION_BYTES = 18;
/** The byte etcd appends to a tombstone's revision key. */
export const TOMBSTONE_MARK = 0x74; // 't'
const SEPARATOR = 0x5f; // '_'
const TWO_POW_32 = 0x1_0000_0000;

function writeUint64(out: Uint8Array, offset: number, n: number): void {
  const hi = Math.floor(n / TWO_POW_32);
  const lo = n >>> 0;
  out[offset] = hi >>> 24;
  out[offset + 1] = (hi >>> 16) & 0xff;
  out[offset + 2] = (hi >>> 8) & 0xff;
  out[offset + 3] = hi & 0xff;
  out[offset + 4] = lo >>> 24;
  out[offset + 5] = (lo >>> 16) & 0xff;
  out[offset + 6] = (lo >>> 8) & 0xff;
  out[offset + 7] = lo & 0xff;
}

function readUint64(bytes: Uint8Array, offset: number): number {
  const hi = ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
  const lo = ((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) | bytes[offset + 7]!) >>> 0;
  return hi * TWO_POW_32 + lo;
}

/** The `key` bucket key of revision (main, sub); 18 bytes with the tombstone mark. */
export function encodeRevisionKey(main: number, sub: number, tombstone = false): Uint8Array {
  const out = new Uint8Array(tombstone ? MARKED_REVISION_BYTES : REVISION_BYTES);
  writeUint64(out, 0, main);
  out[8] = SEPARATOR;
  writeUint64(out, 9, sub);
  if (tombstone) out[17] = TOMBSTONE_MARK;
  return out;
}

export interface DecodedRevisionKey {
  readonly main: number;
  readonly sub: number;
  readonly tombstone: boolean;
}

/** Parses a `key` bucket key; throws `MvccError("Corrupt")` for anything that is not one. */
export function decodeRevisionKey(bytes: Uint8Array): DecodedRevisionKey {
  const marked = bytes.length === MARKED_REVISION_BYTES;
  if ((bytes.length !== REVISION_BYTES && !marked) || bytes[8] !== SEPARATOR || (marked && bytes[17] !== TOMBSTONE_MARK)) {
    throw new MvccError("Corrupt", `mvcc: malformed revision key (${bytes.length} bytes)`);
  }
  return { main: readUint64(bytes, 0), sub: readUint64(bytes, 9), tombstone: marked };
}

/** The main revision of a `key` bucket key, without allocating. */
export function mainOfRevisionKey(bytes: Uint8Array): number {
  return readUint64(bytes, 0);
}

/** The sub revision of a `key` bucket key, without allocating. */
export function subOfRevisionKey(bytes: Uint8Array): number {
  return readUint64(bytes, 9);
}

/** 8-byte big-endian encoding, as etcd stores `consistent_index`. */
export function encodeUint64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  writeUint64(out, 0, n);
  return out;
}

export function decodeUint64(bytes: Uint8Array): number {
  if (bytes.length !== 8) throw new MvccError("Corrupt", `mvcc: expected 8 bytes, got ${bytes.length}`);
  return readUint64(bytes, 0);
}

/** Negative when (aMain, aSub) comes before (bMain, bSub). */
export function compareRevisions(aMain: number, aSub: number, bMain: number, bSub: number): number {
  return aMain !== bMain ? aMain - bMain : aSub - bSub;
}

/**
 * A set of revisions (the ones a compaction keeps). Most kept revisions have sub 0, so those live in a
 * plain number set; the rest in a map of sets.
 */
export class RevisionSet {
  private readonly subZero = new Set<number>();
  private readonly others = new Map<number, Set<number>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(main: number, sub: number): void {
    if (sub === 0) {
      if (!this.subZero.has(main)) {
        this.subZero.add(main);
        this.count++;
      }
      return;
    }
    let subs = this.others.get(main);
    if (subs === undefined) {
      subs = new Set();
      this.others.set(main, subs);
    }
    if (!subs.has(sub)) {
      subs.add(sub);
      this.count++;
    }
  }

  delete(main: number, sub: number): void {
    if (sub === 0) {
      if (this.subZero.delete(main)) this.count--;
      return;
    }
    const subs = this.others.get(main);
    if (subs?.delete(sub)) {
      this.count--;
      if (subs.size === 0) this.others.delete(main);
    }
  }

  has(main: number, sub: number): boolean {
    return sub === 0 ? this.subZero.has(main) : (this.others.get(main)?.has(sub) ?? false);
  }
}

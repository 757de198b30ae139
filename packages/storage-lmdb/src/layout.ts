/**
 * How the LMDB engine lays out buckets in one LMDB database (the driver-specific half of the engine).
 *
 * Everything lives in the environment's single unnamed database, keyed by a one-byte tag:
 *   [META]   + utf8 name        → meta values (`format`, `nextBucketId`)
 *   [BUCKET] + utf8 bucket name → the bucket's 4-byte big-endian id
 *   [DATA]   + id (4 bytes BE) + key → value
 * Why one database with a prefix rather than a named sub-database per bucket:
 * - LMDB rejects empty keys, and the contract allows them; a prefix makes every stored key non-empty
 *   while keeping bytewise order within the bucket (the prefix has a fixed length).
 * - Creating and dropping sub-databases in lmdb-js happens outside the write transaction's atomic unit we
 *   need (and needs `maxDbs` fixed at open); with prefixes, bucket creation and deletion are ordinary
 *   puts and deletes inside the same atomic `update`, and an aborted update undoes them for free.
 * - The cost is that `deleteBucket` deletes its keys one by one (O(n)); etcd deletes buckets only in
 *   migrations.
 */
export const LMDB_FORMAT = 1;
export const DATA_FILE = "data.mdb";
export const LOCK_FILE = "data.mdb-lock";

const TAG_META = 0x00;
const TAG_BUCKET = 0x01;
const TAG_DATA = 0x02;
export const BUCKET_ID_BYTES = 4;
const DATA_PREFIX_BYTES = 1 + BUCKET_ID_BYTES;
/** lmdb-js's default maximum key size, less our prefix. */
export const MAX_USER_KEY_BYTES = 1978 - DATA_PREFIX_BYTES;

const text = new TextEncoder();

function tagged(tag: number, rest: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + rest.length);
  out[0] = tag;
  out.set(rest, 1);
  return out;
}

export function metaKey(name: string): Buffer {
  return tagged(TAG_META, text.encode(name));
}

export function bucketKey(bucket: string): Buffer {
  return tagged(TAG_BUCKET, text.encode(bucket));
}

/** The range of all bucket registry keys: [BUCKET, DATA). */
export const BUCKETS_START = Buffer.from([TAG_BUCKET]);
export const BUCKETS_END = Buffer.from([TAG_DATA]);

export function bucketNameOf(key: Uint8Array): string {
  return new TextDecoder().decode(key.subarray(1));
}

export function encodeBucketId(id: number): Buffer {
  const out = Buffer.allocUnsafe(BUCKET_ID_BYTES);
  out.writeUInt32BE(id, 0);
  return out;
}

export function decodeBucketId(value: Uint8Array): number {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUInt32BE(0);
}

/** The stored key of `key` in bucket `id`. */
export function dataKey(id: number, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DATA_PREFIX_BYTES + key.length);
  out[0] = TAG_DATA;
  out.writeUInt32BE(id, 1);
  out.set(key, DATA_PREFIX_BYTES);
  return out;
}

/** The first stored key after every key of bucket `id` (the prefix of bucket id + 1). */
export function dataKeyAfterBucket(id: number): Buffer {
  const out = Buffer.allocUnsafe(DATA_PREFIX_BYTES);
  out[0] = TAG_DATA;
  out.writeUInt32BE(id + 1, 1);
  return out;
}

/** The caller-owned user key of a stored data key. */
export function userKeyOf(stored: Uint8Array): Uint8Array {
  return new Uint8Array(stored.subarray(DATA_PREFIX_BYTES));
}

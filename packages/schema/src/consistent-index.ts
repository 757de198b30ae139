import type { ReadTxn, WriteTxn } from "@etcd-ts/storage";
import { META_BUCKET } from "./buckets.js";
import { CONSISTENT_INDEX_KEY } from "./keys.js";

/**
 * The consistent index: the raft index of the last entry whose effects the backend holds. It is written
 * in the same transaction as those effects, so after a crash the member applies exactly the entries
 * after it. etcd stores it as 8 bytes big-endian under `meta`/`consistent_index`.
 */
export const CONSISTENT_INDEX_BYTES = 8;

const TWO_POW_32 = 0x1_0000_0000;

export function encodeConsistentIndex(index: number): Uint8Array {
  const bytes = new Uint8Array(CONSISTENT_INDEX_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(index / TWO_POW_32), false);
  view.setUint32(4, index >>> 0, false);
  return bytes;
}

/** The index the bytes hold, or undefined when they are not 8 bytes long (not an index). */
export function decodeConsistentIndex(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength !== CONSISTENT_INDEX_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, CONSISTENT_INDEX_BYTES);
  return view.getUint32(0, false) * TWO_POW_32 + view.getUint32(4, false);
}

/**
 * The consistent index `txn` holds; 0 when `meta` holds none (nothing applied yet) or holds bytes that are
 * no index. `meta` must exist (as the MVCC store creates it on open).
 */
export function readConsistentIndex(txn: Pick<ReadTxn, "get">): number {
  const bytes = txn.get(META_BUCKET, CONSISTENT_INDEX_KEY);
  return bytes === undefined ? 0 : (decodeConsistentIndex(bytes) ?? 0);
}

/** Records `index` as the consistent index; `meta` must exist. */
export function writeConsistentIndex(txn: Pick<WriteTxn, "put">, index: number): void {
  txn.put(META_BUCKET, CONSISTENT_INDEX_KEY, encodeConsistentIndex(index));
}

/** True for the consistent index's row (it differs between members that hold the same data). */
export function isConsistentIndexRow(bucket: string, key: Uint8Array): boolean {
  return bucket === META_BUCKET && sameBytes(key, CONSISTENT_INDEX_KEY);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

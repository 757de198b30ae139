import { Crc32c } from "@etcd-ts/mvcc";
import { isConsistentIndexRow } from "@etcd-ts/schema";
import type { ReadTxn } from "@etcd-ts/storage";
import { isMemberLocalRow } from "../membership/membership.js";

const encoder = new TextEncoder();

/** etcd's Hash: every bucket and row except what differs between members (the consistent index, the member's own IDs). */
export function hashBackend(txn: ReadTxn): number {
  const hash = new Crc32c();
  for (const bucket of txn.buckets()) {
    const name = encoder.encode(bucket);
    hash.update(name);
    for (const { key, value } of txn.range(bucket)) {
      if (isConsistentIndexRow(bucket, key)) continue;
      // The member's own IDs differ between members (etcd keeps them out of its backend altogether).
      if (isMemberLocalRow(bucket, key)) continue;
      hash.update(key).update(value);
    }
  }
  return hash.value;
}

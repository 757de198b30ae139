import { createHash } from "node:crypto";

/**
 * Member and cluster IDs derived the way etcd derives them, so that the same `--initial-cluster` and
 * `--initial-cluster-token` give the same IDs on etcd and etcd-ts, and every member of a new cluster
 * computes the same IDs without talking to the others.
 */

/** A member's ID: the first 8 bytes (big-endian) of SHA-1 over its sorted peer URLs, the token and, for
 * members added later, the time (seconds) they were added. */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string, addedAtUnixSeconds?: number): bigint {
  const hash = createHash("sha1");
  for (const url of [...peerUrls].sort()) hash.update(url);
  hash.update(clusterToken);
  if (addedAtUnixSeconds !== undefined) hash.update(String(addedAtUnixSeconds));
  return hash.digest().readBigUInt64BE(0);
}

/** The cluster's ID: SHA-1 over the sorted member IDs as 8-byte big-endian numbers, first 8 bytes. */
export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => bytes.writeBigUInt64BE(id, 8 * i));
  return createHash("sha1").update(bytes).digest().readBigUInt64BE(0);
}

/** etcd prints IDs as lowercase hex without padding. */
export function formatId(id: bigint): string {
  return id.toString(16);
}

/**
 * etcd's bucket and meta key names. The store creates every bucket etcd has on open, so a backend
 * written by us has etcd's layout (snapshots are written in etcd's format from it).
 */
export const KEY_BUCKET = "key";
export const META_BUCKET = "meta";

export const ETCD_BUCKETS: readonly string[] = [
  "key",
  "meta",
  "lease",
  "auth",
  "authUsers",
  "authRoles",
  "members",
  "members_removed",
  "cluster",
  "alarm",
];

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Last applied log index, 8-byte big-endian (written with the data it describes). */
export const CONSISTENT_INDEX_KEY = ascii("consistent_index");
/** Main revision of the latest compaction requested, as a 17-byte revision key (sub 0). */
export const SCHEDULED_COMPACT_KEY = ascii("scheduledCompactRev");
/** Main revision of the latest compaction whose physical deletion finished, same encoding. */
export const FINISHED_COMPACT_KEY = ascii("finishedCompactRev");

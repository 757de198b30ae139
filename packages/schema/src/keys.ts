/** The fixed row keys of etcd's buckets, as the bytes the backend stores. */

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

// ---- `meta` ----

/** The last raft index applied to the backend, 8 bytes big-endian (see `consistent-index.ts`). */
export const CONSISTENT_INDEX_KEY = ascii("consistent_index");
/** Main revision of the latest compaction requested, as a 17-byte revision key (sub 0). */
export const SCHEDULED_COMPACT_KEY = ascii("scheduledCompactRev");
/** Main revision of the latest compaction whose physical deletion finished, same encoding. */
export const FINISHED_COMPACT_KEY = ascii("finishedCompactRev");

// ---- `auth` ----

/** One byte: 1 when auth is enabled, 0 when not. */
export const AUTH_ENABLED_KEY = ascii("authEnabled");
/** The auth revision, 8 bytes big-endian. */
export const AUTH_REVISION_KEY = ascii("authRevision");

// ---- `cluster` ----

/** The cluster version (`3.4.0`), as text. */
export const CLUSTER_VERSION_KEY = ascii("clusterVersion");
/**
 * The cluster's and this member's IDs. These two rows are ours: etcd keeps both in its WAL metadata, not
 * in the backend, so they belong to one member and never leave it (snapshots and hashes skip them).
 */
export const CLUSTER_ID_KEY = ascii("clusterID");
export const LOCAL_MEMBER_ID_KEY = ascii("localMemberID");

/**
 * The buckets of etcd 3.4's backend, by the names etcd gives them (mvcc's `key`/`meta`, the lessor's
 * `lease`, the auth store's three, membership's three, the alarm store's `alarm`). A backend written
 * here has exactly these, so a snapshot of it is an etcd snapshot and an etcd snapshot restores here.
 */

/** Every revision of every key: 17-byte revision key (18 with the tombstone mark) → mvccpb.KeyValue. */
export const KEY_BUCKET = "key";
/** The store's own rows: the consistent index and the compaction revisions. */
export const META_BUCKET = "meta";
/** Lease ID (8 bytes big-endian) → leasepb.Lease. */
export const LEASE_BUCKET = "lease";
/** Whether auth is enabled and the auth revision. */
export const AUTH_BUCKET = "auth";
/** User name → authpb.User. */
export const AUTH_USERS_BUCKET = "authUsers";
/** Role name → authpb.Role. */
export const AUTH_ROLES_BUCKET = "authRoles";
/** Member ID (hex) → the member as JSON. */
export const MEMBERS_BUCKET = "members";
/** IDs (hex) of members removed from the cluster, which may never come back. */
export const MEMBERS_REMOVED_BUCKET = "members_removed";
/** The cluster version, and this member's own identity rows (see `CLUSTER_ID_KEY`). */
export const CLUSTER_BUCKET = "cluster";
/** Raised alarms: marshaled etcdserverpb.AlarmMember → empty value. */
export const ALARM_BUCKET = "alarm";

/** Every bucket etcd creates, in the order the MVCC store creates the missing ones on open. */
export const ETCD_BUCKETS: readonly string[] = [
  KEY_BUCKET,
  META_BUCKET,
  LEASE_BUCKET,
  AUTH_BUCKET,
  AUTH_USERS_BUCKET,
  AUTH_ROLES_BUCKET,
  MEMBERS_BUCKET,
  MEMBERS_REMOVED_BUCKET,
  CLUSTER_BUCKET,
  ALARM_BUCKET,
];

/**
 * The buckets that describe the cluster's members rather than its data: a member seeded from a client's
 * snapshot drops them, since the new cluster's membership comes from its own flags.
 */
export const MEMBERSHIP_BUCKETS: readonly string[] = [MEMBERS_BUCKET, MEMBERS_REMOVED_BUCKET, CLUSTER_BUCKET];

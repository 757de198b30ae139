export {
  ALARM_BUCKET,
  AUTH_BUCKET,
  AUTH_ROLES_BUCKET,
  AUTH_USERS_BUCKET,
  CLUSTER_BUCKET,
  ETCD_BUCKETS,
  KEY_BUCKET,
  LEASE_BUCKET,
  MEMBERSHIP_BUCKETS,
  MEMBERS_BUCKET,
  MEMBERS_REMOVED_BUCKET,
  META_BUCKET,
} from "./buckets.js";
export {
  AUTH_ENABLED_KEY,
  AUTH_REVISION_KEY,
  CLUSTER_ID_KEY,
  CLUSTER_VERSION_KEY,
  CONSISTENT_INDEX_KEY,
  FINISHED_COMPACT_KEY,
  LOCAL_MEMBER_ID_KEY,
  SCHEDULED_COMPACT_KEY,
} from "./keys.js";
export {
  CONSISTENT_INDEX_BYTES,
  decodeConsistentIndex,
  encodeConsistentIndex,
  isConsistentIndexRow,
  readConsistentIndex,
  writeConsistentIndex,
} from "./consistent-index.js";

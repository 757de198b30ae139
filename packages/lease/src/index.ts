export {
  DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS,
  DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS,
  DEFAULT_LEASE_REVOKE_RATE,
  DEFAULT_MIN_LEASE_TTL,
  Lessor,
  MAX_LEASE_CHECKPOINT_BATCH,
  MAX_LEASE_TTL,
  minLeaseTTLFor,
} from "./lessor.js";
export type { AttachedKeyDeleter, LeaseBucketTxn, LeaseCheckpoint, LeaseInfo, LessorOptions, TimeToLive } from "./lessor.js";
export { LeaseError, isLeaseError } from "./errors.js";
export type { LeaseErrorCode } from "./errors.js";
export { ManualClock, systemClock } from "./clock.js";
export type { Clock } from "./clock.js";
export { MAX_LEASE_ID, cryptoRandomSource, randomLeaseId } from "./lease-id.js";
export type { RandomSource } from "./lease-id.js";
export { decodeLeaseRecord, encodeLeaseRecord, leaseIdFromKey, leaseIdKey } from "./lease-record.js";
export type { LeaseRecord } from "./lease-record.js";

/**
 * @etcd-ts/mvcc — etcd's multi-version key-value store over a storage `Backend`: revisions, the
 * in-memory key index, reads at any revision, write transactions (one revision each) grouped into
 * backend batches, compaction (logical at once, physical in bounded batches, resumed after a crash) and
 * per-revision events for watchers.
 */
export { MvccStore, openMvccStore } from "./store.js";
export type {
  HistoryOptions,
  HistoryResult,
  LeaseAttachments,
  MvccStoreOptions,
  RangeOptions,
  RangeResult,
  ReadView,
  StoreObserver,
  TxnWrite,
  WriteBatch,
} from "./store.js";
export { MvccError, isMvccError } from "./errors.js";
export type { MvccErrorCode } from "./errors.js";
export { decodeKeyValue, encodeKeyValue } from "./key-value-codec.js";
export { MARKED_REVISION_BYTES, REVISION_BYTES, TOMBSTONE_MARK, decodeRevisionKey, encodeRevisionKey } from "./revision.js";
export type { DecodedRevisionKey } from "./revision.js";
export { Crc32c } from "./crc32c.js";

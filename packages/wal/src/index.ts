// Public API of @etcd-ts/wal. Everything not listed here is internal.
export { Wal, DEFAULT_SEGMENT_SIZE } from "./wal.js";
export type { WalOptions, WalOpenOptions, WalOpenResult, WalMetrics, WalFileOps, SnapshotMarker } from "./wal.js";
export { Snapshotter, snapshotFileName, DEFAULT_SNAPSHOT_RETENTION } from "./snapshotter.js";
export type { SnapshotterOptions } from "./snapshotter.js";
export { DiskRaftStorage } from "./disk-raft-storage.js";
export type { DiskRaftStorageOptions, PersistUpdate } from "./disk-raft-storage.js";
export { MAX_ENTRY_DATA_BYTES } from "./record.js";
export { WalError, isWalError } from "./errors.js";
export type { WalErrorCode } from "./errors.js";

export {
  ETCD_SNAPSHOT_CHUNK_SIZE,
  openBoltSnapshotStream,
  boltSnapshotStream,
  maintenanceSnapshotResponses,
  saveBoltSnapshotFile,
  writeBoltSnapshot,
} from "./bolt-writer.js";
export type {
  BoltSnapshotOptions,
  BoltSnapshotStream,
  BoltSnapshotWriteResult,
  SnapshotResponseChunk,
  SnapshotSink,
} from "./bolt-writer.js";
export { BoltFile, readBoltFile } from "./bolt-reader.js";
export type { BoltBucket } from "./bolt-reader.js";
export type { BoltMeta, LeafElement } from "./bolt-format.js";
export { SNAPSHOT_HASH_SIZE, appendSnapshotHash, hasSnapshotHash, verifySnapshotHash } from "./snapshot-hash.js";
export type { SnapshotHashInfo } from "./snapshot-hash.js";
export { snapshotStatus } from "./snapshot-status.js";
export type { SnapshotStatus } from "./snapshot-status.js";
export { restoreBoltSnapshot } from "./restore.js";
export type { RestoreOptions, RestoreResult } from "./restore.js";
export { SnapshotError, isSnapshotError } from "./errors.js";
export type { SnapshotErrorCode } from "./errors.js";

export type {
  Backend,
  BackendOptions,
  Entry,
  OpenBackend,
  RangeOptions,
  ReadTxn,
  Snapshot,
  StorageErrorCode,
  WriteTxn,
} from "./backend.js";
export { StorageError, isStorageError } from "./backend.js";
export { compareBytes } from "./compare-bytes.js";
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.js";
export { MemoryBackend, openMemoryBackend } from "./memory-backend.js";
export { DATA_DIR_MARKER, freeBytes, fsyncDir, prepareDataDir, writeDataDirMarker } from "./data-dir.js";
export type { DataDirMarker, DataDirState } from "./data-dir.js";
export { requireSynchronousUpdate } from "./synchronous-update.js";
export { UpdateGate } from "./update-gate.js";
export type { EngineUpdate } from "./update-gate.js";

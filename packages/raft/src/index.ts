// Public API of @etcd-ts/raft. Everything not listed here is internal.
export { RawNode, SnapshotStatus } from "./rawnode.js";
export type { Ready, Status, ProgressStatus } from "./rawnode.js";
export type { Config } from "./raft.js";
export { MemoryStorage } from "./storage.js";
export type { Storage, MemoryStorageOptions } from "./storage.js";
export { None, EntryType, MessageType, ConfChangeType, StateType, isEmptyHardState, isEmptySnapshot, isLocalMessage } from "./types.js";
export type {
  NodeId,
  Entry,
  Message,
  HardState,
  SoftState,
  ConfState,
  ConfChange,
  Snapshot,
  SnapshotMetadata,
  ReadState,
} from "./types.js";
export type { RaftErrorCode } from "./errors.js";
export { RaftError, isRaftError } from "./errors.js";
export type { Logger } from "./logger.js";
export { silentLogger, consoleLogger } from "./logger.js";
export type { Rand } from "./rand.js";
export { SeededRand } from "./rand.js";
export {
  encodeMessage,
  encodeMessageFrames,
  decodeMessage,
  encodeConfChange,
  decodeConfChange,
  decodeConfChangeV2,
  encodeHardState,
  decodeHardState,
  encodeEntry,
  decodeEntry,
  encodeSnapshot,
  decodeSnapshot,
  encodeConfState,
  decodeConfState,
} from "./codec.js";

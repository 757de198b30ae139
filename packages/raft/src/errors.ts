/**
 * The one error class of @etcd-ts/raft. `code` says what went wrong; `isRaftError(e, code)` compares the
 * `name`, not the prototype, so it also recognises errors thrown by another installed copy of the package.
 */
export type RaftErrorCode =
  /** Storage: the requested index is older than the first available index (it was compacted away). */
  | "Compacted"
  /** Storage: the requested index is newer than the last available index. */
  | "Unavailable"
  /** Storage: a snapshot is being prepared; raft will retry later. */
  | "SnapshotTemporarilyUnavailable"
  /** MemoryStorage: the snapshot (or snapshot request) is older than the one already held. */
  | "SnapshotOutOfDate"
  /** A proposal was dropped: no leader is known, a leader transfer is in progress, or this node was removed. */
  | "ProposalDropped"
  /** step() was given a message type that only the node itself may generate. */
  | "StepLocalMessage"
  /** step() was given a response from a node that is not in the configuration. */
  | "StepPeerNotFound"
  /** A configuration change that cannot be applied (e.g. it would remove the last voter). */
  | "InvalidConfChange"
  /** A Config that cannot work (e.g. heartbeat not shorter than the election timeout). */
  | "InvalidConfig";

/** etcd raft's messages for the codes whose message has no detail. */
const messages: Partial<Record<RaftErrorCode, string>> = {
  Compacted: "requested index is unavailable due to compaction",
  Unavailable: "requested entry at index is unavailable",
  SnapshotTemporarilyUnavailable: "snapshot is temporarily unavailable",
  SnapshotOutOfDate: "requested index is older than the existing snapshot",
  StepLocalMessage: "raft: cannot step raft local message",
  StepPeerNotFound: "raft: cannot step as peer not found",
};

/** What precedes the detail in the message of the codes that carry one. */
const prefixes: Partial<Record<RaftErrorCode, string>> = {
  ProposalDropped: "raft proposal dropped: ",
  InvalidConfChange: "raft: invalid conf change: ",
  InvalidConfig: "raft: invalid config: ",
};

export class RaftError extends Error {
  override readonly name = "RaftError";
  /**
   * The message is etcd raft's for `code`; `detail` completes it for the codes that explain themselves
   * (`ProposalDropped`: why; `InvalidConfChange`, `InvalidConfig`: what is wrong).
   */
  constructor(
    readonly code: RaftErrorCode,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(messages[code] ?? `${prefixes[code] ?? ""}${detail ?? code}`, options);
  }
}

export function isRaftError(e: unknown, code?: RaftErrorCode): e is RaftError {
  return e instanceof Error && e.name === "RaftError" && (code === undefined || (e as RaftError).code === code);
}

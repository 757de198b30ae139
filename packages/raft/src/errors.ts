// Errors of @etcd-ts/raft. Each has a stable `name` and a static `is()` check that works across copies
// of the package (it compares names, not prototypes).

export class RaftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RaftError";
  }
}

function makeIs(name: string) {
  return (e: unknown): boolean => e instanceof Error && e.name === name;
}

/** Storage: the requested index is older than the first available index (it was compacted away). */
export class CompactedError extends RaftError {
  static readonly is = makeIs("CompactedError");
  constructor() {
    super("requested index is unavailable due to compaction");
    this.name = "CompactedError";
  }
}

/** Storage: the requested index is newer than the last available index. */
export class UnavailableError extends RaftError {
  static readonly is = makeIs("UnavailableError");
  constructor() {
    super("requested entry at index is unavailable");
    this.name = "UnavailableError";
  }
}

/** Storage: a snapshot is being prepared; raft will retry later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  static readonly is = makeIs("SnapshotTemporarilyUnavailableError");
  constructor() {
    super("snapshot is temporarily unavailable");
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

/** MemoryStorage: the snapshot (or snapshot request) is older than the one already held. */
export class SnapshotOutOfDateError extends RaftError {
  static readonly is = makeIs("SnapshotOutOfDateError");
  constructor() {
    super("requested index is older than the existing snapshot");
    this.name = "SnapshotOutOfDateError";
  }
}

/** A proposal was dropped: no leader is known, a leader transfer is in progress, or this node was removed. */
export class ProposalDroppedError extends RaftError {
  static readonly is = makeIs("ProposalDroppedError");
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/** step() was given a message type that only the node itself may generate. */
export class StepLocalMessageError extends RaftError {
  static readonly is = makeIs("StepLocalMessageError");
  constructor() {
    super("raft: cannot step raft local message");
    this.name = "StepLocalMessageError";
  }
}

/** step() was given a response from a node that is not in the configuration. */
export class StepPeerNotFoundError extends RaftError {
  static readonly is = makeIs("StepPeerNotFoundError");
  constructor() {
    super("raft: cannot step as peer not found");
    this.name = "StepPeerNotFoundError";
  }
}

/** A configuration change that cannot be applied (e.g. it would remove the last voter). */
export class InvalidConfChangeError extends RaftError {
  static readonly is = makeIs("InvalidConfChangeError");
  constructor(message: string) {
    super(`raft: invalid conf change: ${message}`);
    this.name = "InvalidConfChangeError";
  }
}

/** A Config that cannot work (e.g. heartbeat not shorter than the election timeout). */
export class InvalidConfigError extends RaftError {
  static readonly is = makeIs("InvalidConfigError");
  constructor(message: string) {
    super(`raft: invalid config: ${message}`);
    this.name = "InvalidConfigError";
  }
}

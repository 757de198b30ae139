import type { ConfChange, Message, SnapshotStatus } from "@etcd-ts/raft";

/**
 * The seam between the server and consensus. The server proposes opaque entries and membership changes;
 * the log decides their order and delivers them, once committed, to the apply function — on every
 * member, in log order, each exactly once. Messages between members go through the server's peer
 * network: the log hands out what it sends (`RaftLogOptions.send`) and is given what arrives (`step`).
 * The server holds only this interface; `RaftLog` (raft behind it) is the one the server builds unless
 * it is given another. The method names are those of etcd's `raft.Node` where one fits.
 */

export interface LogEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

export interface LogStatus {
  readonly term: number;
  /** The current leader's member ID, 0n when there is none. */
  readonly leaderId: bigint;
  readonly commitIndex: number;
  readonly isLeader: boolean;
}

/** What the leader knows of one member's log: the highest index known to match its own. */
export interface PeerProgress {
  readonly match: number;
}

/**
 * Called with each batch of newly committed entries, in order. It applies them synchronously (their
 * effects are visible to reads when it returns) and returns a promise that resolves once they are
 * durable; the log does not deliver the next batch before the previous call has returned.
 */
export type ApplyCommitted = (entries: readonly LogEntry[]) => Promise<void>;

export interface ReplicatedLog {
  /** Begins delivering committed entries after `appliedIndex` (what the state machine already holds). */
  start(appliedIndex: number, apply: ApplyCommitted): void;
  /** Submits an entry. Throws `RpcError` (e.g. no leader) when it cannot be proposed at all. */
  propose(data: Uint8Array): void;
  /**
   * Submits a membership change; once committed it reaches the log's `ConfChangeApplier`, and its index
   * is delivered to the apply function as an empty entry. Throws `RpcError` when it cannot be proposed.
   */
  proposeConfChange(change: ConfChange): void;
  /** A message from a peer (or a snapshot it shipped, once received in full). Dropped after stop. */
  step(message: Message): void;
  /** The peer network could not reach `id`: raft probes it instead of pipelining. */
  reportUnreachable(id: bigint): void;
  /** How shipping a snapshot to `id` ended (after the log sent a MsgSnap for it). */
  reportSnapshot(id: bigint, status: SnapshotStatus): void;
  /** Asks the leader to hand leadership to `to` (etcd's TransferLeadership); a no-op elsewhere. */
  transferLeadership(to: bigint): void;
  /**
   * The index a linearizable read must see applied before it runs: every write acknowledged before the
   * call is at or below it.
   */
  readIndex(): Promise<number>;
  status(): LogStatus;
  /** On the leader, every member's progress by member ID; empty elsewhere. */
  progress(): ReadonlyMap<bigint, PeerProgress>;
  stop(): Promise<void>;
}

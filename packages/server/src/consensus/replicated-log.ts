/**
 * The seam between the server and consensus. The server proposes opaque entries; the log decides their
 * order and delivers them, once committed, to the apply function — on every member, in log order, each
 * exactly once. With raft behind it this is a replicated log; a lone member without raft is a log that
 * commits its own proposals (`LocalLog`). The server is written only against this interface.
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
   * The index a linearizable read must see applied before it runs: every write acknowledged before the
   * call is at or below it.
   */
  readIndex(): Promise<number>;
  status(): LogStatus;
  stop(): Promise<void>;
}

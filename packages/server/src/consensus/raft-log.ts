import { randomBytes } from "node:crypto";
import {
  ConfChangeType,
  EntryType,
  RawNode,
  SeededRand,
  SnapshotStatus,
  StateType,
  decodeConfChange,
  encodeConfChange,
  isRaftError,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Ready,
  type Snapshot,
  type Storage,
} from "@etcd-ts/raft";
import { RpcError } from "@etcd-ts/api";
import type { Logger } from "../log.js";
import type { ApplyCommitted, LogEntry, LogStatus, PeerProgress, ReplicatedLog } from "./replicated-log.js";

/**
 * Raft's storage as the server drives it: what raft reads (`Storage`) plus the durable writes of the
 * Ready loop. `persist` writes the hard state and entries (and an incoming snapshot) and resolves once
 * they are on disk — one sync for everything in the Ready, which is the group commit.
 */
export interface DurableRaftStorage extends Storage {
  persist(update: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot; mustSync?: boolean }): Promise<void>;
}

/** What the log tells the server about membership entries as they are applied. */
export interface ConfChangeApplier {
  /**
   * Checks a committed conf change against the membership before raft applies it. An error rejects the
   * change: raft applies a no-op (node 0) in its place, as etcd does, and `applyConfChange` gets the
   * error as `rejection`.
   */
  validateConfChange?(change: ConfChange, index: number): Error | undefined;
  /** Applies a committed conf change to the membership (persisted with `index`), or records its rejection. */
  applyConfChange(change: ConfChange, confState: ConfState, index: number, rejection?: Error): Promise<void>;
}

export interface RaftLogOptions {
  readonly id: bigint;
  readonly storage: DurableRaftStorage;
  readonly send: (messages: readonly Message[]) => void;
  readonly confChanges: ConfChangeApplier;
  readonly logger: Logger;
  /** Milliseconds per raft tick (etcd's --heartbeat-interval, default 100). */
  readonly tickMs?: number;
  /** Ticks without a leader before campaigning (etcd's --election-timeout / --heartbeat-interval, default 10). */
  readonly electionTicks?: number;
  /** Seed for election jitter; random by default. */
  readonly seed?: number;
  readonly applied?: number;
  /**
   * Installs a snapshot raft accepted from the leader (the state machine at its index), after it is
   * persisted and before any later entry is applied.
   */
  readonly installSnapshot?: (snapshot: Snapshot) => Promise<void>;
  /** Told when this member gains or loses leadership, and whenever the known leader changes. */
  readonly onLeadershipChange?: (isLeader: boolean, leader: bigint) => void;
  /**
   * Told once when the loop cannot go on — persisting a Ready failed (the WAL's write or fsync: the disk
   * is full or failing), or applying committed entries threw. The log has stopped by then: nothing of
   * that Ready was applied or acknowledged (a leader may have sent its appends: a later leader may commit
   * them, as any proposal not yet acknowledged). Without it the error is only logged.
   */
  readonly onFatal?: (error: unknown) => void;
}

const READ_INDEX_TIMEOUT_MS = 5000;

/**
 * A `ReplicatedLog` backed by raft: proposals become raft entries, committed entries are applied in
 * order, linearizable reads use ReadIndex. Runs the loop raft's Ready asks for: persist (one sync) →
 * send → apply → advance, one Ready at a time, with ticks from a timer.
 */
export class RaftLog implements ReplicatedLog {
  private readonly node: RawNode;
  private readonly options: RaftLogOptions;
  private apply: ApplyCommitted | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private processing = false;
  private again = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private readonly pendingReads = new Map<
    string,
    { resolve: (index: number) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }
  >();
  private waitingForLeader: (() => void)[] = [];
  private term = 0;
  private leader = 0n;
  private commit = 0;
  private state = StateType.Follower;

  constructor(options: RaftLogOptions) {
    this.options = options;
    const electionTicks = options.electionTicks ?? 10;
    this.node = new RawNode({
      id: options.id,
      electionTick: electionTicks,
      heartbeatTick: 1,
      storage: options.storage,
      applied: options.applied ?? 0,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 512,
      checkQuorum: true,
      preVote: true,
      rand: new SeededRand(options.seed ?? randomBytes(4).readUInt32BE(0)),
      // raft's own warnings (a dropped proposal, an unpromotable member) and state changes go to the member's log.
      logger: options.logger,
    });
    const hs = options.storage.initialState().hardState;
    this.term = hs.term;
    this.commit = hs.commit;
  }

  start(_appliedIndex: number, apply: ApplyCommitted): void {
    this.apply = apply;
    const tickMs = this.options.tickMs ?? 100;
    this.ticker = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, tickMs);
    this.ticker.unref();
    // A lone voter need not wait an election timeout to lead.
    const voters = this.node.status().confState.voters;
    if (voters.length === 1 && voters[0] === this.options.id) this.node.campaign();
    this.schedule();
  }

  propose(data: Uint8Array): void {
    if (this.stopped) throw RpcError.of("stopped");
    if (this.leader === 0n) {
      // No leader yet (or an election is on): hold the proposal until one is known, as etcd's proposals
      // wait; the server's request timeout bounds the wait.
      this.waitingForLeader.push(() => this.propose(data));
      return;
    }
    try {
      this.node.propose(data);
    } catch (error) {
      if (isRaftError(error, "ProposalDropped")) throw RpcError.of("noLeader");
      throw error;
    }
    this.schedule();
  }

  proposeConfChange(change: ConfChange): void {
    if (this.stopped) throw RpcError.of("stopped");
    try {
      this.node.proposeConfChange(change);
    } catch (error) {
      if (isRaftError(error, "ProposalDropped")) throw RpcError.of("noLeader");
      throw error;
    }
    this.schedule();
  }

  step(message: Message): void {
    if (this.stopped) return;
    try {
      this.node.step(message);
    } catch (error) {
      this.options.logger.debug("dropped a raft message", { error: String(error), type: message.type });
      return;
    }
    this.schedule();
  }

  reportUnreachable(id: bigint): void {
    this.node.reportUnreachable(id);
  }

  reportSnapshot(id: bigint, status: SnapshotStatus): void {
    if (this.stopped) return;
    this.node.reportSnapshot(id, status);
    this.schedule();
  }

  transferLeadership(to: bigint): void {
    this.node.transferLeader(to);
    this.schedule();
  }

  readIndex(): Promise<number> {
    if (this.stopped) return Promise.reject(RpcError.of("stopped"));
    if (this.leader === 0n) {
      return new Promise<number>((resolve, reject) => this.waitingForLeader.push(() => void this.readIndex().then(resolve, reject)));
    }
    const ctx = randomBytes(8);
    const key = ctx.toString("hex");
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingReads.delete(key);
        reject(RpcError.of("timeout"));
      }, READ_INDEX_TIMEOUT_MS);
      this.pendingReads.set(key, { resolve, reject, timer });
      this.node.readIndex(ctx);
      this.schedule();
    });
  }

  status(): LogStatus {
    return { term: this.term, leaderId: this.leader, commitIndex: this.commit, isLeader: this.state === StateType.Leader };
  }

  progress(): ReadonlyMap<bigint, PeerProgress> {
    return this.node.status().progress;
  }

  async stop(): Promise<void> {
    this.stopTicking();
    await this.idle;
  }

  /** No more ticks; reads waiting for an index fail with "stopped". */
  private stopTicking(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    for (const [, read] of this.pendingReads) {
      clearTimeout(read.timer);
      read.reject(RpcError.of("stopped"));
    }
    this.pendingReads.clear();
  }

  /**
   * Stops the loop for good after a failure in it. Raft's state in memory may be ahead of the disk (the
   * Ready was taken but not persisted), so the only safe way on is a restart from what is on disk.
   */
  private halt(error: unknown): void {
    if (this.stopped) {
      this.options.logger.debug("raft loop error after stop", { error: String(error) });
      return;
    }
    this.stopTicking();
    this.waitingForLeader = [];
    this.options.logger.error("the raft loop stopped: persisting or applying a Ready failed", { error: String(error) });
    this.options.onFatal?.(error);
  }

  private flushWaitingForLeader(): void {
    const waiting = this.waitingForLeader;
    this.waitingForLeader = [];
    for (const retry of waiting) {
      try {
        retry();
      } catch (error) {
        this.options.logger.debug("a proposal held for a leader failed", { error: String(error) });
      }
    }
  }

  private schedule(): void {
    if (this.processing) {
      this.again = true;
      return;
    }
    if (this.stopped || this.apply === undefined || !this.node.hasReady()) return;
    this.processing = true;
    this.idle = this.processReadies()
      .catch((error: unknown) => this.halt(error))
      .finally(() => {
        this.processing = false;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
  }

  private async processReadies(): Promise<void> {
    while (!this.stopped && this.node.hasReady()) {
      const ready = this.node.ready();
      await this.handleReady(ready);
      this.node.advance();
    }
  }

  private async handleReady(ready: Ready): Promise<void> {
    const termBefore = this.term;
    if (ready.softState !== undefined) {
      const wasLeader = this.state === StateType.Leader;
      const previousLeader = this.leader;
      this.leader = ready.softState.lead;
      this.state = ready.softState.raftState;
      const isLeader = this.state === StateType.Leader;
      if (wasLeader !== isLeader) {
        this.options.logger.info(isLeader ? "became leader" : "lost leadership", { term: ready.hardState?.term ?? this.term });
      }
      if (wasLeader !== isLeader || previousLeader !== this.leader) {
        this.options.onLeadershipChange?.(isLeader, this.leader);
        if (this.leader !== 0n) this.flushWaitingForLeader();
      }
    }
    if (ready.hardState !== undefined) {
      this.term = ready.hardState.term;
      this.commit = ready.hardState.commit;
    }
    // A leader sends before it persists, so its followers write to their disks while it writes to its
    // own (Raft thesis §10.2.1). That is safe because nothing this Ready's persist covers can be
    // acknowledged before the persist ends: the leader counts its own append toward the commit index,
    // but a commit index that rests on it only leaves this member through a later Ready (committed
    // entries, messages carrying it, read states), and the next Ready is taken after this one's persist.
    // Anyone else persists first: a vote or an append acknowledged must survive a crash.
    // A Ready that changes the term (a lone voter's campaign, say) persists it before anyone hears it.
    const sendFirst =
      this.state === StateType.Leader && ready.snapshot === undefined && (ready.hardState?.term ?? termBefore) === termBefore;
    if (sendFirst && ready.messages.length > 0) this.options.send(ready.messages);
    if (ready.entries.length > 0 || ready.hardState !== undefined || ready.snapshot !== undefined) {
      // Only a commit-index change needs no fsync (raft's mustSync): it can be recovered from the log.
      await this.options.storage.persist({
        hardState: ready.hardState,
        entries: ready.entries,
        snapshot: ready.snapshot,
        mustSync: ready.mustSync,
      });
    }
    if (ready.snapshot !== undefined && ready.snapshot.metadata.index > 0) {
      await this.options.installSnapshot?.(ready.snapshot);
    }
    if (!sendFirst && ready.messages.length > 0) this.options.send(ready.messages);
    for (const rs of ready.readStates) {
      const key = Buffer.from(rs.requestCtx).toString("hex");
      const read = this.pendingReads.get(key);
      if (read === undefined) continue;
      this.pendingReads.delete(key);
      clearTimeout(read.timer);
      read.resolve(rs.index);
    }
    if (ready.committedEntries.length > 0) await this.applyEntries(ready.committedEntries);
  }

  /** Applies committed entries in order: runs of normal entries as one batch, conf changes one by one. */
  private async applyEntries(entries: readonly Entry[]): Promise<void> {
    let run: LogEntry[] = [];
    const flush = () => {
      if (run.length === 0) return;
      void this.apply!(run);
      run = [];
    };
    for (const entry of entries) {
      if (entry.type === EntryType.Normal) {
        run.push({ index: entry.index, term: entry.term, data: entry.data });
        continue;
      }
      flush();
      if (entry.type === EntryType.ConfChange) {
        let change: ConfChange;
        try {
          change = decodeConfChange(entry.data);
        } catch (error) {
          // Every member decodes the same bytes, so every member skips it alike: raft applies an empty
          // change in its place (as for a rejected one) and the entry keeps its index.
          this.options.logger.error("a committed conf change does not decode; it is applied as a no-op", {
            index: entry.index,
            error: String(error),
          });
          this.node.applyConfChange({ type: ConfChangeType.AddNode, nodeId: 0n, context: new Uint8Array(0) });
          void this.apply!([{ index: entry.index, term: entry.term, data: new Uint8Array(0) }]);
          continue;
        }
        const rejection = this.options.confChanges.validateConfChange?.(change, entry.index);
        const confState = this.node.applyConfChange(rejection === undefined ? change : { ...change, nodeId: 0n });
        try {
          await this.options.confChanges.applyConfChange(change, confState, entry.index, rejection);
        } catch (error) {
          this.options.logger.warn("rejected a membership change", { error: String(error) });
        }
        // The entry still occupies its index: tell the state machine it was applied.
        void this.apply!([{ index: entry.index, term: entry.term, data: new Uint8Array(0) }]);
      }
    }
    flush();
  }
}

export { ConfChangeType, encodeConfChange };

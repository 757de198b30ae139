import { encodeConfChange } from "./codec.js";
import { RaftError } from "./errors.js";
import { Raft, type Config } from "./raft.js";
import { ProgressState } from "./tracker/progress.js";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState } from "./types.js";
import {
  ConfChangeType,
  EntryType,
  MessageType,
  None,
  StateType,
  hardStateEqual,
  isEmptyHardState,
  isLocalMessage,
  isResponseMessage,
  newMessage,
} from "./types.js";

/**
 * Everything the application must do after the state machine moved: one batch, handed out by
 * RawNode.ready() and acknowledged by RawNode.advance().
 *
 * Ordering duties, in this order:
 * 1. If `snapshot` is set, install it: persist it (e.g. MemoryStorage.applySnapshot) and load it into the
 *    state machine. It replaces everything up to its index.
 * 2. Persist `entries` (appending, replacing any conflicting suffix) and `hardState` if set — durably
 *    (fsync) when `mustSync` is true.
 * 3. Only then send `messages`. A vote or an ack sent before its cause is persisted could be forgotten in
 *    a crash, letting a node vote twice in a term or a leader count a replica that does not exist.
 * 4. Apply `committedEntries` to the state machine, in order. Entries of type ConfChange must be passed to
 *    RawNode.applyConfChange() as they are applied. These may include entries from `entries` of this same
 *    Ready (they are committed already); step 2 comes first for that reason.
 * 5. Serve `readStates`: a read tagged with `requestCtx` may be answered once `index` is applied.
 * 6. Call advance(). Do not call ready() again before that.
 *
 * Messages of type Snap carry a snapshot: after sending one, report the outcome with reportSnapshot().
 * A message that cannot be delivered may be reported with reportUnreachable().
 */
export interface Ready {
  /** Set when the leader or role changed since the previous Ready (volatile, no need to persist). */
  softState?: SoftState;
  /** Set when term, vote or commit changed: persist it with the entries. */
  hardState?: HardState;
  /** Linearizable reads confirmed since the previous Ready. */
  readStates: ReadState[];
  /** Entries to append to stable storage before sending messages. */
  entries: Entry[];
  /** A snapshot received from the leader, to install. */
  snapshot?: Snapshot;
  /** Committed entries to apply to the state machine (already persisted, or in `entries` above). */
  committedEntries: Entry[];
  /** Messages to send to other members after the persistence above. */
  messages: Message[];
  /** Whether entries or hard state (term/vote) must be synced to disk before sending. */
  mustSync: boolean;
}

export enum SnapshotStatus {
  Finish = 0,
  Failure = 1,
}

/** A read-only copy of a progress entry, for status(). */
export interface ProgressStatus {
  match: number;
  next: number;
  state: "probe" | "replicate" | "snapshot";
  isLearner: boolean;
  recentActive: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  confState: ConfState;
  /** Only on the leader: its view of every member. */
  progress: Map<NodeId, ProgressStatus>;
}

/** What advance() needs to remember about the last Ready. */
interface Accepted {
  lastEntryIndex: number;
  lastEntryTerm: number;
  snapshotIndex: number;
  appliedCursor: number;
}

/**
 * The thread-unsafe, synchronous driver of a Raft node: the caller ticks it, steps messages into it,
 * proposes, and collects Ready batches. See Ready for the duties of the loop that drives it.
 */
export class RawNode {
  /** @internal The state machine itself; exposed for tests and the simulator. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private accepted: Accepted | undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Starts a brand-new cluster member of the initial cluster: writes one committed AddNode entry per
   * initial voter at term 1, the way etcd does, so that the log itself carries the membership history.
   * A member added later (with proposeConfChange) starts with empty storage and no bootstrap; it learns
   * the configuration by replaying that history (or from a snapshot).
   * Persist the resulting Ready before anything else. If the process dies before the bootstrap entries
   * are on disk, bootstrap again: an initial member must never restart as a joiner with an empty log.
   * @throws Error if the storage is not empty.
   */
  bootstrap(voters: readonly NodeId[]): void {
    const r = this.raft;
    if (r.raftLog.storage.lastIndex() !== 0 || r.raftLog.lastIndex() !== 0) {
      throw new Error("raft: can't bootstrap a nonempty storage");
    }
    if (voters.length === 0) throw new Error("raft: must provide at least one voter to bootstrap");
    r.becomeFollower(1, None);
    const entries: Entry[] = voters.map((id, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: new Uint8Array(0) }),
    }));
    r.raftLog.append(entries);
    // The bootstrap entries are committed by fiat: every initial member writes the same ones. They come
    // out of the next Ready as committed entries; applying them again is harmless (AddNode is idempotent).
    r.raftLog.committed = entries.length;
    for (const id of voters) r.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: new Uint8Array(0) });
  }

  /** Advances the logical clock by one tick (elections and heartbeats are measured in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first if enabled). */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /**
   * Proposes data to be appended to the log. The entry is committed later, or never (a proposal can be
   * lost in a leader change): the application matches applied entries to its proposals itself.
   * @throws RaftError ProposalDropped when there is no leader to forward to, or a leader transfer is underway.
   */
  propose(data: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
      }),
    );
  }

  /** Proposes several entries in one message: they are appended and replicated together. */
  proposeBatch(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    const entries = new Array<Entry>(data.length);
    for (let i = 0; i < data.length; i++) entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: data[i]! };
    this.raft.step(newMessage({ type: MessageType.Prop, from: this.raft.id, entries }));
  }

  /**
   * Proposes a membership change. It takes effect when the application calls applyConfChange() for the
   * committed entry. While an earlier change is unapplied, the leader replaces a new one by an empty
   * entry (so it never takes effect; propose it again later).
   */
  proposeConfChange(cc: ConfChange): void {
    this.raft.step(
      newMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }],
      }),
    );
  }

  /** Applies a committed membership change and returns the new configuration (to store in snapshots). */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Feeds a message received from another member.
   * @throws RaftError StepLocalMessage for local message types; RaftError StepPeerNotFound for a response from an
   * unknown member; RaftError ProposalDropped for a forwarded proposal that cannot be accepted.
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new RaftError("StepLocalMessage");
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) throw new RaftError("StepPeerNotFound");
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read. When confirmed, a ReadState with this context appears in a Ready; serve
   * the read after applying up to its index. Requests are dropped silently when there is no leader (retry
   * after a timeout), or on a leader change.
   */
  readIndex(requestContext: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MessageType.ReadIndex,
        from: this.raft.id,
        entries: [{ term: 0, index: 0, type: EntryType.Normal, data: requestContext }],
      }),
    );
  }

  /** Asks the leader to hand leadership to `transferee` (refused for a learner; aborted after an
   * election timeout if the transferee cannot catch up). */
  transferLeader(transferee: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  /** Tells the leader a message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.Unreachable, from: id }));
  }

  /** Tells the leader how sending a snapshot to `id` ended. */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(newMessage({ type: MessageType.SnapStatus, from: id, reject: status === SnapshotStatus.Failure }));
  }

  /** Whether ready() would return something to do. */
  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEntries()) return true;
    return r.readStates.length > 0;
  }

  /** The current batch of work (see Ready). Call advance() once it is done. */
  ready(): Ready {
    const r = this.raft;
    const entries = r.raftLog.unstableEntries().slice();
    const committedEntries = r.raftLog.nextEntries();
    r.reduceUncommittedSize(committedEntries);
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries,
      messages: r.msgs,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) {
      rd.hardState = hs;
      // Only term and vote changes need a sync; a lost commit index is re-learned from the leader.
      rd.mustSync = hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
      this.prevHardState = hs;
    }
    if (entries.length > 0) rd.mustSync = true;
    const snap = r.raftLog.unstable.snapshot;
    if (snap && snap.metadata.index !== 0) rd.snapshot = snap;
    r.msgs = [];
    r.readStates = [];
    const last = entries[entries.length - 1];
    let appliedCursor = 0;
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted) appliedCursor = lastCommitted.index;
    else if (rd.snapshot) appliedCursor = rd.snapshot.metadata.index;
    this.accepted = {
      lastEntryIndex: last ? last.index : 0,
      lastEntryTerm: last ? last.term : 0,
      snapshotIndex: rd.snapshot ? rd.snapshot.metadata.index : 0,
      appliedCursor,
    };
    return rd;
  }

  /**
   * Acknowledges the Ready last returned by ready(): its entries and snapshot are persisted and its
   * committed entries applied. Entries overwritten meanwhile (a new leader) are not marked stable.
   */
  advance(): void {
    const a = this.accepted;
    if (!a) return;
    this.accepted = undefined;
    // An applied snapshot moves the applied index too; the raft log's applied never goes backwards.
    const applied = Math.max(a.appliedCursor, this.raft.raftLog.applied);
    this.raft.advance(applied > this.raft.raftLog.applied ? applied : 0, a.lastEntryIndex, a.lastEntryTerm, a.snapshotIndex);
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.state === StateType.Leader) {
      r.trk.visit((id, pr) => {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state === ProgressState.Probe ? "probe" : pr.state === ProgressState.Replicate ? "replicate" : "snapshot",
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
        });
      });
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      confState: r.trk.confState(),
      progress,
    };
  }
}

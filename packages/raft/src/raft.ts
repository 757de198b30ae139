import { applySimpleChange, restoreConfState } from "./confchange.js";
import { RaftError, isRaftError } from "./errors.js";
import { RaftLog } from "./log.js";
import type { Logger } from "./logger.js";
import { silentLogger } from "./logger.js";
import { VoteResult } from "./quorum.js";
import type { Rand } from "./rand.js";
import { SeededRand } from "./rand.js";
import { ReadOnly } from "./read-only.js";
import type { Storage } from "./storage.js";
import { ProgressState } from "./tracker/progress.js";
import { ProgressTracker, type TrackerConfig } from "./tracker/tracker.js";
import type { Progress } from "./tracker/progress.js";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, ReadState, Snapshot, SoftState } from "./types.js";
import { EMPTY_BYTES, EntryType, MessageType, None, StateType, isEmptyHardState, newMessage, voteResponseType } from "./types.js";

/** Settings of one raft node. */
export interface Config {
  /** This node's id; never 0. */
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be less than electionTick (etcd uses 1 and 10). */
  heartbeatTick: number;
  storage: Storage;
  /** The last index the application has applied; only set when restarting. */
  applied?: number;
  /** Byte limit of the entries in one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte limit of the committed entries in one Ready. Default unlimited. */
  maxCommittedSizePerReady?: number;
  /** Bound on unacknowledged MsgApps per follower in the Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes of entry payload the leader may hold uncommitted; beyond it proposals are dropped (so a leader
   * cut off from its followers does not grow its log without bound). Default unlimited. */
  maxUncommittedEntriesSize?: number;
  /** The leader steps down if it has not heard from a quorum within an election timeout; followers that
   * heard from a leader recently refuse to vote for others (leader lease). */
  checkQuorum?: boolean;
  /** Run a pre-vote round before an election, so a partitioned node cannot inflate terms. */
  preVote?: boolean;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Source of election-timeout jitter. Default: a PRNG seeded with the id (deterministic). */
  rand?: Rand;
  logger?: Logger;
}

/** The context of vote requests sent on a leader transfer: they bypass the leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode("CampaignTransfer");

enum CampaignType {
  PreElection,
  Election,
  Transfer,
}

const NO_LIMIT = Infinity;

/**
 * The raft state machine (Ongaro & Ousterhout). Synchronous and deterministic: it reacts to step() and
 * tick() by changing its state and queueing messages in `msgs`; RawNode turns that into Ready batches.
 * step() handles the term rules once, then dispatches by role.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = None;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSize: number;
  readonly trk: ProgressTracker;
  state: StateType = StateType.Follower;
  /** Whether this node is a learner in the current configuration. */
  isLearner = false;
  /** Messages to send, in order; taken by RawNode.ready(). */
  msgs: Message[] = [];
  lead: NodeId = None;
  /** The id of the node leadership is being transferred to, or None. */
  leadTransferee: NodeId = None;
  /** Index of the last conf change in the log; a new one may only be proposed once it is applied. */
  pendingConfIndex = 0;
  private readOnly = new ReadOnly();
  /** Ticks since the last election timeout (leader: since the last check-quorum round). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** In [electionTimeout, 2 * electionTimeout), re-drawn on every term change. */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly maxUncommittedSize: number;
  /** Payload bytes of the leader's entries not yet known committed (an estimate: see reduceUncommittedSize). */
  uncommittedSize = 0;
  /** ReadIndex requests that arrived before the leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];
  private readonly rand: Rand;
  readonly logger: Logger;

  constructor(c: Config) {
    if (c.id === None) throw new RaftError("InvalidConfig", "cannot use none as id");
    if (c.heartbeatTick <= 0) throw new RaftError("InvalidConfig", "heartbeat tick must be greater than 0");
    if (c.electionTick <= c.heartbeatTick) {
      throw new RaftError("InvalidConfig", "election tick must be greater than heartbeat tick");
    }
    const maxInflight = c.maxInflightMsgs ?? 256;
    if (maxInflight <= 0) throw new RaftError("InvalidConfig", "max inflight messages must be greater than 0");
    this.id = c.id;
    this.logger = c.logger ?? silentLogger;
    this.rand = c.rand ?? new SeededRand(Number(c.id & 0xffffffffn));
    this.raftLog = new RaftLog(c.storage, this.logger, c.maxCommittedSizePerReady ?? NO_LIMIT);
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? Infinity;
    this.trk = new ProgressTracker(maxInflight);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfState(confState, maxInflight, this.raftLog.lastIndex());
    this.switchToConfig(restored.config, restored.progress);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, None);
    this.logger.info(
      `newRaft ${this.id} [peers: [${[...this.trk.config.voters].join(",")}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  hasLeader(): boolean {
    return this.lead !== None;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---------------------------------------------------------------------------------------------------
  // Sending

  /** Queues a message, stamping `from` and (for everything but votes and forwarded requests) the term. */
  private send(m: Message): void {
    if (m.from === None) m.from = this.id;
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Vote messages carry the term of the election they are about, which may not be ours.
      if (m.term === 0) throw new Error(`raft: term should be set when sending ${MessageType[m.type]}`);
    } else {
      if (m.term !== 0) throw new Error(`raft: term should not be set when sending ${MessageType[m.type]} (was ${m.term})`);
      // Forwarded proposals and read requests keep term 0: they are treated as local by the leader.
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends a MsgApp (or a MsgSnap if the entries are compacted) to `to` when there is something to send.
   * Returns whether a message was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number | undefined;
    let ents: Entry[] | undefined;
    // Entries before the first index are compacted away: go straight to a snapshot (checked up front
    // because this path runs on every heartbeat for a lagging follower, and exceptions are not cheap).
    if (pr.next >= this.raftLog.firstIndex()) {
      try {
        prevTerm = this.raftLog.term(prevIndex);
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (e) {
        // Storage compacted meanwhile; only that means "send a snapshot", anything else is a bug.
        if (!isRaftError(e, "Compacted") && !isRaftError(e, "Unavailable")) throw e;
        prevTerm = undefined;
        ents = undefined;
      }
    }
    if (ents !== undefined && ents.length === 0 && !sendIfEmpty) return false;

    if (prevTerm === undefined || ents === undefined) {
      // The entries the follower needs are compacted away: send a snapshot instead.
      if (!pr.recentActive) {
        this.logger.debug(`ignore sending snapshot to ${to} since it is not recently active`);
        return false;
      }
      let snapshot: Snapshot;
      try {
        snapshot = this.raftLog.snapshot();
      } catch (e) {
        if (isRaftError(e, "SnapshotTemporarilyUnavailable")) {
          this.logger.debug(`${this.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`);
          return false;
        }
        throw e;
      }
      if (snapshot.metadata.index === 0) throw new Error("raft: need non-empty snapshot");
      this.logger.debug(`${this.id} sends snapshot [index: ${snapshot.metadata.index}] to ${to} [${pr.toString()}]`);
      pr.becomeSnapshot(snapshot.metadata.index);
      this.send(newMessage({ type: MessageType.Snap, to, snapshot }));
      return true;
    }

    const n = ents.length;
    if (n !== 0) {
      if (pr.state === ProgressState.Replicate) {
        const last = ents[n - 1]!.index;
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
      }
    }
    this.send(
      newMessage({
        type: MessageType.App,
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to);
    // Never tell a follower to commit beyond what it is known to have: it may not have those entries.
    const commit = Math.min(pr ? pr.match : 0, this.raftLog.committed);
    this.send(newMessage({ type: MessageType.Heartbeat, to, commit, context: ctx ?? EMPTY_BYTES }));
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestContext();
    this.bcastHeartbeatWithContext(ctx);
  }

  private bcastHeartbeatWithContext(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage({ type: MessageType.TimeoutNow, to }));
  }

  // ---------------------------------------------------------------------------------------------------
  // Role changes

  /** Advances the commit index if a quorum has a newer entry of the current term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      pr.match = id === this.id ? lastIndex : 0;
      pr.next = lastIndex + 1;
      pr.state = ProgressState.Probe;
      pr.probeSent = false;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.inflights.reset();
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  /** Appends proposals to the leader's log, assigning term and index. Entries are copied: log entries are
   * immutable and shared with the messages that carry them. */
  private appendEntry(es: readonly Entry[]): boolean {
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    let li = this.raftLog.lastIndex();
    const ents = new Array<Entry>(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      ents[i] = { term: this.term, index: ++li, type: e.type, data: e.data };
    }
    li = this.raftLog.append(ents);
    // The leader's own append counts as an ack: it may persist in parallel with sending (Raft thesis
    // §10.2.1). A commit index that rests on it reaches nothing outside raft but through a later Ready,
    // which RawNode's contract hands out only after this one is persisted and advanced.
    this.trk.progress.get(this.id)?.maybeUpdate(li);
    this.maybeCommit();
    return true;
  }

  private increaseUncommittedSize(es: readonly Entry[]): boolean {
    let s = 0;
    for (const e of es) s += e.data.length;
    // An empty log of uncommitted entries always accepts a proposal, however large, so that progress
    // is possible; empty entries (the leader's no-op, replaced conf changes) are always accepted.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Called as committed entries are handed to the application: they no longer count as uncommitted.
   * Entries from previous terms were never counted, so this may undercount; it never goes below 0. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== StateType.Leader || this.uncommittedSize === 0) return;
    let s = 0;
    for (const e of ents) s += e.data.length;
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== None) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("raft: invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error("raft: invalid transition [leader -> pre-candidate]");
    // A pre-candidate changes neither its term nor its vote.
    this.trk.resetVotes();
    this.lead = None;
    this.state = StateType.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error("raft: invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id);
    if (self) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conservatively treat every entry up to now as a possible unapplied conf change: no new conf change
    // may be proposed until the leader has applied its log.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry of the new term lets the leader commit (and learn the commit index of) the entries
    // of previous terms (§5.4.2, §8).
    if (!this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }])) {
      throw new Error("raft: empty entry was dropped");
    }
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    // A node with an unapplied conf change must not campaign: it does not know its configuration yet.
    if (this.raftLog.committed > this.raftLog.applied) {
      const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
      const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, NO_LIMIT);
      if (ents.some((e) => e.type !== EntryType.Normal)) {
        this.logger.warn(`${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`);
        return;
      }
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      // Pre-vote asks about the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, voteResponseType(voteMsg), true) === VoteResult.Won) {
      // A single-voter cluster wins at once.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: lastIndex,
          logTerm: lastTerm,
          context: t === CampaignType.Transfer ? CAMPAIGN_TRANSFER : EMPTY_BYTES,
        }),
      );
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    this.logger.debug(`${this.id} received ${MessageType[t]} ${granted ? "" : "rejection "}from ${id} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------------------------------------------
  // Stepping

  /**
   * Processes one message. Handles terms first (§5.1: a higher term makes us a follower; a lower term is
   * stale), then votes, then dispatches by role.
   * @throws RaftError ProposalDropped when a MsgProp cannot be accepted.
   */
  step(m: Message): void {
    if (m.term === 0) {
      // Local message (or a forwarded proposal / read request).
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader lease: we heard from a leader within the minimum election timeout, so do not let a
          // (possibly partitioned, disruptive) node depose it.
          this.logger.info(
            `${this.id} [term: ${this.term}] ignored ${MessageType[m.type]} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${m.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we move to it once we win the pre-vote.
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] received a ${MessageType[m.type]} message with higher term from ${m.from} [term: ${m.term}]`,
        );
        const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.becomeFollower(m.term, fromLeader ? m.from : None);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A leader cut off from the cluster (whose term we passed, possibly through pre-vote-less
        // elections) would otherwise never learn about the new term; answering tells it to step down.
        this.send(newMessage({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        // Let a pre-candidate with a stale term know it lost, so it does not wait forever.
        this.send(newMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      } else {
        this.logger.debug(
          `${this.id} [term: ${this.term}] ignored a ${MessageType[m.type]} message with lower term from ${m.from} [term: ${m.term}]`,
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // We can vote if we already voted for this candidate (a duplicate), or have not voted and do not
        // know a leader in this term, or it is a pre-vote for a future term.
        const canVote =
          this.vote === m.from || (this.vote === None && this.lead === None) || (m.type === MessageType.PreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] cast ${MessageType[m.type]} for ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          // Reply with the term of the request: for a pre-vote it is a term we have not reached.
          this.send(newMessage({ type: voteResponseType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${MessageType[m.type]} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          this.send(newMessage({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        switch (this.state) {
          case StateType.Leader:
            this.stepLeader(m);
            return;
          case StateType.Candidate:
          case StateType.PreCandidate:
            this.stepCandidate(m);
            return;
          case StateType.Follower:
            this.stepFollower(m);
            return;
        }
    }
  }

  private stepLeader(m: Message): void {
    // Messages that do not need the sender's progress.
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum: {
        const self = this.trk.progress.get(this.id);
        if (self) self.recentActive = true;
        if (!this.trk.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, None);
        }
        // Start a fresh round: everyone must be heard from again before the next check.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      }
      case MessageType.Prop: {
        if (m.entries.length === 0) throw new Error(`raft: ${this.id} stepped empty MsgProp`);
        if (!this.trk.progress.has(this.id)) {
          // We were removed from the configuration while leader; stop accepting proposals.
          throw new RaftError("ProposalDropped", "leader was removed from the configuration");
        }
        if (this.leadTransferee !== None) {
          throw new RaftError("ProposalDropped", `leadership is being transferred to ${this.leadTransferee}`);
        }
        let entries = m.entries;
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i]!;
          if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) {
            if (this.pendingConfIndex > this.raftLog.applied) {
              // One membership change at a time: replace it by an empty entry (it still gets an index,
              // which keeps indexes predictable for the proposer, who sees it never applied).
              this.logger.info(
                `${this.id} propose conf change ignored since pending unapplied configuration [index ${this.pendingConfIndex}, applied ${this.raftLog.applied}]`,
              );
              if (entries === m.entries) entries = entries.slice();
              entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
            } else {
              this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
            }
          }
        }
        if (!this.appendEntry(entries)) throw new RaftError("ProposalDropped", "too many uncommitted entries");
        this.bcastAppend();
        return;
      }
      case MessageType.ReadIndex: {
        if (this.trk.isSingleton()) {
          // A single voter is its own quorum.
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // §8: the commit index is only known to be current once an entry of this term is committed.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.startReadIndexRound(m);
        return;
      }
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // Free one slot so a follower with a full window gets at least one message per heartbeat.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
        if (m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks) return;
        let voterAcks = 0;
        for (const id of acks) if (this.trk.config.voters.has(id)) voterAcks++;
        if (voterAcks < Math.floor(this.trk.config.voters.size / 2) + 1) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (!m.reject) {
          this.logger.debug(`${this.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
        } else {
          // The snapshot did not arrive; forget it, probe again (which sends a new snapshot if needed).
          pr.pendingSnapshot = 0;
          this.logger.debug(`${this.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
        }
        pr.becomeProbe();
        // Wait for the follower's MsgAppResp (or a heartbeat response) before probing further.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        // Optimistic replication probably lost messages: go back to probing.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.logger.debug(`${this.id} failed to send message to ${m.from} because it is unreachable [${pr.toString()}]`);
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) {
          this.logger.info(`${this.id} is ignoring leader transfer to learner ${m.from}`);
          return;
        }
        const transferee = m.from;
        if (this.leadTransferee !== None) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        // The transfer must finish within an election timeout (tickHeartbeat aborts it otherwise).
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) {
          this.sendTimeoutNow(transferee);
        } else {
          // Catch the target up first; handleAppendResponse sends TimeoutNow once it matches.
          this.sendAppend(transferee);
        }
        return;
      }
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // Fast back-off: the follower's hint (and its term there) lets us skip a whole term per round trip.
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    // A stale ack changes nothing. (etcd-io/raft also ends a probe on an ack that merely confirms the
    // match; under duplicated and reordered messages that flips followers between probe and replicate
    // and multiplied the traffic in our simulator several times over, so we leave the probe to the next
    // heartbeat response instead.)
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    // Send as much as the window allows (pipelining).
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
      this.sendTimeoutNow(m.from);
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new RaftError("ProposalDropped", "no leader (candidate)");
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteResp: {
        const result = this.poll(m.from, m.type, !m.reject);
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // A pre-candidate that lost stays at its term; a candidate stays at the term it started.
          this.becomeFollower(this.term, None);
        }
        return;
      }
      case MessageType.TimeoutNow:
        this.logger.debug(`${this.id} [term ${this.term} state ${StateType[this.state]}] ignored MsgTimeoutNow from ${m.from}`);
        return;
      case MessageType.ReadIndex:
        this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === None) throw new RaftError("ProposalDropped", "no leader");
        if (this.disableProposalForwarding) throw new RaftError("ProposalDropped", "proposal forwarding is disabled");
        this.send({ ...m, to: this.lead, from: None });
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === None) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
          return;
        }
        this.send({ ...m, to: this.lead, from: m.from === None ? this.id : m.from, term: 0 });
        return;
      case MessageType.TimeoutNow:
        this.logger.info(`${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership.`);
        // Leadership transfers never use pre-vote: the leader asked for this election.
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === None) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.send({ ...m, to: this.lead, from: None });
        return;
      case MessageType.ReadIndexResp:
        if (m.entries.length !== 1) {
          this.logger.error(`${this.id} invalid format of MsgReadIndexResp from ${m.from}, entries count: ${m.entries.length}`);
          return;
        }
        this.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is settled; tell the leader where we are.
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Mismatch: hint the largest index that could match, with its term, so the leader can skip back
    // past all the entries of a term at once.
    let hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    hintIndex = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    const hintTerm = this.raftLog.zeroTermOnError(hintIndex);
    this.logger.debug(
      `${this.id} [logterm: ${this.raftLog.zeroTermOnError(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`,
    );
    this.send(
      newMessage({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] restored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
      );
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
      );
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot into the log and configuration if it is news to us. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Defensive: only a follower installs snapshots. Move to a new term so no two leaders share one.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      this.logger.warn(`${this.id} attempted to restore snapshot but it is not in the ConfState; should never happen`);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entry the snapshot ends at: fast-forward the commit index instead.
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] fast-forwarded commit to snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
      );
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    const restored = restoreConfState(cs, this.trk.maxInflight, this.raftLog.lastIndex());
    this.switchToConfig(restored.config, restored.progress);
    return true;
  }

  /** Whether this node may become leader: it is a voter and not in the middle of installing a snapshot. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  /** Applies a committed membership change; returns the resulting ConfState. */
  applyConfChange(cc: ConfChange): ConfState {
    const result = applySimpleChange(
      {
        config: this.trk.config,
        progress: this.trk.progress,
        maxInflight: this.trk.maxInflight,
        lastIndex: this.raftLog.lastIndex(),
      },
      cc,
    );
    return this.switchToConfig(result.config, result.progress);
  }

  private switchToConfig(config: TrackerConfig, progress: Map<NodeId, Progress>): ConfState {
    this.trk.setConfig(config, progress);
    const cs = this.trk.confState();
    const self = progress.get(this.id);
    this.isLearner = self !== undefined && self.isLearner;
    if ((self === undefined || this.isLearner) && this.state === StateType.Leader) {
      // The leader removed (or demoted) itself. The change is committed (it is applied), so a quorum
      // of the new configuration holds it and can elect a leader that has it; step down so they do.
      this.becomeFollower(this.term, None);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      // The new configuration may have a smaller quorum that already holds newer entries.
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== None && !this.trk.config.voters.has(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return cs;
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(
        `raft: ${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnError(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.startReadIndexRound(m);
  }

  /** Remembers the commit index for this read and confirms leadership with a heartbeat round. */
  private startReadIndexRound(m: Message): void {
    const ctx = m.entries[0]!.data;
    this.readOnly.addRequest(this.raftLog.committed, m);
    // The leader acks its own request.
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeatWithContext(ctx);
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0]!.data });
      return;
    }
    this.send(newMessage({ type: MessageType.ReadIndexResp, to: req.from, index: readIndex, entries: req.entries }));
  }

  /** Called by RawNode.advance: the application applied up to `applied`, persisted up to (index, term). */
  advance(applied: number, stableIndex: number, stableTerm: number, stableSnapIndex: number): void {
    if (applied > 0) this.raftLog.appliedTo(applied);
    if (stableIndex > 0) this.raftLog.stableTo(stableIndex, stableTerm);
    if (stableSnapIndex > 0) this.raftLog.stableSnapTo(stableSnapIndex);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A simulated cluster for randomized and scripted tests: RawNodes driven by the persist → send → apply →
// advance loop, over a network that can drop, delay and reorder, duplicate and partition messages, with
// nodes that crash (losing everything not persisted) and restart from their MemoryStorage. Every Ready is
// checked against Raft's safety properties; a violation throws SafetyViolation.
import { decodeConfChange } from "../codec.js";
import { isRaftError } from "../errors.js";
import type { Logger } from "../logger.js";
import { SeededRand } from "../rand.js";
import { RawNode, SnapshotStatus, type Ready } from "../rawnode.js";
import { MemoryStorage } from "../storage.js";
import type { ConfChange, ConfState, Entry, Message, NodeId, Snapshot } from "../types.js";
import { EntryType, MessageType, StateType, isEmptySnapshot } from "../types.js";

export class SafetyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetyViolation";
  }
}

export interface SimOptions {
  seed: number;
  /** Initial voters (their storages hold this membership). */
  voters: NodeId[];
  /** Ids of nodes that exist but start outside the configuration (to be added later). */
  spares?: NodeId[];
  preVote?: boolean;
  checkQuorum?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntriesSize?: number;
  maxCommittedSizePerReady?: number;
  electionTick?: number;
  heartbeatTick?: number;
  /** Probability that a sent message is lost. */
  dropRate?: number;
  /** Probability that a sent message is delivered twice. */
  duplicateRate?: number;
  logger?: Logger;
}

interface InFlight {
  m: Message;
}

/** FNV-1a over the previous digest and an entry: two nodes have the same digest at an index iff they
 * applied the same sequence of entries (with overwhelming probability). */
function digestStep(prev: number, e: Entry): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  const mix = (b: number) => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  mix(e.term);
  mix(e.term >>> 8);
  mix(e.index);
  mix(e.index >>> 8);
  mix(e.type);
  for (let i = 0; i < e.data.length; i++) mix(e.data[i]!);
  return h;
}

function encodeSnapData(digest: number): Uint8Array {
  return new TextEncoder().encode(String(digest));
}

function decodeSnapData(data: Uint8Array): number {
  return Number(new TextDecoder().decode(data));
}

export class SimNode {
  readonly id: NodeId;
  /** What survives a crash. */
  readonly storage: MemoryStorage;
  raw: RawNode | undefined;
  /** The state machine (lost in a crash, rebuilt from the snapshot and the log). */
  appliedIndex = 0;
  digest = 0;
  confState: ConfState;
  /** Data of applied normal entries, in order (since the last snapshot install). */
  appliedData: string[] = [];
  /** Every ReadState this node produced: request context -> read index. */
  readonly reads = new Map<string, number>();

  constructor(id: NodeId, storage: MemoryStorage) {
    this.id = id;
    this.storage = storage;
    this.confState = storage.snapshot().metadata.confState;
  }

  get alive(): boolean {
    return this.raw !== undefined;
  }
}

/** A cluster under test. Methods are the actions of the randomized test and of scenario scripts. */
export class SimCluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly rand: SeededRand;
  readonly opts: SimOptions;
  /** Messages sent and not yet delivered, in send order. */
  network: InFlight[] = [];
  /** group id per node; nodes talk only within the same group. Empty = fully connected. */
  private partition = new Map<NodeId, number>();
  /** Directed links that drop everything. */
  private cutLinks = new Set<string>();
  dropRate: number;
  duplicateRate: number;
  // Checker state.
  private leaderOfTerm = new Map<number, NodeId>();
  /** `${index}:${term}` -> `${prevTerm}:${dataKey}` for every entry seen in any log. */
  private entryIdentity = new Map<string, string>();
  /** Index -> term of every entry known committed. */
  readonly committedTerms = new Map<number, number>();
  /** Index -> digest of the state machine after applying it. */
  private digests = new Map<number, number>();
  /** Pending reads: context -> the minimum index a correct answer must have. */
  private pendingReads = new Map<string, number>();
  readsServed = 0;
  proposalsApplied = 0;
  private proposalSeq = 0;
  trace: string[] = [];
  /** Snapshot outcomes to report to leaders, as a transport would (on delivery or loss of a MsgSnap). */
  private snapshotReports: { leader: NodeId; to: NodeId; status: SnapshotStatus }[] = [];

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rand = new SeededRand(opts.seed);
    this.dropRate = opts.dropRate ?? 0;
    this.duplicateRate = opts.duplicateRate ?? 0;
    for (const id of [...opts.voters, ...(opts.spares ?? [])]) this.nodes.set(id, new SimNode(id, new MemoryStorage()));
    for (const n of this.nodes.values()) {
      this.start(n);
      // Initial members write the membership into their logs; spares start empty and learn it by
      // replaying the log (or from a snapshot) once added.
      if (opts.voters.includes(n.id)) n.raw!.bootstrap(opts.voters);
    }
    // Bootstrapping completes by persisting the bootstrap entries, before the node does anything else.
    // (A member that crashed before that would have to bootstrap again, not restart as a joiner: replaying
    // the bootstrap entries one by one passes through configurations that were never in force.)
    this.processReadies();
  }

  private log(s: string): void {
    this.trace.push(s);
    if (this.trace.length > 400) this.trace.splice(0, 200);
  }

  node(id: NodeId | number): SimNode {
    const n = this.nodes.get(BigInt(id));
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private start(n: SimNode): void {
    const snap = n.storage.snapshot();
    n.appliedIndex = snap.metadata.index;
    n.digest = snap.metadata.index === 0 ? 0 : decodeSnapData(snap.data);
    n.confState = snap.metadata.confState;
    n.appliedData = [];
    n.raw = new RawNode({
      id: n.id,
      electionTick: this.opts.electionTick ?? 10,
      heartbeatTick: this.opts.heartbeatTick ?? 1,
      storage: n.storage,
      applied: n.appliedIndex,
      preVote: this.opts.preVote ?? false,
      checkQuorum: this.opts.checkQuorum ?? false,
      maxSizePerMsg: this.opts.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: this.opts.maxInflightMsgs ?? 256,
      maxUncommittedEntriesSize: this.opts.maxUncommittedEntriesSize,
      maxCommittedSizePerReady: this.opts.maxCommittedSizePerReady,
      rand: new SeededRand(this.rand.intn(2 ** 31)),
      logger: this.opts.logger,
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Actions

  tick(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    n.raw.tick();
    this.processReadies();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.raw?.tick();
      this.processReadies();
    }
  }

  campaign(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    this.log(`campaign ${id}`);
    n.raw.campaign();
    this.processReadies();
  }

  /** Proposes `data` (default: a unique string) at node id; returns false if it was dropped. */
  propose(id: NodeId, data?: string): boolean {
    const n = this.node(id);
    if (!n.raw) return false;
    const payload = data ?? `p${this.proposalSeq++}`;
    try {
      n.raw.propose(new TextEncoder().encode(payload));
      this.log(`propose ${payload} at ${id}`);
    } catch (e) {
      if (!isRaftError(e, "ProposalDropped")) throw e;
      this.log(`propose ${payload} at ${id}: dropped`);
      return false;
    } finally {
      this.processReadies();
    }
    return true;
  }

  proposeConfChange(id: NodeId, cc: ConfChange): boolean {
    const n = this.node(id);
    if (!n.raw) return false;
    try {
      n.raw.proposeConfChange(cc);
      this.log(`propose conf change ${cc.type}:${cc.nodeId} at ${id}`);
    } catch (e) {
      if (!isRaftError(e, "ProposalDropped")) throw e;
      return false;
    } finally {
      this.processReadies();
    }
    return true;
  }

  /** Starts a linearizable read at node id. Its answer must be at least the highest index applied anywhere
   * now (every write acknowledged before the read started). */
  readIndex(id: NodeId, ctx: string): void {
    const n = this.node(id);
    if (!n.raw) return;
    let floor = 0;
    for (const o of this.nodes.values()) floor = Math.max(floor, o.appliedIndex);
    this.pendingReads.set(ctx, floor);
    this.log(`readIndex ${ctx} at ${id} (floor ${floor})`);
    n.raw.readIndex(new TextEncoder().encode(ctx));
    this.processReadies();
  }

  transferLeader(id: NodeId, to: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    this.log(`transfer leader to ${to} via ${id}`);
    n.raw.transferLeader(to);
    this.processReadies();
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    this.log(`crash ${id}`);
    n.raw = undefined;
  }

  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.raw) return;
    this.log(`restart ${id}`);
    this.start(n);
    this.processReadies();
  }

  /** Splits the nodes into groups that cannot talk to each other. */
  setPartition(groups: NodeId[][]): void {
    this.partition.clear();
    groups.forEach((g, i) => g.forEach((id) => this.partition.set(id, i)));
    this.log(`partition ${groups.map((g) => `[${g.join(",")}]`).join(" ")}`);
  }

  isolate(id: NodeId): void {
    const others = [...this.nodes.keys()].filter((x) => x !== id);
    this.setPartition([[id], others]);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutLinks.add(`${a}->${b}`);
    this.cutLinks.add(`${b}->${a}`);
  }

  heal(): void {
    this.partition.clear();
    this.cutLinks.clear();
    this.log("heal");
  }

  connected(a: NodeId, b: NodeId): boolean {
    if (this.cutLinks.has(`${a}->${b}`)) return false;
    if (this.partition.size === 0) return true;
    return (this.partition.get(a) ?? -1) === (this.partition.get(b) ?? -1);
  }

  /** Delivers the in-flight message at position i (or drops it if the link is down or the node is dead). */
  deliverAt(i: number): void {
    const [f] = this.network.splice(i, 1);
    if (!f) return;
    const m = f.m;
    const to = this.nodes.get(m.to);
    if (!to?.raw || !this.connected(m.from, m.to)) {
      this.lost(m);
      this.processReadies();
      return;
    }
    try {
      to.raw.step(m);
    } catch (e) {
      if (!isRaftError(e, "ProposalDropped") && !isRaftError(e, "StepPeerNotFound")) throw e;
    }
    if (m.type === MessageType.Snap) this.snapshotReports.push({ leader: m.from, to: m.to, status: SnapshotStatus.Finish });
    this.processReadies();
  }

  /** Delivers a random in-flight message (the network reorders freely). */
  deliverRandom(): void {
    if (this.network.length === 0) return;
    this.deliverAt(this.rand.intn(this.network.length));
  }

  /** Delivers messages in order until none is left (bounded, in case nodes keep talking). */
  deliverAll(limit = 100000): void {
    for (let i = 0; i < limit && this.network.length > 0; i++) this.deliverAt(0);
  }

  dropRandom(): void {
    if (this.network.length === 0) return;
    const [f] = this.network.splice(this.rand.intn(this.network.length), 1);
    if (f) this.lost(f.m);
    this.processReadies();
  }

  /** A message was lost: a transport notices a failed snapshot stream and reports it. */
  private lost(m: Message): void {
    if (m.type === MessageType.Snap) this.snapshotReports.push({ leader: m.from, to: m.to, status: SnapshotStatus.Failure });
  }

  /** Takes a snapshot at the node's applied index and compacts its log (keeping `keep` entries). */
  compact(id: NodeId, keep = 0): void {
    const n = this.node(id);
    const at = n.appliedIndex - keep;
    if (at <= n.storage.snapshot().metadata.index || at <= 0) return;
    // The ConfState at `at` is needed; we only snapshot at the applied index, where we know it.
    if (keep !== 0) return;
    n.storage.createSnapshot(at, n.confState, encodeSnapData(n.digest));
    n.storage.compact(at);
    this.log(`compact ${id} at ${at}`);
  }

  // ---------------------------------------------------------------------------------------------------
  // The driving loop, with checks

  processReadies(): void {
    for (let round = 0; round < 100; round++) {
      const reports = this.snapshotReports;
      this.snapshotReports = [];
      for (const r of reports) this.nodes.get(r.leader)?.raw?.reportSnapshot(r.to, r.status);
      let any = false;
      for (const n of this.nodes.values()) {
        if (n.raw && n.raw.hasReady()) {
          any = true;
          this.handleReady(n, n.raw.ready());
          n.raw.advance();
        }
      }
      if (!any) break;
    }
    this.checkLeaders();
  }

  private handleReady(n: SimNode, rd: Ready): void {
    // 1. Install a snapshot.
    if (rd.snapshot && !isEmptySnapshot(rd.snapshot)) this.installSnapshot(n, rd.snapshot);
    // 2. Persist entries and hard state (checking log matching for every entry that enters a log).
    for (const e of rd.entries) this.checkLogMatching(n, e);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    // 3. Send.
    for (const m of rd.messages) this.send(m);
    // 4. Apply.
    for (const e of rd.committedEntries) this.apply(n, e);
    // 5. Reads.
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.requestCtx);
      const floor = this.pendingReads.get(ctx);
      if (floor !== undefined && rs.index < floor) {
        this.fail(
          `linearizability: read ${ctx} at node ${n.id} got index ${rs.index} < ${floor}, an index applied before the read started`,
        );
      }
      n.reads.set(ctx, rs.index);
      this.readsServed++;
    }
  }

  private installSnapshot(n: SimNode, s: Snapshot): void {
    const want = this.digests.get(s.metadata.index);
    const got = decodeSnapData(s.data);
    if (want !== undefined && want !== got) {
      this.fail(`snapshot at index ${s.metadata.index} installed on ${n.id} has state ${got}, others applied ${want}`);
    }
    n.storage.applySnapshot(s);
    n.appliedIndex = s.metadata.index;
    n.digest = got;
    n.confState = s.metadata.confState;
    n.appliedData = [];
    this.log(`node ${n.id} installed snapshot at ${s.metadata.index}`);
  }

  private send(m: Message): void {
    if (this.rand.next() < this.dropRate) {
      this.lost(m);
      return;
    }
    this.network.push({ m });
    if (this.duplicateRate > 0 && this.rand.next() < this.duplicateRate) this.network.push({ m });
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.appliedIndex + 1) {
      this.fail(`node ${n.id} applies index ${e.index} after ${n.appliedIndex}: gap or repeat`);
    }
    const known = this.committedTerms.get(e.index);
    if (known !== undefined && known !== e.term) {
      this.fail(`state machine safety: index ${e.index} applied with term ${e.term} on ${n.id}, term ${known} elsewhere`);
    }
    this.committedTerms.set(e.index, e.term);
    n.digest = digestStep(n.digest, e);
    const d = this.digests.get(e.index);
    if (d !== undefined && d !== n.digest) {
      this.fail(`state machine safety: node ${n.id} applied a different entry sequence up to index ${e.index}`);
    }
    this.digests.set(e.index, n.digest);
    n.appliedIndex = e.index;
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      n.confState = n.raw!.applyConfChange(cc);
      this.log(
        `node ${n.id} applied conf change ${cc.type}:${cc.nodeId} -> voters [${n.confState.voters.join(",")}] learners [${n.confState.learners.join(",")}]`,
      );
    } else if (e.data.length > 0) {
      n.appliedData.push(new TextDecoder().decode(e.data));
      this.proposalsApplied++;
    }
  }

  private checkLogMatching(n: SimNode, e: Entry): void {
    let prevTerm: number;
    try {
      prevTerm = n.raw!.raft.raftLog.term(e.index - 1);
    } catch {
      return;
    }
    const key = `${e.index}:${e.term}`;
    const identity = `${prevTerm}:${e.type}:${new TextDecoder().decode(e.data)}`;
    const seen = this.entryIdentity.get(key);
    if (seen !== undefined && seen !== identity) {
      this.fail(`log matching: entry ${key} on node ${n.id} is ${identity}, elsewhere ${seen}`);
    }
    this.entryIdentity.set(key, identity);
  }

  private checkLeaders(): void {
    for (const n of this.nodes.values()) {
      const r = n.raw?.raft;
      if (!r || r.state !== StateType.Leader) continue;
      const prev = this.leaderOfTerm.get(r.term);
      if (prev === undefined) {
        this.leaderOfTerm.set(r.term, r.id);
        this.log(`node ${r.id} is leader of term ${r.term}`);
        this.checkLeaderCompleteness(r.id);
      } else if (prev !== r.id) {
        this.fail(`election safety: two leaders in term ${r.term}: ${prev} and ${r.id}`);
      }
    }
  }

  /** Every entry committed so far is in the new leader's log (unless compacted into its snapshot). */
  private checkLeaderCompleteness(id: NodeId): void {
    const log = this.node(id).raw!.raft.raftLog;
    const first = log.firstIndex();
    for (const [index, term] of this.committedTerms) {
      if (index < first) continue;
      if (index > log.lastIndex() || log.zeroTermOnError(index) !== term) {
        this.fail(`leader completeness: leader ${id} of term ${log.lastTerm()} lacks committed entry ${index} (term ${term})`);
      }
    }
  }

  fail(msg: string): never {
    throw new SafetyViolation(`${msg}\n--- last actions ---\n${this.trace.slice(-Number(process.env.RAFT_TRACE ?? 40)).join("\n")}`);
  }

  // ---------------------------------------------------------------------------------------------------
  // Queries

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      const r = n.raw?.raft;
      if (r && r.state === StateType.Leader && (!best || r.term > best.raw!.raft.term)) best = n;
    }
    return best;
  }

  pendingMessages(type?: MessageType): number {
    return type === undefined ? this.network.length : this.network.filter((f) => f.m.type === type).length;
  }
}

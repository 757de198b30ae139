import { create, fromBinary } from "@bufbuild/protobuf";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  AlarmType,
  HashKVResponseSchema,
  HashResponseSchema,
  InternalRaftRequestSchema,
  MemberListResponseSchema,
  MemberSchema,
  GrpcCode,
  RangeRequestSchema,
  ResponseHeaderSchema,
  RpcError,
  StatusResponseSchema,
  isRpcError,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HashKVResponse,
  type HashResponse,
  type InternalRaftRequest,
  type MemberListResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from "@etcd-ts/api";
import { parseSimpleToken, type AuthInfo, type AuthStore } from "@etcd-ts/auth";
import { isLeaseError, type Clock, type Lessor } from "@etcd-ts/lease";
import { isMvccError } from "@etcd-ts/mvcc";
import { MessageType, type ConfChange, type Message, type Snapshot as RaftSnapshot } from "@etcd-ts/raft";
import { rm } from "node:fs/promises";
import { shipBackendSnapshot, storeReceivedSnapshot } from "./peer/snapshot-transfer.js";
import { SnapshotShipping } from "./peer/snapshot-shipping.js";
import { isStorageError, type Backend } from "@etcd-ts/storage";
import { MAX_ENTRY_DATA_BYTES, type DiskRaftStorage, isWalError } from "@etcd-ts/wal";
import { TXN_DECODE_RECURSION_LIMIT, isApplyEntryError, validateRequest } from "./apply/index.js";
import type { ApplyBatchResult, ApplyResult, CommittedRequest } from "./apply/types.js";
import { ETCD_API_VERSION, type ServerConfig } from "./config.js";
import { RaftLog, type RaftLogOptions } from "./consensus/raft-log.js";
import type { LogEntry, PeerProgress, ReplicatedLog } from "./consensus/replicated-log.js";
import { toRpcError } from "./errors.js";
import { hashBackend } from "./maintenance/hash.js";
import { leaseKeysOf } from "./apply/auth-applier.js";
import { silentLogger, type Logger } from "./log.js";
import { MembershipChangeApplier } from "./membership/conf-change-applier.js";
import { AlarmStore, answerOverQuota } from "./apply/alarm.js";
import { CorruptionChecker } from "./maintenance/corruption-check.js";
import type { Member, Membership } from "./membership/membership.js";
import { httpPeerNetwork } from "./peer/http-peer-network.js";
import type {
  PeerAnswerOf,
  PeerNetwork,
  PeerNetworkFactory,
  PeerRequestHandler,
  PeerRequestKind,
  PeerRequestOf,
} from "./peer/peer-network.js";
import { maxRaftFrameBytes } from "./peer/transport.js";
import { encodeProposal } from "./proposal-encoding.js";
import { peekRequestId, sameBytes } from "./request-id.js";
import { AppliedIndexWaiters, DEFAULT_MAX_PROPOSAL_WAITERS, WaitRegistry } from "./wait.js";
import { MemberState, type MemberStateDeps } from "./member-state.js";
import { bootstrapMember, type BootstrappedMember } from "./bootstrap.js";
import { SimpleTokenWait, type CancellableCall } from "./auth/simple-token-wait.js";

export type { CancellableCall } from "./auth/simple-token-wait.js";

export interface EtcdServerOptions {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly logger?: Logger;
  /** How long a proposal may take to apply before the client gets `etcdserver: request timed out`. */
  readonly requestTimeoutMs?: number;
  /** Milliseconds per raft tick (etcd's --heartbeat-interval, default 100). */
  readonly tickMs?: number;
  /** Ticks per election timeout (etcd's --election-timeout / --heartbeat-interval, default 10). */
  readonly electionTicks?: number;
  /** Applied entries between raft snapshots (etcd's --snapshot-count). */
  readonly snapshotCount?: number;
  /** Entries kept behind a raft snapshot (etcd's SnapshotCatchUpEntries, 5000; tests make it small). */
  readonly snapshotCatchUpEntries?: number;
  readonly clock?: Clock;
  /** Builds the member's replicated log from what the member gives it; a `RaftLog` unless told otherwise. */
  readonly openLog?: (options: RaftLogOptions) => ReplicatedLog;
  /** The network between members (raft messages, databases, peer requests); the peer URLs over HTTP unless told otherwise. */
  readonly peerNetwork?: PeerNetworkFactory;
}

/** What a member reports as it works (the metrics hang off this). */
export interface ServerObserver {
  proposalStarted?(): void;
  /** `ok` false: the proposal failed or timed out. */
  proposalFinished?(ok: boolean): void;
  /** A leader became known (`leader` ≠ 0) or was lost, or this member gained or lost leadership. */
  leaderChanged?(isLeader: boolean, leader: bigint): void;
}

/** etcd's request timeout: 5 s plus two election timeouts of the default 1 s. */
const DEFAULT_REQUEST_TIMEOUT_MS = 7000;
const DEFAULT_SNAPSHOT_COUNT = 10_000;
/** Entries kept behind a raft snapshot so a slightly slow follower catches up from the log. */
const SNAPSHOT_CATCH_UP_ENTRIES = 5000;
const LEASE_EXPIRY_INTERVAL_MS = 500;
/** The key etcd's health checks read. */
/** A proposal's encoded entry and the request it was encoded from. */
interface ProposedRequest {
  readonly data: Uint8Array;
  readonly request: InternalRaftRequest;
}

const HEALTH_KEY = new TextEncoder().encode("health");

/**
 * One member: the MVCC state machine behind raft. Every write — KV, leases, membership — is proposed
 * as an `InternalRaftRequest` (or a raft conf change), replicated, committed and applied in log order on
 * every member, and answered once applied and durable. Linearizable reads wait for raft's ReadIndex to
 * be applied; serializable reads are answered from local state at once. A member alone is a cluster of
 * one: the same path.
 *
 * It builds none of its stores: `start` opens them first (`bootstrap.ts`: membership, leases, auth,
 * alarms, the member's state, the raft log) and hands them over. What a snapshot from the leader
 * replaces is one `MemberState`; databases travel between members through `SnapshotShipping`.
 */
export class EtcdServer {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly membership: Membership;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  /** Replaced as one unit when a snapshot from the leader replaces the backend (see `state`). */
  private current: MemberState;
  /** Databases shipped to followers behind the log, and those received from the leader. */
  private readonly snapshots: SnapshotShipping;
  private readonly stateReplacedListeners = new Set<() => void>();
  private readonly corruptionChecker: CorruptionChecker;
  /** The last apply batch's durability, so a snapshot install waits for it. */
  private lastDurable: Promise<void> = Promise.resolve();
  private readonly log: ReplicatedLog;
  private readonly storage: DiskRaftStorage;
  private readonly network: PeerNetwork;
  private readonly logger: Logger;
  /** Proposals waiting for their apply result, each with the request it encoded (see `decodeEntry`). */
  private readonly waits: WaitRegistry<ApplyResult, ProposedRequest>;
  private readonly confChangeWaits: WaitRegistry<void>;
  private readonly membershipChanges: MembershipChangeApplier;
  /** The cluster's alarms (NOSPACE, CORRUPT) and the backend quota. */
  readonly alarms: AlarmStore;
  private markRemoved: () => void = () => undefined;
  private removed = false;
  /** Resolves when this member applies its own removal from the cluster; it then stops serving. */
  readonly removedFromCluster = new Promise<void>((resolve) => (this.markRemoved = resolve));
  private markFailed: (error: Error) => void = () => undefined;
  private failure: Error | undefined;
  /**
   * Resolves, with what happened, when the member stopped because it could not go on safely — mostly
   * because its disk failed under it (the message then starts "its disk failed: "): the WAL
   * could not be written or synced, or the backend could not commit (full or failing). What that write
   * held was not acknowledged; a restart once there is space again (or the disk is repaired) recovers
   * every acknowledged write from the WAL and the backend.
   */
  readonly stoppedByFailure = new Promise<Error>((resolve) => (this.markFailed = resolve));
  private readonly applied = new AppliedIndexWaiters();
  /** Calls whose simple token names an entry this member has not applied yet wait here. */
  private readonly tokenWait: SimpleTokenWait;
  private readonly requestTimeoutMs: number;
  private readonly snapshotCount: number;
  private readonly snapshotCatchUpEntries: number;
  private nextRequestId: bigint;
  private lastSnapshotIndex: number;
  private leaseTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly leaderWaiters: (() => void)[] = [];
  private published: Promise<void> = Promise.resolve();

  /**
   * Resolves once this member's attributes are published through the log (so it has joined a working
   * cluster); etcd serves clients only after that.
   */
  ready(): Promise<void> {
    return this.published;
  }

  private constructor(options: EtcdServerOptions, parts: BootstrappedMember, logger: Logger) {
    this.config = options.config;
    this.backend = options.backend;
    this.logger = logger;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const timeout = { ms: this.requestTimeoutMs, error: () => RpcError.of("timeout") };
    this.waits = new WaitRegistry(DEFAULT_MAX_PROPOSAL_WAITERS, timeout);
    this.confChangeWaits = new WaitRegistry(DEFAULT_MAX_PROPOSAL_WAITERS, timeout);
    this.snapshotCount = options.snapshotCount ?? options.config.snapshotCount ?? DEFAULT_SNAPSHOT_COUNT;
    this.snapshotCatchUpEntries = options.snapshotCatchUpEntries ?? SNAPSHOT_CATCH_UP_ENTRIES;
    this.membership = parts.membership;
    this.lessor = parts.lessor;
    this.auth = parts.auth;
    this.storage = parts.storage;
    this.tokenWait = new SimpleTokenWait({ applied: this.applied, log: this.storage, timeoutMs: this.requestTimeoutMs });
    this.lastSnapshotIndex = parts.storage.snapshot().metadata.index;
    this.alarms = parts.alarms;
    this.current = parts.state;
    this.snapshots = new SnapshotShipping({
      dataDir: options.config.dataDir,
      backend: options.backend,
      logger: this.logger,
      termAt: (index) => this.storage.term(index),
      peerUrls: (id) => this.membership.get(id)?.peerUrls,
      ship: (urls, message, view) => shipBackendSnapshot(this.network, urls, message, view, this.logger),
      reportSnapshot: (to, status) => this.log.reportSnapshot(to, status),
      step: (message) => this.log.step(message),
    });
    const localId = this.membership.localId;
    this.network = (options.peerNetwork ?? httpPeerNetwork).open(
      {
        clusterId: () => this.membership.clusterId,
        members: () => this.membership.list(),
        onMessage: (m) => this.log.step(m),
        onUnreachable: (id) => this.log.reportUnreachable(id),
        isRemoved: (id) => this.membership.wasRemoved(id),
        isMember: (id) => this.membership.get(id) !== undefined,
        onRemovedFromCluster: () => this.onLocalRemoved(),
        receiveSnapshot: async (message, chunks) =>
          this.snapshots.deliver(message, await storeReceivedSnapshot(this.snapshots.receivedDir, message, chunks, this.logger)),
      },
      {
        localId,
        clusterId: this.membership.clusterId,
        maxMessageBytes: maxRaftFrameBytes(options.config.maxRequestBytes),
        logger: this.logger,
      },
    );
    for (const m of this.membership.list()) this.network.addPeer(m.id, m.peerUrls);
    this.corruptionChecker = new CorruptionChecker(
      {
        memberId: localId,
        isLeader: () => this.isLeader(),
        members: () => this.membership.list(),
        localHashKV: (revision) => this.current.store.hashByRev(revision),
        proposeRequest: (request) => this.proposeRequest(request, this.selfAuth()),
        peerHashKV: (urls, revision, timeoutMs) => this.network.request(urls, "hashKV", { revision }, timeoutMs),
      },
      this.logger,
    );
    this.network.handle("hashKV", async ({ revision }) => this.corruptionChecker.answerHashKV(revision));
    this.network.handle("leaseRenew", async ({ id }) => ({ ttl: await this.leaseRenewHere(id) }));
    this.network.handle("leaseTimeToLive", async ({ id, keys }) => this.leaseTimeToLiveHere(id, keys));
    this.membershipChanges = new MembershipChangeApplier({
      membership: this.membership,
      peers: this.network,
      store: () => this.current.store,
      logger: this.logger,
      settle: (requestId, error) =>
        error === undefined ? this.confChangeWaits.trigger(requestId, undefined) : this.confChangeWaits.fail(requestId, error),
      onLocalRemoved: () => this.onLocalRemoved(),
    });
    this.log = (options.openLog ?? ((logOptions) => new RaftLog(logOptions)))({
      id: localId,
      storage: this.storage,
      send: (messages) => this.send(messages),
      confChanges: this.membershipChanges,
      logger: this.logger,
      tickMs: options.tickMs,
      electionTicks: options.electionTicks,
      applied: this.lastSnapshotIndex,
      onLeadershipChange: (isLeader, leader) => this.onLeadershipChange(isLeader, leader),
      installSnapshot: (snapshot) => this.installSnapshot(snapshot),
      onFatal: (error) => this.stopOnFailure("persisting or applying raft entries failed", error),
    });
    // Request IDs: the member's low 16 bits, then time in ms, then a counter, as etcd's idutil does, so
    // IDs from different members and from before a restart do not collide.
    this.nextRequestId = ((localId & 0xffffn) << 48n) | ((BigInt(Date.now()) & 0xffffffffffn) << 8n);
  }

  /**
   * Opens (or bootstraps, or joins) a member on `backend` — see `bootstrapMember` — then starts raft and
   * the peer listener.
   */
  static async start(options: EtcdServerOptions): Promise<EtcdServer> {
    const logger = options.logger ?? silentLogger;
    const parts = await bootstrapMember({
      config: options.config,
      backend: options.backend,
      logger,
      tickMs: options.tickMs ?? 100,
      electionTicks: options.electionTicks ?? 10,
      clock: options.clock,
      fetchCluster: (peers) => (options.peerNetwork ?? httpPeerNetwork).fetchCluster(peers),
    });
    const server = new EtcdServer(options, parts, logger);
    await server.run();
    logger.info(parts.restarted ? "restarted member" : "started a new member", {
      "member-id": server.memberId,
      "cluster-id": server.clusterId,
      "consistent-index": server.current.applier.consistentIndex(),
      revision: server.current.applier.currentRevision(),
    });
    return server;
  }

  /** Starts the member: answers peers, applies what raft commits, expires leases, publishes itself. */
  private async run(): Promise<void> {
    this.applied.advance(this.current.applier.consistentIndex());
    await this.network.listen(this.config.listenPeerUrls);
    this.log.start(this.lastSnapshotIndex, (entries) => this.applyCommitted(entries));
    this.leaseTimer = setInterval(() => {
      this.revokeExpiredLeases();
      // Simple tokens expire in memory on each member; without this an expired one stays until it is
      // looked up or another Authenticate is applied.
      this.auth.tokenProvider.sweep?.();
    }, LEASE_EXPIRY_INTERVAL_MS);
    this.leaseTimer.unref();
    this.corruptionChecker.start(this.config.corruptCheckTimeMs ?? 0);
    this.published = this.publishAttributes();
  }

  get memberId(): bigint {
    return this.membership.localId;
  }

  get clusterId(): bigint {
    return this.membership.clusterId;
  }

  /** Resolves once this member knows a leader (at most the request timeout). */
  async waitForLeader(timeoutMs = this.requestTimeoutMs): Promise<boolean> {
    if (this.log.status().leaderId !== 0n) return true;
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.leaderWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** The header every response carries. */
  header(revision: bigint = BigInt(this.current.applier.currentRevision())): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.membership.clusterId,
      memberId: this.membership.localId,
      revision,
      raftTerm: BigInt(this.log.status().term),
    });
  }

  // ---- KV ----

  async range(request: RangeRequest, caller?: AuthInfo): Promise<RangeResponse> {
    this.checkRunning();
    validateRequest({ case: "range", value: request }, { maxTxnOps: this.config.maxTxnOps });
    await (request.serializable ? this.endOfTurn() : this.linearizableBarrier());
    this.checkAuth(() => this.auth.checkRange(caller, request));
    const response = this.current.applier.rangeInSteps(request);
    return this.stamp(response instanceof Promise ? await response : response);
  }

  /**
   * The read the health probes make (`/health`, `/livez`, `/readyz`): the member's own, so permissions do
   * not apply — with auth on, etcd's health check reads internally too. Throws when the member cannot
   * serve it (stopped, no leader for a linearizable read).
   */
  async probeRead(serializable: boolean): Promise<void> {
    this.checkRunning();
    if (!serializable) await this.linearizableBarrier();
    this.current.applier.range(create(RangeRequestSchema, { key: HEALTH_KEY, limit: 1n, keysOnly: true, serializable }));
  }

  async put(request: PutRequest, caller?: AuthInfo): Promise<PutResponse> {
    return this.stamp((await this.proposeWrite({ case: "put", value: request }, caller)) as PutResponse);
  }

  async deleteRange(request: DeleteRangeRequest, caller?: AuthInfo): Promise<DeleteRangeResponse> {
    return this.stamp((await this.proposeWrite({ case: "deleteRange", value: request }, caller)) as DeleteRangeResponse);
  }

  async txn(request: TxnRequest, caller?: AuthInfo): Promise<TxnResponse> {
    this.checkRunning();
    if (isTxnReadOnly(request)) {
      validateRequest({ case: "txn", value: request }, { maxTxnOps: this.config.maxTxnOps });
      await (isTxnSerializable(request) ? this.endOfTurn() : this.linearizableBarrier());
      this.checkAuth(() => this.auth.checkTxn(caller, request, leaseKeysOf(this.lessor)));
      return this.stamp(this.current.applier.readOnlyTxn(request));
    }
    return this.stamp((await this.proposeWrite({ case: "txn", value: request }, caller)) as TxnResponse);
  }

  async compact(request: CompactionRequest, caller?: AuthInfo): Promise<CompactionResponse> {
    const result = await this.propose({ case: "compaction", value: request }, caller);
    if (!result.ok) throw result.error;
    if (request.physical && result.physical !== undefined) await result.physical;
    return this.stamp(result.response as CompactionResponse);
  }

  /** Proposes any log request and answers its applied response with this member's header. */
  async proposeRequest<T extends { header?: ResponseHeader }>(request: InternalRaftRequest["request"], caller?: AuthInfo): Promise<T> {
    return this.stamp((await this.proposeWrite(request, caller)) as T);
  }

  // ---- auth ----

  /**
   * Who is calling, from the `token` metadata: undefined with auth off or without a token (checks then
   * fail with "user name is empty"). A simple token is known once its Authenticate entry is applied here.
   */
  async callerAuth(token: string | undefined, call?: CancellableCall): Promise<AuthInfo | undefined> {
    if (!this.auth.enabled || token === undefined || token === "") return undefined;
    const simple = parseSimpleToken(token);
    if (simple !== undefined && simple.index > this.applied.appliedIndex) {
      await this.tokenWait.untilRegistered(simple.prefix, simple.index, call);
    }
    try {
      return this.auth.authInfoFromToken(token);
    } catch (error) {
      throw toRpcError(error) ?? error;
    }
  }

  /** Root-only RPCs served without the log (member list, defragment, hashes, snapshot, move-leader). */
  checkAdmin(caller: AuthInfo | undefined): void {
    this.checkAuth(() => this.auth.isAdminPermitted(caller));
  }

  /** Runs an auth check, turning its refusal into etcd's error. No-op with auth off. */
  checkAuth(check: () => void): void {
    if (!this.auth.enabled) return;
    try {
      check();
    } catch (error) {
      throw toRpcError(error) ?? error;
    }
  }

  /** Credentials for requests the member makes itself (lease expiry) while auth is on. */
  private selfAuth(): AuthInfo | undefined {
    return this.auth.enabled ? this.auth.rootAuthInfo() : undefined;
  }

  // ---- Leases answered by the leader ----

  /** Renews a lease (LeaseKeepAlive): the new TTL, 0 for an unknown lease; forwarded when not leader. */
  async leaseRenew(id: bigint): Promise<number> {
    this.checkRunning();
    if (this.log.status().isLeader) {
      try {
        return await this.leaseRenewHere(id);
      } catch (error) {
        if (!isRpcError(error, "notLeader")) throw error;
      }
    }
    const answer = await this.network.request(this.leaderPeerUrls(), "leaseRenew", { id }, this.requestTimeoutMs);
    return answer.ttl;
  }

  /** LeaseTimeToLive: remaining and granted TTL (TTL −1 for an unknown lease), keys (base64) if asked. */
  async leaseTimeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTTL: number; keys: string[] }> {
    this.checkRunning();
    if (this.log.status().isLeader) return this.leaseTimeToLiveHere(id, keys);
    return this.network.request(this.leaderPeerUrls(), "leaseTimeToLive", { id, keys }, this.requestTimeoutMs);
  }

  private async leaseRenewHere(id: bigint): Promise<number> {
    if (!this.log.status().isLeader) throw RpcError.of("notLeader");
    try {
      return await this.lessor.renew(id);
    } catch (error) {
      if (isLeaseError(error, "LeaseNotFound")) return 0;
      if (isLeaseError(error, "NotLeader")) throw RpcError.of("notLeader");
      throw error;
    }
  }

  private leaseTimeToLiveHere(id: bigint, keys: boolean): { ttl: number; grantedTTL: number; keys: string[] } {
    if (!this.log.status().isLeader) throw RpcError.of("notLeader");
    try {
      const answer = this.lessor.timeToLive(id, { keys });
      return { ttl: answer.ttl, grantedTTL: answer.grantedTTL, keys: (answer.keys ?? []).map((k) => Buffer.from(k).toString("base64")) };
    } catch (error) {
      if (isLeaseError(error, "LeaseNotFound")) return { ttl: -1, grantedTTL: 0, keys: [] };
      throw error;
    }
  }

  private leaderPeerUrls(): readonly string[] {
    const leader = this.membership.get(this.log.status().leaderId);
    if (leader === undefined) throw RpcError.of("noLeader");
    return leader.peerUrls;
  }

  // ---- Maintenance and Cluster ----

  status(): StatusResponse {
    const log = this.log.status();
    return create(StatusResponseSchema, {
      header: this.header(),
      version: ETCD_API_VERSION,
      dbSize: BigInt(this.backend.size()),
      dbSizeInUse: BigInt(this.backend.sizeInUse()),
      leader: log.leaderId,
      raftIndex: BigInt(log.commitIndex),
      raftTerm: BigInt(log.term),
      raftAppliedIndex: BigInt(this.applied.appliedIndex),
      errors: [...(log.leaderId === 0n ? [RpcError.of("noLeader").message] : []), ...this.alarms.statusErrors()],
      isLearner: this.membership.local.isLearner,
    });
  }

  memberList(): MemberListResponse {
    return create(MemberListResponseSchema, {
      // Cluster responses carry no revision in etcd: membership is not part of the keyspace.
      header: this.header(0n),
      members: this.membership.list().map((m) => memberMessage(m)),
    });
  }

  /** etcd's HashKV: a checksum of the MVCC history up to `revision` (0: the current one). */
  async hashKV(revision: number, caller?: AuthInfo): Promise<HashKVResponse> {
    this.checkRunning();
    this.checkAdmin(caller);
    const { store } = this.current;
    const current = store.currentRevision();
    const compacted = store.compactRevision();
    if (revision > 0 && revision <= compacted) throw RpcError.of("compacted");
    if (revision > current) throw RpcError.of("futureRev");
    const { hash, currentRevision, compactRevision } = store.hashByRev(revision);
    return create(HashKVResponseSchema, { header: this.header(BigInt(currentRevision)), hash, compactRevision: BigInt(compactRevision) });
  }

  /** etcd's Hash: a checksum of the whole backend except the consistent index. */
  hash(): HashResponse {
    this.checkRunning();
    return create(HashResponseSchema, { header: this.header(), hash: this.backend.view((txn) => hashBackend(txn)) });
  }

  async defragment(): Promise<void> {
    this.checkRunning();
    await this.backend.defragment();
  }

  isLeader(): boolean {
    return this.log.status().isLeader;
  }

  leaderId(): bigint {
    return this.log.status().leaderId;
  }

  stop(): Promise<void> {
    // One stop, however many callers (a signal can arrive while a disk failure is stopping the member).
    return (this.stopping ??= this.stopOnce());
  }

  private stopping: Promise<void> | undefined;

  private async stopOnce(): Promise<void> {
    this.stopped = true;
    clearInterval(this.leaseTimer);
    this.corruptionChecker.stop();
    await this.log.stop();
    await this.network.stop();
    this.waits.failAll(RpcError.of("stopped"));
    this.confChangeWaits.failAll(RpcError.of("stopped"));
    this.current.close();
    this.lessor.close();
    await this.storage.close();
  }

  // ---- membership changes ----

  /** Proposes a conf change and waits until it is applied here. */
  async proposeConfChange(change: ConfChange, requestId: bigint): Promise<void> {
    this.checkRunning();
    // The context (the member, as JSON) plus the type and ID must fit one WAL record.
    if (change.context.byteLength > MAX_ENTRY_DATA_BYTES - 64) throw RpcError.of("requestTooLarge");
    const done = this.confChangeWaits.register(requestId);
    try {
      this.log.proposeConfChange(change);
    } catch (error) {
      this.confChangeWaits.cancel(requestId);
      throw error;
    }
    await done;
  }

  newRequestId(): bigint {
    return this.nextRequestId++;
  }

  /** What raft knows of each member's progress (leader only). */
  progress(): ReadonlyMap<bigint, PeerProgress> {
    return this.log.progress();
  }

  /**
   * The member's state now: its MVCC store, the watchable store of its watchers, its applier. A snapshot
   * from the leader replaces it as a whole, so read it when needed rather than keeping it.
   */
  get state(): MemberState {
    return this.current;
  }

  /** Called when a snapshot from the leader is about to replace the `state`; returns an unsubscribe. */
  onStateReplaced(listener: () => void): () => void {
    this.stateReplacedListeners.add(listener);
    return () => this.stateReplacedListeners.delete(listener);
  }

  /** When the stream to peer `id` came up (ms since the epoch); 0 while it is down. */
  peerActiveSince(id: bigint): number {
    return this.network.activeSince(id);
  }

  /** Answers requests of `kind` from other members (a service's side of a request forwarded to the leader). */
  handlePeerRequest<K extends PeerRequestKind>(kind: K, handler: PeerRequestHandler<K>): void {
    this.network.handle(kind, handler);
  }

  /** Asks the member at one of `urls` over the peer network. */
  requestPeer<K extends PeerRequestKind>(
    urls: readonly string[],
    kind: K,
    request: PeerRequestOf<K>,
    timeoutMs: number,
  ): Promise<PeerAnswerOf<K>> {
    return this.network.request(urls, kind, request, timeoutMs);
  }

  transferLeadership(to: bigint): void {
    this.log.transferLeadership(to);
  }

  // ---- the write path ----

  private async proposeWrite(request: InternalRaftRequest["request"], caller?: AuthInfo): Promise<unknown> {
    const result = await this.propose(request, caller);
    if (!result.ok) throw result.error;
    return result.response;
  }

  /** Validates, proposes to the log and waits until the entry is applied and durable. */
  private async propose(request: InternalRaftRequest["request"], caller?: AuthInfo): Promise<ApplyResult> {
    if (this.observers.size === 0) return this.proposeAndWait(request, caller);
    for (const o of this.observers) o.proposalStarted?.();
    let ok = false;
    try {
      const result = await this.proposeAndWait(request, caller);
      ok = true;
      return result;
    } finally {
      for (const o of this.observers) o.proposalFinished?.(ok);
    }
  }

  /** Tells `observer` about proposals and leader changes (metrics); returns the unsubscribe function. */
  observe(observer: ServerObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  private readonly observers = new Set<ServerObserver>();

  /** Calls waiting on this member now: for a proposal's apply result, for the applied index (metrics). */
  pendingWaiters(): { proposals: number; appliedIndex: number } {
    return { proposals: this.waits.size, appliedIndex: this.applied.size };
  }

  private async proposeAndWait(request: InternalRaftRequest["request"], caller?: AuthInfo): Promise<ApplyResult> {
    this.checkRunning();
    validateRequest(request, { maxTxnOps: this.config.maxTxnOps });
    if (!this.alarms.available(this.backend.size(), request)) {
      // etcd's quotaKVServer: refuse the write and raise NOSPACE for the whole cluster.
      this.raiseNoSpace();
      throw RpcError.of("noSpace");
    }
    const id = this.nextRequestId++;
    const header = caller !== undefined ? { ID: id, username: caller.username, authRevision: BigInt(caller.revision) } : undefined;
    const message = create(InternalRaftRequestSchema, { ID: id, request, header });
    const data = encodeProposal(message);
    // An entry the WAL cannot hold must never be proposed, whatever --max-request-bytes allows.
    if (data.byteLength > Math.min(this.config.maxRequestBytes, MAX_ENTRY_DATA_BYTES)) throw RpcError.of("requestTooLarge");
    const done = this.waits.register(id, { data, request: message });
    try {
      this.log.propose(data);
    } catch (error) {
      this.waits.cancel(id);
      throw error;
    }
    return done;
  }

  /** Applies a batch of committed entries (called by the log, in order). */
  private applyCommitted(entries: readonly LogEntry[]): Promise<void> {
    const committed: CommittedRequest[] = [];
    for (const entry of entries) {
      if (entry.data.byteLength === 0) continue; // raft's empty entries carry no request
      committed.push({ index: entry.index, request: this.decodeEntry(entry) });
    }
    const last = entries[entries.length - 1];
    let durable: Promise<void> = Promise.resolve();
    if (committed.length > 0) {
      const settle = answerOverQuota(this.alarms, this.backend.size(), committed);
      const batch = this.applyBatchSkippingFailures(committed);
      durable = batch.durable.then(
        () => settle(batch.results).forEach((result, i) => this.waits.trigger(committed[i]!.request.ID, result)),
        (error: unknown) => {
          for (const c of committed) this.waits.fail(c.request.ID, error);
          // The store in memory is now ahead of the backend, and the next batch would move the
          // consistent index past these entries: applying on would lose them. Stop; a restart replays them.
          this.stopOnFailure(
            `committing entries ${committed[0]!.index}..${committed[committed.length - 1]!.index} to the backend failed`,
            error,
          );
        },
      );
    }
    this.lastDurable = durable;
    if (last !== undefined) {
      this.applied.advance(last.index);
      this.snapshots.dropDeclined(this.applied.appliedIndex);
      this.maybeSnapshot(last.index);
    }
    return durable;
  }

  /**
   * An entry's request. One that does not decode (nested deeper than any member proposes, or damaged)
   * becomes an empty request: it takes its index and changes nothing, the same on every member.
   */
  private decodeEntry(entry: LogEntry): InternalRaftRequest {
    // This member's own proposal, still waiting: the request it encoded is what decoding the same bytes
    // gives, so it is taken as it is. The bytes decide, not the ID alone.
    const id = peekRequestId(entry.data);
    if (id !== undefined) {
      const proposed = this.waits.attachment(id);
      if (proposed !== undefined && sameBytes(proposed.data, entry.data)) return proposed.request;
    }
    try {
      return fromBinary(InternalRaftRequestSchema, entry.data, { recursionLimit: TXN_DECODE_RECURSION_LIMIT + 1 });
    } catch (error) {
      this.logger.error("a committed entry does not decode; it is applied as a no-op", { index: entry.index, error: String(error) });
      return create(InternalRaftRequestSchema);
    }
  }

  /**
   * Applies a batch. An entry whose apply throws anything but a client error or a storage failure (a bug,
   * a limit) is skipped, never retried: nothing of the batch was applied, so the state is reloaded from
   * the backend and the batch applied again with that entry as a no-op that answers its proposer with
   * the error. Every member meets the same error at the same entry and skips it alike, and the
   * consistent index moves past it, so a restart never meets it again. A storage failure (`StorageError`)
   * or a store that cannot go on (`MvccError`) is not the entry's doing: it propagates and stops the
   * member.
   */
  private applyBatchSkippingFailures(committed: CommittedRequest[]): ApplyBatchResult {
    const skipped = new Map<number, RpcError>();
    let entries = committed;
    for (;;) {
      try {
        const batch = this.current.applier.applyBatch(entries);
        if (skipped.size === 0) return batch;
        return {
          durable: batch.durable,
          results: batch.results.map((result, i) => (skipped.has(i) ? { ok: false, error: skipped.get(i)! } : result)),
        };
      } catch (error) {
        if (!isApplyEntryError(error) || skipped.has(error.position) || isStoreFailure(error.cause)) throw error;
        this.logger.error("an entry failed to apply; every member skips it", { index: error.index, error: String(error.cause) });
        const message = error.cause instanceof Error ? error.cause.message : String(error.cause);
        skipped.set(error.position, new RpcError(GrpcCode.INTERNAL, `etcdserver: the request failed to apply and was skipped: ${message}`));
        entries = entries.map((e, i) =>
          i === error.position ? { index: e.index, request: create(InternalRaftRequestSchema, { ID: e.request.ID }) } : e,
        );
        this.reloadStateFromBackend();
      }
    }
  }

  /**
   * Rebuilds what lives in memory beside the backend (MVCC index, leases, auth, alarms, the applier) from
   * the backend, after a rolled-back batch may have left it ahead. Watch streams end with an error their
   * clients retry on, as after a snapshot install; no event of the rolled-back batch was sent.
   */
  private reloadStateFromBackend(): void {
    this.closeState();
    this.current = MemberState.reload(this.stateDeps());
  }

  /** Ends the watch streams and closes the state built on the backend (before it is reloaded or replaced). */
  private closeState(): void {
    for (const listener of [...this.stateReplacedListeners]) listener();
    this.current.close();
  }

  private stateDeps(): MemberStateDeps {
    return {
      backend: this.backend,
      lessor: this.lessor,
      auth: this.auth,
      alarms: this.alarms,
      membership: this.membership,
      logger: this.logger,
    };
  }

  /** etcd stops a member that applied its own removal; the answer to the removal goes out first. */
  private onLocalRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    this.logger.error("the member has been permanently removed from the cluster; remove its data dir before it joins again", {
      "member-id": this.membership.localId.toString(16),
    });
    this.markRemoved();
    setTimeout(() => void this.stop(), 200).unref();
  }

  /**
   * The disk failed under the member: the WAL could not be written or synced, or the backend could not
   * commit or flush (full or failing). As etcd, which panics then, the member stops: after a failed
   * fsync nothing in memory can be trusted to be on disk, and applying on past a batch the backend did
   * not take would lose it. The reason (with the file and errno, or the data dir and engine code) is
   * logged and handed to `stoppedByFailure`.
   */
  private stopOnFailure(what: string, error: unknown): void {
    if (this.failure !== undefined) return;
    const detail = error instanceof Error ? error.message : String(error);
    // The raft loop also halts on what is not the disk (a bug while applying); say which it was, so an
    // operator does not replace a healthy disk.
    const disk = isStorageError(error) || (isWalError(error) && error.errno !== undefined);
    this.failure = new Error(`${disk ? "its disk failed: " : ""}${what}: ${detail}`, { cause: error });
    this.logger.error(
      disk
        ? "the member stops: its disk failed; free space or repair the disk, then restart it"
        : "the member stops: it cannot go on safely",
      {
        reason: what,
        error: detail,
        ...(isWalError(error) && error.errno !== undefined ? { errno: error.errno, file: error.file } : {}),
        ...(isStorageError(error) ? { code: error.code } : {}),
      },
    );
    this.markFailed(this.failure);
    this.stop().catch((stopError: unknown) => this.logger.warn("error while stopping after a disk failure", { error: String(stopError) }));
  }

  /** Proposes a NOSPACE alarm for this member (at most one in flight). */
  private raiseNoSpace(): void {
    if (this.raisingNoSpace || this.alarms.isActive(AlarmType.NOSPACE)) return;
    this.raisingNoSpace = true;
    const request = create(AlarmRequestSchema, {
      action: AlarmRequest_AlarmAction.ACTIVATE,
      memberID: this.membership.localId,
      alarm: AlarmType.NOSPACE,
    });
    // The member's own request: with auth on it must pass as the member, not as the refused client.
    this.propose({ case: "alarm", value: request }, this.selfAuth())
      .catch((error: unknown) => this.logger.warn("raising the NOSPACE alarm failed", { error: String(error) }))
      .finally(() => (this.raisingNoSpace = false));
  }

  private raisingNoSpace = false;

  /** Takes a raft snapshot of applied state every `snapshotCount` entries and compacts the log behind it. */
  private maybeSnapshot(appliedIndex: number): void {
    if (appliedIndex - this.lastSnapshotIndex < this.snapshotCount) return;
    const at = appliedIndex;
    this.lastSnapshotIndex = at;
    const data = new TextEncoder().encode(
      JSON.stringify({ members: this.membership.list().map((m) => ({ ...m, id: m.id.toString(16) })) }),
    );
    // The backend must hold everything up to `at` durably before the WAL behind it may go: only once
    // the batch that applied `at` committed (a failed one stops the member instead), and never after a
    // failed flush (after a failed fsync, a later one can succeed without the lost pages on disk).
    void this.lastDurable
      .then(async () => {
        if (this.failure !== undefined || this.stopped) return;
        try {
          await this.backend.flush();
        } catch (error) {
          this.stopOnFailure("flushing the backend before a raft snapshot failed", error);
          return;
        }
        await this.storage.createSnapshot(at, this.membership.confState(), data);
        // Keep a tail for slow followers; nothing to do until the log is longer than that tail.
        const compactTo = at - this.snapshotCatchUpEntries;
        if (compactTo > this.storage.firstIndex()) await this.storage.compact(compactTo);
      })
      .catch((error: unknown) => {
        // A snapshot file or WAL write that failed (disk full or failing): as etcd, which panics then.
        if (isWalError(error, "Failed")) this.stopOnFailure("saving a raft snapshot failed", error);
        else this.logger.warn("raft snapshot failed", { error: String(error) });
      });
  }

  private send(messages: readonly Message[]): void {
    for (const m of messages) if (m.type === MessageType.Snap) this.snapshots.send(m);
    this.network.send(messages.filter((m) => m.type !== MessageType.Snap));
  }

  /**
   * Raft accepted a snapshot from the leader (persisted in the raft log already): the received database
   * becomes the backend, and everything built on the backend is rebuilt from it. Watchers of the old
   * store are cancelled (their history is gone); clients re-watch.
   */
  private async installSnapshot(snapshot: RaftSnapshot): Promise<void> {
    const index = snapshot.metadata.index;
    const file = this.snapshots.take(index);
    await this.lastDurable.catch(() => undefined);
    await this.current.store.compactionsDone();
    // Watch streams on the old store end with an error their clients retry on, resuming from the last
    // revision they saw against the new store (etcd resyncs its watchers; ours are bound to one store).
    this.closeState();
    const restored = await MemberState.installDatabase(file, this.stateDeps());
    this.current = restored.state;
    const members = new Set(this.membership.list().map((m) => m.id));
    for (const m of this.membership.list()) this.network.updatePeer(m.id, m.peerUrls);
    for (const id of this.network.peerIds()) if (!members.has(id)) this.network.removePeer(id);
    this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, index);
    this.applied.advance(index);
    await rm(file, { force: true });
    this.snapshots.dropDeclined(this.applied.appliedIndex);
    this.logger.info("installed a database snapshot from the leader", {
      index,
      keys: restored.keys,
      revision: this.current.store.currentRevision(),
    });
  }

  private onLeadershipChange(isLeader: boolean, leader: bigint): void {
    for (const o of this.observers) o.leaderChanged?.(isLeader, leader);
    if (isLeader) this.lessor.promote(this.requestTimeoutMs);
    else this.lessor.demote();
    if (leader !== 0n) {
      for (const w of this.leaderWaiters.splice(0)) w();
    }
  }

  /** The leader proposes a revoke for every expired lease: expiry goes through the log. */
  private revokeExpiredLeases(): void {
    if (this.stopped || !this.log.status().isLeader) return;
    for (const id of this.lessor.expiredLeases()) {
      this.proposeRequest({ case: "leaseRevoke", value: { $typeName: "etcdserverpb.LeaseRevokeRequest", ID: id } }, this.selfAuth()).catch(
        (error: unknown) => this.logger.debug("revoking an expired lease failed; will retry", { lease: id, error: String(error) }),
      );
    }
  }

  /** Publishes this member's name and client URLs through the log, retrying until it lands. */
  private async publishAttributes(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.waitForLeader())) continue;
      try {
        await this.proposeWrite({
          case: "clusterMemberAttrSet",
          value: {
            $typeName: "etcdserverpb.ClusterMemberAttrSetRequest",
            memberID: this.membership.localId,
            memberAttributes: {
              $typeName: "etcdserverpb.MemberAttributes",
              name: this.config.name,
              clientUrls: [...this.config.advertiseClientUrls],
            },
          },
        });
        return;
      } catch (error) {
        // The member may have stopped while the proposal waited.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (this.stopped) return;
        this.logger.debug("publishing member attributes failed; retrying", { error: String(error) });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Waits until this member has applied all that was committed when the read arrived. Reads that arrive
   * in the same turn of the event loop share one read index, as in etcd's read loop: it is asked of raft
   * at the end of the turn, after each of them arrived (all linearizability needs), once for the reads of
   * every connection that turn rather than once per read.
   */
  private async linearizableBarrier(): Promise<void> {
    const index = await (this.turnReadIndex ??= this.endOfTurn().then(() => {
      this.turnReadIndex = undefined;
      return this.log.readIndex();
    }));
    await this.applied.waitFor(index);
  }

  /** The read index the reads arriving this turn share (see linearizableBarrier). */
  private turnReadIndex: Promise<number> | undefined;

  /**
   * Resolves once this turn's I/O is handled. Serializable reads wait for it so that the answers to the
   * reads of every connection that turn are written together (one socket write per connection, as the
   * answers of a linearizable round and of an apply batch are), rather than each in a turn of its own.
   */
  private endOfTurn(): Promise<void> {
    return (this.turnEnd ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.turnEnd = undefined;
        resolve();
      }),
    ));
  }

  private turnEnd: Promise<void> | undefined;

  private stamp<T extends { header?: ResponseHeader }>(response: T): T {
    const revision = response.header?.revision ?? BigInt(this.current.applier.currentRevision());
    response.header = this.header(revision);
    return response;
  }

  private checkRunning(): void {
    if (this.stopped) throw RpcError.of("stopped");
  }
}

function memberMessage(m: Member) {
  return create(MemberSchema, { ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner });
}

/** A txn whose branches (nested ones included) only read can be answered without the log. */
export function isTxnReadOnly(request: TxnRequest): boolean {
  const readOnly = (ops: readonly RequestOp[]): boolean =>
    ops.every((op) => op.request.case === "requestRange" || (op.request.case === "requestTxn" && isTxnReadOnly(op.request.value)));
  return readOnly(request.success) && readOnly(request.failure);
}

/** etcd skips the read barrier when every range in a read-only txn asks to be serializable. */
function isTxnSerializable(request: TxnRequest): boolean {
  const serializable = (ops: readonly RequestOp[]): boolean =>
    ops.every((op) =>
      op.request.case === "requestRange"
        ? op.request.value.serializable
        : op.request.case === "requestTxn"
          ? isTxnSerializable(op.request.value)
          : false,
    );
  return serializable(request.success) && serializable(request.failure);
}

/** A failure of the storage under the store, not of the entry being applied: the member must stop. */
function isStoreFailure(error: unknown): boolean {
  return isStorageError(error) || isMvccError(error);
}

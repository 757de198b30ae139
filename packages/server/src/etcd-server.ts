import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  InternalRaftRequestSchema,
  MemberListResponseSchema,
  MemberSchema,
  ResponseHeaderSchema,
  RpcError,
  StatusResponseSchema,
  HashKVResponseSchema,
  HashResponseSchema,
  type HashKVResponse,
  type HashResponse,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
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
import { MvccStore } from "@etcd-ts/mvcc";
import type { Backend } from "@etcd-ts/storage";
import { createKvApplier, validateRequest } from "./apply/index.js";
import type { ApplyResult, CommittedRequest, KvApplier } from "./apply/types.js";
import { ETCD_API_VERSION, type ServerConfig } from "./config.js";
import { LocalLog } from "./consensus/local-log.js";
import type { LogEntry, ReplicatedLog } from "./consensus/replicated-log.js";
import { silentLogger, type Logger } from "./log.js";
import { hashBackend, hashKeyBucket } from "./hash.js";
import { Membership } from "./membership.js";
import { AppliedIndexWaiters, WaitRegistry } from "./wait.js";

export interface EtcdServerOptions {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly logger?: Logger;
  /** How long a proposal may take to apply before the client gets `etcdserver: request timed out`. */
  readonly requestTimeoutMs?: number;
}

/** etcd's request timeout: 5 s plus two election timeouts of the default 1 s. */
const DEFAULT_REQUEST_TIMEOUT_MS = 7000;

/**
 * One member: the MVCC state machine behind a replicated log. Writes are proposed to the log as
 * `InternalRaftRequest`s and answered once applied and durable; linearizable reads wait for the log's
 * read index to be applied; serializable reads are answered from local state at once. Everything the
 * gRPC services do goes through here.
 */
export class EtcdServer {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly membership: Membership;
  private readonly store: MvccStore;
  private readonly applier: KvApplier;
  private readonly log: ReplicatedLog;
  private readonly logger: Logger;
  private readonly waits = new WaitRegistry<ApplyResult>();
  private readonly applied = new AppliedIndexWaiters();
  private readonly requestTimeoutMs: number;
  private readonly memberIdBig: bigint;
  private readonly clusterIdBig: bigint;
  private nextRequestId: bigint;
  private stopped = false;

  private constructor(options: EtcdServerOptions, membership: Membership, store: MvccStore) {
    this.config = options.config;
    this.backend = options.backend;
    this.logger = options.logger ?? silentLogger;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.membership = membership;
    this.memberIdBig = membership.localId;
    this.clusterIdBig = membership.clusterId;
    this.store = store;
    this.applier = createKvApplier(store, {});
    this.log = new LocalLog({ memberId: membership.localId, term: 2 });
    // Request IDs: the member's low 16 bits, then time in ms, then a counter, as etcd's idutil does, so
    // IDs from different members and from before a restart do not collide.
    this.nextRequestId = ((membership.localId & 0xffffn) << 48n) | (BigInt(Date.now()) << 8n);
  }

  /** Opens (or bootstraps) a member on `backend` and starts applying its log. */
  static async start(options: EtcdServerOptions): Promise<EtcdServer> {
    const store = MvccStore.open(options.backend);
    let membership = Membership.load(options.backend);
    const fresh = membership === undefined;
    if (membership === undefined) membership = await Membership.bootstrap(options.backend, options.config);
    await membership.publishClientUrls(options.backend, options.config.name, options.config.advertiseClientUrls);
    const server = new EtcdServer(options, membership, store);
    const appliedIndex = server.applier.consistentIndex();
    server.applied.advance(appliedIndex);
    server.log.start(appliedIndex, (entries) => server.applyCommitted(entries));
    server.logger.info(fresh ? "started a new member" : "restarted member", {
      "member-id": membership.localId,
      "cluster-id": membership.clusterId,
      "applied-index": appliedIndex,
      revision: server.applier.currentRevision(),
    });
    return server;
  }

  get memberId(): bigint {
    return this.memberIdBig;
  }

  get clusterId(): bigint {
    return this.clusterIdBig;
  }

  /** The header every response carries. */
  header(revision: bigint = BigInt(this.applier.currentRevision())): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.clusterIdBig,
      memberId: this.memberIdBig,
      revision,
      raftTerm: BigInt(this.log.status().term),
    });
  }

  // ---- KV ----

  async range(request: RangeRequest): Promise<RangeResponse> {
    this.checkRunning();
    validateRequest({ case: "range", value: request }, { maxTxnOps: this.config.maxTxnOps });
    if (!request.serializable) await this.linearizableBarrier();
    const response = this.applier.range(request);
    return this.stamp(response);
  }

  async put(request: PutRequest): Promise<PutResponse> {
    const response = await this.proposeWrite({ case: "put", value: request });
    return this.stamp(response as PutResponse);
  }

  async deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    const response = await this.proposeWrite({ case: "deleteRange", value: request });
    return this.stamp(response as DeleteRangeResponse);
  }

  async txn(request: TxnRequest): Promise<TxnResponse> {
    this.checkRunning();
    if (isTxnReadOnly(request)) {
      validateRequest({ case: "txn", value: request }, { maxTxnOps: this.config.maxTxnOps });
      if (!isTxnSerializable(request)) await this.linearizableBarrier();
      return this.stamp(this.applier.readOnlyTxn(request));
    }
    const response = await this.proposeWrite({ case: "txn", value: request });
    return this.stamp(response as TxnResponse);
  }

  async compact(request: CompactionRequest): Promise<CompactionResponse> {
    const result = await this.propose({ case: "compaction", value: request });
    if (!result.ok) throw result.error;
    if (request.physical && result.physical !== undefined) await result.physical;
    return this.stamp(result.response as CompactionResponse);
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
      errors: [],
      isLearner: this.membership.local.isLearner,
    });
  }

  memberList(): MemberListResponse {
    return create(MemberListResponseSchema, {
      // Cluster responses carry no revision in etcd: membership is not part of the keyspace.
      header: this.header(0n),
      members: this.membership.list().map((m) =>
        create(MemberSchema, {
          ID: m.id,
          name: m.name,
          peerURLs: [...m.peerUrls],
          clientURLs: [...m.clientUrls],
          isLearner: m.isLearner,
        }),
      ),
    });
  }

  /** etcd's HashKV: a checksum of the MVCC history up to `revision` (0: the current one). */
  async hashKV(revision: number): Promise<HashKVResponse> {
    this.checkRunning();
    const current = this.store.currentRevision();
    const compacted = this.store.compactRevision();
    if (revision > 0 && revision <= compacted) throw RpcError.of("compacted");
    if (revision > current) throw RpcError.of("futureRev");
    const at = revision === 0 ? current : revision;
    // Hash only once physical compaction is done, so compacted-away rows are gone from the bucket.
    await this.store.compactionsDone();
    const hash = this.backend.view((txn) => hashKeyBucket(txn, at));
    return create(HashKVResponseSchema, { header: this.header(BigInt(current)), hash, compactRevision: BigInt(compacted) });
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

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.log.stop();
    this.waits.failAll(RpcError.of("stopped"));
    await this.store.close();
  }

  // ---- the write path ----

  private async proposeWrite(request: InternalRaftRequest["request"]): Promise<unknown> {
    const result = await this.propose(request);
    if (!result.ok) throw result.error;
    return result.response;
  }

  /** Validates, proposes to the log and waits until the entry is applied and durable. */
  private async propose(request: InternalRaftRequest["request"]): Promise<ApplyResult> {
    this.checkRunning();
    validateRequest(request, { maxTxnOps: this.config.maxTxnOps });
    const id = this.nextRequestId++;
    const data = toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { ID: id, request }));
    if (data.byteLength > this.config.maxRequestBytes) throw RpcError.of("requestTooLarge");
    const done = this.waits.register(id);
    this.log.propose(data);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.waits.fail(id, RpcError.of("timeout"));
        reject(RpcError.of("timeout"));
      }, this.requestTimeoutMs);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Applies a batch of committed entries (called by the log, in order). */
  private applyCommitted(entries: readonly LogEntry[]): Promise<void> {
    const committed: CommittedRequest[] = [];
    for (const entry of entries) {
      if (entry.data.byteLength === 0) continue; // raft's empty entries carry no request
      committed.push({ index: entry.index, request: fromBinary(InternalRaftRequestSchema, entry.data) });
    }
    const last = entries[entries.length - 1];
    if (committed.length === 0) {
      if (last !== undefined) this.applied.advance(last.index);
      return Promise.resolve();
    }
    const { results, durable } = this.applier.applyBatch(committed);
    if (last !== undefined) this.applied.advance(last.index);
    return durable.then(
      () => results.forEach((result, i) => this.waits.trigger(committed[i]!.request.ID, result)),
      (error: unknown) => {
        this.logger.error("failed to commit applied entries to the backend", { error: String(error) });
        for (const c of committed) this.waits.fail(c.request.ID, error);
      },
    );
  }

  private async linearizableBarrier(): Promise<void> {
    const index = await this.log.readIndex();
    await this.applied.waitFor(index);
  }

  private stamp<T extends { header?: ResponseHeader }>(response: T): T {
    const revision = response.header?.revision ?? BigInt(this.applier.currentRevision());
    response.header = this.header(revision);
    return response;
  }

  private checkRunning(): void {
    if (this.stopped) throw RpcError.of("stopped");
  }
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

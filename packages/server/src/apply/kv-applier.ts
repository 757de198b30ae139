import {
  Compare_CompareResult,
  Compare_CompareTarget,
  GrpcCode,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RpcError,
} from "@etcd-ts/api";
import type {
  Compare,
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  InternalRaftRequest,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from "@etcd-ts/api";
import type { MvccStore, RangeOptions, RangeResult, ReadView, TxnWrite, WriteBatch } from "@etcd-ts/mvcc";
import { compareBytes } from "@etcd-ts/storage";
import { toRpcError } from "../errors.js";
import { ApplyEntryError } from "./errors.js";
import { goSort } from "./go-sort.js";
import { noLeases } from "./lease-lookup.js";
import type { LeaseLookup } from "./lease-lookup.js";
import type { ApplyBatchResult, ApplyResult, CommittedRequest, KvApplier } from "./types.js";
import { checkStoredSizes } from "./validate.js";

/**
 * The KV applier: etcd 3.4's applierV3backend for Range, Put, DeleteRange, Txn and Compaction over an
 * `MvccStore`. Request semantics follow etcd exactly (see the comments at each step); requests are
 * assumed to have passed `validateRequest` before they were proposed.
 */

export interface KvApplierOptions {
  /** Which leases exist (default: none; a put naming a lease then fails with leaseNotFound). */
  readonly leases?: LeaseLookup;
  /**
   * Appliers for the requests that are not KV requests (leases, auth, …), asked in order; each runs in the
   * same batch, so its state commits with the keyspace and the consistent index.
   */
  readonly requestAppliers?: readonly RequestApplier[];
  /**
   * Checks, before an entry touches anything, that its proposer may do it (auth: the entry header's user
   * and auth revision against the auth store as of this point in the log). Throws the client's error.
   */
  readonly authorize?: (request: InternalRaftRequest) => void;
  /**
   * Why an entry is refused at its place in the log before anything else is checked (an alarm: NOSPACE,
   * CORRUPT), or undefined. Asked right before the entry applies, so it sees the entries before it.
   */
  readonly refuse?: (request: InternalRaftRequest) => RpcError | undefined;
}

/** Applies one kind of non-KV log request inside a write batch. */
export interface RequestApplier {
  applies(request: InternalRaftRequest["request"]): boolean;
  /** Returns the result; throws only for failures that must abort the whole batch. `index` is the entry's log index. */
  apply(batch: WriteBatch, request: InternalRaftRequest["request"], index: number): ApplyResult;
}

const EMPTY: Uint8Array = new Uint8Array(0);

// Literal messages (protobuf-es v2 messages are plain objects) instead of `create()`: this is the hot path.
function header(revision: number): ResponseHeader {
  return { $typeName: "etcdserverpb.ResponseHeader", clusterId: 0n, memberId: 0n, revision: BigInt(revision), raftTerm: 0n };
}

function rangeResponse(revision: number, kvs: KeyValue[], more: boolean, count: number): RangeResponse {
  return { $typeName: "etcdserverpb.RangeResponse", header: header(revision), kvs, more, count: BigInt(count) };
}

function putResponse(revision: number, prevKv: KeyValue | undefined): PutResponse {
  return { $typeName: "etcdserverpb.PutResponse", header: header(revision), prevKv };
}

function deleteRangeResponse(revision: number, deleted: number, prevKvs: KeyValue[]): DeleteRangeResponse {
  return { $typeName: "etcdserverpb.DeleteRangeResponse", header: header(revision), deleted: BigInt(deleted), prevKvs };
}

function txnResponse(revision: number, succeeded: boolean, responses: ResponseOp[]): TxnResponse {
  return { $typeName: "etcdserverpb.TxnResponse", header: header(revision), succeeded, responses };
}

function responseOp(response: ResponseOp["response"]): ResponseOp {
  return { $typeName: "etcdserverpb.ResponseOp", response };
}

function compactionResponse(revision: number): CompactionResponse {
  return { $typeName: "etcdserverpb.CompactionResponse", header: header(revision) };
}

/** Thrown inside an apply step before anything is written; becomes an `{ ok: false }` result. */
function clientError(e: unknown): RpcError {
  const rpc = toRpcError(e);
  if (rpc === undefined) throw e;
  return rpc;
}

// ---- Range ----

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const sorters: Record<RangeRequest_SortTarget, (a: KeyValue, b: KeyValue) => number> = {
  [RangeRequest_SortTarget.KEY]: (a, b) => compareBytes(a.key, b.key),
  [RangeRequest_SortTarget.VERSION]: (a, b) => compareBigint(a.version, b.version),
  [RangeRequest_SortTarget.CREATE]: (a, b) => compareBigint(a.createRevision, b.createRevision),
  [RangeRequest_SortTarget.MOD]: (a, b) => compareBigint(a.modRevision, b.modRevision),
  [RangeRequest_SortTarget.VALUE]: (a, b) => compareBytes(a.value, b.value),
};

/**
 * etcd's applierV3backend.Range over a read view (the store's, or a transaction's, which sees the
 * transaction's earlier writes). Throws MvccError Compacted/FutureRev.
 */
function applyRange(view: ReadView, r: RangeRequest): RangeResponse {
  return finishRange(r, view.range(r.key, r.rangeEnd, rangeReadOptions(r)));
}

/** What a Range request reads from the store. */
function rangeReadOptions(r: RangeRequest): RangeOptions {
  let limit = Number(r.limit);
  // Sorting or filtering needs every key first; the limit applies afterwards.
  if (
    r.sortOrder !== RangeRequest_SortOrder.NONE ||
    r.minModRevision !== 0n ||
    r.maxModRevision !== 0n ||
    r.minCreateRevision !== 0n ||
    r.maxCreateRevision !== 0n
  ) {
    limit = 0;
  }
  // One more than asked, to know whether there is `more`.
  if (limit > 0) limit++;
  return { limit, rev: Number(r.revision), countOnly: r.countOnly };
}

/** A Range request's response from what the store read for it: filtered, sorted and limited. */
function finishRange(r: RangeRequest, rr: RangeResult): RangeResponse {
  const requestLimit = Number(r.limit);
  let kvs = rr.kvs;
  if (r.maxModRevision !== 0n) kvs = kvs.filter((kv) => kv.modRevision <= r.maxModRevision);
  if (r.minModRevision !== 0n) kvs = kvs.filter((kv) => kv.modRevision >= r.minModRevision);
  if (r.maxCreateRevision !== 0n) kvs = kvs.filter((kv) => kv.createRevision <= r.maxCreateRevision);
  if (r.minCreateRevision !== 0n) kvs = kvs.filter((kv) => kv.createRevision >= r.minCreateRevision);

  let sortOrder = r.sortOrder;
  // The store returns keys in ascending key order; any other target sorts ascending by default.
  if (r.sortTarget !== RangeRequest_SortTarget.KEY && sortOrder === RangeRequest_SortOrder.NONE) {
    sortOrder = RangeRequest_SortOrder.ASCEND;
  }
  if (sortOrder !== RangeRequest_SortOrder.NONE) {
    // A sort target or order from the wire may lie outside its enum: an unknown target sorts by key, an
    // unknown order sorts nothing.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    const less = sorters[r.sortTarget] ?? sorters[RangeRequest_SortTarget.KEY];
    // Go's sort.Sort (not stable): equal elements end up where etcd puts them.
    if (sortOrder === RangeRequest_SortOrder.DESCEND) goSort(kvs, (a, b) => less(b, a) < 0);
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    else if (sortOrder === RangeRequest_SortOrder.ASCEND) goSort(kvs, (a, b) => less(a, b) < 0);
  }
  let more = false;
  if (requestLimit > 0 && kvs.length > requestLimit) {
    kvs = kvs.slice(0, requestLimit);
    more = true;
  }
  if (r.keysOnly) for (const kv of kvs) kv.value = EMPTY;
  return rangeResponse(rr.rev, kvs, more, rr.count);
}

// ---- Txn: compares, checks, execution ----

/** The branch a txn takes, and the same for each txn nested in that branch, in op order. */
interface TxnPath {
  readonly succeeded: boolean;
  readonly nested: TxnPath[];
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let result: number;
  const union = c.targetUnion;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      result = compareBytes(kv.value, union.case === "value" ? union.value : EMPTY);
      break;
    case Compare_CompareTarget.CREATE:
      result = compareBigint(kv.createRevision, union.case === "createRevision" ? union.value : 0n);
      break;
    case Compare_CompareTarget.MOD:
      result = compareBigint(kv.modRevision, union.case === "modRevision" ? union.value : 0n);
      break;
    case Compare_CompareTarget.VERSION:
      result = compareBigint(kv.version, union.case === "version" ? union.value : 0n);
      break;
    case Compare_CompareTarget.LEASE:
      result = compareBigint(kv.lease, union.case === "lease" ? union.value : 0n);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return result === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return result !== 0;
    case Compare_CompareResult.GREATER:
      return result > 0;
    case Compare_CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

const MISSING_KV: KeyValue = {
  $typeName: "mvccpb.KeyValue",
  key: EMPTY,
  createRevision: 0n,
  modRevision: 0n,
  version: 0n,
  value: EMPTY,
  lease: 0n,
};

/** etcd's applyCompare: every key in range must satisfy it; a missing key compares as zeros, except on value. */
function applyCompare(view: ReadView, c: Compare): boolean {
  let kvs: KeyValue[];
  try {
    kvs = view.range(c.key, c.rangeEnd).kvs;
  } catch {
    return false;
  }
  if (kvs.length === 0) {
    // No way to tell a missing value from an empty one: comparing the value of a missing key fails.
    if (c.target === Compare_CompareTarget.VALUE) return false;
    return compareKv(c, MISSING_KV);
  }
  for (const kv of kvs) if (!compareKv(c, kv)) return false;
  return true;
}

/** etcd's compareToPath: every compare, nested ones included, sees the state before the txn. */
function compareToPath(view: ReadView, rt: TxnRequest): TxnPath {
  let succeeded = true;
  for (const c of rt.compare) {
    if (!applyCompare(view, c)) {
      succeeded = false;
      break;
    }
  }
  const nested: TxnPath[] = [];
  for (const op of succeeded ? rt.success : rt.failure) {
    if (op.request.case === "requestTxn") nested.push(compareToPath(view, op.request.value));
  }
  return { succeeded, nested };
}

function forEachChosenOp(rt: TxnRequest, path: TxnPath, visit: (op: RequestOp) => void): void {
  let n = 0;
  for (const op of path.succeeded ? rt.success : rt.failure) {
    if (op.request.case === "requestTxn") forEachChosenOp(op.request.value, path.nested[n++]!, visit);
    else visit(op);
  }
}

function isTxnReadOnly(rt: TxnRequest): boolean {
  for (const op of rt.success.concat(rt.failure)) {
    const c = op.request.case;
    if (c === "requestPut" || c === "requestDeleteRange") return false;
    if (c === "requestTxn" && !isTxnReadOnly(op.request.value)) return false;
  }
  return true;
}

/** `KvApplier` over an `MvccStore`; see the contract in `types.ts`. */
export class DefaultKvApplier implements KvApplier {
  private readonly leases: LeaseLookup;
  private readonly requestAppliers: readonly RequestApplier[];

  constructor(
    readonly store: MvccStore,
    options: KvApplierOptions = {},
  ) {
    this.leases = options.leases ?? noLeases;
    this.requestAppliers = options.requestAppliers ?? [];
    this.authorize = options.authorize;
    this.refuse = options.refuse;
  }

  private readonly authorize: ((request: InternalRaftRequest) => void) | undefined;
  private readonly refuse: ((request: InternalRaftRequest) => RpcError | undefined) | undefined;

  consistentIndex(): number {
    return this.store.consistentIndex();
  }

  currentRevision(): number {
    return this.store.currentRevision();
  }

  compactRevision(): number {
    return this.store.compactRevision();
  }

  range(request: RangeRequest): RangeResponse {
    try {
      return this.store.read((view) => applyRange(view, request));
    } catch (e) {
      throw clientError(e);
    }
  }

  rangeInSteps(request: RangeRequest): RangeResponse | Promise<RangeResponse> {
    let read: RangeResult | Promise<RangeResult>;
    try {
      read = this.store.rangeInSteps(request.key, request.rangeEnd, rangeReadOptions(request));
    } catch (e) {
      throw clientError(e);
    }
    if (!(read instanceof Promise)) return finishRange(request, read);
    return read.then(
      (rr) => finishRange(request, rr),
      (e: unknown) => {
        throw clientError(e);
      },
    );
  }

  readOnlyTxn(request: TxnRequest): TxnResponse {
    if (!isTxnReadOnly(request)) throw new Error("readOnlyTxn: the txn has writes; propose it instead");
    try {
      return this.store.read((view) => {
        const path = compareToPath(view, request);
        this.checkTxn(view, request, path, false);
        return this.executeTxn(view, undefined, request, path, view.rev);
      });
    } catch (e) {
      throw clientError(e);
    }
  }

  applyBatch(entries: readonly CommittedRequest[]): ApplyBatchResult {
    const applied = this.store.consistentIndex();
    const results: ApplyResult[] = new Array<ApplyResult>(entries.length);
    let lastIndex = applied;
    // One result for every skipped entry: a restart replays up to a whole log of them, and an error
    // each (with its stack) would cost more than the replay.
    let skipped: ApplyResult | undefined;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.index <= applied) {
        // Applied before a crash: its effects are in the store. Nobody waits for its result.
        skipped ??= { ok: false, error: new RpcError(GrpcCode.ABORTED, `etcdserver: entries up to ${applied} already applied`) };
        results[i] = skipped;
      } else if (entry.index > lastIndex) {
        lastIndex = entry.index;
      }
    }
    if (lastIndex === applied) return { results, durable: Promise.resolve() };
    const { durable } = this.store.update((batch) => {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        if (entry.index <= applied) continue;
        try {
          results[i] = this.applyOne(batch, entry.request, entry.index);
        } catch (e) {
          // Client errors are raised before anything is written; anything else fails the batch, naming
          // the entry (the caller decides whether to skip it and apply the batch again).
          const rpc = toRpcError(e);
          if (rpc === undefined) throw new ApplyEntryError(i, entry.index, e);
          results[i] = { ok: false, error: rpc };
        }
      }
      batch.setConsistentIndex(lastIndex);
    });
    return { results, durable };
  }

  private applyOne(batch: WriteBatch, request: InternalRaftRequest, index: number): ApplyResult {
    const r = request.request;
    // Checked again here, not only before proposing: an entry already in a log is refused alike on every
    // member, before it writes anything.
    checkStoredSizes(r);
    const refusal = this.refuse?.(request);
    if (refusal !== undefined) return { ok: false, error: refusal };
    this.authorize?.(request);
    switch (r.case) {
      case "put":
        return { ok: true, response: this.applyPut(batch, r.value) };
      case "deleteRange":
        return { ok: true, response: batch.txn((txn) => this.deleteRange(txn, r.value)) };
      case "txn":
        return { ok: true, response: this.applyTxn(batch, r.value) };
      case "compaction":
        return this.applyCompaction(batch, r.value);
      default:
        for (const applier of this.requestAppliers) if (applier.applies(r)) return applier.apply(batch, r, index);
        return {
          ok: false,
          error: new RpcError(GrpcCode.UNIMPLEMENTED, `etcdserver: the KV applier does not apply ${r.case ?? "empty"} requests`),
        };
    }
  }

  /** etcd checks a put's lease before it opens the write transaction. */
  private applyPut(batch: WriteBatch, p: PutRequest): PutResponse {
    if (p.lease !== 0n && !this.leases.has(p.lease)) throw RpcError.of("leaseNotFound");
    return batch.txn((txn) => this.put(txn, p, true));
  }

  /**
   * etcd's Put inside a write transaction. `standalone`: a Put request of its own, whose missing previous
   * key is a client error; inside a txn the checks ran before the txn (`checkTxn`).
   */
  private put(txn: TxnWrite, p: PutRequest, standalone: boolean): PutResponse {
    let prev: KeyValue | undefined;
    if (p.ignoreValue || p.ignoreLease || p.prevKv) prev = txn.range(p.key, undefined).kvs[0];
    let value = p.value;
    let lease = p.lease;
    if (p.ignoreValue || p.ignoreLease) {
      if (prev === undefined) {
        // ignore_{value,lease} needs the key to exist.
        if (standalone) throw RpcError.of("keyNotFound");
        // Inside a txn etcd checked before the txn; an earlier op of the same txn deleting the key is a
        // duplicate key that validation rejects. Should one slip through, write an empty value rather
        // than abandon a half-applied txn.
      }
      if (p.ignoreValue) value = prev?.value ?? EMPTY;
      if (p.ignoreLease) lease = prev?.lease ?? 0n;
    }
    const rev = txn.put(p.key, value, lease);
    return putResponse(rev, p.prevKv ? prev : undefined);
  }

  private deleteRange(txn: TxnWrite, dr: DeleteRangeRequest): DeleteRangeResponse {
    const prevKvs = dr.prevKv ? txn.range(dr.key, dr.rangeEnd).kvs : [];
    const deleted = txn.deleteRange(dr.key, dr.rangeEnd);
    return deleteRangeResponse(txn.rev, deleted, prevKvs);
  }

  /**
   * etcd's checkRequests: before any write, against the state before the txn, along the chosen
   * branches. Puts: ignore_value/ignore_lease need the key (keyNotFound), a lease must exist
   * (leaseNotFound). Ranges: a revision above the current one (futureRev) or below the compact revision
   * (compacted). etcd runs all put checks before all range checks; so do we.
   */
  private checkTxn(view: ReadView, rt: TxnRequest, path: TxnPath, checkPuts: boolean): void {
    if (checkPuts) {
      forEachChosenOp(rt, path, (op) => {
        if (op.request.case !== "requestPut") return;
        const p = op.request.value;
        if (p.ignoreValue || p.ignoreLease) {
          if (view.range(p.key, undefined).kvs.length === 0) throw RpcError.of("keyNotFound");
        }
        if (p.lease !== 0n && !this.leases.has(p.lease)) throw RpcError.of("leaseNotFound");
      });
    }
    forEachChosenOp(rt, path, (op) => {
      if (op.request.case !== "requestRange") return;
      const rev = Number(op.request.value.revision);
      if (rev === 0) return;
      if (rev > view.rev) throw RpcError.of("futureRev");
      if (rev < view.compactRev) throw RpcError.of("compacted");
    });
  }

  private applyTxn(batch: WriteBatch, rt: TxnRequest): TxnResponse {
    return batch.txn((txn) => {
      // Nothing is written yet: `txn` reads the state before the txn.
      const path = compareToPath(txn, rt);
      this.checkTxn(txn, rt, path, !isTxnReadOnly(rt));
      const response = this.executeTxn(txn, txn, rt, path, 0);
      // One revision for the whole txn: the new one if it changed anything.
      response.header!.revision = BigInt(txn.rev);
      return response;
    });
  }

  /**
   * etcd's applyTxn: runs the chosen branch's ops in order; reads see the txn's earlier writes. A nested
   * txn's response header carries revision 0 (etcd never fills it); `headerRevision` is what the
   * outermost gets before the caller sets it.
   */
  private executeTxn(view: ReadView, txn: TxnWrite | undefined, rt: TxnRequest, path: TxnPath, headerRevision: number): TxnResponse {
    const ops = path.succeeded ? rt.success : rt.failure;
    const responses: ResponseOp[] = new Array<ResponseOp>(ops.length);
    let nested = 0;
    for (let i = 0; i < ops.length; i++) {
      const r = ops[i]!.request;
      switch (r.case) {
        case "requestRange":
          responses[i] = responseOp({ case: "responseRange", value: applyRange(view, r.value) });
          break;
        case "requestPut":
          if (txn === undefined) throw new Error("put in a read-only txn");
          responses[i] = responseOp({ case: "responsePut", value: this.put(txn, r.value, false) });
          break;
        case "requestDeleteRange":
          if (txn === undefined) throw new Error("delete in a read-only txn");
          responses[i] = responseOp({ case: "responseDeleteRange", value: this.deleteRange(txn, r.value) });
          break;
        case "requestTxn":
          responses[i] = responseOp({
            case: "responseTxn",
            value: this.executeTxn(view, txn, r.value, path.nested[nested++]!, 0),
          });
          break;
        default:
          responses[i] = responseOp({ case: undefined });
      }
    }
    return txnResponse(headerRevision, path.succeeded, responses);
  }

  private applyCompaction(batch: WriteBatch, c: CompactionRequest): ApplyResult {
    const physical = batch.compact(Number(c.revision));
    // Marks the promise handled; whoever awaits it still sees a rejection.
    physical.catch(() => {});
    return { ok: true, response: compactionResponse(this.store.currentRevision()), physical };
  }
}

/** The KV applier over `store` (see `DefaultKvApplier`). */
export function createKvApplier(store: MvccStore, options: KvApplierOptions = {}): DefaultKvApplier {
  return new DefaultKvApplier(store, options);
}

import type {
  CompactionResponse,
  DeleteRangeResponse,
  InternalRaftRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from "@etcd-ts/api";
import type { RpcError } from "@etcd-ts/api";

/**
 * The contract between the server's write path and the code that turns etcd requests into MVCC
 * operations. The server proposes `InternalRaftRequest`s to a log; once committed, it hands them here in
 * log order. The applier fills `header.revision` of each response; the server fills cluster_id,
 * member_id and raft_term.
 */

/** One committed log entry carrying a client request. */
export interface CommittedRequest {
  /** The log index of the entry (the raft index once raft is in place). */
  readonly index: number;
  readonly request: InternalRaftRequest;
}

/** The response of any applied write: a KV response, or one of another applier's (leases, auth, …). */
export type WriteResponse =
  PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse | { readonly $typeName: string; header?: ResponseHeader };

/** What applying one entry produced: a response or the error the client must see (e.g. compacted). */
export type ApplyResult =
  | { readonly ok: true; readonly response: WriteResponse; readonly physical?: Promise<void> }
  | { readonly ok: false; readonly error: RpcError };

export interface ApplyBatchResult {
  /** One result per entry, in order. Available synchronously: the entries' effects are already visible to reads. */
  readonly results: ApplyResult[];
  /** Resolves when the batch (data and the consistent index = index of the last entry) is durable. */
  readonly durable: Promise<void>;
}

export interface KvApplier {
  /** Serves a read from the current applied state. Throws `RpcError` (compacted, future revision). */
  range(request: RangeRequest): RangeResponse;
  /**
   * The same read, of many keys in steps that let other work run between them (the read revision fixed
   * at the call); a read of few keys is answered at once.
   */
  rangeInSteps(request: RangeRequest): RangeResponse | Promise<RangeResponse>;
  /** Serves a Txn that has no writes in any branch (etcd serves those without the log). */
  readOnlyTxn(request: TxnRequest): TxnResponse;
  /**
   * Applies committed entries in log order in ONE backend write transaction (group commit), each write
   * request getting its own revision, and records the last entry's index as the consistent index in the
   * same transaction. Entries at or below the stored consistent index are skipped (already applied
   * before a crash): their result is `{ ok: false }` with an ABORTED error nobody needs to see. Never
   * throws for a client error: those become `{ ok: false }` results. Requests other than Put,
   * DeleteRange, Txn and Compaction go to the first request applier that takes them (lease, auth, …;
   * they write their buckets through `batch.backend`); with none, an UNIMPLEMENTED error result
   * (the index still counts as applied). Throws when the store cannot go on (`MvccError` "Failed"/"Corrupt", a backend error):
   * the member must stop, as etcd panics. An entry whose apply throws anything but a client error throws
   * `ApplyEntryError` naming it, with nothing of the batch applied (the backend transaction is rolled back;
   * in-memory state of the store and the request appliers may not be, so it must be reloaded).
   */
  applyBatch(entries: readonly CommittedRequest[]): ApplyBatchResult;
  /** The last applied log index as stored in the backend (0 for a new store). */
  consistentIndex(): number;
  currentRevision(): number;
  compactRevision(): number;
}

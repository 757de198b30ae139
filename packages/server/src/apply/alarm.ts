import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AlarmMemberSchema,
  AlarmRequest_AlarmAction,
  AlarmResponseSchema,
  AlarmType,
  RpcError,
  type AlarmMember,
  type AlarmRequest,
  type InternalRaftRequest,
  type PutRequest,
  type RequestOp,
  type TxnRequest,
} from "@etcd-ts/api";
import type { WriteBatch } from "@etcd-ts/mvcc";
import { ALARM_BUCKET } from "@etcd-ts/schema";
import type { Backend, ReadTxn, WriteTxn } from "@etcd-ts/storage";
import type { RequestApplier } from "./index.js";
import type { ApplyResult, CommittedRequest } from "./types.js";
import { DEFAULT_QUOTA_BACKEND_BYTES } from "../config.js";
import type { Logger } from "../log.js";

/** etcd's quota costs (etcdserver/quota.go). */
const LEASE_OVERHEAD = 64;
const KV_OVERHEAD = 256;

/**
 * The cluster's alarms (etcd's `v3alarm.AlarmStore`) and the backend quota (etcd's `backendQuota`).
 *
 * Alarms change only through the log (`AlarmRequest` entries, applied by `AlarmApplier` inside the apply
 * batch and persisted in the `alarm` bucket with it), so every member agrees on them. While NOSPACE is
 * raised the apply path refuses puts, txns that put and lease grants (etcd's `applierV3Capped`); reads,
 * deletes, compaction and defragmentation still work, so an operator can free space and disarm.
 */
export class AlarmStore {
  /** alarm type → member ID → alarm. */
  private readonly alarms = new Map<AlarmType, Map<bigint, AlarmMember>>();
  readonly quotaBytes: number;

  constructor(quotaBackendBytes: number) {
    // etcd: a negative quota disables it, 0 means the default 2 GiB.
    this.quotaBytes = quotaBackendBytes < 0 ? Infinity : quotaBackendBytes === 0 ? DEFAULT_QUOTA_BACKEND_BYTES : quotaBackendBytes;
  }

  /** Reloads the alarms from the `alarm` bucket (at start, and after a snapshot replaced the backend). */
  restore(backend: Backend): void {
    this.alarms.clear();
    backend.view((txn: ReadTxn) => {
      if (!txn.buckets().includes(ALARM_BUCKET)) return;
      for (const { key } of txn.range(ALARM_BUCKET)) this.add(fromBinary(AlarmMemberSchema, key));
    });
  }

  /** Alarms of `type` (every alarm for NONE), as etcd's `Get`. */
  get(type: AlarmType): AlarmMember[] {
    if (type === AlarmType.NONE) return [...this.alarms.values()].flatMap((byMember) => [...byMember.values()]);
    return [...(this.alarms.get(type)?.values() ?? [])];
  }

  isActive(type: AlarmType): boolean {
    return (this.alarms.get(type)?.size ?? 0) > 0;
  }

  /** What Status lists in `errors`: etcd prints each alarm in protobuf compact text. */
  statusErrors(): string[] {
    // Go's proto.EnumName prints an unknown enum value as its number (the reverse mapping has no name for it).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    return this.get(AlarmType.NONE).map((a) => `memberID:${a.memberID} alarm:${AlarmType[a.alarm] ?? a.alarm} `);
  }

  /** etcd's quota check: would this request push the backend to the quota? */
  available(backendSize: number, request: InternalRaftRequest["request"]): boolean {
    const cost = quotaCost(request);
    return cost === 0 || backendSize + cost < this.quotaBytes;
  }

  /** Applies an `AlarmRequest` inside an apply batch; the response carries no header, as etcd's. */
  apply(txn: WriteTxn, request: AlarmRequest, logger: Logger): ApplyResult {
    const response = create(AlarmResponseSchema, {});
    const before = this.get(request.alarm).length;
    switch (request.action) {
      case AlarmRequest_AlarmAction.GET:
        response.alarms = this.get(request.alarm);
        break;
      case AlarmRequest_AlarmAction.ACTIVATE: {
        // Member 0 and alarm NONE encode to an empty key, which bbolt refuses (etcd stops with a fatal
        // write error): with no alarm to raise, nothing is stored, and snapshots stay writable.
        if (request.memberID === 0n && request.alarm === AlarmType.NONE) break;
        const wanted = create(AlarmMemberSchema, { memberID: request.memberID, alarm: request.alarm });
        const alarm = this.add(wanted);
        if (alarm === wanted) {
          txn.createBucket(ALARM_BUCKET);
          txn.put(ALARM_BUCKET, toBinary(AlarmMemberSchema, alarm), new Uint8Array(0));
        }
        response.alarms = [alarm];
        if (before === 0 && this.get(request.alarm).length === 1) {
          logger.warn("alarm raised", { alarm: AlarmType[request.alarm], from: request.memberID.toString(16) });
        }
        break;
      }
      case AlarmRequest_AlarmAction.DEACTIVATE: {
        const byMember = this.alarms.get(request.alarm);
        const alarm = byMember?.get(request.memberID);
        if (alarm === undefined) break;
        byMember!.delete(request.memberID);
        txn.createBucket(ALARM_BUCKET);
        txn.delete(ALARM_BUCKET, toBinary(AlarmMemberSchema, alarm));
        response.alarms = [alarm];
        if (before > 0 && this.get(request.alarm).length === 0) {
          logger.warn("alarm disarmed", { alarm: AlarmType[request.alarm], from: request.memberID.toString(16) });
        }
        break;
      }
    }
    return { ok: true, response };
  }

  private add(alarm: AlarmMember): AlarmMember {
    let byMember = this.alarms.get(alarm.alarm);
    if (byMember === undefined) this.alarms.set(alarm.alarm, (byMember = new Map<bigint, AlarmMember>()));
    const existing = byMember.get(alarm.memberID);
    if (existing !== undefined) return existing;
    byMember.set(alarm.memberID, alarm);
    return alarm;
  }
}

/** Applies `AlarmRequest` entries (GET goes through the log too, as in etcd 3.4). */
export class AlarmApplier implements RequestApplier {
  constructor(
    private readonly alarms: AlarmStore,
    private readonly logger: Logger,
  ) {}

  applies(request: InternalRaftRequest["request"]): boolean {
    return request.case === "alarm";
  }

  apply(batch: WriteBatch, request: InternalRaftRequest["request"]): ApplyResult {
    if (request.case !== "alarm") throw new Error(`not an alarm request: ${request.case}`);
    return this.alarms.apply(batch.backend, request.value, this.logger);
  }
}

/**
 * Why an entry is refused at its place in the log while an alarm is raised, or undefined: while CORRUPT
 * is raised every KV and lease write and compaction (etcd's `applierV3Corrupt`), while NOSPACE is raised
 * puts, putting txns and lease grants (etcd's `applierV3Capped`). The applier asks right before it
 * applies the entry, so the alarms are those applied so far — an alarm entry earlier in the same batch
 * counts only if it took effect (one refused by auth does not), and the answer does not depend on where
 * the batches of a member happen to begin and end.
 */
export function alarmRefusal(alarms: AlarmStore, request: InternalRaftRequest["request"]): RpcError | undefined {
  if (alarms.isActive(AlarmType.CORRUPT) && isRefusedWhenCorrupt(request)) return RpcError.of("corrupt");
  if (alarms.isActive(AlarmType.NOSPACE) && isCappedWhenNoSpace(request)) return RpcError.of("noSpace");
  return undefined;
}

/**
 * The quota around one apply batch: a put/txn/grant applied while the backend was over the quota keeps
 * its write but answers `noSpace` (etcd's `quotaApplierV3`). Only the answer depends on the backend size
 * at the batch's start, never the state.
 */
export function answerOverQuota(
  alarms: AlarmStore,
  backendSize: number,
  committed: readonly CommittedRequest[],
): (results: ApplyResult[]) => ApplyResult[] {
  const overQuota = committed.map((entry) => !alarms.available(backendSize, entry.request.request));
  return (results) => results.map((result, i) => (overQuota[i] && result.ok ? { ok: false, error: RpcError.of("noSpace") } : result));
}

/** What etcd's corrupt applier refuses: every KV request, compaction, lease grant and revoke. */
function isRefusedWhenCorrupt(request: InternalRaftRequest["request"]): boolean {
  switch (request.case) {
    case "put":
    case "range":
    case "deleteRange":
    case "txn":
    case "compaction":
    case "leaseGrant":
    case "leaseRevoke":
      return true;
    default:
      return false;
  }
}

/** What etcd's capped applier refuses: puts, txns with a put in either branch, lease grants. */
function isCappedWhenNoSpace(request: InternalRaftRequest["request"]): boolean {
  if (request.case === "put" || request.case === "leaseGrant") return true;
  return request.case === "txn" && txnCost(request.value) > 0;
}

/** etcd's `backendQuota.Cost`: what a request may add to the backend; 0 for anything but put/txn/grant. */
export function quotaCost(request: InternalRaftRequest["request"]): number {
  switch (request.case) {
    case "put":
      return putCost(request.value);
    case "txn":
      return txnCost(request.value);
    case "leaseGrant":
      return LEASE_OVERHEAD;
    default:
      return 0;
  }
}

function putCost(put: PutRequest): number {
  return KV_OVERHEAD + put.key.byteLength + put.value.byteLength;
}

/** etcd counts the puts of the larger branch, top level only (its costTxnReq ignores nested txns). */
function txnCost(txn: TxnRequest): number {
  const branch = (ops: readonly RequestOp[]) =>
    ops.reduce((sum, op) => sum + (op.request.case === "requestPut" ? putCost(op.request.value) : 0), 0);
  return Math.max(branch(txn.success), branch(txn.failure));
}

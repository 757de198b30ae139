import { create, fromBinary } from "@bufbuild/protobuf";
import { GrpcCode, RpcError, TxnRequestSchema } from "@etcd-ts/api";
import type { DeleteRangeRequest, InternalRaftRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "@etcd-ts/api";
import { MAX_KEY_BYTES } from "@etcd-ts/storage";

/**
 * The checks etcd's v3rpc layer (`etcdserver/api/v3rpc/key.go`) makes before a request reaches raft, with
 * its errors. The server calls `validateRequest` before proposing (and before serving a Range), so the
 * applier only ever sees requests that passed.
 */

export interface ValidateOptions {
  /** `--max-txn-ops` (etcd's default 128). */
  readonly maxTxnOps?: number;
}

export const DEFAULT_MAX_TXN_OPS = 128;

/**
 * The deepest txn nesting accepted (the outermost txn is level 1), whatever `--max-txn-ops` allows. etcd's
 * own bound is the op budget: `--max-txn-ops` + 1 levels (129 by default, which this allows). Deeper
 * messages would overflow the stack of protobuf-es' recursive encoder (about 900 levels) and of the
 * recursive checks and apply; 256 levels keep a wide margin. Every member has the same bound, so an
 * entry one member proposed always decodes and applies on the others.
 */
export const MAX_TXN_NESTING = 256;

/**
 * The protobuf decode recursion limit for a `TxnRequest` (a txn nests two messages per level: the txn
 * and its RequestOp, and its ops' requests one more): every txn of `MAX_TXN_NESTING` levels decodes. An
 * `InternalRaftRequest` needs one more.
 */
export const TXN_DECODE_RECURSION_LIMIT = 2 * MAX_TXN_NESTING + 8;

/** Txns whose bytes nest deeper than the decoder follows (see `decodeTxnRequest`). */
const nestedTooDeep = new WeakSet<TxnRequest>();

/**
 * The gRPC decoder of `KV.Txn`. A message nested deeper than `TXN_DECODE_RECURSION_LIMIT` cannot be a
 * valid txn (etcd answers it tooManyOps, having decoded it in full); protobuf-es stops at its recursion
 * limit, so it decodes to an empty txn marked too deep, which `validateTxn` answers as etcd does. grpc-js
 * would otherwise answer any decoder error with INTERNAL "Error deserializing request".
 */
export function decodeTxnRequest(bytes: Uint8Array): TxnRequest {
  try {
    return fromBinary(TxnRequestSchema, bytes, { recursionLimit: TXN_DECODE_RECURSION_LIMIT });
  } catch (error) {
    if (!(error instanceof Error) || !/maximum recursion depth/.test(error.message)) throw error;
    const marked = create(TxnRequestSchema);
    nestedTooDeep.add(marked);
    return marked;
  }
}

/**
 * Throws `RpcError` (emptyKey, valueProvided, leaseProvided, tooManyOps, duplicateKey, keyNotFound, and
 * INVALID_ARGUMENT for a name too long to store — `checkStoredSizes`).
 */
export function validateRequest(request: InternalRaftRequest["request"], options: ValidateOptions = {}): void {
  const maxTxnOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
  checkStoredSizes(request);
  switch (request.case) {
    case "range":
      return validateRange(request.value);
    case "put":
      return validatePut(request.value);
    case "deleteRange":
      return validateDeleteRange(request.value);
    case "txn":
      return validateTxn(request.value, maxTxnOps);
    default:
      // Compaction and the non-KV requests have no checks here.
      return;
  }
}

/**
 * Refuses a request that would write a backend key longer than every engine stores (`MAX_KEY_BYTES`):
 * user and role names are the keys of the authUsers and authRoles buckets. (KV keys are not backend keys
 * — MVCC rows are keyed by revision — and a value from one request is bounded by the entry size, far
 * below `MAX_VALUE_BYTES`.) Pure and the same on every member: the applier runs it again on each entry
 * before applying it, so an entry that got into a log anyway is refused alike everywhere, whatever engine
 * a member runs. etcd 3.4 has no such check (bbolt's 32 KiB key limit makes it exit on every start).
 */
export function checkStoredSizes(request: InternalRaftRequest["request"]): void {
  switch (request.case) {
    case "authUserAdd":
      return checkNameSize("user", request.value.name);
    case "authRoleAdd":
      return checkNameSize("role", request.value.name);
    default:
      return;
  }
}

function checkNameSize(what: "user" | "role", name: string): void {
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_KEY_BYTES) {
    throw new RpcError(GrpcCode.INVALID_ARGUMENT, `etcdserver: ${what} name is too long (${bytes} bytes; at most ${MAX_KEY_BYTES})`);
  }
}

export function validateRange(r: RangeRequest): void {
  if (r.key.length === 0) throw RpcError.of("emptyKey");
}

export function validatePut(r: PutRequest): void {
  if (r.key.length === 0) throw RpcError.of("emptyKey");
  if (r.ignoreValue && r.value.length !== 0) throw RpcError.of("valueProvided");
  if (r.ignoreLease && r.lease !== 0n) throw RpcError.of("leaseProvided");
}

export function validateDeleteRange(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw RpcError.of("emptyKey");
}

/**
 * etcd's checkTxnRequest, then checkIntervals on each branch (in that order, so the quadratic duplicate
 * check only runs on requests of bounded size).
 */
export function validateTxn(r: TxnRequest, maxTxnOps: number = DEFAULT_MAX_TXN_OPS): void {
  if (nestedTooDeep.has(r)) throw RpcError.of("tooManyOps");
  checkTxnRequest(r, maxTxnOps, 1);
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

/**
 * The op count of a txn is the largest of its compares, success ops and failure ops; a nested txn gets
 * the budget that is left (maxTxnOps minus its parent's count). All keys must be non-empty; an op with
 * no request is keyNotFound. A txn at a level past `MAX_TXN_NESTING` is tooManyOps too.
 */
function checkTxnRequest(r: TxnRequest, maxTxnOps: number, level: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps || level > MAX_TXN_NESTING) throw RpcError.of("tooManyOps");
  for (const c of r.compare) if (c.key.length === 0) throw RpcError.of("emptyKey");
  for (const op of r.success) checkRequestOp(op, maxTxnOps - opc, level);
  for (const op of r.failure) checkRequestOp(op, maxTxnOps - opc, level);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number, level: number): void {
  const r = op.request;
  switch (r.case) {
    case "requestRange":
      return validateRange(r.value);
    case "requestPut":
      return validatePut(r.value);
    case "requestDeleteRange":
      return validateDeleteRange(r.value);
    case "requestTxn":
      return checkTxnRequest(r.value, maxTxnOps, level + 1);
    default:
      throw RpcError.of("keyNotFound");
  }
}

/**
 * A key interval as etcd's adt.StringAffineInterval: `[begin, end)` compared bytewise, where an empty
 * `end` is +infinity. A single key k is `[k, k + "\0")`. A delete's range end of "\0" (from key) is kept
 * literally, as etcd does, which makes an interval that contains no key.
 */
interface Interval {
  readonly begin: string;
  readonly end: string;
}

/** Keys as strings with one char per byte: string order is then byte order. */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Does `interval` contain key `k` (affine: an empty end is infinity)? */
function contains(interval: Interval, k: string): boolean {
  return interval.begin <= k && (interval.end === "" || k < interval.end);
}

function intersectsPoint(dels: readonly Interval[], k: string): boolean {
  for (const d of dels) if (contains(d, k)) return true;
  return false;
}

/**
 * etcd's checkIntervals: within one branch, a key may not be put twice, nor put and deleted. Puts in
 * both branches of one nested txn are fine (only one branch runs). Order matters as in etcd: this
 * level's deletes, then each nested txn's puts against the puts and deletes gathered so far (its own
 * deletes join after), then this level's puts against everything. Returns the branch's puts and deletes.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.request.case !== "requestDeleteRange") continue;
    const d = op.request.value;
    const begin = latin1(d.key);
    dels.push(d.rangeEnd.length !== 0 ? { begin, end: latin1(d.rangeEnd) } : { begin, end: begin + "\0" });
  }

  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request.case !== "requestTxn") continue;
    const then = checkIntervals(op.request.value.success);
    const otherwise = checkIntervals(op.request.value.failure);
    for (const k of then.puts) {
      if (puts.has(k) || intersectsPoint(dels, k)) throw RpcError.of("duplicateKey");
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      // A key put in both branches of the same txn is safe: the branches exclude each other.
      if (puts.has(k) && !then.puts.has(k)) throw RpcError.of("duplicateKey");
      if (intersectsPoint(dels, k)) throw RpcError.of("duplicateKey");
      puts.add(k);
    }
    // etcd merges the nested deletes that intersect ["\0", +inf): all but those ending at "\0", which
    // contain no key anyway.
    for (const d of then.dels) dels.push(d);
    for (const d of otherwise.dels) dels.push(d);
  }

  for (const op of ops) {
    if (op.request.case !== "requestPut") continue;
    const k = latin1(op.request.value.key);
    if (puts.has(k) || intersectsPoint(dels, k)) throw RpcError.of("duplicateKey");
    puts.add(k);
  }
  return { puts, dels };
}

/**
 * The KV applier: turns committed etcd requests (Put, DeleteRange, Txn, Compaction) into MVCC writes and
 * serves Range and read-only Txn, with etcd 3.4's semantics, responses and errors.
 *
 * - `validateRequest` makes the checks etcd's gRPC layer makes before proposing (empty key, ignore_*
 *   conflicts, txn size, duplicate keys in a txn). The server calls it first.
 * - `createKvApplier(store, { leases })` implements `KvApplier` (`types.ts`): `applyBatch` applies
 *   committed entries in log order in one backend transaction, one revision per write request, and
 *   stores the last entry's index as the consistent index in that same transaction; entries at or
 *   below it are skipped. Errors etcd reports at apply time (compacted, future revision, key not found,
 *   lease not found) become `{ ok: false }` results.
 * - `LeaseLookup` is all the applier knows of leases; the default knows none. (Keeping the lessor's
 *   key → lease map in step is the store's job: `MvccStore.open(backend, { leases })`.)
 * - `requestAppliers` take the non-KV log requests (leases, auth, …) inside the same batch; they write
 *   their buckets through `batch.backend`.
 * - Range sorting uses a port of Go's sort.Sort (`go-sort.ts`), so ties come out in etcd's order.
 * - `etcd-differential.test.ts` checks all of this against a real etcd 3.4 when one is on PATH.
 */
export { createKvApplier, DefaultKvApplier } from "./kv-applier.js";
export type { KvApplierOptions, RequestApplier } from "./kv-applier.js";
export {
  validateRequest,
  validateRange,
  validatePut,
  validateDeleteRange,
  validateTxn,
  checkStoredSizes,
  decodeTxnRequest,
  DEFAULT_MAX_TXN_OPS,
  MAX_TXN_NESTING,
  TXN_DECODE_RECURSION_LIMIT,
} from "./validate.js";
export type { ValidateOptions } from "./validate.js";
export { noLeases } from "./lease-lookup.js";
export type { LeaseLookup } from "./lease-lookup.js";
export { ApplyEntryError, isApplyEntryError } from "./errors.js";
export type { ApplyBatchResult, ApplyResult, CommittedRequest, KvApplier, WriteResponse } from "./types.js";

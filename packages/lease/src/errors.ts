/**
 * The lessor's errors. `kind` names the etcd error a client sees: each kind is also an `RpcErrorKind` of
 * `@etcd-ts/api`, so the server maps a `LeaseError` to etcd's gRPC status and message with
 * `RpcError.of(error.kind)` and no table of its own.
 *
 * - `leaseNotFound`: no lease with that ID (`etcdserver: requested lease not found`); also ID 0 on grant,
 *   as etcd's `Grant(NoLease)` answers.
 * - `leaseExist`: grant of an ID that is already granted (`etcdserver: lease already exists`).
 * - `leaseTTLTooLarge`: grant with a TTL above `MAX_LEASE_TTL` (`etcdserver: too large lease TTL`).
 * - `notLeader`: `renew` on a lessor that is not the primary, or a renew of an expired lease whose
 *   revocation was overtaken by a change of leader (etcd's `ErrNotPrimary`). The server forwards the
 *   keepalive to the leader, or answers `etcdserver: not leader` when it cannot.
 */
export type LeaseErrorKind = "leaseNotFound" | "leaseExist" | "leaseTTLTooLarge" | "notLeader";

export class LeaseError extends Error {
  override readonly name = "LeaseError";
  readonly kind: LeaseErrorKind;
  constructor(kind: LeaseErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

export function isLeaseError(e: unknown, kind?: LeaseErrorKind): e is LeaseError {
  return e instanceof LeaseError && (kind === undefined || e.kind === kind);
}

/** A record in the `lease` bucket that cannot be decoded: the data directory is damaged. */
export class LeaseRecordError extends Error {
  override readonly name = "LeaseRecordError";
}

export function isLeaseRecordError(e: unknown): e is LeaseRecordError {
  return e instanceof LeaseRecordError;
}

/**
 * The one error class of @etcd-ts/lease. `code` says what went wrong:
 *
 * - `LeaseNotFound`: no lease with that ID; also ID 0 on grant, as etcd's `Grant(NoLease)` answers.
 * - `LeaseExist`: grant of an ID that is already granted.
 * - `LeaseTTLTooLarge`: grant with a TTL above `MAX_LEASE_TTL`.
 * - `NotLeader`: `renew` on a lessor that is not the primary, or a renew of an expired lease whose
 *   revocation was overtaken by a change of leader (etcd's `ErrNotPrimary`). The server forwards the
 *   keepalive to the leader, or answers `etcdserver: not leader` when it cannot.
 * - `Corrupt`: a record in the `lease` bucket cannot be decoded: the data directory is damaged.
 *
 * The first four are refusals a client sees: the server's error mapper answers them with etcd's status
 * and message. `isLeaseError(e, code)` compares the `name`, not the prototype, so it also recognises
 * errors thrown by another installed copy of the package.
 */
export type LeaseErrorCode = "LeaseNotFound" | "LeaseExist" | "LeaseTTLTooLarge" | "NotLeader" | "Corrupt";

export class LeaseError extends Error {
  override readonly name = "LeaseError";
  constructor(
    readonly code: LeaseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isLeaseError(e: unknown, code?: LeaseErrorCode): e is LeaseError {
  return e instanceof Error && e.name === "LeaseError" && (code === undefined || (e as LeaseError).code === code);
}

import { RpcError, isRpcError } from "@etcd-ts/api";
import { isMvccError } from "@etcd-ts/mvcc";

/**
 * The one place MVCC errors become client errors, as etcd's togRPCError does: the store's compacted and
 * future-revision errors become etcd's exact statuses. Anything else is not a client error and is
 * returned unchanged (the caller rethrows it).
 */
export function toRpcError(e: unknown): RpcError | undefined {
  if (isRpcError(e)) return e;
  if (isMvccError(e, "Compacted")) return RpcError.of("compacted", { cause: e });
  if (isMvccError(e, "FutureRev")) return RpcError.of("futureRev", { cause: e });
  return undefined;
}

/**
 * An entry's apply threw something that is not a client error (a bug, a limit an engine enforces): the
 * whole batch's backend transaction was rolled back. `position` is the entry's place in the batch given
 * to `applyBatch`, `index` its log index, `cause` what it threw.
 */
export class ApplyEntryError extends Error {
  override readonly name = "ApplyEntryError";
  constructor(
    readonly position: number,
    readonly index: number,
    cause: unknown,
  ) {
    super(`applying entry ${index} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export function isApplyEntryError(e: unknown): e is ApplyEntryError {
  return e instanceof Error && e.name === "ApplyEntryError";
}

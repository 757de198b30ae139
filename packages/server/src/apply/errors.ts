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

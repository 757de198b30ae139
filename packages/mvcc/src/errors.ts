/**
 * Errors of the MVCC store. The KV applier maps them to etcd's client-visible `RpcError`s
 * (`Compacted` → `etcdserver: mvcc: required revision has been compacted`, `FutureRev` → `… is a future
 * revision`); the others mean the store cannot go on and are not client errors.
 */
export type MvccErrorCode =
  /** A read or compaction asked for a revision below the compact revision. */
  | "Compacted"
  /** A read or compaction asked for a revision above the current revision. */
  | "FutureRev"
  /** The store was closed. */
  | "Closed"
  /** The backend holds data the store cannot make sense of (a revision the index names is missing, a bad value). */
  | "Corrupt"
  /** A write batch failed after it had changed the in-memory index; the store refuses further work. */
  | "Failed";

const messages: Record<MvccErrorCode, string> = {
  Compacted: "mvcc: required revision has been compacted",
  FutureRev: "mvcc: required revision is a future revision",
  Closed: "mvcc: closed",
  Corrupt: "mvcc: corrupt store",
  Failed: "mvcc: store failed",
};

export class MvccError extends Error {
  override readonly name = "MvccError";
  readonly code: MvccErrorCode;
  constructor(code: MvccErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? messages[code], options);
    this.code = code;
  }
}

/** Whether `e` is a `MvccError` (of `code`, when given). It compares the name, not the prototype, so an error
 * thrown by another installed copy of this package counts too. */
export function isMvccError(e: unknown, code?: MvccErrorCode): e is MvccError {
  return e instanceof Error && e.name === "MvccError" && (code === undefined || (e as MvccError).code === code);
}

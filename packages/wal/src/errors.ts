// Errors of @etcd-ts/wal. One class with a stable `name` and a `kind`, so callers (the server's error
// table) can branch on the kind without importing internals; `WalError.is()` compares names, so it works
// across copies of the package.

export type WalErrorKind =
  /** A record or file failed its checksum, framing or sequence checks somewhere other than the torn tail
   * of the last segment. Nothing on disk was modified; a human (or a snapshot from the leader) must act. */
  | "Corrupt"
  /** There is no WAL (no segment files) in the directory. */
  | "NotFound"
  /** create() found an existing WAL in the directory. */
  | "Exists"
  /** The snapshot marker asked for is not in the WAL (or entries after it were released). */
  | "SnapshotNotFound"
  /** Another live process (or another open Wal in this process) holds the directory. */
  | "Locked"
  /** The Wal was closed. */
  | "Closed"
  /** An earlier write or fsync failed. After a failed fsync the page cache can no longer be trusted
   * (the kernel may have dropped the dirty pages), so the Wal refuses all further work; restart and let
   * open() recover from what is really on disk. */
  | "Failed"
  /** A caller broke a contract (non-contiguous entries, an overwrite below the snapshot, ...). */
  | "InvalidArgument";

export class WalError extends Error {
  static is(e: unknown): e is WalError {
    return e instanceof Error && e.name === "WalError";
  }

  readonly kind: WalErrorKind;
  /** The file concerned, when there is one (absolute or as given to open()). */
  readonly file: string | undefined;
  /** Byte offset in `file` of the bad record, for Corrupt. */
  readonly offset: number | undefined;
  /** The operating system's error code (`EIO`, `ENOSPC`, …) of the write or sync that failed, for Failed. */
  readonly errno: string | undefined;

  constructor(
    kind: WalErrorKind,
    message: string,
    details: { file?: string; offset?: number; cause?: unknown; errno?: string | undefined } = {},
  ) {
    const where =
      details.file !== undefined ? ` (${details.file}${details.offset !== undefined ? ` at offset ${details.offset}` : ""})` : "";
    super(`wal: ${message}${where}`, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = "WalError";
    this.kind = kind;
    this.file = details.file;
    this.offset = details.offset;
    this.errno = details.errno;
  }
}

/**
 * A write or sync of `file` that failed (EIO, ENOSPC, …): a `Failed` WalError whose message says what was
 * being done, the operating system's message and the file, with the errno in `errno`.
 */
export function ioFailure(what: string, file: string, cause: unknown, consequence = ""): WalError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new WalError("Failed", `${what} failed: ${reason}${consequence}`, { file, cause, errno: typeof errno === "string" ? errno : undefined });
}

/**
 * The one error class of @etcd-ts/wal. `code` says what went wrong, so callers (the server) can branch on
 * it without importing internals; `isWalError(e, code)` compares the `name`, not the prototype, so it also
 * recognises errors thrown by another installed copy of the package.
 */
export type WalErrorCode =
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
  override readonly name = "WalError";
  readonly code: WalErrorCode;
  /** The file concerned, when there is one (absolute or as given to open()). */
  readonly file: string | undefined;
  /** Byte offset in `file` of the bad record, for Corrupt. */
  readonly offset: number | undefined;
  /** The operating system's error code (`EIO`, `ENOSPC`, …) of the write or sync that failed, for Failed. */
  readonly errno: string | undefined;

  constructor(
    code: WalErrorCode,
    message: string,
    details: { file?: string; offset?: number; cause?: unknown; errno?: string | undefined } = {},
  ) {
    const where =
      details.file !== undefined ? ` (${details.file}${details.offset !== undefined ? ` at offset ${details.offset}` : ""})` : "";
    super(`wal: ${message}${where}`, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
    this.errno = details.errno;
  }
}

export function isWalError(e: unknown, code?: WalErrorCode): e is WalError {
  return e instanceof Error && e.name === "WalError" && (code === undefined || (e as WalError).code === code);
}

/**
 * A write or sync of `file` that failed (EIO, ENOSPC, …): a `Failed` WalError whose message says what was
 * being done, the operating system's message and the file, with the errno in `errno`.
 */
export function ioFailure(what: string, file: string, cause: unknown, consequence = ""): WalError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new WalError("Failed", `${what} failed: ${reason}${consequence}`, {
    file,
    cause,
    errno: typeof errno === "string" ? errno : undefined,
  });
}

/**
 * Why a snapshot could not be written, read, verified or restored.
 * - `Corrupt`: the file is not a readable bbolt database (bad magic, no valid meta page, truncated, a page
 *   of the wrong type, keys out of order, …).
 * - `Unsupported`: a valid bbolt file we do not handle (another format version, nested buckets).
 * - `MissingHash`: no trailing SHA-256 where one is required (etcd's `--skip-hash-check=false`).
 * - `HashMismatch`: the trailing SHA-256 does not match the database bytes.
 * - `BucketNotFound`: the file has no bucket of that name.
 * - `InvalidData`: the store cannot be written as bbolt (an empty key, a key over bbolt's 32 KiB limit),
 *   or the view changed while it was being written (it must be a consistent view).
 */
export type SnapshotErrorCode = "Corrupt" | "Unsupported" | "MissingHash" | "HashMismatch" | "BucketNotFound" | "InvalidData";

export class SnapshotError extends Error {
  override readonly name = "SnapshotError";
  readonly code: SnapshotErrorCode;
  constructor(code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Whether `e` is a `SnapshotError` (of `code`, when given). It compares the name, not the prototype, so an error
 * thrown by another installed copy of this package counts too. */
export function isSnapshotError(e: unknown, code?: SnapshotErrorCode): e is SnapshotError {
  return e instanceof Error && e.name === "SnapshotError" && (code === undefined || (e as SnapshotError).code === code);
}

/**
 * The storage engine interface: ordered byte keys in named buckets.
 *
 * Contracts every engine keeps (the conformance suite in `./testing/conformance.ts` checks each of them):
 * - Keys and values are byte strings; keys within a bucket are ordered bytewise (memcmp order, a shorter
 *   key before any longer key it prefixes: `compareBytes`). Empty keys are allowed; empty values are allowed.
 * - A bucket must exist before it is read or written (`createBucket` in a write transaction, idempotent);
 *   reading or writing a missing bucket throws `StorageError` with code `BucketNotFound`.
 * - `update(fn)` runs `fn` synchronously, inside one atomic write transaction (an `fn` that returns a
 *   promise is refused: the update rejects with a `TypeError` and applies nothing). When `update` returns, the
 *   changes are visible to every later `view`/`snapshot`; the returned promise resolves once they are
 *   durable (a process crash, kill -9 included, cannot lose them). If `fn` throws, nothing of it is applied
 *   and the promise rejects with that error. Write transactions never overlap: calling `update` from inside
 *   `fn` rejects (and leaves the outer transaction alone). The transaction object must not be used after
 *   `fn` returns; engines throw `StorageError` `Closed` when it is. When the engine cannot write — the
 *   disk is full (`Full`) or the file system fails (`Io`) — the update rejects with that `StorageError`
 *   (its message names the directory) and applies nothing: all of the transaction or none of it. An
 *   engine that has failed for good (a deferred commit lost, see `durability`) throws that failure from
 *   `update` itself, so that the caller meets its cause at once.
 * - `view(fn)` runs `fn` synchronously against a consistent read view; the transaction object must not be
 *   used after `fn` returns. Iterators taken from it must be consumed or closed before `fn` returns.
 * - `snapshot()` opens a long-lived consistent read view (for streaming a copy of the whole store while
 *   writes continue); release it with `close()`. Closing the backend ends every snapshot (later reads
 *   throw `Closed`).
 * - Values returned by reads are owned by the caller (never a view into engine memory that a later write
 *   could change).
 */

export interface Entry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * A key range in one bucket. `start` is inclusive; `end` is exclusive; no `end` means "to the end of the
 * bucket". `reverse` walks from the highest key down. `limit` (> 0) bounds how many entries are yielded;
 * absent or 0 means no bound. A `start` at or past `end` yields nothing.
 */
export interface RangeOptions {
  readonly start?: Uint8Array;
  readonly end?: Uint8Array;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface ReadTxn {
  get(bucket: string, key: Uint8Array): Uint8Array | undefined;
  /** Entries of `bucket` in key order (descending with `reverse`) within the range. */
  range(bucket: string, options?: RangeOptions): IterableIterator<Entry>;
  /** The names of all buckets, sorted. */
  buckets(): string[];
}

export interface WriteTxn extends ReadTxn {
  createBucket(bucket: string): void;
  /** Deletes the bucket and everything in it; no-op when missing. */
  deleteBucket(bucket: string): void;
  put(bucket: string, key: Uint8Array, value: Uint8Array): void;
  /** Deletes one key; no-op when missing. */
  delete(bucket: string, key: Uint8Array): void;
}

/** A consistent read view that outlives a single call. */
export interface Snapshot extends ReadTxn {
  close(): void;
}

export interface Backend {
  /** The engine's name as given to `--storage-engine` (`sqlite`, `lmdb`, `memory`). */
  readonly engine: string;
  view<T>(fn: (txn: ReadTxn) => T): T;
  update(fn: (txn: WriteTxn) => void): Promise<void>;
  snapshot(): Snapshot;
  /** Bytes the store takes on disk (etcd's dbSize). */
  size(): number;
  /** Bytes that hold live data (etcd's dbSizeInUse); at most `size()`. */
  sizeInUse(): number;
  /** Makes every update so far durable against power loss (a no-op with `durability: "sync"`). */
  flush(): Promise<void>;
  /** Gives unused space back (etcd's defragment); data and visibility unchanged. */
  defragment(): Promise<void>;
  /**
   * Flushes and closes; later calls throw `StorageError` with code `Closed` (`update` and `defragment`
   * return a rejected promise). Closing twice is harmless.
   */
  close(): Promise<void>;
}

export type StorageErrorCode =
  | "BucketNotFound"
  | "Closed"
  /** The directory holds another engine's data. */
  | "WrongEngine"
  /** The directory holds something that is not an etcd-ts store, or a damaged one. */
  | "Corrupt"
  /**
   * A write found no room: the file system is out of space (ENOSPC; LMDB's short write), or the engine
   * reached its own size limit (SQLITE_FULL, MDB_MAP_FULL). The update that got it committed nothing;
   * everything committed before is intact, and writes succeed again once space is freed.
   */
  | "Full"
  /** Any other failure of the engine or the file system (EIO, …); the message names the path. */
  | "Io";

export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Whether `e` is a `StorageError` (of `code`, when given). It compares the name, not the prototype, so an error
 * thrown by another installed copy of this package counts too. */
export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof Error && e.name === "StorageError" && (code === undefined || (e as StorageError).code === code);
}

/** How engines are opened: a directory of its own, which the engine creates if missing. */
export interface BackendOptions {
  readonly dir: string;
  /**
   * `sync` (default): an update is durable (kill -9 and power loss) when its promise resolves.
   * `deferred`: an update is visible as soon as it returns, but survives a crash (kill -9, power loss)
   * only once a `flush()` after it resolved; an engine may commit several updates together (SQLite does,
   * within tens of milliseconds). For callers that keep their own write-ahead log (the server's raft WAL)
   * and replay it after a crash: it saves an fsync, or a whole commit, per update.
   */
  readonly durability?: "sync" | "deferred";
}

export type OpenBackend = (options: BackendOptions) => Backend;

import { open } from "lmdb";
import type { RootDatabase, Transaction } from "lmdb";
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { StorageError, UpdateGate, freeBytes, fsyncDir, isStorageError, prepareDataDir } from "@etcd-ts/storage";
import type {
  Backend,
  BackendOptions,
  EngineUpdate,
  Entry,
  OpenBackend,
  RangeOptions,
  ReadTxn,
  Snapshot,
  WriteTxn,
} from "@etcd-ts/storage";
import {
  BUCKETS_END,
  BUCKETS_START,
  DATA_FILE,
  LMDB_FORMAT,
  LOCK_FILE,
  MAX_USER_KEY_BYTES,
  bucketKey,
  bucketNameOf,
  dataKey,
  dataKeyAfterBucket,
  decodeBucketId,
  encodeBucketId,
  metaKey,
  userKeyOf,
} from "./layout.js";

const ENGINE = "lmdb";
/**
 * `mm_magic` of an LMDB meta page: right after the first page's header, which is 16 bytes in LMDB 0.9
 * files and 24 bytes in the LMDB 1.0 format lmdb-js writes.
 */
const LMDB_MAGIC = 0xbeefc0de;
const COMPACT_FILE = `${DATA_FILE}.compact`;
const COMPACT_LOCK_FILE = `${COMPACT_FILE}-lock`;
/** Entries per write transaction while copying into the compacted file. */
const COMPACT_BATCH = 10_000;
/** Keys deleted per round by deleteBucket (collected first: deleting under a live cursor is unsafe). */
const DELETE_BATCH = 1_000;

type Db = RootDatabase<Uint8Array, Uint8Array>;

function openEnv(path: string, extra: { noSync?: boolean; overlappingSync?: boolean; noMetaSync?: boolean } = {}): Db {
  return open<Uint8Array, Uint8Array>({
    path,
    noSubdir: true,
    keyEncoding: "binary",
    encoding: "binary",
    ...extra,
  });
}

/** A caller-owned plain copy: lmdb-js may hand back views of its shared or memory-mapped buffers. */
function owned(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Maps lmdb-js errors to `StorageError`s (ours pass through). */
function translate(e: unknown, dir: string): unknown {
  if (isStorageError(e) || !(e instanceof Error)) return e;
  if (/MDB_(CORRUPTED|INVALID|PAGE_NOTFOUND|VERSION_MISMATCH)|not an LMDB file/i.test(e.message)) {
    return new StorageError("Corrupt", `data dir ${dir}: lmdb database is damaged: ${e.message}`, { cause: e });
  }
  return new StorageError("Io", `data dir ${dir}: lmdb: ${e.message}`, { cause: e });
}

/** Below this much free space an EIO from an LMDB write is taken for a full disk (see translateWrite). */
const LOW_FREE_BYTES = 8 * 1024 * 1024;

/**
 * Maps an error from committing a write transaction. LMDB reports ENOSPC as such, a map that cannot grow
 * as MDB_MAP_FULL, and a *short* write — what a full file system usually gives — as a bare EIO; so an
 * EIO while the file system holding `dir` is (nearly) out of space is reported as `Full`, with the free
 * space in the message, and any other EIO as `Io`. Either way the transaction committed nothing.
 */
function translateWrite(e: unknown, dir: string): unknown {
  if (isStorageError(e) || !(e instanceof Error)) return e;
  const errno = (e as { code?: unknown }).code;
  const free = freeBytes(dir);
  const where = `data dir ${dir}: lmdb: ${e.message}`;
  const space = free === undefined ? "free space unknown" : `${free} bytes free on its file system`;
  if (errno === 28 || errno === "ENOSPC" || /MDB_MAP_FULL|No space left/i.test(e.message)) {
    return new StorageError("Full", `${where} (${space})`, { cause: e });
  }
  if (errno === 5 || errno === "EIO" || /Input\/output error/i.test(e.message)) {
    if (free !== undefined && free < LOW_FREE_BYTES) {
      return new StorageError("Full", `${where}: the disk is full (EIO is how LMDB reports a short write; ${space})`, { cause: e });
    }
    return new StorageError("Io", `${where} (EIO writing ${join(dir, DATA_FILE)}; ${space})`, { cause: e });
  }
  return translate(e, dir);
}

function bucketNotFound(bucket: string): StorageError {
  return new StorageError("BucketNotFound", `bucket ${JSON.stringify(bucket)} not found`);
}

function checkKeySize(key: Uint8Array): void {
  if (key.length > MAX_USER_KEY_BYTES) {
    throw new RangeError(`key of ${key.length} bytes exceeds the lmdb engine's limit of ${MAX_USER_KEY_BYTES} bytes`);
  }
}

/** The pieces of the backend a transaction needs: the current database handle and an open check. */
interface TxnContext {
  readonly db: () => Db;
  readonly checkOpen: () => void;
  readonly dir: string;
  /** The snapshot's read transaction; undefined reads the latest (or, inside `update`, the write txn). */
  readonly transaction?: Transaction;
}

class LmdbReader implements ReadTxn {
  /**
   * Bucket ids looked up in this transaction (null: absent). Valid for the transaction's life: a read
   * view cannot change, and the writer updates it in createBucket/deleteBucket.
   */
  protected readonly bucketIds = new Map<string, number | null>();

  constructor(protected readonly ctx: TxnContext) {}

  protected bucketId(bucket: string): number | undefined {
    const cached = this.bucketIds.get(bucket);
    if (cached !== undefined) return cached ?? undefined;
    const value = this.ctx.db().get(bucketKey(bucket), { transaction: this.ctx.transaction });
    const id = value === undefined ? undefined : decodeBucketId(value);
    this.bucketIds.set(bucket, id ?? null);
    return id;
  }

  protected requireBucket(bucket: string): number {
    const id = this.bucketId(bucket);
    if (id === undefined) throw bucketNotFound(bucket);
    return id;
  }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    this.ctx.checkOpen();
    try {
      const id = this.requireBucket(bucket);
      if (key.length > MAX_USER_KEY_BYTES) return undefined; // cannot have been stored
      const value = this.ctx.db().get(dataKey(id, key), { transaction: this.ctx.transaction });
      return value === undefined ? undefined : owned(value);
    } catch (e) {
      throw translate(e, this.ctx.dir);
    }
  }

  range(bucket: string, options: RangeOptions = {}): IterableIterator<Entry> {
    this.ctx.checkOpen();
    let id: number;
    try {
      id = this.requireBucket(bucket);
    } catch (e) {
      throw translate(e, this.ctx.dir);
    }
    return this.walk(id, options);
  }

  private *walk(id: number, options: RangeOptions): Generator<Entry, void, undefined> {
    const { start, end, reverse = false } = options;
    const lower = dataKey(id, start ?? new Uint8Array());
    const upper = end === undefined ? dataKeyAfterBucket(id) : dataKey(id, end);
    if (Buffer.compare(lower, upper) >= 0) return;
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : undefined;
    // lmdb-js walks from `start` towards `end`; in reverse its `start` is our exclusive upper bound.
    const entries = reverse
      ? this.ctx.db().getRange({
          start: upper,
          end: lower,
          reverse: true,
          exclusiveStart: true,
          inclusiveEnd: true,
          limit,
          transaction: this.ctx.transaction,
        })
      : this.ctx.db().getRange({ start: lower, end: upper, limit, transaction: this.ctx.transaction });
    const iterator = entries[Symbol.iterator]();
    try {
      for (;;) {
        this.ctx.checkOpen();
        let step: IteratorResult<{ key: Uint8Array; value: Uint8Array }>;
        try {
          step = iterator.next();
        } catch (e) {
          throw translate(e, this.ctx.dir);
        }
        if (step.done === true) return;
        yield { key: userKeyOf(step.value.key), value: owned(step.value.value) };
      }
    } finally {
      iterator.return?.();
    }
  }

  buckets(): string[] {
    this.ctx.checkOpen();
    try {
      const names: string[] = [];
      for (const key of this.ctx.db().getKeys({ start: BUCKETS_START, end: BUCKETS_END, transaction: this.ctx.transaction })) {
        names.push(bucketNameOf(key));
      }
      return names.sort();
    } catch (e) {
      throw translate(e, this.ctx.dir);
    }
  }
}

/** Runs inside lmdb-js's `transactionSync`: every put and remove joins that one write transaction. */
class LmdbWriter extends LmdbReader implements WriteTxn {
  createBucket(bucket: string): void {
    this.ctx.checkOpen();
    try {
      if (this.bucketId(bucket) !== undefined) return;
      const db = this.ctx.db();
      const next = db.get(metaKey("nextBucketId"));
      const id = next === undefined ? 1 : decodeBucketId(next);
      db.putSync(bucketKey(bucket), encodeBucketId(id));
      db.putSync(metaKey("nextBucketId"), encodeBucketId(id + 1));
      this.bucketIds.set(bucket, id);
    } catch (e) {
      throw translateWrite(e, this.ctx.dir);
    }
  }

  deleteBucket(bucket: string): void {
    this.ctx.checkOpen();
    try {
      const id = this.bucketId(bucket);
      if (id === undefined) return;
      const db = this.ctx.db();
      const range = { start: dataKey(id, new Uint8Array()), end: dataKeyAfterBucket(id), limit: DELETE_BATCH };
      for (;;) {
        const keys = [...db.getKeys(range)].map((k) => Buffer.from(k));
        for (const key of keys) db.removeSync(key);
        if (keys.length < DELETE_BATCH) break;
      }
      db.removeSync(bucketKey(bucket));
      this.bucketIds.set(bucket, null);
    } catch (e) {
      throw translateWrite(e, this.ctx.dir);
    }
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.ctx.checkOpen();
    checkKeySize(key);
    try {
      const id = this.requireBucket(bucket);
      this.ctx.db().putSync(dataKey(id, key), value);
    } catch (e) {
      throw translateWrite(e, this.ctx.dir);
    }
  }

  delete(bucket: string, key: Uint8Array): void {
    this.ctx.checkOpen();
    try {
      const id = this.requireBucket(bucket);
      if (key.length > MAX_USER_KEY_BYTES) return;
      this.ctx.db().removeSync(dataKey(id, key));
    } catch (e) {
      throw translateWrite(e, this.ctx.dir);
    }
  }
}

/**
 * The LMDB engine (lmdb-js). Writes are synchronous LMDB write transactions (`transactionSync`, whose
 * default flags commit and flush to disk before returning), so `update` is both visible and durable when
 * it returns. Reads outside `update` use lmdb-js's shared read transaction, renewed after every commit;
 * a snapshot holds a read transaction of its own (`useReadTransaction`), which LMDB keeps at its
 * version while writers go on.
 */
export class LmdbBackend implements Backend {
  readonly engine = ENGINE;
  private readonly dataPath: string;
  private readonly openSnapshots = new Set<Transaction>();
  /** Resolvers waiting (in `defragment`) for the last open snapshot to close. */
  private snapshotWaiters: (() => void)[] = [];
  /** True while defragment replaces the data file (only observable if lmdb-js defers a close). */
  private swapping = false;
  private closed = false;

  /** Use `openLmdbBackend`. */
  constructor(
    readonly dir: string,
    private db: Db,
    private readonly deferred = false,
  ) {
    this.dataPath = join(dir, DATA_FILE);
  }

  private readonly checkBackendOpen = (): void => {
    if (this.closed) throw new StorageError("Closed", `lmdb storage backend at ${this.dir} is closed`);
  };

  private readonly updates = new UpdateGate(this.checkBackendOpen);
  private readonly engineUpdate: EngineUpdate<LmdbWriter> = {
    admit: () => {
      if (this.swapping) throw new StorageError("Io", `data dir ${this.dir}: defragment is replacing the data file; retry`);
    },
    begin: (checkOpen) => new LmdbWriter({ db: () => this.db, checkOpen, dir: this.dir, transaction: undefined }),
    commit: (_txn, apply) => {
      let fnThrew = false;
      try {
        // A throw from fn aborts the LMDB transaction; lmdb-js rethrows it unchanged, and so do we.
        // transactionSync returns once the commit is synced to disk.
        this.db.transactionSync(() => {
          fnThrew = true;
          apply();
          fnThrew = false;
        });
      } catch (e) {
        // fnThrew is set inside the transaction callback, which flow analysis does not follow.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        throw fnThrew ? e : translateWrite(e, this.dir);
      }
    },
  };

  private context(active: () => boolean, what: string, transaction?: Transaction): TxnContext {
    return {
      db: () => this.db,
      checkOpen: () => {
        this.checkBackendOpen();
        if (!active()) throw new StorageError("Closed", what);
      },
      dir: this.dir,
      transaction,
    };
  }

  view<T>(fn: (txn: ReadTxn) => T): T {
    this.checkBackendOpen();
    let active = true;
    try {
      return fn(new LmdbReader(this.context(() => active, "read transaction used after view returned")));
    } finally {
      active = false;
    }
  }

  update(fn: (txn: WriteTxn) => void): Promise<void> {
    return this.updates.update(fn, this.engineUpdate);
  }

  snapshot(): Snapshot {
    this.checkBackendOpen();
    let transaction: Transaction;
    try {
      transaction = this.db.useReadTransaction();
    } catch (e) {
      throw translate(e, this.dir);
    }
    this.openSnapshots.add(transaction);
    let open = true;
    const reader = new LmdbReader(this.context(() => open, "snapshot is closed", transaction));
    return Object.assign(reader, {
      close: (): void => {
        if (!open) return;
        open = false;
        this.releaseSnapshot(transaction);
      },
    });
  }

  private releaseSnapshot(transaction: Transaction): void {
    if (!this.openSnapshots.delete(transaction)) return;
    if (!this.closed) transaction.done();
    if (this.openSnapshots.size === 0) {
      const waiters = this.snapshotWaiters;
      this.snapshotWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  size(): number {
    this.checkBackendOpen();
    return statSync(this.dataPath).size;
  }

  sizeInUse(): number {
    this.checkBackendOpen();
    try {
      const stats = this.db.getStats() as {
        pageSize: number;
        root: { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
        free: { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      };
      const pages = (t: { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number }) =>
        t.treeBranchPageCount + t.treeLeafPageCount + t.overflowPages;
      // Live pages: the data tree, the free-list tree itself, and the two meta pages.
      const inUse = (pages(stats.root) + pages(stats.free) + 2) * stats.pageSize;
      return Math.min(inUse, this.size());
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  /**
   * Copies every entry, in order, into a new file and swaps it in (LMDB never shrinks its file). Like
   * etcd's bbolt defrag, this waits until open snapshots are closed (their read transactions pin the old
   * file); writes continue while it waits. The copy and swap then run synchronously, so no write can slip
   * between them. If the copy is not smaller it is thrown away, so the store never grows.
   */
  async defragment(): Promise<void> {
    this.checkBackendOpen();
    while (this.openSnapshots.size > 0) {
      await new Promise<void>((resolve) => this.snapshotWaiters.push(resolve));
      this.checkBackendOpen();
    }
    try {
      await this.compact();
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  /**
   * Runs synchronously from start to finish as long as lmdb-js closes environments synchronously, which it
   * does when no reads or async writes are outstanding (we issue no async writes). If it ever defers a
   * close, we wait for it, and `update` is refused meanwhile (`swapping`) so that no write lands in a file
   * about to be replaced.
   */
  private async compact(): Promise<void> {
    this.swapping = true;
    try {
      await this.copyAndSwap();
    } finally {
      this.swapping = false;
    }
  }

  private async copyAndSwap(): Promise<void> {
    const compactPath = join(this.dir, COMPACT_FILE);
    removeCompactLeftovers(this.dir);
    const target = openEnv(compactPath, { noSync: true, overlappingSync: false });
    const source = this.db.useReadTransaction();
    try {
      let batch: { key: Buffer; value: Uint8Array }[] = [];
      const flush = () => {
        const entries = batch;
        batch = [];
        target.transactionSync(() => {
          for (const { key, value } of entries) target.putSync(key, value, { append: true });
        });
      };
      for (const entry of this.db.getRange({ transaction: source })) {
        // Copies: the batch outlives the iterator step that produced each entry.
        batch.push({ key: Buffer.from(entry.key), value: Buffer.from(entry.value) });
        if (batch.length >= COMPACT_BATCH) flush();
      }
      flush();
    } finally {
      source.done();
      const closing = closeEnv(target);
      if (closing !== undefined) await closing;
    }
    // noSync above: make the whole copy durable once, before it can replace the original.
    fsyncFile(compactPath);
    if (statSync(compactPath).size >= statSync(this.dataPath).size) {
      removeCompactLeftovers(this.dir);
      return;
    }
    const closing = closeEnv(this.db);
    if (closing !== undefined) await closing;
    try {
      renameSync(compactPath, this.dataPath);
      rmSync(join(this.dir, COMPACT_LOCK_FILE), { force: true });
      fsyncDir(this.dir);
    } finally {
      // Whether or not the swap happened, data.mdb is a complete store: carry on with it.
      this.db = openEnv(this.dataPath, { noMetaSync: this.deferred });
    }
  }

  /**
   * With `durability: "sync"` every commit is already flushed. With `deferred` the environment runs with
   * LMDB's MDB_NOMETASYNC: a commit syncs its data pages but not the meta page that makes it current, so
   * a power loss may undo the last commit (never a torn one: the previous meta page still names a
   * complete tree); an environment sync here makes it durable, off the main thread.
   */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new StorageError("Closed", `lmdb storage backend at ${this.dir} is closed`));
    if (!this.deferred) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // lmdb-js runs mdb_env_sync in a worker for a root database's sync(callback); its types omit it.
      (this.db as unknown as { sync(done: (error?: unknown) => void): void }).sync((error) =>
        error === undefined || error === null ? resolve() : reject(translate(error, this.dir)),
      );
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    for (const transaction of [...this.openSnapshots]) {
      this.openSnapshots.delete(transaction);
      transaction.done();
    }
    this.closed = true;
    for (const wake of this.snapshotWaiters.splice(0)) wake();
    let syncFailure: unknown;
    if (this.deferred) {
      // The last commit's meta page is made durable before the environment goes.
      try {
        fsyncFile(this.dataPath);
      } catch (e) {
        syncFailure = translate(e, this.dir);
      }
    }
    const closing = this.db.close();
    return syncFailure === undefined ? closing : closing.then(() => Promise.reject(syncFailure as Error));
  }
}

/**
 * Closes an environment. Returns undefined when lmdb-js closed it at once (the normal case), else the
 * promise to wait for; not an async function, so that the normal case does not yield to other code.
 */
function closeEnv(db: Db): Promise<void> | undefined {
  const closing = db.close();
  return (db as unknown as { status?: string }).status === "closed" ? undefined : closing;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes the temporary files of a defragment that did not finish (ours by name; they hold no data). */
function removeCompactLeftovers(dir: string): void {
  rmSync(join(dir, COMPACT_FILE), { force: true });
  rmSync(join(dir, COMPACT_LOCK_FILE), { force: true });
}

/** True when `path` is empty (LMDB then starts a new environment) or starts with an LMDB meta page. */
function hasLmdbMagic(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const header = Buffer.alloc(32);
    const n = readSync(fd, header, 0, header.length, 0);
    if (n === 0) return true;
    return n === header.length && (header.readUInt32LE(16) === LMDB_MAGIC || header.readUInt32LE(24) === LMDB_MAGIC);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens (creating if needed) the LMDB store in `options.dir`.
 *
 * Throws `StorageError`: `WrongEngine` when another engine's marker is in the directory; `Corrupt` when
 * the directory holds files but no marker, or `data.mdb` is not an LMDB file, is damaged, or lacks this
 * engine's format record. In those cases nothing in the directory is created, changed or removed (the
 * checks run before LMDB opens anything).
 */
export function openLmdbBackend(options: BackendOptions): LmdbBackend {
  const { dir } = options;
  const state = prepareDataDir(dir, ENGINE, LMDB_FORMAT);
  const dataPath = join(dir, DATA_FILE);
  if (!state.fresh) {
    const ours = new Set([DATA_FILE, LOCK_FILE, COMPACT_FILE, COMPACT_LOCK_FILE]);
    const strangers = state.files.filter((f) => !ours.has(f));
    if (strangers.length > 0 || !state.files.includes(DATA_FILE)) {
      throw new StorageError(
        "Corrupt",
        `data dir ${dir} is marked as an lmdb store but holds ${state.files.join(", ")} (expected ${DATA_FILE})`,
      );
    }
    if (!hasLmdbMagic(dataPath)) {
      throw new StorageError("Corrupt", `data dir ${dir}: ${DATA_FILE} is not an LMDB file (bad magic)`);
    }
    if (existsSync(join(dir, COMPACT_FILE))) removeCompactLeftovers(dir);
  }
  let db: Db;
  try {
    db = openEnv(dataPath, { noMetaSync: options.durability === "deferred" });
  } catch (e) {
    throw translate(e, dir);
  }
  try {
    const format = db.get(metaKey("format"));
    if (format === undefined) {
      if (db.getKeysCount() > 0) {
        throw new StorageError("Corrupt", `data dir ${dir}: ${DATA_FILE} has data but no etcd-ts format record`);
      }
      // A new store, or one whose creation was cut short before its first commit.
      db.transactionSync(() => {
        db.putSync(metaKey("format"), encodeBucketId(LMDB_FORMAT));
      });
      fsyncDir(dir);
    } else if (decodeBucketId(format) !== LMDB_FORMAT) {
      throw new StorageError("Corrupt", `data dir ${dir}: ${DATA_FILE} has format ${decodeBucketId(format)}, expected ${LMDB_FORMAT}`);
    }
    return new LmdbBackend(dir, db, options.durability === "deferred");
  } catch (e) {
    void db.close();
    throw translate(e, dir);
  }
}

// Compile-time check that the opener fits the engine-neutral signature the server selects engines by.
openLmdbBackend satisfies OpenBackend;

import Database from "better-sqlite3";
import { readSync, openSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";
import { StorageError, UpdateGate, freeBytes, fsyncDir, prepareDataDir } from "@etcd-ts/storage";
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
import { DB_FILE, DEFERRED_SYNC_PRAGMA, SCHEMA, SQLITE_FORMAT, TABLES, WRITER_PRAGMAS } from "./schema.js";

const ENGINE = "sqlite";
const SQLITE_HEADER = "SQLite format 3\0";
/** Rows fetched per query while walking a range; grows from the first to the last value. */
const FIRST_PAGE_ROWS = 64;
const MAX_PAGE_ROWS = 1024;
/** Reads in one view after which the view holds one read transaction for the rest of them. */
const VIEW_TRANSACTION_AFTER_READS = 16;
/** Idle read connections kept for the next snapshot. */
const IDLE_SNAPSHOT_CONNECTIONS = 2;

type Row = [key: Buffer, value: Buffer];

/** A Buffer from better-sqlite3 as a plain Uint8Array over the same (freshly allocated) memory. */
function plain(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function isSqliteError(e: unknown): e is Error & { code: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === "string" && code.startsWith("SQLITE_");
}

/** Maps SQLite's errors to `StorageError`s; anything else (the caller's own errors) passes through. */
function translate(e: unknown, dir: string): unknown {
  if (!isSqliteError(e)) return e;
  if (e.code.startsWith("SQLITE_CORRUPT") || e.code === "SQLITE_NOTADB") {
    return new StorageError("Corrupt", `data dir ${dir}: sqlite database is damaged: ${e.message}`, { cause: e });
  }
  if (e.code === "SQLITE_FULL") {
    // SQLite turns ENOSPC into SQLITE_FULL (as it does reaching max_page_count); the transaction is
    // rolled back.
    return new StorageError("Full", `data dir ${dir}: sqlite: ${e.message} (${e.code}; ${freeSpaceNote(dir)})`, { cause: e });
  }
  return new StorageError("Io", `data dir ${dir}: sqlite: ${e.message} (${e.code})`, { cause: e });
}

function freeSpaceNote(dir: string): string {
  const free = freeBytes(dir);
  return free === undefined ? "free space unknown" : `${free} bytes free on its file system`;
}

function bucketNotFound(bucket: string): StorageError {
  return new StorageError("BucketNotFound", `bucket ${JSON.stringify(bucket)} not found`);
}

/**
 * One connection with its prepared statements and its bucket-name → id cache. The cache is only filled
 * from reads and from the connection's own committed writes; the writer clears it when a transaction rolls
 * back, and a snapshot connection's cache lives exactly as long as its read transaction.
 */
class Connection {
  private readonly statements = new Map<string, Database.Statement>();
  readonly bucketIds = new Map<string, number>();

  constructor(readonly db: Database.Database) {}

  statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** A statement returning rows as arrays (`[key, value]`), cached under its own key. */
  rawStatement(sql: string): Database.Statement {
    const cacheKey = `raw:${sql}`;
    let stmt = this.statements.get(cacheKey);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql).raw(true);
      this.statements.set(cacheKey, stmt);
    }
    return stmt;
  }

  bucketId(bucket: string): number | undefined {
    const cached = this.bucketIds.get(bucket);
    if (cached !== undefined) return cached;
    const id = this.statement("SELECT id FROM buckets WHERE name = ?").pluck().get(bucket) as number | undefined;
    if (id !== undefined) this.bucketIds.set(bucket, id);
    return id;
  }

  requireBucket(bucket: string): number {
    const id = this.bucketId(bucket);
    if (id === undefined) throw bucketNotFound(bucket);
    return id;
  }
}

/**
 * The SQL for one page of a range walk. `lower`: none, `>=` (the caller's start) or `>` (resume after
 * the last forward row); `upper`: none, `<` (the caller's end or resume before the last reverse row).
 */
function rangeSql(lower: "" | ">=" | ">", upper: "" | "<", reverse: boolean): string {
  let sql = "SELECT key, value FROM kv WHERE bucket = ?";
  if (lower !== "") sql += ` AND key ${lower} ?`;
  if (upper !== "") sql += " AND key < ?";
  return `${sql} ORDER BY key ${reverse ? "DESC" : "ASC"} LIMIT ?`;
}

class SqliteReader implements ReadTxn {
  constructor(
    protected readonly conn: Connection,
    protected readonly checkOpen: () => void,
    protected readonly dir: string,
  ) {}

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    try {
      const id = this.conn.requireBucket(bucket);
      const value = this.conn.statement("SELECT value FROM kv WHERE bucket = ? AND key = ?").pluck().get(id, key) as Buffer | undefined;
      return value === undefined ? undefined : plain(value);
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  range(bucket: string, options: RangeOptions = {}): IterableIterator<Entry> {
    this.checkOpen();
    let id: number;
    try {
      id = this.conn.requireBucket(bucket);
    } catch (e) {
      throw translate(e, this.dir);
    }
    return this.walk(id, options);
  }

  /**
   * Walks the range in pages, each a separate `LIMIT` query resuming after the last row seen. Holding no
   * statement open between pages lets the caller run other statements (a `get`, a `put`) on the same
   * connection mid-iteration, which better-sqlite3 forbids while an `iterate()` cursor is open.
   */
  private *walk(id: number, options: RangeOptions): Generator<Entry, void, undefined> {
    const { start, end, reverse = false } = options;
    let remaining = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    let pageRows = FIRST_PAGE_ROWS;
    // Bounds for the next page: forward walks move the lower bound, reverse walks the upper one.
    let lowerOp: "" | ">=" | ">" = start === undefined ? "" : ">=";
    let lower: Uint8Array | undefined = start;
    let upper: Uint8Array | undefined = end;
    while (remaining > 0) {
      this.checkOpen();
      const rowsWanted = Math.min(remaining, pageRows);
      const params: unknown[] = [id];
      if (lower !== undefined) params.push(lower);
      if (upper !== undefined) params.push(upper);
      params.push(rowsWanted);
      let rows: Row[];
      try {
        rows = this.conn.rawStatement(rangeSql(lowerOp, upper === undefined ? "" : "<", reverse)).all(...params) as Row[];
      } catch (e) {
        throw translate(e, this.dir);
      }
      for (const [key, value] of rows) yield { key: plain(key), value: plain(value) };
      remaining -= rows.length;
      if (rows.length < rowsWanted) return;
      const last = rows[rows.length - 1]![0];
      if (reverse) upper = last;
      else {
        lowerOp = ">";
        lower = last;
      }
      pageRows = Math.min(pageRows * 2, MAX_PAGE_ROWS);
    }
  }

  buckets(): string[] {
    this.checkOpen();
    try {
      return (this.conn.statement("SELECT name FROM buckets").pluck().all() as string[]).sort();
    } catch (e) {
      throw translate(e, this.dir);
    }
  }
}

class SqliteWriter extends SqliteReader implements WriteTxn {
  createBucket(bucket: string): void {
    this.checkOpen();
    try {
      if (this.conn.bucketId(bucket) !== undefined) return;
      const { lastInsertRowid } = this.conn.statement("INSERT INTO buckets (name) VALUES (?)").run(bucket);
      this.conn.bucketIds.set(bucket, Number(lastInsertRowid));
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  deleteBucket(bucket: string): void {
    this.checkOpen();
    try {
      const id = this.conn.bucketId(bucket);
      if (id === undefined) return;
      this.conn.statement("DELETE FROM kv WHERE bucket = ?").run(id);
      this.conn.statement("DELETE FROM buckets WHERE id = ?").run(id);
      this.conn.bucketIds.delete(bucket);
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  put(bucket: string, key: Uint8Array, value: Uint8Array): void {
    this.checkOpen();
    try {
      const id = this.conn.requireBucket(bucket);
      // REPLACE on a WITHOUT ROWID table rewrites the row in place in the primary-key B-tree.
      this.conn.statement("INSERT OR REPLACE INTO kv (bucket, key, value) VALUES (?, ?, ?)").run(id, key, value);
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  delete(bucket: string, key: Uint8Array): void {
    this.checkOpen();
    try {
      const id = this.conn.requireBucket(bucket);
      this.conn.statement("DELETE FROM kv WHERE bucket = ? AND key = ?").run(id, key);
    } catch (e) {
      throw translate(e, this.dir);
    }
  }
}

/**
 * The SQLite engine. One writer connection serves `update` and `view` (JavaScript runs them one at a
 * time, so a view never interleaves with a write); each open snapshot holds a read transaction on a
 * connection of its own, which WAL keeps at its starting version while the writer commits.
 *
 * With `durability: "deferred"` updates are not committed one by one: they join one open transaction,
 * each in a savepoint of its own (a throwing update rolls back alone), and the transaction commits
 * DEFERRED_COMMIT_MS after its first update — as etcd's backend commits its batch transaction every
 * 100 ms. A commit costs far more than the rows of one update (SQLite writes every page the transaction
 * touched to its WAL), and the writer connection, which every view reads through, sees the open
 * transaction at once. What snapshots, flush, defragment and close need committed, they commit first.
 */
/** How long a measured size is reused (see `size()`). */
const SIZE_CACHE_MS = 100;
/** With deferred durability, how long the open transaction takes updates before it commits. */
export const DEFERRED_COMMIT_MS = 25;
/** ...or how many updates it takes, whichever comes first. */
const DEFERRED_COMMIT_UPDATES = 10_000;

export class SqliteBackend implements Backend {
  readonly engine = ENGINE;
  private readonly writer: Connection;
  private readonly dbPath: string;
  private readonly idleReaders: Connection[] = [];
  private readonly openSnapshots = new Set<{ end(): void }>();
  private closed = false;
  private readonly updates = new UpdateGate(() => this.checkBackendOpen());
  private readonly engineUpdate: EngineUpdate<SqliteWriter> = {
    begin: (checkOpen) => new SqliteWriter(this.writer, checkOpen, this.dir),
    commit: (_txn, apply) => {
      if (this.deferred) {
        this.joinOpenTransaction(apply);
        return;
      }
      this.writer.statement("BEGIN IMMEDIATE").run();
      try {
        apply();
        // With synchronous=FULL, COMMIT returns after the WAL is fsynced: durable before we resolve.
        this.writer.statement("COMMIT").run();
        this.filesMeasuredAt = -Infinity;
      } catch (e) {
        if (this.writer.db.inTransaction) this.writer.statement("ROLLBACK").run();
        // Bucket ids cached during the failed transaction may name rows that no longer exist.
        this.writer.bucketIds.clear();
        throw e;
      }
    },
    translateError: (e) => translate(e, this.dir),
  };

  /** Use `openSqliteBackend`. */
  constructor(
    readonly dir: string,
    db: Database.Database,
    private readonly deferred = false,
  ) {
    this.dbPath = join(dir, DB_FILE);
    this.writer = new Connection(db);
  }

  /** The open transaction of deferred updates, if any: when it commits and how many it holds. */
  private open: { timer: NodeJS.Timeout; updates: number } | undefined;
  /**
   * Set when the open transaction was lost (its commit failed, or SQLite rolled it back after a disk or
   * I/O error): updates that had returned are gone from the file, so the backend refuses everything after.
   */
  private failure: Error | undefined;

  private checkBackendOpen(): void {
    if (this.closed) throw new StorageError("Closed", `sqlite storage backend at ${this.dir} is closed`);
    if (this.failure !== undefined) throw this.failure;
  }

  private joinOpenTransaction(apply: () => void): void {
    const writer = this.writer;
    if (this.open === undefined) {
      writer.statement("BEGIN IMMEDIATE").run();
      const timer = setTimeout(() => {
        try {
          this.commitOpen();
        } catch {
          // Kept in this.failure: the next call on the backend throws it.
        }
      }, DEFERRED_COMMIT_MS);
      // A process that ends without close() loses the open transaction, as a crash would.
      timer.unref();
      this.open = { timer, updates: 0 };
    }
    writer.statement("SAVEPOINT u").run();
    try {
      apply();
      writer.statement("RELEASE u").run();
    } catch (e) {
      // Bucket ids cached during the failed update may name rows that no longer exist.
      writer.bucketIds.clear();
      if (writer.db.inTransaction) {
        try {
          writer.statement("ROLLBACK TO u").run();
          writer.statement("RELEASE u").run();
        } catch (rollbackError) {
          this.loseOpen(rollbackError);
        }
      } else {
        // SQLite rolled the whole transaction back (a full disk, an I/O error): the updates before
        // this one went with it.
        this.loseOpen(e);
      }
      throw e;
    }
    if (++this.open.updates >= DEFERRED_COMMIT_UPDATES) this.commitOpen();
  }

  /** Commits the open transaction of deferred updates, if there is one. */
  private commitOpen(): void {
    const open = this.open;
    if (open === undefined) return;
    clearTimeout(open.timer);
    this.open = undefined;
    // The commit writes the transaction's pages to the WAL file: measure the files again.
    this.filesMeasuredAt = -Infinity;
    try {
      this.writer.statement("COMMIT").run();
    } catch (e) {
      throw this.loseOpen(e);
    }
  }

  /** Forgets the open transaction SQLite no longer has, and fails the backend; returns the failure. */
  private loseOpen(error: unknown): Error {
    if (this.open !== undefined) clearTimeout(this.open.timer);
    this.open = undefined;
    if (this.writer.db.inTransaction) {
      try {
        this.writer.statement("ROLLBACK").run();
      } catch {
        // The connection is failing; the failure below is what callers see.
      }
    }
    this.writer.bucketIds.clear();
    const translated = translate(error, this.dir);
    this.failure ??= translated instanceof Error ? translated : new StorageError("Io", `data dir ${this.dir}: sqlite: ${String(error)}`);
    return this.failure;
  }

  view<T>(fn: (txn: ReadTxn) => T): T {
    this.checkBackendOpen();
    let active = true;
    // Set by the reader's per-call check, so kept in an object the compiler does not narrow.
    const readState = { reads: 0, began: false };
    const db = this.writer.db;
    const txn = new SqliteReader(
      this.writer,
      () => {
        this.checkBackendOpen();
        if (!active) throw new StorageError("Closed", "read transaction used after view returned");
        // Outside a transaction every statement takes and releases SQLite's read lock by itself, which
        // costs as much as the read: a view that reads many rows takes the lock once instead.
        if (++readState.reads === VIEW_TRANSACTION_AFTER_READS && !db.inTransaction) {
          try {
            this.writer.statement("BEGIN").run();
          } catch (e) {
            throw translate(e, this.dir);
          }
          readState.began = true;
        }
      },
      this.dir,
    );
    try {
      return fn(txn);
    } finally {
      active = false;
      if (readState.began && db.inTransaction) {
        try {
          this.writer.statement("COMMIT").run();
        } catch {
          // A read-only transaction: nothing to lose; SQLite ends it on the next statement if it must.
        }
      }
    }
  }

  update(fn: (txn: WriteTxn) => void): Promise<void> {
    // After a lost transaction, the cause is thrown at once rather than through the promise: the caller
    // learns why (a full disk, say) while it is still deciding what its failed write means.
    if (this.failure !== undefined && !this.closed) throw this.failure;
    this.pageCount = undefined;
    return this.updates.update(fn, this.engineUpdate);
  }

  snapshot(): Snapshot {
    this.checkBackendOpen();
    // A snapshot reads through its own connection, which sees only what is committed.
    this.commitOpen();
    let conn: Connection;
    try {
      conn = this.idleReaders.pop() ?? new Connection(new Database(this.dbPath, { readonly: true, fileMustExist: true }));
    } catch (e) {
      throw translate(e, this.dir);
    }
    try {
      conn.statement("BEGIN").run();
      // A deferred transaction takes its read snapshot at its first read: take it now.
      conn.statement("SELECT count(*) FROM buckets").pluck().get();
    } catch (e) {
      conn.db.close();
      throw translate(e, this.dir);
    }
    let open = true;
    const handle = {
      end: (): void => {
        if (!open) return;
        open = false;
        this.openSnapshots.delete(handle);
        conn.bucketIds.clear();
        if (this.closed) {
          conn.db.close();
          return;
        }
        try {
          conn.statement("COMMIT").run();
          if (this.idleReaders.length < IDLE_SNAPSHOT_CONNECTIONS) this.idleReaders.push(conn);
          else conn.db.close();
        } catch {
          conn.db.close();
        }
      },
    };
    this.openSnapshots.add(handle);
    const reader = new SqliteReader(
      conn,
      () => {
        this.checkBackendOpen();
        if (!open) throw new StorageError("Closed", "snapshot is closed");
      },
      this.dir,
    );
    return Object.assign(reader, { close: handle.end });
  }

  /**
   * The files' size plus the pages an open transaction added (in neither file until it commits). The
   * files are measured again after each commit and otherwise at most every SIZE_CACHE_MS; the open
   * transaction's pages are counted once after each update. Callers ask on hot paths (the server checks the space
   * quota for every proposal and every applied batch), where two stat calls would cost more than the
   * write they guard.
   */
  size(): number {
    // Not refused after a lost transaction: callers ask before each write (a quota check), and it is the
    // write that should meet the failure, which then stops its caller.
    if (this.closed) throw new StorageError("Closed", `sqlite storage backend at ${this.dir} is closed`);
    const now = Date.now();
    if (now - this.filesMeasuredAt >= SIZE_CACHE_MS) {
      this.filesSize = fileSize(this.dbPath) + fileSize(`${this.dbPath}-wal`);
      this.filesMeasuredAt = now;
    }
    if (this.open === undefined || this.failure !== undefined) return this.filesSize;
    return Math.max(this.filesSize, this.logicalBytes());
  }

  private logicalBytes(): number {
    try {
      this.pageCount ??= this.writer.statement("PRAGMA page_count").pluck().get() as number;
      return this.pageBytes() * this.pageCount;
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  private pageBytes(): number {
    return (this.pageSize ??= this.writer.statement("PRAGMA page_size").pluck().get() as number);
  }

  /** Changed only by VACUUM (defragment), which forgets it. */
  private pageSize: number | undefined;
  /** The database's page count since the last update (undefined: count again). */
  private pageCount: number | undefined;
  private filesSize = 0;
  private filesMeasuredAt = -Infinity;

  sizeInUse(): number {
    this.checkBackendOpen();
    try {
      const pageCount = this.writer.statement("PRAGMA page_count").pluck().get() as number;
      const freePages = this.writer.statement("PRAGMA freelist_count").pluck().get() as number;
      // Live pages are in the main file or the WAL, both counted by size(); the min only guards
      // against a stat racing a checkpoint.
      return Math.min((pageCount - freePages) * this.pageBytes(), this.size());
    } catch (e) {
      throw translate(e, this.dir);
    }
  }

  /**
   * Checkpoints the WAL into the main file, rebuilds the file without free pages (VACUUM), and checkpoints
   * again so the WAL is truncated. Runs synchronously, so no write interleaves (like etcd's defrag, it
   * blocks the store while it runs). Open snapshots keep their version; while one is open the WAL cannot
   * be truncated, so the space comes back at the next defragment.
   */
  defragment(): Promise<void> {
    this.filesMeasuredAt = -Infinity;
    this.pageSize = undefined;
    this.pageCount = undefined;
    try {
      this.checkBackendOpen();
      this.commitOpen();
      // TRUNCATE waits (up to the busy timeout) for readers to leave the WAL; with snapshots open it
      // cannot succeed, so copy back what is possible without waiting.
      const checkpoint = this.openSnapshots.size > 0 ? "wal_checkpoint(PASSIVE)" : "wal_checkpoint(TRUNCATE)";
      this.writer.db.pragma(checkpoint);
      this.writer.db.exec("VACUUM");
      this.writer.db.pragma(checkpoint);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(translate(e, this.dir));
    }
  }

  flush(): Promise<void> {
    // A FULL checkpoint syncs the WAL, copies it into the database and syncs that: every commit so far
    // is then durable whatever the synchronous setting was.
    try {
      this.checkBackendOpen();
      this.commitOpen();
      this.writer.db.pragma("wal_checkpoint(FULL)");
    } catch (e) {
      return Promise.reject(translate(e, this.dir));
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // What is open is committed first; a commit that fails is what close rejects with, once closed.
    let commitFailure: Error | undefined;
    if (this.failure === undefined) {
      try {
        this.commitOpen();
      } catch {
        commitFailure = this.failure;
      }
    }
    this.closed = true;
    try {
      for (const snapshot of [...this.openSnapshots]) snapshot.end();
      for (const conn of this.idleReaders.splice(0)) conn.db.close();
      // The last connection to close checkpoints the WAL into the main file and removes it.
      this.writer.db.close();
      return commitFailure === undefined ? Promise.resolve() : Promise.reject(commitFailure);
    } catch (e) {
      return Promise.reject(translate(e, this.dir));
    }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw new StorageError("Io", `cannot stat ${path}: ${String(e)}`, { cause: e });
  }
}

/** True when `path` starts with SQLite's file header (or is empty, which SQLite treats as a new database). */
function hasSqliteHeader(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const header = Buffer.alloc(SQLITE_HEADER.length);
    const n = readSync(fd, header, 0, header.length, 0);
    return n === 0 || (n === header.length && header.toString("latin1") === SQLITE_HEADER);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens (creating if needed) the SQLite store in `options.dir`.
 *
 * Throws `StorageError`: `WrongEngine` when another engine's marker is in the directory; `Corrupt` when
 * the directory holds files but no marker, or the database file is not a SQLite database, lacks this
 * engine's tables, or is damaged. In those cases nothing in the directory is created, changed or removed.
 */
export function openSqliteBackend(options: BackendOptions): SqliteBackend {
  const { dir } = options;
  const state = prepareDataDir(dir, ENGINE, SQLITE_FORMAT);
  const dbPath = join(dir, DB_FILE);
  if (!state.fresh) {
    if (!state.files.includes(DB_FILE)) {
      throw new StorageError(
        "Corrupt",
        `data dir ${dir} is marked as a sqlite store but has no ${DB_FILE} (holds ${state.files.join(", ")})`,
      );
    }
    if (!hasSqliteHeader(dbPath)) {
      throw new StorageError("Corrupt", `data dir ${dir}: ${DB_FILE} is not a SQLite database (bad header)`);
    }
  }
  let db: Database.Database;
  try {
    db = new Database(dbPath, { fileMustExist: !state.fresh });
  } catch (e) {
    throw translate(e, dir);
  }
  try {
    // Validate before any pragma that writes (journal_mode=WAL rewrites the header).
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[]).filter(
      (name) => !name.startsWith("sqlite_"),
    );
    if (tables.length > 0) {
      if (tables.join(",") !== [...TABLES].join(",")) {
        throw new StorageError("Corrupt", `data dir ${dir}: ${DB_FILE} has tables ${tables.join(", ")}, not this engine's`);
      }
      const format = db.prepare("SELECT value FROM meta WHERE name = 'format'").pluck().get();
      if (format !== SQLITE_FORMAT) {
        throw new StorageError("Corrupt", `data dir ${dir}: ${DB_FILE} has format ${String(format)}, expected ${SQLITE_FORMAT}`);
      }
    }
    for (const pragma of WRITER_PRAGMAS) db.pragma(pragma);
    if (options.durability === "deferred") db.pragma(DEFERRED_SYNC_PRAGMA);
    if (tables.length === 0) {
      // An empty database: a new store, or a creation cut short before its first commit.
      db.transaction(() => db.exec(SCHEMA))();
      // The database and WAL files are new directory entries: make them durable too.
      fsyncDir(dir);
    }
    return new SqliteBackend(dir, db, options.durability === "deferred");
  } catch (e) {
    db.close();
    throw translate(e, dir);
  }
}

// Compile-time check that the opener fits the engine-neutral signature the server selects engines by.
openSqliteBackend satisfies OpenBackend;

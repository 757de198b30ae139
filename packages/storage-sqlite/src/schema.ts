/**
 * The SQLite schema and pragmas: the driver-specific half of the engine (kine's pattern).
 *
 * One `kv` table holds every bucket's entries, keyed by (bucket id, key) in a `WITHOUT ROWID` table, so
 * the primary-key B-tree *is* the ordered map: a range scan is an index walk in either direction, and
 * SQLite compares BLOBs with memcmp (shorter first), which is exactly the contract's bytewise order.
 * Bucket names map to small integer ids in `buckets`, so keys do not repeat the name.
 */
export const SQLITE_FORMAT = 1;

export const DB_FILE = "data.db";

export const SCHEMA = `
CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value ANY NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE buckets (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE kv (
  bucket INTEGER NOT NULL,
  key    BLOB NOT NULL,
  value  BLOB NOT NULL,
  PRIMARY KEY (bucket, key)
) STRICT, WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('format', ${SQLITE_FORMAT});
`;

export const TABLES = ["buckets", "kv", "meta"] as const;

/**
 * WAL lets one writer and many readers (snapshots on their own connections) proceed together.
 * synchronous=FULL fsyncs the WAL at every commit, so a transaction that has returned survives kill -9
 * and power loss (NORMAL would only survive a process crash).
 */
export const WRITER_PRAGMAS = ["journal_mode = WAL", "synchronous = FULL", "foreign_keys = OFF"];

/**
 * With `durability: "deferred"` the WAL is not fsynced at commit (synchronous=NORMAL): a committed
 * transaction is in the OS's hands, which survives kill -9; `flush()` checkpoints with a sync.
 */
export const DEFERRED_SYNC_PRAGMA = "synchronous = NORMAL";

/** SQLite-specific checks of the data directory, beyond the shared conformance suite. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { isStorageError } from "@etcd-ts/storage";
import { DEFERRED_COMMIT_MS, openSqliteBackend } from "./sqlite-backend.js";

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-sqlite-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n)).toString("base64")]));
}

test(
  "a directory written by the lmdb engine is refused with a message naming both engines",
  withDir((dir) => {
    // Exactly what the lmdb engine leaves behind: its marker and its files.
    writeFileSync(join(dir, "etcd-ts-storage.json"), '{"engine":"lmdb","format":1}\n');
    writeFileSync(join(dir, "data.mdb"), Buffer.alloc(8192));
    writeFileSync(join(dir, "data.mdb-lock"), Buffer.alloc(64));
    const before = contents(dir);
    assert.throws(
      () => openSqliteBackend({ dir }),
      (e: unknown) =>
        isStorageError(e, "WrongEngine") && e.message === `data dir ${dir} was written by the lmdb storage engine, not sqlite`,
    );
    assert.deepEqual(contents(dir), before);
  }),
);

test(
  "a SQLite database that is not ours is refused as Corrupt and left untouched",
  withDir((dir) => {
    const foreign = new Database(join(dir, "data.db"));
    foreign.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice');");
    foreign.close();
    writeFileSync(join(dir, "etcd-ts-storage.json"), '{"engine":"sqlite","format":1}\n');
    const before = contents(dir);
    assert.throws(
      () => openSqliteBackend({ dir }),
      (e: unknown) => isStorageError(e, "Corrupt") && /has tables users/.test(e.message),
    );
    assert.deepEqual(contents(dir), before);
  }),
);

test(
  "a marked directory whose database file is missing is refused as Corrupt",
  withDir((dir) => {
    writeFileSync(join(dir, "etcd-ts-storage.json"), '{"engine":"sqlite","format":1}\n');
    writeFileSync(join(dir, "data.db-wal"), Buffer.alloc(100));
    assert.throws(
      () => openSqliteBackend({ dir }),
      (e: unknown) => isStorageError(e, "Corrupt") && /no data\.db/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir).sort(), ["data.db-wal", "etcd-ts-storage.json"]);
  }),
);

test(
  "the database is in WAL mode and holds the schema; the marker says sqlite format 1",
  withDir(async (dir) => {
    const backend = openSqliteBackend({ dir });
    await backend.update((txn) => txn.createBucket("k"));
    const probe = new Database(join(dir, "data.db"), { readonly: true });
    try {
      assert.equal(probe.pragma("journal_mode", { simple: true }), "wal");
      const tables = probe.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
      assert.deepEqual(tables, ["buckets", "kv", "meta"]);
    } finally {
      probe.close();
      await backend.close();
    }
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "etcd-ts-storage.json"), "utf8")), { engine: "sqlite", format: 1 });
  }),
);

test(
  "the writer connection runs synchronous=FULL (the durability promise rests on it)",
  withDir(async (dir) => {
    const backend = openSqliteBackend({ dir });
    try {
      // synchronous is per connection, so look at the writer itself (a private field, read on purpose).
      const writer = (backend as unknown as { writer: { db: Database.Database } }).writer;
      assert.equal(writer.db.pragma("synchronous", { simple: true }), 2, "2 = FULL");
      assert.equal(writer.db.pragma("journal_mode", { simple: true }), "wal");
    } finally {
      await backend.close();
    }
  }),
);

test(
  "durability deferred: commits skip the fsync (synchronous=NORMAL), flush() makes them durable, data survives reopen",
  withDir(async (dir) => {
    const backend = openSqliteBackend({ dir, durability: "deferred" });
    const writer = (backend as unknown as { writer: { db: Database.Database } }).writer;
    assert.equal(writer.db.pragma("synchronous", { simple: true }), 1, "1 = NORMAL");
    await backend.update((txn) => {
      txn.createBucket("b");
      txn.put("b", new Uint8Array([1]), new Uint8Array([2]));
    });
    await backend.flush();
    await backend.close();
    const reopened = openSqliteBackend({ dir });
    try {
      assert.deepEqual([...(reopened.view((txn) => txn.get("b", new Uint8Array([1]))) ?? [])], [2]);
    } finally {
      await reopened.close();
    }
  }),
);

test(
  "durability deferred: updates share one open transaction, committed after DEFERRED_COMMIT_MS; a throwing update rolls back alone",
  withDir(async (dir) => {
    const backend = openSqliteBackend({ dir, durability: "deferred" });
    const other = new Database(join(dir, "data.db"), { readonly: true, fileMustExist: true });
    const committedKeys = (): number =>
      other.prepare("SELECT count(*) FROM kv WHERE bucket = (SELECT id FROM buckets WHERE name = 'b')").pluck().get() as number;
    try {
      await backend.update((txn) => txn.createBucket("b"));
      await backend.flush();
      await backend.update((txn) => txn.put("b", new Uint8Array([1]), new Uint8Array([1])));
      await assert.rejects(
        backend.update((txn) => {
          txn.put("b", new Uint8Array([2]), new Uint8Array([2]));
          throw new Error("boom");
        }),
        /boom/,
      );
      await backend.update((txn) => txn.put("b", new Uint8Array([3]), new Uint8Array([3])));
      // The writer's own views see both returned updates at once, and not the one that threw...
      assert.deepEqual(
        backend.view((txn) => [...txn.range("b")].map((kv) => kv.key[0])),
        [1, 3],
      );
      // ...another connection sees nothing of them until the open transaction commits.
      assert.equal(committedKeys(), 0, "not committed yet");
      await new Promise((resolve) => setTimeout(resolve, DEFERRED_COMMIT_MS * 4));
      assert.equal(committedKeys(), 2, "committed by the timer");

      // A snapshot reads through a connection of its own: it commits what is open first.
      await backend.update((txn) => txn.put("b", new Uint8Array([4]), new Uint8Array([4])));
      const snapshot = backend.snapshot();
      try {
        assert.equal([...snapshot.range("b")].length, 3);
      } finally {
        snapshot.close();
      }
      assert.equal(committedKeys(), 3);
      // close commits too.
      await backend.update((txn) => txn.put("b", new Uint8Array([5]), new Uint8Array([5])));
    } finally {
      await backend.close();
      assert.equal(committedKeys(), 4, "close committed the open transaction");
      other.close();
    }
  }),
);

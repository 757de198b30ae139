/**
 * SQLITE_FULL without a full disk: `max_page_count` caps the database, so this runs anywhere (the
 * conformance suite fills a real tmpfs, which needs root).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type Database from "better-sqlite3";
import { isStorageError } from "@etcd-ts/storage";
import { openSqliteBackend } from "./sqlite-backend.js";

test("SQLITE_FULL is StorageError Full naming the directory; the update commits nothing; raising the cap lets writes go on", async () => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-sqlite-full-"));
  const backend = openSqliteBackend({ dir });
  try {
    // The writer connection is internal; the cap is a per-connection pragma.
    const db = (backend as unknown as { writer: { db: Database.Database } }).writer.db;
    await backend.update((txn) => txn.createBucket("k"));
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 40}`);
    const value = new Uint8Array(8192).fill(7);
    let committed = 0;
    let failure: unknown;
    for (let i = 0; i < 200 && failure === undefined; i++) {
      try {
        await backend.update((txn) => {
          txn.put("k", new TextEncoder().encode(`${i}/a`), value);
          txn.put("k", new TextEncoder().encode(`${i}/b`), value);
        });
        committed++;
      } catch (e) {
        failure = e;
      }
    }
    assert.ok(isStorageError(failure, "Full"), `expected StorageError Full, got ${String(failure)}`);
    assert.match((failure as Error).message, /SQLITE_FULL/);
    assert.ok((failure as Error).message.includes(dir));
    assert.ok(committed > 0);
    assert.equal(
      backend.view((txn) => [...txn.range("k")].length),
      committed * 2,
      "the failed update left no key",
    );
    db.pragma("max_page_count = 1073741823");
    await backend.update((txn) => txn.put("k", new TextEncoder().encode("after"), value));
    assert.equal(
      backend.view((txn) => [...txn.range("k")].length),
      committed * 2 + 1,
    );
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

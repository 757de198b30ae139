import assert from "node:assert/strict";
import fsPromises from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { after, it } from "node:test";
import { DiskRaftStorage } from "./disk-raft-storage.js";
import { makeEntries, tempDir } from "./testing/fixtures.js";

/**
 * Every WAL segment is read whole on a restart (its preallocated zeros too), and the log since the last
 * snapshot is decoded into memory: a restart that read it twice (once for the snapshot markers, once to
 * open) took twice the time and held twice the buffers, which showed as a restarted member's RSS far
 * above its peers'. Counts the reads through node:fs/promises, which the reader imports.
 */
it("a restart reads each WAL segment once", async () => {
  const { dir, cleanup } = await tempDir();
  after(cleanup);
  const storage = await DiskRaftStorage.open(dir, { confState: { voters: [1n], learners: [] }, segmentSize: 64 * 1024, preallocate: true });
  const entries = makeEntries(1, 600, 1);
  for (let i = 0; i < entries.length; i += 50) {
    await storage.persist({ entries: entries.slice(i, i + 50), hardState: { term: 1, vote: 1n, commit: i + 50 } });
  }
  await storage.createSnapshot(300, undefined, new Uint8Array([1]));
  await storage.close();

  const original = fsPromises.readFile;
  const reads = new Map<string, number>();
  fsPromises.readFile = ((path: Parameters<typeof original>[0], ...rest: unknown[]) => {
    if (typeof path === "string" && path.endsWith(".wal")) reads.set(path, (reads.get(path) ?? 0) + 1);
    return (original as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof original;
  syncBuiltinESMExports();
  after(() => {
    fsPromises.readFile = original;
    syncBuiltinESMExports();
  });
  const reopened = await DiskRaftStorage.open(dir);
  fsPromises.readFile = original;
  syncBuiltinESMExports();
  try {
    assert.ok(reads.size >= 2, `the log spans several segments (read ${reads.size})`);
    assert.deepEqual([...reads].filter(([, n]) => n !== 1), [], "each segment read once");
    assert.equal(reopened.snapshot().metadata.index, 300);
    assert.equal(reopened.lastIndex(), 600);
    assert.equal(reopened.firstIndex(), 301);
  } finally {
    await reopened.close();
  }
});

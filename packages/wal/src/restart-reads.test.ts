import assert from "node:assert/strict";
import fsPromises from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { after, it } from "node:test";
import { DiskRaftStorage } from "./disk-raft-storage.js";
import { makeEntries, tempDir } from "./testing/fixtures.js";

/**
 * Every WAL segment is read whole on a restart (its preallocated zeros too), and the log since the last
 * snapshot is decoded into memory: a restart that read it twice (once for the snapshot markers, once to
 * open) took twice the time and held twice the buffers. Counts the segment files opened for reading
 * through node:fs/promises, which the reader imports.
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

  // Reads go through fs/promises' open (then read in chunks); opens for writing are not reads.
  const original = fsPromises.open;
  const reads = new Map<string, number>();
  fsPromises.open = ((path: Parameters<typeof original>[0], flags?: Parameters<typeof original>[1], ...rest: unknown[]) => {
    if (typeof path === "string" && path.endsWith(".wal") && (flags === undefined || flags === "r"))
      reads.set(path, (reads.get(path) ?? 0) + 1);
    return (original as (...args: unknown[]) => unknown)(path, flags, ...rest);
  }) as typeof original;
  syncBuiltinESMExports();
  after(() => {
    fsPromises.open = original;
    syncBuiltinESMExports();
  });
  const reopened = await DiskRaftStorage.open(dir);
  fsPromises.open = original;
  syncBuiltinESMExports();
  try {
    assert.ok(reads.size >= 2, `the log spans several segments (read ${reads.size})`);
    assert.deepEqual(
      [...reads].filter(([, n]) => n !== 1),
      [],
      "each segment read once",
    );
    assert.equal(reopened.snapshot().metadata.index, 300);
    assert.equal(reopened.lastIndex(), 600);
    assert.equal(reopened.firstIndex(), 301);
  } finally {
    await reopened.close();
  }
});

/**
 * A preallocated segment is mostly zeros until filled; a restart keeps only the bytes written, not the
 * whole segment, and still finds the log's end there (and appends after it).
 */
it("a restart holds the written part of a preallocated segment, not all of it", async () => {
  const { dir, cleanup } = await tempDir();
  after(cleanup);
  const segmentSize = 32 * 1024 * 1024;
  const storage = await DiskRaftStorage.open(dir, { confState: { voters: [1n], learners: [] }, segmentSize, preallocate: true });
  await storage.persist({ entries: makeEntries(1, 100, 1), hardState: { term: 1, vote: 1n, commit: 100 } });
  await storage.close();
  const before = process.memoryUsage().arrayBuffers;
  const reopened = await DiskRaftStorage.open(dir, { segmentSize });
  const held = process.memoryUsage().arrayBuffers - before;
  try {
    // Without a GC in between, a segment read whole would still be counted here.
    assert.ok(held < segmentSize / 2, `opening held ${held} bytes of buffers for a ${segmentSize}-byte segment`);
    assert.equal(reopened.lastIndex(), 100);
    await reopened.persist({ entries: makeEntries(101, 1, 1), hardState: { term: 1, vote: 1n, commit: 101 } });
  } finally {
    await reopened.close();
  }
  const again = await DiskRaftStorage.open(dir, { segmentSize });
  assert.equal(again.lastIndex(), 101);
  assert.deepEqual(
    again.entries(100, 102, Infinity).map((e) => e.index),
    [100, 101],
  );
  await again.close();
});

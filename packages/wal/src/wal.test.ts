import assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { Entry } from "@etcd-ts/raft";
import { isWalError } from "./errors.js";
import { makeEntries, tempDir } from "./testing/fixtures.js";
import { Wal } from "./wal.js";

const META = new TextEncoder().encode("member=1 cluster=2");
/** Small (preallocated) segments: the default 64 MiB would be zero-filled for every test. */
const OPTS = { segmentSize: 256 * 1024 };

function indexes(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.index);
}

function assertEntriesEqual(actual: readonly Entry[], expected: readonly Entry[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.deepEqual({ term: a.term, index: a.index, type: a.type }, { term: e.term, index: e.index, type: e.type });
    assert.deepEqual(Buffer.from(a.data), Buffer.from(e.data), `data of entry ${e.index}`);
  }
}

describe("Wal", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    dir = join(dir, "wal");
  });
  afterEach(async () => cleanup());

  it("recovers metadata, entries and hard state after close and open", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    const ents = makeEntries(1, 20);
    wal.save({ term: 1, vote: 7n, commit: 3 }, ents.slice(0, 10));
    wal.save({ term: 1, vote: 7n, commit: 9 }, ents.slice(10));
    await wal.sync();
    await wal.close();

    const r = await Wal.open(dir, OPTS);
    assert.deepEqual(Buffer.from(r.metadata), Buffer.from(META));
    assert.deepEqual(r.hardState, { term: 1, vote: 7n, commit: 9 });
    assert.deepEqual(r.snapshotMarker, { index: 0, term: 0 });
    assertEntriesEqual(r.entries, ents);
    assert.equal(r.repaired, undefined);
    assert.equal(r.wal.lastIndex, 20);
    await r.wal.close();
  });

  it("a fresh WAL opens empty; close() syncs what was saved", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    await wal.close();
    let r = await Wal.open(dir, OPTS);
    assert.deepEqual(r.entries, []);
    assert.deepEqual(r.hardState, { term: 0, vote: 0n, commit: 0 });
    r.wal.save({ term: 2, vote: 1n, commit: 0 }, makeEntries(1, 3, 2));
    await r.wal.close(); // no explicit sync
    r = await Wal.open(dir, OPTS);
    assert.deepEqual(indexes(r.entries), [1, 2, 3]);
    assert.deepEqual(r.hardState, { term: 2, vote: 1n, commit: 0 });
    await r.wal.close();
  });

  it("a later entry at index i replaces the entries >= i (conflicting tail)", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save(undefined, makeEntries(1, 10, 1));
    wal.save(undefined, makeEntries(6, 2, 2));
    await wal.sync();
    assert.equal(wal.lastIndex, 7);
    wal.save(undefined, makeEntries(8, 1, 2));
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    assertEntriesEqual(r.entries, [...makeEntries(1, 5, 1), ...makeEntries(6, 3, 2)]);
    await r.wal.close();
  });

  it("rolls segments and reads across them, including an overwrite spanning segments", async () => {
    const wal = await Wal.create(dir, META, { segmentSize: 4096 });
    for (let i = 1; i <= 200; i += 5) wal.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, 5));
    await wal.sync();
    assert.ok(wal.segmentNames().length > 5, `segments: ${wal.segmentNames().length}`);
    wal.save({ term: 2, vote: 1n, commit: 150 }, makeEntries(151, 20, 2)); // overwrites 151..170, drops 171..200
    await wal.close();
    const names = (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
    assert.equal(names[0], "0000000000000000-0000000000000001.wal");
    const r = await Wal.open(dir, { segmentSize: 4096 });
    assertEntriesEqual(r.entries, [...makeEntries(1, 150, 1), ...makeEntries(151, 20, 2)]);
    assert.deepEqual(r.hardState, { term: 2, vote: 1n, commit: 150 });
    await r.wal.close();
  });

  it("releaseTo deletes the segments before the newest marker at or below the index; restart reads after it", async () => {
    const wal = await Wal.create(dir, META, { segmentSize: 4096 });
    for (let i = 1; i <= 300; i += 10) wal.save({ term: 3, vote: 1n, commit: i + 9 }, makeEntries(i, 10, 3));
    wal.saveSnapshotMarker({ index: 120, term: 3 });
    for (let i = 301; i <= 320; i += 10) wal.save({ term: 3, vote: 1n, commit: i + 9 }, makeEntries(i, 10, 3));
    await wal.sync();
    const before = wal.segmentNames();
    await wal.releaseTo(200); // the newest marker <= 200 is 120
    const after = wal.segmentNames();
    assert.ok(after.length < before.length, `${before.length} -> ${after.length}`);
    assert.deepEqual(after, before.slice(before.length - after.length));
    // The first kept segment starts at or before 121; the next one after it.
    const firstIndexOf = (name: string) => parseInt(name.slice(17, 33), 16);
    assert.ok(firstIndexOf(after[0]!) <= 121);
    assert.ok(firstIndexOf(after[1]!) > 121);
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith(".wal")).sort(), after);
    await wal.close();

    const r = await Wal.open(dir, OPTS);
    assert.deepEqual(r.snapshotMarker, { index: 120, term: 3 });
    assertEntriesEqual(r.entries, makeEntries(121, 200, 3));
    assert.deepEqual(r.hardState, { term: 3, vote: 1n, commit: 320 });
    assert.deepEqual(Buffer.from(r.metadata), Buffer.from(META));
    assert.equal(r.wal.lastIndex, 320);
    // Entries after a released marker can no longer be asked for.
    await r.wal.close();
    await assert.rejects(Wal.open(dir, { ...OPTS, at: { index: 0, term: 0 } }), (e) => isWalError(e, "SnapshotNotFound"));
  });

  it("opens at an older marker, and refuses one that is not in the WAL", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save(undefined, makeEntries(1, 30));
    wal.saveSnapshotMarker({ index: 10, term: 1 });
    wal.saveSnapshotMarker({ index: 20, term: 1 });
    await wal.close();
    let r = await Wal.open(dir, OPTS);
    assert.deepEqual(r.snapshotMarker, { index: 20, term: 1 });
    assert.deepEqual(
      indexes(r.entries),
      makeEntries(21, 10).map((e) => e.index),
    );
    await r.wal.close();
    assert.deepEqual(await Wal.readSnapshotMarkers(dir), [
      { index: 0, term: 0 },
      { index: 10, term: 1 },
      { index: 20, term: 1 },
    ]);
    r = await Wal.open(dir, { ...OPTS, at: { index: 10, term: 1 } });
    assert.equal(r.entries[0]!.index, 11);
    assert.equal(r.entries.length, 20);
    await r.wal.close();
    await assert.rejects(Wal.open(dir, { ...OPTS, at: { index: 15, term: 1 } }), (e) => isWalError(e, "SnapshotNotFound"));
  });

  it("a marker that replaces the log (snapshot from the leader) discards the entries; the log continues after it", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save({ term: 1, vote: 1n, commit: 5 }, makeEntries(1, 10, 1));
    wal.saveSnapshotMarker({ index: 8, term: 4 }, { replacesLog: true });
    assert.equal(wal.lastIndex, 8);
    wal.save({ term: 4, vote: 0n, commit: 8 }, makeEntries(9, 3, 4));
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    assert.deepEqual(r.snapshotMarker, { index: 8, term: 4 });
    assertEntriesEqual(r.entries, makeEntries(9, 3, 4));
    // A marker beyond the last entry also moves the log forward.
    r.wal.saveSnapshotMarker({ index: 50, term: 5 });
    assert.equal(r.wal.lastIndex, 50);
    r.wal.save(undefined, makeEntries(51, 1, 5));
    await r.wal.close();
    const r2 = await Wal.open(dir, OPTS);
    assert.deepEqual(indexes(r2.entries), [51]);
    await r2.wal.close();
  });

  it("rejects saves that break the log's contracts, saving nothing", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save(undefined, makeEntries(1, 5));
    const invalid = (e: unknown) => isWalError(e, "InvalidArgument");
    assert.throws(() => wal.save(undefined, makeEntries(7, 1)), invalid); // gap
    assert.throws(() => wal.save(undefined, [...makeEntries(6, 1), ...makeEntries(8, 1)]), invalid); // not contiguous
    wal.saveSnapshotMarker({ index: 3, term: 1 });
    assert.throws(() => wal.save(undefined, makeEntries(3, 1)), invalid); // below the snapshot
    assert.throws(() => wal.saveSnapshotMarker({ index: 2, term: 1 }), invalid); // older marker
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    assert.deepEqual(indexes(r.entries), [4, 5]);
    await r.wal.close();
  });

  it("serves concurrent sync() calls with shared fsyncs (group commit), each durable on resolution", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    const syncs: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) {
      wal.save({ term: 1, vote: 1n, commit: i - 1 }, makeEntries(i, 1));
      syncs.push(wal.sync());
    }
    await Promise.all(syncs);
    // All 100 saves were pending when the first flush started: one write, one fdatasync.
    assert.equal(wal.metrics().fsyncs, 1);
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    assert.equal(r.entries.length, 100);
    assert.deepEqual(r.hardState, { term: 1, vote: 1n, commit: 99 });
    await r.wal.close();
  });

  it("locks the directory: a second open fails until the first closes", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    await assert.rejects(Wal.open(dir, OPTS), (e) => isWalError(e, "Locked"));
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    await r.wal.close();
    await assert.rejects(Wal.create(dir, META, OPTS), (e) => isWalError(e, "Exists"));
  });

  it("reports NotFound for a directory without a WAL, and Closed after close", async () => {
    await assert.rejects(Wal.open(dir, OPTS), (e) => isWalError(e, "NotFound"));
    assert.equal(await Wal.exists(dir), false);
    const wal = await Wal.create(dir, META, OPTS);
    assert.equal(await Wal.exists(dir), true);
    await wal.close();
    assert.throws(
      () => wal.save(undefined, makeEntries(1, 1)),
      (e) => isWalError(e, "Closed"),
    );
  });

  it("removes temp files of an interrupted segment roll or preallocation on open", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save(undefined, makeEntries(1, 3));
    await wal.close();
    await writeFile(join(dir, "0000000000000001-0000000000000004.wal.tmp"), "half a segment header");
    await writeFile(join(dir, "next-segment.tmp"), Buffer.alloc(4096));
    const r = await Wal.open(dir, OPTS);
    assert.equal(r.entries.length, 3);
    assert.deepEqual((await readdir(dir)).sort(), ["0000000000000000-0000000000000001.wal", "wal.lock"]);
    await r.wal.close();
  });

  it("refuses all work after a failed write or sync (the page cache can no longer be trusted)", async () => {
    const wal = await Wal.create(dir, META, OPTS);
    wal.save(undefined, makeEntries(1, 3));
    await wal.sync();
    // Pull the file out from under it: the next write fails with EBADF.
    await (wal as unknown as { fh: { close(): Promise<void> } }).fh.close();
    wal.save(undefined, makeEntries(4, 1));
    const failed = (e: unknown) => isWalError(e, "Failed");
    await assert.rejects(wal.sync(), failed);
    assert.throws(() => wal.save(undefined, makeEntries(5, 1)), failed);
    await assert.rejects(wal.sync(), failed);
    await assert.rejects(wal.releaseTo(1), failed);
    await wal.close();
    const r = await Wal.open(dir, OPTS);
    assert.deepEqual(indexes(r.entries), [1, 2, 3]);
    await r.wal.close();
  });
});

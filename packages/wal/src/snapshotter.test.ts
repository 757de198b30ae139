import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { Snapshot } from "@etcd-ts/raft";
import { isWalError } from "./errors.js";
import { Snapshotter, snapshotFileName } from "./snapshotter.js";
import { entryData, tempDir } from "./testing/fixtures.js";

function snapshot(index: number, term: number, size = 1000): Snapshot {
  return {
    data: entryData(index, size),
    metadata: { index, term, confState: { voters: [1n, 0xfedcba9876543210n], learners: [3n] } },
  };
}

describe("Snapshotter", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    dir = join(dir, "snap");
  });
  afterEach(async () => cleanup());

  it("names files <term>-<index>.snap in hex and loads what it saved", async () => {
    const s = new Snapshotter(dir);
    const snap = snapshot(0x1234, 7);
    await s.save(snap);
    assert.deepEqual(await readdir(dir), ["0000000000000007-0000000000001234.snap"]);
    assert.equal(snapshotFileName({ index: 0x1234, term: 7 }), "0000000000000007-0000000000001234.snap");
    const loaded = await s.load({ index: 0x1234, term: 7 });
    assert.deepEqual(loaded.metadata, snap.metadata);
    assert.deepEqual(Buffer.from(loaded.data), Buffer.from(snap.data));
    assert.deepEqual(await s.loadNewest(), loaded);
  });

  it("loadNewest skips broken files (renamed to .broken) and markers not accepted", async () => {
    const s = new Snapshotter(dir);
    await s.save(snapshot(10, 1));
    await s.save(snapshot(20, 2));
    await s.save(snapshot(30, 2));
    // Damage the newest: flip one body byte.
    const newest = join(dir, snapshotFileName({ index: 30, term: 2 }));
    const bytes = await readFile(newest);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
    await writeFile(newest, bytes);
    await assert.rejects(s.load({ index: 30, term: 2 }), (e) => isWalError(e, "Corrupt"));

    const got = await s.loadNewest();
    assert.equal(got?.metadata.index, 20);
    const names = (await readdir(dir)).sort();
    assert.ok(names.includes(`${snapshotFileName({ index: 30, term: 2 })}.broken`));
    assert.ok(!names.includes(snapshotFileName({ index: 30, term: 2 })));

    // Only markers the WAL knows count.
    const only10 = await s.loadNewest((m) => m.index === 10);
    assert.equal(only10?.metadata.index, 10);
    assert.equal(await s.loadNewest(() => false), undefined);
  });

  it("treats a truncated file and a file whose content does not match its name as broken", async () => {
    const s = new Snapshotter(dir);
    await s.save(snapshot(5, 1));
    await s.save(snapshot(6, 1));
    const six = join(dir, snapshotFileName({ index: 6, term: 1 }));
    const bytes = await readFile(six);
    await writeFile(six, bytes.subarray(0, bytes.length - 1));
    // A copy of 5's file under 7's name.
    await writeFile(join(dir, snapshotFileName({ index: 7, term: 1 })), await readFile(join(dir, snapshotFileName({ index: 5, term: 1 }))));
    const got = await s.loadNewest();
    assert.equal(got?.metadata.index, 5);
    assert.equal((await readdir(dir)).filter((n) => n.endsWith(".broken")).length, 2);
  });

  it("keeps only the newest `retain` files", async () => {
    const s = new Snapshotter(dir, { retain: 3 });
    for (let i = 1; i <= 6; i++) await s.save(snapshot(i * 100, i, 10));
    assert.deepEqual(
      (await s.list()).map((m) => m.index),
      [600, 500, 400],
    );
    assert.equal(await s.purge(1), 2);
    assert.deepEqual(
      (await s.list()).map((m) => m.index),
      [600],
    );
  });

  it("an empty directory has no snapshot; leftover temp files are removed", async () => {
    const s = new Snapshotter(dir);
    assert.equal(await s.loadNewest(), undefined);
    await s.save(snapshot(1, 1));
    await writeFile(join(dir, "0000000000000001-0000000000000002.snap.tmp"), "partial");
    await s.removeTemps();
    assert.deepEqual(await readdir(dir), [snapshotFileName({ index: 1, term: 1 })]);
  });
});

// Disk faults under the WAL, injected through its file operations: EIO and ENOSPC on a write, on an
// fdatasync, and while starting a new segment. A failed WAL never acknowledges what the failed sync
// covered, never touches the disk again (no retried fdatasync on the same file), names the file and the
// errno, and a restart recovers every entry synced before the fault (repairing a torn tail).

import assert from "node:assert/strict";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { Entry } from "@etcd-ts/raft";
import { DiskRaftStorage } from "./disk-raft-storage.js";
import { isWalError } from "./errors.js";
import { FaultyFileOps } from "./testing/faulty-file-ops.js";
import { mountSmallFileSystem } from "./testing/small-fs.js";
import { entryData, makeEntries, tempDir } from "./testing/fixtures.js";
import { Wal } from "./wal.js";

const META = new TextEncoder().encode("member=1");
const SEGMENT = 64 * 1024;

function failedWith(errno: string, what: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(isWalError(e), `not a WalError: ${String(e)}`);
    assert.equal(e.code, "Failed");
    assert.equal(e.errno, errno);
    assert.match(e.message, what);
    assert.ok(e.file !== undefined && e.message.includes(e.file), "the message names the file");
    return true;
  };
}

/** Entries 1..n of the reopened WAL are exactly the given ones, and anything after is whole. */
function assertPrefix(entries: readonly Entry[], synced: number): void {
  assert.ok(entries.length >= synced, `only ${entries.length} of ${synced} synced entries came back`);
  entries.forEach((e, i) => {
    assert.equal(e.index, i + 1);
    assert.deepEqual(Buffer.from(e.data), Buffer.from(entryData(e.index)), `entry ${e.index} is whole`);
  });
}

/** Writes `file` until the file system is full. */
function fillUp(file: string): void {
  const chunk = Buffer.alloc(4096, 1);
  const fd = openSync(file, "w");
  try {
    for (let i = 0; i < 1_000_000; i++) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
}

describe("Wal disk faults", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let ops: FaultyFileOps;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    dir = join(dir, "wal");
    ops = new FaultyFileOps();
  });
  afterEach(async () => cleanup());

  for (const code of ["EIO", "ENOSPC"] as const) {
    it(`${code} on fdatasync: the sync rejects naming the segment and errno, the WAL refuses all work and never syncs again`, async () => {
      const wal = await Wal.create(dir, META, { segmentSize: SEGMENT, fileOps: ops });
      wal.save({ term: 1, vote: 1n, commit: 3 }, makeEntries(1, 3));
      await wal.sync();
      ops.syncFault = { code };
      wal.save(undefined, makeEntries(4, 2));
      await assert.rejects(wal.sync(), failedWith(code, /fdatasync failed/));
      assert.throws(() => wal.save(undefined, makeEntries(6, 1)), failedWith(code, /fdatasync failed/));
      await assert.rejects(wal.sync(), failedWith(code, /fdatasync failed/));
      await assert.rejects(wal.releaseTo(1), failedWith(code, /fdatasync failed/));
      await wal.close();
      assert.equal(ops.callsAfterFault, 0, "no write or fdatasync after the failed one (close included)");

      // Restart: everything synced before the fault is there; 4 and 5 may be (the write reached the
      // page cache) but were never acknowledged.
      const r = await Wal.open(dir, { segmentSize: SEGMENT });
      assertPrefix(r.entries, 3);
      assert.deepEqual(r.hardState, { term: 1, vote: 1n, commit: 3 });
      r.wal.save(undefined, makeEntries(r.wal.lastIndex + 1, 1));
      await r.wal.sync();
      await r.wal.close();
    });

    it(`${code} on a write cut short: nothing is acknowledged and a restart repairs the torn tail`, async () => {
      const wal = await Wal.create(dir, META, { segmentSize: SEGMENT, fileOps: ops });
      wal.save(undefined, makeEntries(1, 3));
      await wal.sync();
      ops.writeFault = { code, keepToSector: true };
      wal.save(undefined, makeEntries(4, 1));
      await assert.rejects(wal.sync(), failedWith(code, /writing at offset \d+ failed/));
      await wal.close();
      assert.equal(ops.callsAfterFault, 0);

      const r = await Wal.open(dir, { segmentSize: SEGMENT });
      assert.deepEqual(
        r.entries.map((e) => e.index),
        [1, 2, 3],
      );
      assert.ok(r.repaired !== undefined, "the torn record was cut off");
      assertPrefix(r.entries, 3);
      r.wal.save(undefined, makeEntries(4, 1));
      await r.wal.sync();
      await r.wal.close();
      assert.deepEqual(
        (await Wal.open(dir, { segmentSize: SEGMENT })).entries.map((e) => e.index),
        [1, 2, 3, 4],
      );
    });
  }

  it("ENOSPC while starting a new segment: the sync rejects, and a restart drops the half-made segment", async () => {
    const wal = await Wal.create(dir, META, { segmentSize: SEGMENT, fileOps: ops });
    wal.save(undefined, makeEntries(1, 10, 1, 1024));
    await wal.sync();
    // Only the new segment's temp file fails: enough entries to roll past the segment size.
    ops.writeFault = { code: "ENOSPC", path: /\.tmp$/ };
    wal.save(undefined, makeEntries(11, 80, 1, 1024));
    await assert.rejects(wal.sync(), failedWith("ENOSPC", /starting the segment failed/));
    await wal.close();
    assert.equal(ops.callsAfterFault, 0);

    const r = await Wal.open(dir, { segmentSize: SEGMENT });
    assert.ok(r.entries.length >= 10);
    r.entries.forEach((e, i) => assert.equal(e.index, i + 1));
    assert.ok(!(await readdir(dir)).some((name) => name.endsWith(".tmp")), "no temp file left");
    await r.wal.close();
  });

  it("a real full disk (tmpfs): the failing sync rejects with ENOSPC, and after space returns a restart has every synced entry", async (t) => {
    const fs = mountSmallFileSystem(512 * 1024);
    if (typeof fs === "string") {
      t.skip(fs);
      return;
    }
    try {
      const walDir = join(fs.dir, "wal");
      // Not preallocated: segments grow by appending, which is where a full disk bites (a repaired
      // segment is appended to as well).
      const wal = await Wal.create(walDir, META, { preallocate: false });
      let synced = 0;
      let failure: unknown;
      for (let i = 1; i <= 1000 && failure === undefined; i++) {
        try {
          wal.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, 1, 1, 4096));
          await wal.sync();
          synced = i;
        } catch (e) {
          failure = e;
        }
      }
      assert.ok(failure !== undefined, "the file system never filled up");
      failedWith("ENOSPC", /failed/)(failure);
      await wal.close();
      // While the disk is (still, or again) completely full, a restart fails at once, saying what and where.
      fillUp(join(fs.dir, "ballast"));
      await assert.rejects(Wal.open(walDir), failedWith("ENOSPC", /taking the WAL lock failed/));
      rmSync(join(fs.dir, "ballast"));
      fs.resize(4 * 1024 * 1024);
      const r = await Wal.open(walDir);
      assert.ok(r.entries.length >= synced && synced > 10, `${r.entries.length} entries back, ${synced} synced`);
      r.entries.forEach((e, i) => {
        assert.equal(e.index, i + 1);
        assert.deepEqual(Buffer.from(e.data), Buffer.from(entryData(e.index, 4096)));
      });
      r.wal.save(undefined, makeEntries(r.wal.lastIndex + 1, 1));
      await r.wal.sync();
      await r.wal.close();
    } finally {
      fs.unmount();
    }
  });

  it("ENOSPC while creating a new WAL (preallocating its first segment) names the segment and errno", async () => {
    ops.writeFault = { code: "ENOSPC" };
    await assert.rejects(
      Wal.create(dir, META, { segmentSize: SEGMENT, fileOps: ops }),
      failedWith("ENOSPC", /creating the first WAL segment failed/),
    );
    assert.equal(await Wal.exists(dir), false, "no segment was left behind");
  });

  it("a failed persist leaves raft's view of the log unchanged (nothing it could acknowledge)", async () => {
    const storage = await DiskRaftStorage.open(join(dir, "raft"), { walFileOps: ops, segmentSize: SEGMENT });
    await storage.persist({ hardState: { term: 1, vote: 1n, commit: 0 }, entries: makeEntries(1, 2) });
    ops.syncFault = { code: "EIO" };
    await assert.rejects(
      storage.persist({ hardState: { term: 1, vote: 1n, commit: 2 }, entries: makeEntries(3, 2) }),
      failedWith("EIO", /fdatasync failed/),
    );
    assert.equal(storage.lastIndex(), 2);
    assert.deepEqual(storage.hardState, { term: 1, vote: 1n, commit: 0 });
    await storage.close();
  });
});

// Randomized check of the Wal against a plain in-memory model of the log: saves with tail overwrites,
// compaction and leader-snapshot markers, syncs, releases and reopen cycles, on tiny segments so that
// rolls and releases happen all the time.

import assert from "node:assert/strict";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { EntryType, type Entry, type HardState } from "@etcd-ts/raft";
import { entryData, tempDir } from "./testing/fixtures.js";
import { Wal, type SnapshotMarker } from "./wal.js";

/** xorshift32: deterministic per seed. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

class ModelLog {
  entries = new Map<number, Entry>();
  last = 0;
  marker: SnapshotMarker = { index: 0, term: 0 };
  hardState: HardState = { term: 0, vote: 0n, commit: 0 };

  save(hs: HardState | undefined, ents: Entry[]): void {
    for (const e of ents) {
      for (let i = e.index; i <= this.last; i++) this.entries.delete(i);
      this.entries.set(e.index, e);
      this.last = e.index;
    }
    if (hs) this.hardState = hs;
  }

  saveMarker(m: SnapshotMarker, replacesLog: boolean): void {
    if (replacesLog || m.index > this.last) {
      this.entries.clear();
      this.last = m.index;
    }
    this.marker = m;
  }

  after(index: number): Entry[] {
    const out: Entry[] = [];
    for (let i = index + 1; i <= this.last; i++) out.push(this.entries.get(i)!);
    return out;
  }
}

function key(e: Entry): string {
  return `${e.index}/${e.term}/${e.data.length}`;
}

describe("Wal against a model", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir: root, cleanup } = await tempDir());
  });
  afterEach(async () => cleanup());

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`random operations, seed ${seed}`, async () => {
      const rand = rng(seed * 7919);
      const dir = join(root, "wal");
      const options = { segmentSize: 1024 + rand(2048), preallocate: seed % 2 === 0 };
      const model = new ModelLog();
      let wal = await Wal.create(dir, new Uint8Array([seed]), options);
      let term = 1;
      let reopens = 0;
      const done = { overwrites: 0, compactionMarkers: 0, leaderSnapshots: 0, releasedSegments: 0 };
      for (let op = 0; op < 400; op++) {
        const r = rand(100);
        if (r < 60) {
          // Append, or overwrite an uncommitted tail with a higher term.
          const overwrite = rand(5) === 0 && model.last > model.hardState.commit;
          if (overwrite) {
            term++;
            done.overwrites++;
          }
          const low = Math.max(model.marker.index, model.hardState.commit) + 1;
          const start = overwrite ? low + rand(model.last - low + 1) : model.last + 1;
          const count = 1 + rand(6);
          const ents: Entry[] = [];
          for (let i = 0; i < count; i++)
            ents.push({ term, index: start + i, type: EntryType.Normal, data: entryData(start + i, 1 + rand(120)) });
          const last = start + count - 1;
          const hs = rand(2) === 0 ? { term, vote: 1n, commit: Math.min(last, model.hardState.commit + rand(count + 2)) } : undefined;
          wal.save(hs, ents);
          model.save(hs, ents);
        } else if (r < 70) {
          // A compaction marker at or below the commit index.
          if (model.hardState.commit > model.marker.index) {
            const index = model.marker.index + 1 + rand(model.hardState.commit - model.marker.index);
            const m = { index, term: model.entries.get(index)?.term ?? model.marker.term };
            wal.saveSnapshotMarker(m);
            model.saveMarker(m, false);
            done.compactionMarkers++;
          }
        } else if (r < 73) {
          // A snapshot from the leader, ahead of (or inside) the log.
          term++;
          const index = model.last + rand(20) - 5;
          if (index > model.marker.index && index >= model.hardState.commit) {
            const m = { index, term };
            wal.saveSnapshotMarker(m, { replacesLog: true });
            model.saveMarker(m, true);
            const hs = { term, vote: 0n, commit: index };
            wal.save(hs, []);
            model.save(hs, []);
            done.leaderSnapshots++;
          }
        } else if (r < 88) {
          await wal.sync();
        } else if (r < 94) {
          const before = wal.segmentNames().length;
          await wal.releaseTo(rand(model.last + 10));
          done.releasedSegments += before - wal.segmentNames().length;
        } else {
          await wal.close();
          const opened = await Wal.open(dir, options);
          reopens++;
          wal = opened.wal;
          assert.equal(opened.repaired, undefined);
          assert.deepEqual(opened.snapshotMarker, model.marker, `marker after op ${op}`);
          assert.deepEqual(opened.hardState, model.hardState, `hard state after op ${op}`);
          assert.deepEqual(opened.entries.map(key), model.after(model.marker.index).map(key), `entries after op ${op}`);
          assert.equal(wal.lastIndex, model.last);
        }
      }
      await wal.close();
      const final = await Wal.open(dir, options);
      assert.deepEqual(final.entries.map(key), model.after(model.marker.index).map(key));
      for (const e of final.entries) assert.deepEqual(Buffer.from(e.data), Buffer.from(entryData(e.index, e.data.length)));
      assert.ok(reopens > 5);
      assert.ok(
        done.overwrites > 0 && done.compactionMarkers > 0 && done.leaderSnapshots > 0 && done.releasedSegments > 0,
        JSON.stringify(done),
      );
      assert.ok(final.wal.segmentNames().length < 40, `segments were released: ${final.wal.segmentNames().length}`);
      await final.wal.close();
    });
  }
});

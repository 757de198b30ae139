import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "@etcd-ts/api";
import type { WatchRequest, WatchResponse } from "@etcd-ts/api";
import { describeEvent } from "./testing/collect.js";
import { ManualScheduler } from "./testing/manual-scheduler.js";
import { MemoryWatchableKV } from "./testing/memory-kv.js";
import { WatchStream } from "./watch-stream.js";
import { WatchableStore } from "./watchable-store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function watchKey(key: string, end?: string): WatchRequest {
  return create(WatchRequestSchema, {
    requestUnion: {
      case: "createRequest",
      value: { key: enc(key), rangeEnd: end === undefined ? new Uint8Array(0) : enc(end) },
    },
  });
}

const KEYS = 10_000;
const WRITES = 10_000;
const key = (n: number): string => `key/${String(n).padStart(5, "0")}`;

/** Puts WRITES values to pseudo-random keys; returns the elapsed milliseconds. */
function writeLoad(kv: MemoryWatchableKV, between?: (i: number) => void): number {
  let seed = 1;
  const started = performance.now();
  for (let i = 0; i < WRITES; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    kv.put(key(seed % KEYS), `v${i}`);
    between?.(i);
  }
  return performance.now() - started;
}

describe("scale: 10,000 watchers and a stalled reader", () => {
  it("writes stay fast, memory stays bounded, and the stalled watcher later gets every event once, in order", () => {
    // Baseline: the same writes with no watchers at all.
    const baselineKv = new MemoryWatchableKV();
    new WatchableStore(baselineKv, { scheduler: new ManualScheduler() });
    writeLoad(baselineKv); // warm-up of the code paths
    const baselineMs = writeLoad(baselineKv);

    const kv = new MemoryWatchableKV();
    const scheduler = new ManualScheduler();
    const store = new WatchableStore(kv, { scheduler });
    const healthy = Array.from({ length: 10 }, () => new WatchStream({ store, scheduler }));
    const stalled = new WatchStream({ store, scheduler });
    // 9,000 single-key and 500 range watchers on healthy streams.
    for (let i = 0; i < 9000; i++) healthy[i % 10]!.handle(watchKey(key(i)));
    for (let i = 0; i < 500; i++) healthy[i % 10]!.handle(watchKey(key(i * 20), key(i * 20 + 20)));
    // The stalled stream: one watcher on every key (watch ID 0) and 499 single-key watchers.
    stalled.handle(watchKey("key/", "key0"));
    for (let i = 0; i < 499; i++) stalled.handle(watchKey(key(i * 17)));
    assert.equal(store.stats().synced, 10_000);
    for (const s of healthy) s.takeAll();
    const stalledSeen: WatchResponse[] = stalled.takeAll();

    let healthyEvents = 0;
    let maxStalledPending = 0;
    const loadMs = writeLoad(kv, (i) => {
      maxStalledPending = Math.max(maxStalledPending, stalled.pending);
      if (i % 100 === 99) {
        for (const s of healthy) for (const r of s.takeAll()) healthyEvents += r.events.length;
        scheduler.advance(10); // the victim and sync loops run during the stall
      }
    });
    for (const s of healthy) for (const r of s.takeAll()) healthyEvents += r.events.length;

    if (process.env.WATCH_SCALE_LOG)
      console.log({ baselineMs, loadMs, healthyEvents, stats: store.stats(), historyReads: kv.historyReads });
    // Writes: the per-write cost does not grow with the number of watchers (generous bound for CI noise).
    assert.ok(
      loadMs < baselineMs * 8 + 500,
      `10,000 writes took ${loadMs.toFixed(0)} ms with 10,000 watchers, ${baselineMs.toFixed(0)} ms without`,
    );
    // Memory: the stalled stream holds at most its bound; its watchers wait as victims holding no events,
    // and nothing re-read history for them while the reader stalled.
    assert.ok(maxStalledPending <= 128, `stalled stream held ${maxStalledPending} responses`);
    const heldWhileStalled: number = stalled.pending;
    assert.equal(heldWhileStalled, 128);
    const stats = store.stats();
    assert.equal(stats.victims + stats.unsynced + stats.synced, 10_000);
    assert.ok(stats.victims >= 1);
    assert.equal(kv.historyReads, 0);
    // The healthy streams got every event live: 10,000 single-key hits (keys < 9,000) plus range hits.
    assert.ok(healthyEvents >= WRITES, `healthy streams got ${healthyEvents} events`);

    // The reader resumes: take what is buffered, let the loops run, until everything is synced.
    for (let round = 0; round < 10_000; round++) {
      stalledSeen.push(...stalled.takeAll());
      if (store.stats().victims === 0 && store.stats().unsynced === 0 && stalled.pending === 0) break;
      scheduler.advance(10);
    }
    assert.deepEqual(store.stats(), { synced: 10_000, unsynced: 0, victims: 0 });
    kv.put(key(0), "after");
    stalledSeen.push(...stalled.takeAll());

    const everything = kv.history(1, kv.currentRevision()).events.map(describeEvent);
    const byId = new Map<bigint, string[]>();
    for (const r of stalledSeen) {
      const list = byId.get(r.watchId) ?? [];
      list.push(...r.events.map(describeEvent));
      byId.set(r.watchId, list);
    }
    // The all-keys watcher: every event exactly once, in revision order.
    assert.deepEqual(byId.get(0n), everything);
    // Each single-key watcher: exactly its key's events.
    for (let i = 0; i < 499; i++) {
      const k = key(i * 17);
      assert.deepEqual(
        byId.get(BigInt(i + 1)) ?? [],
        everything.filter((e) => e.split(/[ =@]/)[1] === k),
      );
    }
  });
});

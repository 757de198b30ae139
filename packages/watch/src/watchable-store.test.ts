import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecordingConsumer, describeEvent } from "./testing/collect.js";
import { ManualScheduler } from "./testing/manual-scheduler.js";
import { MemoryWatchableKV } from "./testing/memory-kv.js";
import { isWatchError } from "./errors.js";
import { WatchableStore } from "./watchable-store.js";
import type { WatchOptions } from "./watchable-store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function setup(options: { maxWatchersPerSync?: number; maxEventsPerSync?: number } = {}) {
  const kv = new MemoryWatchableKV();
  const scheduler = new ManualScheduler();
  const store = new WatchableStore(kv, { scheduler, ...options });
  let nextId = 0n;
  const watch = (
    key: string,
    opts: Partial<Omit<WatchOptions, "key" | "rangeEnd" | "consumer">> & { end?: string; consumer?: RecordingConsumer } = {},
  ) => {
    const consumer = opts.consumer ?? new RecordingConsumer();
    const watcher = store.watch({
      id: opts.id ?? nextId++,
      key: enc(key),
      rangeEnd: opts.end === undefined ? undefined : opts.end === "\0" ? new Uint8Array([0]) : enc(opts.end),
      startRevision: opts.startRevision ?? 0,
      filters: opts.filters,
      prevKv: opts.prevKv,
      consumer,
    });
    return { watcher, consumer };
  };
  return { kv, scheduler, store, watch };
}

describe("WatchableStore: live (synced) watchers", () => {
  it("sends each revision's matching events in one response, from the write itself", () => {
    const { kv, store, watch } = setup();
    const { consumer } = watch("a");
    kv.put("a", "1");
    kv.put("b", "x");
    kv.txn((t) => {
      t.put("a", "2");
      t.put("b", "y");
      t.delete("a");
    });
    assert.deepEqual(
      consumer.received.map((r) => [r.revision, r.events.map(describeEvent)]),
      [
        [2, ["PUT a=1@2"]],
        [4, ["PUT a=2@4", "DELETE a@4"]],
      ],
    );
    assert.deepEqual(store.stats(), { synced: 1, unsynced: 0, victims: 0 });
  });

  it("matches single keys, ranges, prefixes and from-key (\\0) ranges", () => {
    const { kv, watch } = setup();
    const single = watch("foo").consumer;
    const range = watch("b", { end: "d" }).consumer;
    const prefix = watch("foo", { end: "fop" }).consumer;
    const fromKey = watch("c", { end: "\0" }).consumer;
    const all = watch("", { end: "\0" }).consumer;
    for (const k of ["a", "b", "c", "cz", "d", "foo", "foo/bar", "fop", "z"]) kv.put(k, "v");
    const keys = (c: RecordingConsumer) => c.events().map((e) => e.split(/[ =]/)[1]);
    assert.deepEqual(keys(single), ["foo"]);
    assert.deepEqual(keys(range), ["b", "c", "cz"]);
    assert.deepEqual(keys(prefix), ["foo", "foo/bar"]);
    assert.deepEqual(keys(fromKey), ["c", "cz", "d", "foo", "foo/bar", "fop", "z"]);
    assert.deepEqual(keys(all), ["a", "b", "c", "cz", "d", "foo", "foo/bar", "fop", "z"]);
  });

  it("refuses an empty range (key >= range end)", () => {
    const { watch } = setup();
    assert.throws(
      () => watch("b", { end: "a" }),
      (e: unknown) => isWatchError(e, "EmptyRange"),
    );
    assert.throws(() => watch("b", { end: "b" }), /mvcc: watcher range is empty/);
  });

  it("applies NOPUT / NODELETE filters and sends nothing when all events are filtered", () => {
    const { kv, watch } = setup();
    const noPut = watch("k", { filters: { noPut: true } }).consumer;
    const noDelete = watch("k", { filters: { noDelete: true } }).consumer;
    kv.put("k", "1");
    kv.delete("k");
    kv.txn((t) => {
      t.put("k", "2");
      t.delete("k");
    });
    assert.deepEqual(
      noPut.received.map((r) => r.events.map(describeEvent)),
      [["DELETE k@3"], ["DELETE k@4"]],
    );
    assert.deepEqual(
      noDelete.received.map((r) => r.events.map(describeEvent)),
      [["PUT k=1@2"], ["PUT k=2@4"]],
    );
  });

  it("sends prevKv only to watchers that asked for it, without changing shared events", () => {
    const { kv, watch } = setup();
    const withPrev = watch("k", { prevKv: true }).consumer;
    const without = watch("k").consumer;
    kv.put("k", "1");
    kv.put("k", "2");
    kv.delete("k");
    assert.deepEqual(withPrev.events(), ["PUT k=1@2", "PUT k=2@3 prev=1", "DELETE k@4 prev=2"]);
    assert.deepEqual(without.events(), ["PUT k=1@2", "PUT k=2@3", "DELETE k@4"]);
  });

  it("a future start revision waits for that revision", () => {
    const { kv, watch } = setup();
    const { consumer } = watch("k", { startRevision: 4 });
    kv.put("k", "1");
    kv.put("k", "2");
    kv.put("k", "3");
    assert.deepEqual(consumer.events(), ["PUT k=2@3", "PUT k=3@4"].slice(1));
  });

  it("cancel stops delivery and frees the watcher", () => {
    const { kv, store, watch } = setup();
    const { watcher, consumer } = watch("k");
    kv.put("k", "1");
    store.cancel(watcher);
    store.cancel(watcher);
    kv.put("k", "2");
    assert.deepEqual(consumer.events(), ["PUT k=1@2"]);
    assert.deepEqual(store.stats(), { synced: 0, unsynced: 0, victims: 0 });
  });
});

describe("WatchableStore: catching up from history", () => {
  it("replays history from the start revision, then continues live: no gap, no duplicate", () => {
    const { kv, scheduler, store, watch } = setup();
    for (let i = 1; i <= 5; i++) kv.put("k", String(i)); // revisions 2..6
    const { watcher, consumer } = watch("k", { startRevision: 3, prevKv: true });
    assert.equal(store.isSynced(watcher), false);
    kv.put("k", "6"); // revision 7 while unsynced: must come from history, once
    assert.equal(consumer.received.length, 0);
    scheduler.advance(100);
    assert.equal(store.isSynced(watcher), true);
    kv.put("k", "7");
    assert.deepEqual(consumer.events(), [
      "PUT k=2@3 prev=1",
      "PUT k=3@4 prev=2",
      "PUT k=4@5 prev=3",
      "PUT k=5@6 prev=4",
      "PUT k=6@7 prev=5",
      "PUT k=7@8 prev=6",
    ]);
  });

  it("under writes interleaved with sync runs, every watcher sees each event once and in order", () => {
    const { kv, scheduler, watch } = setup({ maxWatchersPerSync: 3, maxEventsPerSync: 7 });
    const keys = ["a", "b", "c", "d"];
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const watchers: Array<{ consumer: RecordingConsumer; key: string; fromKey: boolean; start: number }> = [];
    for (let step = 0; step < 600; step++) {
      const op = rand(10);
      if (op < 6) {
        kv.txn((t) => {
          const n = 1 + rand(3);
          for (let i = 0; i < n; i++) {
            const k = keys[rand(keys.length)]!;
            if (rand(4) === 0) t.delete(k);
            else t.put(k, `${step}.${i}`);
          }
        });
      } else if (op < 8) {
        const key = keys[rand(keys.length)]!;
        const start = 1 + rand(kv.currentRevision() + 2);
        const fromKey = rand(2) === 0;
        const { consumer } = watch(key, { startRevision: start, end: fromKey ? "\0" : undefined });
        watchers.push({ consumer, key, fromKey, start });
      } else {
        scheduler.advance(rand(3) * 50);
      }
    }
    scheduler.advance(10_000);
    // Every watcher got exactly the history of its range from its start revision: in order, each once.
    const history = kv.history(1, kv.currentRevision()).events;
    let checked = 0;
    for (const w of watchers) {
      const want = history
        .filter((e) => {
          const key = new TextDecoder().decode(e.kv!.key);
          return Number(e.kv!.modRevision) >= w.start && (w.fromKey ? key >= w.key : key === w.key);
        })
        .map(describeEvent);
      assert.deepEqual(w.consumer.events(), want);
      if (want.length > 0) checked++;
    }
    assert.ok(checked > 50);
  });

  it("a compacted start revision gets one response with compactRevision and the watcher is removed", () => {
    const { kv, scheduler, store, watch } = setup();
    for (let i = 0; i < 5; i++) kv.put("k", String(i)); // revisions 2..6
    kv.compact(5);
    const { watcher, consumer } = watch("k", { startRevision: 3 });
    const atCompact = watch("k", { startRevision: 5 }).consumer;
    scheduler.advance(100);
    assert.equal(consumer.received.length, 1);
    assert.equal(consumer.received[0]!.compactRevision, 5);
    assert.equal(consumer.received[0]!.events.length, 0);
    assert.equal(watcher.state, "done");
    kv.put("k", "x");
    assert.equal(consumer.received.length, 1);
    // Starting exactly at the compact revision is allowed.
    assert.deepEqual(atCompact.events(), ["PUT k=3@5", "PUT k=4@6", "PUT k=x@7"]);
    assert.deepEqual(store.stats(), { synced: 1, unsynced: 0, victims: 0 });
  });

  it("bounds the work of one sync run and goes on at once while work remains", () => {
    const { kv, scheduler, store, watch } = setup({ maxEventsPerSync: 10 });
    for (let i = 0; i < 95; i++) kv.put("k", String(i)); // revisions 2..96
    const { consumer } = watch("k", { startRevision: 2 });
    assert.equal(store.syncWatchers(), 1);
    assert.equal(consumer.received.length, 1);
    assert.equal(consumer.received[0]!.events.length, 10);
    assert.equal(kv.historyEvents, 10);
    scheduler.advance(100); // the timer's run and the immediate follow-ups
    assert.equal(store.stats().unsynced, 0);
    const revs = consumer.events().map((e) => Number(e.split("@")[1]));
    assert.deepEqual(
      revs,
      Array.from({ length: 95 }, (_, i) => i + 2),
    );
  });

  it("keeps a large transaction whole even past the per-run event bound", () => {
    const { kv, scheduler, watch } = setup({ maxEventsPerSync: 3 });
    kv.put("p/0", "x");
    kv.txn((t) => {
      for (let i = 0; i < 8; i++) t.put(`p/${i}`, "y");
    });
    const { consumer } = watch("p/", { end: "p0", startRevision: 2 });
    scheduler.advance(100);
    assert.deepEqual(
      consumer.received.map((r) => r.events.length),
      [9],
    );
  });

  it("catches up watchers from one history read for many watchers", () => {
    const { kv, scheduler, watch } = setup();
    for (let i = 0; i < 20; i++) kv.put(`k${i % 4}`, String(i));
    const consumers = Array.from({ length: 40 }, (_, i) => watch(`k${i % 4}`, { startRevision: 2 + (i % 10) }).consumer);
    scheduler.advance(100);
    assert.equal(kv.historyReads, 1);
    for (const [i, c] of consumers.entries()) {
      const want = kv
        .history(2 + (i % 10), kv.currentRevision())
        .events.map(describeEvent)
        .filter((e) => e.startsWith(`PUT k${i % 4}=`));
      assert.deepEqual(c.events(), want);
    }
  });
});

describe("WatchableStore: a failing history read", () => {
  it("is reported and retried on the next run", () => {
    const kv = new MemoryWatchableKV();
    const scheduler = new ManualScheduler();
    const errors: unknown[] = [];
    const store = new WatchableStore(kv, { scheduler, onError: (e) => errors.push(e) });
    kv.put("a", "1");
    const consumer = new RecordingConsumer();
    store.watch({ id: 0n, key: enc("a"), startRevision: 1, consumer });
    const history = kv.history.bind(kv);
    kv.history = () => {
      throw new Error("mvcc: store failed");
    };
    scheduler.advance(100);
    assert.equal(errors.length, 1);
    kv.history = history;
    scheduler.advance(100);
    assert.deepEqual(consumer.events(), ["PUT a=1@2"]);
    assert.equal(store.stats().synced, 1);
  });
});

describe("WatchableStore: victims (slow consumers)", () => {
  it("a full consumer makes its watchers victims; they catch up from history when it has room", () => {
    const { kv, scheduler, store, watch } = setup();
    const slow = new RecordingConsumer(2);
    const a = watch("a", { consumer: slow });
    watch("b", { consumer: slow });
    const fast = watch("a").consumer;
    for (let i = 0; i < 10; i++)
      kv.txn((t) => {
        t.put("a", String(i));
        t.put("b", String(i));
      });
    assert.equal(slow.held, 2);
    assert.equal(a.watcher.state, "victim");
    assert.deepEqual(store.stats(), { synced: 1, unsynced: 0, victims: 2 });
    assert.equal(fast.received.length, 10);
    scheduler.advance(1000); // still full: nothing moves, nothing is read
    assert.equal(kv.historyReads, 0);
    const first = slow.drain();
    assert.equal(first.length, 2);
    slow.capacity = Infinity;
    scheduler.advance(10); // the victim check, then a sync run at once (not at the next 100 ms tick)
    assert.deepEqual(store.stats(), { synced: 3, unsynced: 0, victims: 0 });
    kv.put("a", "last");
    const aEvents = slow.events().filter((e) => e.startsWith("PUT a="));
    assert.deepEqual(aEvents, [...Array.from({ length: 10 }, (_, i) => `PUT a=${i}@${i + 2}`), "PUT a=last@12"]);
    assert.equal(slow.events().filter((e) => e.startsWith("PUT b=")).length, 10);
  });

  it("tells the consumer when all its watchers are synced again", () => {
    const { kv, scheduler, store, watch } = setup();
    const c = new RecordingConsumer();
    kv.put("a", "1");
    watch("a", { consumer: c, startRevision: 1 });
    watch("b", { consumer: c, startRevision: 2 });
    assert.equal(store.allSynced(c), false);
    scheduler.advance(100);
    assert.equal(store.allSynced(c), true);
    assert.equal(c.allSyncedCalls, 1);
  });

  it("progress() answers only synced watchers", () => {
    const { kv, scheduler, store, watch } = setup();
    kv.put("a", "1");
    const behind = watch("a", { startRevision: 1 });
    const live = watch("a");
    store.progress(behind.watcher);
    store.progress(live.watcher);
    assert.equal(behind.consumer.received.length, 0);
    assert.deepEqual(
      live.consumer.received.map((r) => [r.events.length, r.revision]),
      [[0, 2]],
    );
    scheduler.advance(100);
  });

  it("close() unsubscribes and drops every watcher", () => {
    const { kv, store, watch } = setup();
    const { consumer } = watch("a");
    watch("a", { startRevision: 1 });
    store.close();
    kv.put("a", "1");
    assert.equal(consumer.received.length, 0);
    assert.deepEqual(store.stats(), { synced: 0, unsynced: 0, victims: 0 });
  });
});

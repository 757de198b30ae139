import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { Event_EventType, KeyValueSchema } from "@etcd-ts/api";
import type { Event, KeyValue } from "@etcd-ts/api";
import { CONSISTENT_INDEX_KEY, FINISHED_COMPACT_KEY, KEY_BUCKET, META_BUCKET } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import type { Backend } from "@etcd-ts/storage";
import { isMvccError } from "./errors.js";
import { decodeRevisionKey } from "./revision.js";
import { openMvccStore } from "./store.js";
import type { MvccStore, MvccStoreOptions } from "./store.js";

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (u: Uint8Array): string => new TextDecoder().decode(u);
const FROM_KEY = Uint8Array.of(0);

/** [key, create, mod, version, value] */
const tuple = (kv: KeyValue) => [str(kv.key), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version), str(kv.value)];

function put(store: MvccStore, key: string, value: string, lease = 0n): number {
  return store.update((batch) => batch.txn((txn) => txn.put(b(key), b(value), lease))).result;
}

function del(store: MvccStore, key: string, end?: string | Uint8Array): number {
  const e = end === undefined ? undefined : typeof end === "string" ? b(end) : end;
  return store.update((batch) => batch.txn((txn) => txn.deleteRange(b(key), e))).result;
}

function keys(store: MvccStore, key: string, end?: string | Uint8Array, rev?: number): string[] {
  const e = end === undefined ? undefined : typeof end === "string" ? b(end) : end;
  return store.range(b(key), e, { rev }).kvs.map((kv) => str(kv.key));
}

function rows(backend: Backend): string[] {
  return backend.view((tx) =>
    [...tx.range(KEY_BUCKET)].map(({ key }) => {
      const r = decodeRevisionKey(key);
      return `${r.main}.${r.sub}${r.tombstone ? "t" : ""}`;
    }),
  );
}

describe("MvccStore: revisions and versions", () => {
  it("starts at revision 1 with etcd's buckets", () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    assert.equal(store.currentRevision(), 1);
    assert.equal(store.compactRevision(), -1); // etcd's value before any compaction
    assert.equal(store.consistentIndex(), 0);
    assert.deepEqual(
      backend.view((tx) => tx.buckets()),
      ["alarm", "auth", "authRoles", "authUsers", "cluster", "key", "lease", "members", "members_removed", "meta"],
    );
  });

  it("gives each write transaction one revision and each change a sub revision", () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    assert.equal(put(store, "a", "1"), 2);
    const rev = store.update((batch) =>
      batch.txn((txn) => {
        txn.put(b("b"), b("1"));
        txn.put(b("c"), b("1"));
        assert.equal(txn.deleteRange(b("a"), undefined), 1);
        return txn.rev;
      }),
    ).result;
    assert.equal(rev, 3);
    assert.deepEqual(rows(backend), ["2.0", "3.0", "3.1", "3.2t"]);
    // A transaction that changes nothing takes no revision.
    store.update((batch) => batch.txn((txn) => txn.deleteRange(b("nope"), undefined)));
    store.update((batch) => batch.txn((txn) => txn.range(b("a"), undefined)));
    assert.equal(store.currentRevision(), 3);
  });

  it("keeps create revision and version, and restarts them after a delete", () => {
    const store = openMvccStore(openMemoryBackend());
    put(store, "k", "1"); // 2
    put(store, "k", "2"); // 3
    assert.deepEqual(tuple(store.range(b("k"), undefined).kvs[0]!), ["k", 2, 3, 2, "2"]);
    del(store, "k"); // 4
    assert.equal(store.range(b("k"), undefined).count, 0);
    put(store, "k", "3"); // 5
    assert.deepEqual(tuple(store.range(b("k"), undefined).kvs[0]!), ["k", 5, 5, 1, "3"]);
    // Delete and put in one transaction: the put starts a new generation.
    store.update((batch) =>
      batch.txn((txn) => {
        txn.deleteRange(b("k"), undefined);
        txn.put(b("k"), b("4"));
      }),
    );
    assert.deepEqual(tuple(store.range(b("k"), undefined).kvs[0]!), ["k", 6, 6, 1, "4"]);
    // Two puts in one transaction: versions 2 and 3 at the same revision.
    store.update((batch) =>
      batch.txn((txn) => {
        txn.put(b("k"), b("5"));
        txn.put(b("k"), b("6"));
      }),
    );
    assert.deepEqual(tuple(store.range(b("k"), undefined).kvs[0]!), ["k", 6, 7, 3, "6"]);
  });

  it("stores the lease in the KeyValue", () => {
    const store = openMvccStore(openMemoryBackend());
    put(store, "k", "v", 0x1234_5678_9abc_def0n);
    assert.equal(store.range(b("k"), undefined).kvs[0]!.lease, 0x1234_5678_9abc_def0n);
  });
});

describe("MvccStore: range", () => {
  function abc(): MvccStore {
    const store = openMvccStore(openMemoryBackend());
    for (const k of ["a", "b", "c", "ca", "d"]) put(store, k, k); // 2..6
    return store;
  }

  it("reads a single key, [key, end), or from key with end \\0", () => {
    const store = abc();
    assert.deepEqual(keys(store, "c"), ["c"]);
    assert.deepEqual(keys(store, "c", new Uint8Array(0)), ["c"]);
    assert.deepEqual(keys(store, "b", "d"), ["b", "c", "ca"]);
    assert.deepEqual(keys(store, "c", FROM_KEY), ["c", "ca", "d"]);
    assert.deepEqual(keys(store, "\0", FROM_KEY), ["a", "b", "c", "ca", "d"]);
    assert.deepEqual(keys(store, "d", "a"), []);
    assert.deepEqual(keys(store, "x"), []);
  });

  it("answers a large range in key order whatever order its keys were written in", () => {
    const store = openMvccStore(openMemoryBackend());
    const names = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(3, "0")}`);
    // Written in a scrambled order, some twice: revision order and key order disagree.
    for (let i = 0; i < names.length; i++) put(store, names[(i * 7) % names.length]!, `v1-${i}`);
    for (let i = 0; i < names.length; i += 3) put(store, names[i]!, `v2-${i}`);
    const result = store.range(b("k"), b("l"));
    assert.deepEqual(
      result.kvs.map((kv) => str(kv.key)),
      names,
    );
    for (const kv of result.kvs) {
      const i = Number(str(kv.key).slice(1));
      // Key i was first written at step i × 7⁻¹ mod 300, and 7 × 43 = 301.
      assert.equal(str(kv.value), i % 3 === 0 ? `v2-${i}` : `v1-${(i * 43) % 300}`);
    }
    assert.equal(result.count, 300);
  });

  it("reads a range in steps as range reads it, while writes and a compaction come between the steps", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    for (let i = 0; i < 100; i++) put(store, `k${String(i).padStart(2, "0")}`, `v${i}`);
    const before = store.range(b("k"), b("l"));
    const small = store.rangeInSteps(b("k"), b("l"), { limit: 5 }, 10);
    assert.ok(!(small instanceof Promise), "a range within one step is answered at once");
    assert.deepEqual(small.kvs.map(tuple), before.kvs.slice(0, 5).map(tuple));

    const stepped = store.rangeInSteps(b("k"), b("l"), undefined, 7);
    assert.ok(stepped instanceof Promise);
    // Between the steps: every key overwritten, some deleted, new ones, and a compaction that would
    // remove every row the range still has to read.
    for (let i = 0; i < 100; i += 2) put(store, `k${String(i).padStart(2, "0")}`, "new");
    del(store, "k5", "k6");
    put(store, "k-extra", "x");
    let compacted = false;
    const compaction = store.update((batch) => batch.compact(store.currentRevision())).result.then(() => (compacted = true));
    const result = await stepped;
    assert.equal(compacted, false, "physical compaction waited for the range");
    assert.equal(rows(backend).length, 100 + 50 + 10 + 1, "no row deleted yet");
    assert.deepEqual(result.kvs.map(tuple), before.kvs.map(tuple));
    assert.equal(result.count, 100);
    assert.equal(result.rev, before.rev);
    await compaction;
    assert.ok(rows(backend).length <= 100 + 1, "the compaction went on after the range");

    assert.throws(
      () => store.rangeInSteps(b("k"), b("l"), { rev: before.rev }),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.throws(
      () => store.rangeInSteps(b("k"), b("l"), { rev: 10_000 }),
      (e) => isMvccError(e, "FutureRev"),
    );
  });

  it("limits, counts all, and counts only", () => {
    const store = abc();
    const limited = store.range(b("a"), FROM_KEY, { limit: 2 });
    assert.deepEqual(
      limited.kvs.map((kv) => str(kv.key)),
      ["a", "b"],
    );
    assert.equal(limited.count, 5);
    assert.equal(limited.rev, 6);
    const counted = store.range(b("b"), b("d"), { countOnly: true });
    assert.deepEqual(counted.kvs, []);
    assert.equal(counted.count, 3);
    assert.equal(store.range(b("c"), undefined, { countOnly: true }).count, 1);
  });

  it("reads at any revision not compacted", () => {
    const store = abc();
    put(store, "b", "b2"); // 7
    del(store, "c"); // 8
    assert.deepEqual(keys(store, "a", FROM_KEY), ["a", "b", "ca", "d"]);
    assert.deepEqual(keys(store, "a", FROM_KEY, 7), ["a", "b", "c", "ca", "d"]);
    assert.deepEqual(keys(store, "a", FROM_KEY, 3), ["a", "b"]);
    assert.equal(str(store.range(b("b"), undefined, { rev: 6 }).kvs[0]!.value), "b");
    const old = store.range(b("a"), FROM_KEY, { rev: 4 });
    assert.equal(old.rev, 8); // the header revision is the current one
    assert.throws(
      () => store.range(b("a"), undefined, { rev: 9 }),
      (e) => isMvccError(e, "FutureRev"),
    );
  });

  it("reads through a transaction see its earlier writes", () => {
    const store = abc();
    store.update((batch) =>
      batch.txn((txn) => {
        assert.equal(txn.rev, 6);
        txn.put(b("e"), b("e"));
        assert.equal(txn.rev, 7);
        assert.deepEqual(txn.range(b("d"), FROM_KEY).kvs.map(tuple), [
          ["d", 6, 6, 1, "d"],
          ["e", 7, 7, 1, "e"],
        ]);
        txn.deleteRange(b("a"), b("c"));
        assert.deepEqual(
          txn.range(b("a"), FROM_KEY).kvs.map((kv) => str(kv.key)),
          ["c", "ca", "d", "e"],
        );
        // Outside readers see nothing until the batch returns (there are none: the store is single-threaded).
      }),
    );
    assert.deepEqual(keys(store, "a", FROM_KEY), ["c", "ca", "d", "e"]);
  });
});

describe("MvccStore: on-disk format", () => {
  it("writes etcd's rows: revision keys, marshaled KeyValues, tombstones with only the key", () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    put(store, "foo", "bar", 7n);
    del(store, "foo");
    store.update((batch) => batch.setConsistentIndex(42));
    const stored = backend.view((tx) => [...tx.range(KEY_BUCKET)]);
    assert.equal(stored.length, 2);
    assert.equal(Buffer.from(stored[0]!.key).toString("hex"), "0000000000000002" + "5f" + "0000000000000000");
    assert.deepEqual(tuple(fromBinary(KeyValueSchema, stored[0]!.value)), ["foo", 2, 2, 1, "bar"]);
    assert.equal(fromBinary(KeyValueSchema, stored[0]!.value).lease, 7n);
    assert.equal(Buffer.from(stored[1]!.key).toString("hex"), "0000000000000003" + "5f" + "0000000000000000" + "74");
    assert.deepEqual(tuple(fromBinary(KeyValueSchema, stored[1]!.value)), ["foo", 0, 0, 0, ""]);
    const ci = backend.view((tx) => tx.get(META_BUCKET, CONSISTENT_INDEX_KEY));
    assert.equal(Buffer.from(ci!).toString("hex"), "000000000000002a");
  });
});

describe("MvccStore: restore", () => {
  it("rebuilds index, revision, compact revision and consistent index on open", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    put(store, "a", "1"); // 2
    put(store, "a", "2"); // 3
    put(store, "b", "1"); // 4
    del(store, "b"); // 5
    put(store, "b", "2"); // 6
    put(store, "c", "1"); // 7
    del(store, "c"); // 8
    await store.update((batch) => batch.setConsistentIndex(9)).durable;
    store.close();
    const reopened = openMvccStore(backend);
    assert.equal(reopened.currentRevision(), 8);
    assert.equal(reopened.consistentIndex(), 9);
    assert.deepEqual(reopened.range(b("a"), FROM_KEY).kvs.map(tuple), [
      ["a", 2, 3, 2, "2"],
      ["b", 6, 6, 1, "2"],
    ]);
    assert.deepEqual(keys(reopened, "a", FROM_KEY, 4), ["a", "b"]);
    assert.deepEqual(keys(reopened, "a", FROM_KEY, 7), ["a", "b", "c"]);
    put(reopened, "a", "3");
    assert.deepEqual(tuple(reopened.range(b("a"), undefined).kvs[0]!), ["a", 2, 9, 3, "3"]);
    assert.throws(
      () => store.range(b("a"), undefined),
      (e) => isMvccError(e, "Closed"),
    );
  });

  it("keeps the revision when compaction removed every row up to it", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    put(store, "a", "1"); // 2
    del(store, "a"); // 3
    await store.update((batch) => batch.compact(3)).result;
    assert.deepEqual(rows(backend), []);
    const reopened = openMvccStore(backend);
    assert.equal(reopened.currentRevision(), 3);
    assert.equal(reopened.compactRevision(), 3);
    assert.equal(put(reopened, "a", "2"), 4);
  });

  it("restores created revision and version from a value whose earlier rows were compacted", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    for (let i = 0; i < 5; i++) put(store, "k", String(i)); // 2..6
    await store.update((batch) => batch.compact(5)).result;
    assert.deepEqual(rows(backend), ["5.0", "6.0"]);
    const reopened = openMvccStore(backend);
    assert.deepEqual(tuple(reopened.range(b("k"), undefined, { rev: 5 }).kvs[0]!), ["k", 2, 5, 4, "3"]);
    put(reopened, "k", "x");
    assert.deepEqual(tuple(reopened.range(b("k"), undefined).kvs[0]!), ["k", 2, 7, 6, "x"]);
  });
});

describe("MvccStore: compaction", () => {
  it("compacts at 0 once on a new store, as etcd (whose compact revision starts at -1)", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    await store.update((batch) => batch.compact(0)).result;
    assert.equal(store.compactRevision(), 0);
    assert.throws(
      () => store.update((batch) => batch.compact(0)),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.equal(openMvccStore(backend).compactRevision(), 0);
    assert.equal(store.hashByRev(0).compactRevision, 0);
    assert.equal(openMvccStore(openMemoryBackend()).hashByRev(0).compactRevision, -1);
  });

  it("fails below/at the compact revision and above the current one, changing nothing", () => {
    const store = openMvccStore(openMemoryBackend());
    put(store, "a", "1");
    put(store, "a", "2"); // 3
    assert.throws(
      () => store.update((batch) => batch.compact(4)),
      (e) => isMvccError(e, "FutureRev"),
    );
    void store.update((batch) => batch.compact(2)).result;
    assert.throws(
      () => store.update((batch) => batch.compact(2)),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.throws(
      () => store.update((batch) => batch.compact(1)),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.equal(store.compactRevision(), 2);
    // The store is still usable: those failures changed nothing.
    assert.equal(put(store, "a", "3"), 4);
  });

  it("makes older revisions unreadable at once and deletes their rows in batches", async () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend, { compactionBatchLimit: 3 });
    for (let i = 0; i < 10; i++) put(store, "k", String(i)); // 2..11
    put(store, "gone", "x"); // 12
    del(store, "gone"); // 13
    put(store, "live", "x"); // 14
    const physical = store.update((batch) => batch.compact(12)).result;
    assert.throws(
      () => store.range(b("k"), undefined, { rev: 11 }),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.equal(str(store.range(b("k"), undefined, { rev: 12 }).kvs[0]!.value), "9");
    // Writes go on while the rows are being deleted.
    put(store, "k", "10"); // 15
    await physical;
    assert.deepEqual(rows(backend), ["11.0", "12.0", "13.0t", "14.0", "15.0"]);
    assert.equal(
      Buffer.from(backend.view((tx) => tx.get(META_BUCKET, FINISHED_COMPACT_KEY))!).toString("hex"),
      "000000000000000c5f0000000000000000",
    );
    await store.update((batch) => batch.compact(13)).result;
    assert.deepEqual(rows(backend), ["11.0", "14.0", "15.0"]);
  });

  it("resumes an interrupted physical compaction when reopened", async () => {
    const backend = openMemoryBackend();
    const options: MvccStoreOptions = { compactionBatchLimit: 4, compactionPauseMs: 20 };
    const store = openMvccStore(backend, options);
    for (let i = 0; i < 20; i++) put(store, `k${i % 3}`, String(i)); // 2..21
    const physical = store.update((batch) => batch.compact(18)).result;
    physical.catch(() => {});
    // The first batch runs on the next macrotask; then the store "crashes".
    await new Promise((resolve) => setImmediate(resolve));
    store.close();
    await assert.rejects(physical, (e) => isMvccError(e, "Closed"));
    const partial = rows(backend);
    assert.ok(partial.length < 20 && partial.length > 6, `rows ${partial.length}`);
    assert.equal(
      backend.view((tx) => tx.get(META_BUCKET, FINISHED_COMPACT_KEY)),
      undefined,
    );

    const reopened = openMvccStore(backend, options);
    assert.equal(reopened.compactRevision(), 18);
    await reopened.compactionsDone();
    assert.deepEqual(rows(backend), ["16.0", "17.0", "18.0", "19.0", "20.0", "21.0"]);
    assert.ok(backend.view((tx) => tx.get(META_BUCKET, FINISHED_COMPACT_KEY)) !== undefined);
    assert.deepEqual(reopened.range(b("k"), b("l"), { rev: 18 }).kvs.map(tuple), [
      ["k0", 2, 17, 6, "15"],
      ["k1", 3, 18, 6, "16"],
      ["k2", 4, 16, 5, "14"],
    ]);
  });
});

describe("MvccStore: observers", () => {
  it("get each revision's events with kv and prev_kv after the batch applies", () => {
    const store = openMvccStore(openMemoryBackend());
    put(store, "a", "1"); // 2, before anyone observes
    const seen: { revision: number; events: readonly Event[]; visible: boolean }[] = [];
    const stop = store.addObserver((events, revision) => {
      seen.push({ revision, events, visible: store.currentRevision() >= revision });
    });
    store.update((batch) => {
      batch.txn((txn) => txn.put(b("a"), b("2")));
      batch.txn((txn) => txn.range(b("a"), undefined)); // no change, no event
      batch.txn((txn) => {
        txn.put(b("b"), b("1"));
        txn.deleteRange(b("a"), b("c"));
      });
      assert.equal(seen.length, 0);
    });
    assert.deepEqual(
      seen.map((s) => s.revision),
      [3, 4],
    );
    assert.ok(seen.every((s) => s.visible));
    const [first, second] = seen;
    assert.equal(first!.events.length, 1);
    assert.equal(first!.events[0]!.type, Event_EventType.PUT);
    assert.deepEqual(tuple(first!.events[0]!.kv!), ["a", 2, 3, 2, "2"]);
    assert.deepEqual(tuple(first!.events[0]!.prevKv!), ["a", 2, 2, 1, "1"]);
    assert.deepEqual(
      second!.events.map((e) => [e.type, tuple(e.kv!), e.prevKv === undefined ? undefined : tuple(e.prevKv)]),
      [
        [Event_EventType.PUT, ["b", 4, 4, 1, "1"], undefined],
        [Event_EventType.DELETE, ["a", 0, 4, 0, ""], ["a", 2, 3, 2, "2"]],
        [Event_EventType.DELETE, ["b", 0, 4, 0, ""], ["b", 4, 4, 1, "1"]],
      ],
    );
    stop();
    put(store, "c", "1");
    assert.equal(seen.length, 2);
  });
});

describe("MvccStore: failures", () => {
  it("rolls back a batch that throws before changing anything, and stays usable", () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    assert.throws(
      () =>
        store.update(() => {
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.equal(put(store, "a", "1"), 2);
  });

  it("fails for good when a batch throws after changing the index", () => {
    const store = openMvccStore(openMemoryBackend());
    assert.throws(
      () =>
        store.update((batch) => {
          batch.txn((txn) => txn.put(b("a"), b("1")));
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.throws(
      () => store.range(b("a"), undefined),
      (e) => isMvccError(e, "Failed"),
    );
  });
});

describe("MvccStore: scale", () => {
  it("handles 100k keys quickly (puts in batches, ranges, restore)", () => {
    const backend = openMemoryBackend();
    const store = openMvccStore(backend);
    const n = 100_000;
    const value = new Uint8Array(64).fill(0x61);
    const key = (i: number) => b(`key/${String((i * 7919) % n).padStart(6, "0")}`);
    let t = performance.now();
    for (let start = 0; start < n; start += 1000) {
      store.update((batch) => {
        for (let i = start; i < start + 1000; i++) batch.txn((txn) => txn.put(key(i), value));
      });
    }
    const putMs = performance.now() - t;
    assert.equal(store.currentRevision(), n + 1);
    t = performance.now();
    for (let i = 0; i < 10_000; i++) assert.equal(store.range(key(i), undefined).count, 1);
    const getMs = performance.now() - t;
    const all = store.range(b("key/"), b("key0"), { limit: 10 });
    assert.equal(all.count, n);
    assert.equal(str(all.kvs[0]!.key), "key/000000");
    t = performance.now();
    const reopened = openMvccStore(backend);
    const restoreMs = performance.now() - t;
    assert.equal(reopened.currentRevision(), n + 1);
    assert.equal(reopened.range(b("key/"), b("key0"), { countOnly: true }).count, n);
    // Generous bounds (CI machines vary); they catch O(n) work per request, not small regressions.
    assert.ok(putMs < 15_000, `puts took ${putMs} ms`);
    assert.ok(getMs < 3_000, `gets took ${getMs} ms`);
    assert.ok(restoreMs < 10_000, `restore took ${restoreMs} ms`);
    console.log(`100k puts ${putMs.toFixed(0)} ms, 10k gets ${getMs.toFixed(0)} ms, restore ${restoreMs.toFixed(0)} ms`);
  });
});

describe("MvccStore: history", () => {
  it("reads back exactly the events observers got, in whole revisions", async () => {
    const store = openMvccStore(openMemoryBackend());
    const observed: Event[][] = [];
    store.addObserver((events) => observed.push([...events]));
    put(store, "a", "1"); // 2
    store.update((batch) =>
      batch.txn((txn) => {
        txn.put(b("b"), b("1"));
        txn.put(b("a"), b("2"));
      }),
    ); // 3
    del(store, "a", "c"); // 4
    put(store, "a", "3"); // 5
    const all = store.history(2, 5, { prevKv: true });
    assert.equal(all.through, 5);
    assert.deepEqual(all.events, observed.flat());
    const noPrev = store.history(3, 4);
    assert.deepEqual(
      noPrev.events.map((e) => [e.type, tuple(e.kv!), e.prevKv]),
      [
        [Event_EventType.PUT, ["b", 3, 3, 1, "1"], undefined],
        [Event_EventType.PUT, ["a", 2, 3, 2, "2"], undefined],
        [Event_EventType.DELETE, ["a", 0, 4, 0, ""], undefined],
        [Event_EventType.DELETE, ["b", 0, 4, 0, ""], undefined],
      ],
    );
    // limit: whole revisions, stopping at the first boundary at or after the limit.
    const limited = store.history(2, 5, { limit: 2 });
    assert.equal(limited.through, 3);
    assert.equal(limited.events.length, 3);
    const one = store.history(3, 5, { limit: 1 });
    assert.equal(one.through, 3);
    assert.equal(one.events.length, 2);
    assert.deepEqual(store.history(5, 4), { events: [], through: 4 });
    await store.update((batch) => batch.compact(3)).result;
    assert.throws(
      () => store.history(2, 5),
      (e) => isMvccError(e, "Compacted"),
    );
    // At the compact revision itself only the rows compaction kept remain (as in etcd): here all of them.
    assert.equal(store.history(3, 5).events.length, 5);
  });
});

describe("MvccStore: lease attachments", () => {
  /** A lessor fake recording calls, with etcd's key → lease map. */
  function fakeLessor() {
    const keyLeases = new Map<string, bigint>();
    const calls: string[] = [];
    return {
      calls,
      keyLeases,
      leaseOf: (key: Uint8Array) => keyLeases.get(str(key)) ?? 0n,
      attach(id: bigint, keys: Iterable<Uint8Array>) {
        for (const k of keys) {
          calls.push(`attach ${id} ${str(k)}`);
          keyLeases.set(str(k), id);
        }
        return true;
      },
      detach(id: bigint, keys: Iterable<Uint8Array>) {
        for (const k of keys) {
          calls.push(`detach ${id} ${str(k)}`);
          if (keyLeases.get(str(k)) === id) keyLeases.delete(str(k));
        }
        return true;
      },
      attachOnRecovery(id: bigint, key: Uint8Array) {
        calls.push(`recover ${id} ${str(key)}`);
        keyLeases.set(str(key), id);
        return true;
      },
    };
  }

  it("keeps the lessor's key → lease map in step as etcd's mvcc does, and re-attaches on open", () => {
    const backend = openMemoryBackend();
    const lessor = fakeLessor();
    const store = openMvccStore(backend, { leases: lessor });
    put(store, "a", "1", 5n);
    put(store, "a", "2", 6n); // moves to lease 6
    put(store, "b", "1", 5n);
    put(store, "c", "1");
    put(store, "b", "2"); // drops its lease
    put(store, "d", "1", 6n);
    del(store, "d");
    put(store, "e", "1", 7n);
    put(store, "f", "1", 7n);
    del(store, "e", "g");
    assert.deepEqual(lessor.calls, [
      "attach 5 a",
      "detach 5 a",
      "attach 6 a",
      "attach 5 b",
      "detach 5 b",
      "attach 6 d",
      "detach 6 d",
      "attach 7 e",
      "attach 7 f",
      "detach 7 e",
      "detach 7 f",
    ]);
    assert.deepEqual([...lessor.keyLeases], [["a", 6n]]);

    put(store, "g", "1", 8n);
    const recovered = fakeLessor();
    openMvccStore(backend, { leases: recovered });
    assert.deepEqual(recovered.calls.sort(), ["recover 6 a", "recover 8 g"]);
  });
});

describe("MvccStore: hashByRev", () => {
  it("gives etcd 3.4.23's HashKV for the same history, before and after a compaction", async () => {
    // etcdctl put foo bar; put foo baz; put k1 v1; del foo; put k2 ""; put k1 v1b;
    // endpoint hashkv --rev 0 / 4 / 5; compaction 5; endpoint hashkv --rev 0 / 6
    const store = openMvccStore(openMemoryBackend());
    put(store, "foo", "bar");
    put(store, "foo", "baz");
    put(store, "k1", "v1");
    del(store, "foo");
    put(store, "k2", "");
    put(store, "k1", "v1b");
    assert.deepEqual(store.hashByRev(0), { hash: 1935167504, currentRevision: 7, compactRevision: -1 });
    assert.equal(store.hashByRev(4).hash, 2942447078);
    assert.equal(store.hashByRev(5).hash, 195518769);
    await store.update((batch) => batch.compact(5)).result;
    assert.deepEqual(store.hashByRev(0), { hash: 903437365, currentRevision: 7, compactRevision: 5 });
    assert.equal(store.hashByRev(6).hash, 4290977921);
    assert.throws(
      () => store.hashByRev(5),
      (e) => isMvccError(e, "Compacted"),
    );
    assert.throws(
      () => store.hashByRev(8),
      (e) => isMvccError(e, "FutureRev"),
    );
  });
});

describe("MvccStore: consistent index", () => {
  it("changes only when its batch applies", () => {
    const store = openMvccStore(openMemoryBackend());
    store.update((batch) => batch.setConsistentIndex(3));
    assert.equal(store.consistentIndex(), 3);
    assert.throws(() =>
      store.update((batch) => {
        batch.setConsistentIndex(4);
        throw new Error("boom");
      }),
    );
    assert.equal(store.consistentIndex(), 3);
    assert.equal(put(store, "a", "1"), 2); // still usable: nothing in memory had changed
  });
});

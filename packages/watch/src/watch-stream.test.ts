import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { WatchCreateRequest_FilterType, WatchRequestSchema, WatchResponseSchema } from "@etcd-ts/api";
import type { WatchRequest } from "@etcd-ts/api";
import { describeResponse } from "./testing/collect.js";
import { ManualScheduler } from "./testing/manual-scheduler.js";
import { MemoryWatchableKV } from "./testing/memory-kv.js";
import { WatchStream } from "./watch-stream.js";
import type { WatchStreamOptions } from "./watch-stream.js";
import { WatchableStore } from "./watchable-store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface CreateInit {
  key: string;
  end?: string;
  startRevision?: number;
  watchId?: number;
  prevKv?: boolean;
  progressNotify?: boolean;
  fragment?: boolean;
  filters?: WatchCreateRequest_FilterType[];
}

function createRequest(init: CreateInit): WatchRequest {
  return create(WatchRequestSchema, {
    requestUnion: {
      case: "createRequest",
      value: {
        key: enc(init.key),
        rangeEnd: init.end === undefined ? new Uint8Array(0) : init.end === "\0" ? new Uint8Array([0]) : enc(init.end),
        startRevision: BigInt(init.startRevision ?? 0),
        watchId: BigInt(init.watchId ?? 0),
        prevKv: init.prevKv ?? false,
        progressNotify: init.progressNotify ?? false,
        fragment: init.fragment ?? false,
        filters: init.filters ?? [],
      },
    },
  });
}

const cancelRequest = (watchId: number): WatchRequest =>
  create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: BigInt(watchId) } } });

const progressRequest = (): WatchRequest => create(WatchRequestSchema, { requestUnion: { case: "progressRequest", value: {} } });

function setup(options: Partial<Omit<WatchStreamOptions, "store" | "scheduler">> = {}) {
  const kv = new MemoryWatchableKV();
  const scheduler = new ManualScheduler();
  const store = new WatchableStore(kv, { scheduler });
  const stream = new WatchStream({ store, scheduler, ...options });
  const out = (): string[] => stream.takeAll().map(describeResponse);
  return { kv, scheduler, store, stream, out };
}

describe("WatchStream: create and cancel", () => {
  it("assigns watch IDs 0, 1, 2… and answers created at the current revision", () => {
    const { kv, stream, out } = setup();
    kv.put("x", "1");
    stream.handle(createRequest({ key: "a" }));
    stream.handle(createRequest({ key: "b" }));
    stream.handle(createRequest({ key: "c" }));
    assert.deepEqual(out(), ["id=0 rev=2 created", "id=1 rev=2 created", "id=2 rev=2 created"]);
    kv.put("b", "v");
    assert.deepEqual(out(), ["id=1 rev=3 [PUT b=v@3]"]);
  });

  it("takes client-chosen IDs, skips them when assigning, and refuses a duplicate as etcd does", () => {
    const { stream, out } = setup();
    stream.handle(createRequest({ key: "a", watchId: 1 }));
    stream.handle(createRequest({ key: "a" }));
    stream.handle(createRequest({ key: "a" }));
    stream.handle(createRequest({ key: "a", watchId: 1 }));
    stream.handle(createRequest({ key: "a", watchId: 7 }));
    assert.deepEqual(out(), [
      "id=1 rev=1 created",
      "id=0 rev=1 created",
      "id=2 rev=1 created",
      "id=-1 rev=1 created canceled reason=mvcc: duplicate watch ID provided on the WatchStream",
      "id=7 rev=1 created",
    ]);
    assert.equal(stream.watchCount, 4);
  });

  it("refuses a create beyond the stream's watcher limit as it refuses any create; a cancel makes room", () => {
    const { kv, stream, out } = setup({ maxWatchers: 2 });
    stream.handle(createRequest({ key: "a" }));
    stream.handle(createRequest({ key: "b", watchId: 5 }));
    stream.handle(createRequest({ key: "c" }));
    assert.deepEqual(out(), [
      "id=0 rev=1 created",
      "id=5 rev=1 created",
      "id=-1 rev=1 created canceled reason=etcdserver: too many watchers on this watch stream",
    ]);
    assert.equal(stream.watchCount, 2);
    stream.handle(cancelRequest(5));
    stream.handle(createRequest({ key: "c" }));
    kv.put("c", "1");
    assert.deepEqual(out(), ["id=5 rev=1 canceled", "id=1 rev=1 created", "id=1 rev=2 [PUT c=1@2]"]);
  });

  it("refuses an empty range with etcd's reason", () => {
    const { stream, out } = setup();
    stream.handle(createRequest({ key: "b", end: "a" }));
    assert.deepEqual(out(), ["id=-1 rev=1 created canceled reason=mvcc: watcher range is empty"]);
  });

  it("cancels at any time; an unknown ID gets no answer; the ID can be used again", () => {
    const { kv, store, stream, out } = setup();
    stream.handle(createRequest({ key: "a" }));
    kv.put("a", "1");
    stream.handle(cancelRequest(0));
    stream.handle(cancelRequest(0));
    stream.handle(cancelRequest(42));
    kv.put("a", "2");
    assert.deepEqual(out(), ["id=0 rev=1 created", "id=0 rev=2 [PUT a=1@2]", "id=0 rev=2 canceled"]);
    assert.deepEqual(store.stats(), { synced: 0, unsynced: 0, victims: 0 });
    stream.handle(createRequest({ key: "a", watchId: 0 }));
    assert.deepEqual(out(), ["id=1 rev=3 created"]);
  });

  it("calls authorize on create: false → permission denied, an Error → its message", () => {
    const seen: string[] = [];
    const { stream, out } = setup({
      authorize: (key, end) => {
        const k = new TextDecoder().decode(key);
        seen.push(`${k}:${end.length === 1 && end[0] === 0 ? "\\0" : new TextDecoder().decode(end)}`);
        if (k === "secret") return false;
        if (k === "expired") return new Error("etcdserver: invalid auth token");
        if (k === "boom") throw new Error("etcdserver: user name is empty");
        return true;
      },
    });
    stream.handle(createRequest({ key: "secret" }));
    stream.handle(createRequest({ key: "expired" }));
    stream.handle(createRequest({ key: "boom" }));
    stream.handle(createRequest({ key: "ok", end: "\0" }));
    stream.handle(createRequest({ key: "", end: "\0" }));
    assert.deepEqual(out(), [
      "id=-1 rev=1 created canceled reason=etcdserver: permission denied",
      "id=-1 rev=1 created canceled reason=etcdserver: invalid auth token",
      "id=-1 rev=1 created canceled reason=etcdserver: user name is empty",
      "id=0 rev=1 created",
      "id=1 rev=1 created",
    ]);
    assert.deepEqual(seen, ["secret:", "expired:", "boom:", "ok:\\0", "\0:\\0"]);
  });

  it("many watchers on one stream each get their own events, one response per revision each", () => {
    const { kv, stream, out } = setup();
    for (let i = 0; i < 50; i++) stream.handle(createRequest({ key: `k${i % 5}`, prevKv: i % 2 === 0 }));
    out();
    kv.txn((t) => {
      t.put("k1", "a");
      t.put("k3", "b");
      t.put("k1", "c");
    });
    const responses = stream.takeAll();
    assert.equal(responses.length, 20);
    for (const r of responses) {
      const key = Number(r.watchId) % 5;
      assert.ok(key === 1 || key === 3);
      assert.equal(r.header?.revision, 2n);
      assert.equal(r.events.length, key === 1 ? 2 : 1);
    }
  });

  it("sends filters, prevKv and history through to the client", () => {
    const { kv, scheduler, stream, out } = setup();
    kv.put("a", "1");
    kv.put("a", "2");
    kv.delete("a");
    stream.handle(createRequest({ key: "a", startRevision: 2, prevKv: true, filters: [WatchCreateRequest_FilterType.NOPUT] }));
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    scheduler.advance(100);
    assert.deepEqual(out(), [
      "id=0 rev=4 created",
      "id=1 rev=4 created",
      "id=0 rev=4 [DELETE a@4 prev=2]",
      "id=1 rev=4 [PUT a=1@2, PUT a=2@3, DELETE a@4]",
    ]);
  });

  it("a compacted start revision: compact_revision set, canceled, header revision 0 (as etcd)", () => {
    const { kv, scheduler, stream, out } = setup();
    for (let i = 0; i < 5; i++) kv.put("a", String(i));
    kv.compact(4);
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    scheduler.advance(100);
    assert.deepEqual(out(), ["id=0 rev=6 created", "id=0 rev=0 canceled compact=4"]);
    kv.put("a", "x");
    assert.deepEqual(out(), []);
  });

  it("close() frees every watcher and stops the timers", () => {
    const { kv, scheduler, store, stream } = setup();
    kv.put("a", "1");
    stream.handle(createRequest({ key: "a", progressNotify: true }));
    stream.handle(createRequest({ key: "a", startRevision: 1 }));
    stream.close();
    assert.equal(stream.pending, 0);
    assert.deepEqual(store.stats(), { synced: 0, unsynced: 0, victims: 0 });
    kv.put("a", "2");
    scheduler.advance(3_600_000);
    assert.equal(stream.pending, 0);
    stream.handle(createRequest({ key: "a" }));
    assert.equal(stream.pending, 0);
  });

  it("tells the server in a microtask that responses are waiting", async () => {
    const { kv, stream } = setup();
    let calls = 0;
    stream.onReadable(() => calls++);
    stream.handle(createRequest({ key: "a" }));
    kv.put("a", "1");
    assert.equal(calls, 0);
    await Promise.resolve();
    assert.equal(calls, 1);
    assert.equal(stream.takeAll().length, 2);
  });
});

describe("WatchStream: progress", () => {
  it("progress_notify: idle watchers get a progress response each interval; busy ones do not", () => {
    const { kv, scheduler, stream, out } = setup({ progressNotifyIntervalMs: 1000 });
    stream.handle(createRequest({ key: "a", progressNotify: true }));
    stream.handle(createRequest({ key: "b", progressNotify: true }));
    stream.handle(createRequest({ key: "c" }));
    out();
    scheduler.advance(1000);
    assert.deepEqual(out(), ["id=0 rev=1", "id=1 rev=1"]);
    kv.put("a", "1");
    scheduler.advance(1000);
    assert.deepEqual(out(), ["id=0 rev=2 [PUT a=1@2]", "id=1 rev=2"]);
    scheduler.advance(1000);
    assert.deepEqual(out(), ["id=0 rev=2", "id=1 rev=2"]);
    stream.handle(cancelRequest(0));
    stream.handle(cancelRequest(1));
    out();
    scheduler.advance(5000);
    assert.deepEqual(out(), []);
    assert.equal(scheduler.pendingTasks, 0);
  });

  it("progress request: watch ID -1 at the current revision at once when all watchers are synced", () => {
    const { kv, stream, out } = setup();
    kv.put("a", "1");
    stream.handle(progressRequest());
    stream.handle(createRequest({ key: "a" }));
    stream.handle(progressRequest());
    assert.deepEqual(out(), ["id=-1 rev=2", "id=0 rev=2 created", "id=-1 rev=2"]);
  });

  it("progress request: waits until every watcher has caught up, and follows their events", () => {
    const { kv, scheduler, stream, out } = setup();
    kv.put("a", "1");
    kv.put("a", "2");
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    stream.handle(progressRequest());
    assert.deepEqual(out(), ["id=0 rev=3 created"]);
    kv.put("a", "3");
    scheduler.advance(100);
    assert.deepEqual(out(), ["id=0 rev=4 [PUT a=1@2, PUT a=2@3, PUT a=3@4]", "id=-1 rev=4"]);
  });
});

describe("WatchStream: etcd 3.4.23 details (checked against a real etcd)", () => {
  it("a compacted watcher keeps its ID until canceled: reusing it is a duplicate, canceling it answers", () => {
    const { kv, scheduler, stream, out } = setup();
    for (let i = 0; i < 3; i++) kv.put("a", String(i));
    kv.compact(3);
    stream.handle(createRequest({ key: "a", watchId: 7, startRevision: 2 }));
    scheduler.advance(100);
    stream.handle(createRequest({ key: "a", watchId: 7 }));
    stream.handle(cancelRequest(7));
    stream.handle(createRequest({ key: "a", watchId: 7 }));
    assert.deepEqual(out(), [
      "id=7 rev=4 created",
      "id=7 rev=0 canceled compact=3",
      "id=-1 rev=4 created canceled reason=mvcc: duplicate watch ID provided on the WatchStream",
      "id=7 rev=4 canceled",
      "id=7 rev=4 created",
    ]);
  });

  it("accepts negative client-chosen IDs; ignores an empty request; an empty key with \\0 watches everything", () => {
    const { kv, stream, out } = setup();
    stream.handle(createRequest({ key: "a", watchId: -5 }));
    stream.handle(create(WatchRequestSchema, {}));
    stream.handle(createRequest({ key: "", end: "\0" }));
    kv.put("\u0001", "low");
    assert.deepEqual(out(), ["id=-5 rev=1 created", "id=0 rev=1 created", "id=0 rev=2 [PUT \u0001=low@2]"]);
  });

  it("a future start revision is created at once and reports from that revision", () => {
    const { kv, stream, out } = setup();
    stream.handle(createRequest({ key: "a", startRevision: 3 }));
    kv.put("a", "1");
    kv.put("a", "2");
    assert.deepEqual(out(), ["id=0 rev=1 created", "id=0 rev=3 [PUT a=2@3]"]);
  });

  it("immediateProgressRequests answers at once, before the history catch-up (3.4.23)", () => {
    const { kv, scheduler, stream, out } = setup({ immediateProgressRequests: true });
    kv.put("a", "1");
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    stream.handle(progressRequest());
    scheduler.advance(100);
    assert.deepEqual(out(), ["id=0 rev=2 created", "id=-1 rev=2", "id=0 rev=2 [PUT a=1@2]"]);
  });

  it("a pending progress request is answered when the last watcher behind is canceled or compacted", () => {
    const { kv, scheduler, stream, out } = setup();
    for (let i = 0; i < 3; i++) kv.put("a", String(i));
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    stream.handle(progressRequest());
    stream.handle(cancelRequest(0));
    assert.deepEqual(out(), ["id=0 rev=4 created", "id=0 rev=4 canceled", "id=-1 rev=4"]);
    kv.compact(3);
    stream.handle(createRequest({ key: "a", startRevision: 2 }));
    stream.handle(progressRequest());
    scheduler.advance(100);
    assert.deepEqual(out(), ["id=1 rev=4 created", "id=1 rev=0 canceled compact=3", "id=-1 rev=4"]);
  });
});

describe("WatchStream: fragment", () => {
  it("splits a large response of a fragment watcher; others get it whole", () => {
    const { kv, scheduler, stream } = setup({ maxResponseBytes: 1000 });
    const big = "x".repeat(300);
    kv.txn((t) => {
      for (let i = 0; i < 10; i++) t.put(`k${i}`, big);
    });
    stream.handle(createRequest({ key: "k", end: "l", startRevision: 1, fragment: true }));
    stream.handle(createRequest({ key: "k", end: "l", startRevision: 1 }));
    scheduler.advance(100);
    const responses = stream.takeAll().filter((r) => !r.created);
    const fragmented = responses.filter((r) => r.watchId === 0n);
    const whole = responses.filter((r) => r.watchId === 1n);
    assert.equal(whole.length, 1);
    assert.equal(whole[0]!.events.length, 10);
    assert.ok(fragmented.length > 1);
    assert.deepEqual(
      fragmented.map((r) => r.fragment),
      fragmented.map((_, i) => i < fragmented.length - 1),
    );
    assert.deepEqual(
      fragmented.flatMap((r) => r.events.map((e) => new TextDecoder().decode(e.kv!.key))),
      whole[0]!.events.map((e) => new TextDecoder().decode(e.kv!.key)),
    );
    for (const r of fragmented) {
      assert.ok(toBinary(WatchResponseSchema, r).length < 1000 || r.events.length === 1);
      assert.equal(r.header?.revision, 2n);
    }
  });

  it("does not split a response below the limit or with one event", () => {
    const { kv, stream } = setup({ maxResponseBytes: 100 });
    stream.handle(createRequest({ key: "k", fragment: true }));
    kv.put("k", "y".repeat(500));
    const responses = stream.takeAll();
    assert.deepEqual(
      responses.map((r) => [r.events.length, r.fragment]),
      [
        [0, false],
        [1, false],
      ],
    );
  });
});

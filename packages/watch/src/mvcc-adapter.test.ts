import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "@etcd-ts/api";
import type { WatchRequest } from "@etcd-ts/api";
import { openMvccStore } from "@etcd-ts/mvcc";
import type { MvccStore } from "@etcd-ts/mvcc";
import { openMemoryBackend } from "@etcd-ts/storage";
import { watchableKVFromMvcc } from "./mvcc-adapter.js";
import { describeResponse } from "./testing/collect.js";
import { ManualScheduler } from "./testing/manual-scheduler.js";
import { WatchStream } from "./watch-stream.js";
import { WatchableStore } from "./watchable-store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function watchRequest(key: string, end: string, startRevision: number, prevKv = false): WatchRequest {
  return create(WatchRequestSchema, {
    requestUnion: {
      case: "createRequest",
      value: { key: enc(key), rangeEnd: enc(end), startRevision: BigInt(startRevision), prevKv },
    },
  });
}

function put(store: MvccStore, key: string, value: string): void {
  store.update((batch) => batch.txn((txn) => txn.put(enc(key), enc(value))));
}

describe("watchableKVFromMvcc over the real MvccStore", () => {
  it("history then live through the real store: same events, no gap, no duplicate", async () => {
    const mvcc = openMvccStore(openMemoryBackend());
    const scheduler = new ManualScheduler();
    const store = new WatchableStore(watchableKVFromMvcc(mvcc), { scheduler });
    const stream = new WatchStream({ store, scheduler });
    put(mvcc, "a", "1"); // 2
    put(mvcc, "b", "1"); // 3
    stream.handle(watchRequest("a", "c", 2, true)); // history from 2
    stream.handle(watchRequest("a", "c", 0)); // live only
    mvcc.update((batch) => {
      batch.txn((txn) => {
        txn.put(enc("a"), enc("2"));
        txn.deleteRange(enc("b"), undefined);
      }); // 4
      batch.txn((txn) => txn.put(enc("z"), enc("ignored"))); // 5
    });
    scheduler.advance(100);
    put(mvcc, "b", "2"); // 6
    assert.deepEqual(stream.takeAll().map(describeResponse), [
      "id=0 rev=3 created",
      "id=1 rev=3 created",
      "id=1 rev=4 [PUT a=2@4, DELETE b@4]",
      "id=0 rev=5 [PUT a=1@2, PUT b=1@3, PUT a=2@4 prev=1, DELETE b@4 prev=1]",
      "id=1 rev=6 [PUT b=2@6]",
      "id=0 rev=6 [PUT b=2@6]",
    ]);

    await mvcc.update((batch) => batch.compact(5)).result;
    stream.handle(watchRequest("a", "c", 3));
    scheduler.advance(100);
    assert.deepEqual(stream.takeAll().map(describeResponse), ["id=2 rev=6 created", "id=2 rev=0 canceled compact=5"]);
    stream.close();
    store.close();
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "@etcd-ts/api";
import type { Event } from "@etcd-ts/api";
import { describeEvent } from "./testing/collect.js";
import { ManualScheduler } from "./testing/manual-scheduler.js";
import { MemoryWatchableKV } from "./testing/memory-kv.js";
import { WatchStream } from "./watch-stream.js";
import { WatchableStore } from "./watchable-store.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

interface ModelWatch {
  readonly key: string;
  /** undefined: single key; "\0": from key; else the range end. */
  readonly end: string | undefined;
  readonly from: number;
  canceled: boolean;
  created: boolean;
  readonly got: string[];
}

function inRange(w: ModelWatch, key: string): boolean {
  if (w.end === undefined) return key === w.key;
  if (key < w.key) return false;
  return w.end === "\0" || key < w.end;
}

/**
 * A random walk over writes, creates (past, present and future start revisions), cancels, a reader that
 * takes a few responses at a time or stalls, and time passing — with a tiny stream buffer, so watchers
 * keep moving between synced, victim and unsynced. Whatever happened, each watch must end with exactly
 * its range's history from its start revision: every event once, in order (a canceled one, a prefix).
 */
describe("model: random writes, watches, cancels and a stalling reader", () => {
  for (const seedStart of [1, 2, 3, 4, 5]) {
    it(`seed ${seedStart}`, () => {
      const kv = new MemoryWatchableKV();
      const scheduler = new ManualScheduler();
      const store = new WatchableStore(kv, { scheduler, maxWatchersPerSync: 4, maxEventsPerSync: 5 });
      const stream = new WatchStream({ store, scheduler, maxPendingResponses: 4 });
      let seed = seedStart * 7919;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const keys = ["a", "ab", "b", "ba", "c"];
      const watches = new Map<bigint, ModelWatch>();
      const pendingCreates: ModelWatch[] = [];
      const read = (n: number): void => {
        for (let i = 0; i < n; i++) {
          const r = stream.take();
          if (r === undefined) return;
          if (r.created) {
            const w = pendingCreates.shift()!;
            assert.equal(r.canceled, false);
            w.created = true;
            watches.set(r.watchId, w);
            continue;
          }
          if (r.watchId === -1n) continue;
          const w = watches.get(r.watchId);
          assert.ok(w !== undefined, `response for unknown watch ${r.watchId}`);
          if (r.canceled) continue;
          w.got.push(...r.events.map((e: Event) => describeEvent(e)));
        }
      };
      let sawVictims = 0;
      let sawUnsynced = 0;
      for (let step = 0; step < 1500; step++) {
        const stats = store.stats();
        if (stats.victims > 0) sawVictims++;
        if (stats.unsynced > 0) sawUnsynced++;
        const op = rand(100);
        if (op < 40) {
          kv.txn((t) => {
            const n = 1 + rand(3);
            for (let i = 0; i < n; i++) {
              const k = keys[rand(keys.length)]!;
              if (rand(5) === 0) t.delete(k, rand(2) === 0 ? undefined : "\0");
              else t.put(k, `${step}.${i}`);
            }
          });
        } else if (op < 50) {
          const key = keys[rand(keys.length)]!;
          const endChoice = rand(3);
          const end = endChoice === 0 ? undefined : endChoice === 1 ? "\0" : `${key}z`;
          const startChoice = rand(3);
          const cur = kv.currentRevision();
          const startRevision = startChoice === 0 ? 0 : startChoice === 1 ? Math.max(1, cur - rand(30)) : cur + 1 + rand(3);
          pendingCreates.push({ key, end, from: startRevision === 0 ? cur + 1 : startRevision, canceled: false, created: false, got: [] });
          stream.handle(
            create(WatchRequestSchema, {
              requestUnion: {
                case: "createRequest",
                value: {
                  key: enc(key),
                  rangeEnd: end === undefined ? new Uint8Array(0) : end === "\0" ? new Uint8Array([0]) : enc(end),
                  startRevision: BigInt(startRevision),
                },
              },
            }),
          );
        } else if (op < 53 && watches.size > 0) {
          const live = [...watches.entries()].filter(([, w]) => !w.canceled);
          if (live.length > 0) {
            const [id, w] = live[rand(live.length)]!;
            w.canceled = true;
            stream.handle(create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: id } } }));
          }
        } else if (op < 75) {
          read(rand(4));
        } else if (op < 77) {
          stream.handle(create(WatchRequestSchema, { requestUnion: { case: "progressRequest", value: {} } }));
        } else {
          scheduler.advance(rand(4) * 10);
        }
      }
      // The reader catches up.
      for (let round = 0; round < 10_000; round++) {
        read(Infinity);
        const s = store.stats();
        if (s.unsynced === 0 && s.victims === 0 && stream.pending === 0) break;
        scheduler.advance(10);
      }
      assert.equal(store.stats().unsynced, 0);
      assert.equal(store.stats().victims, 0);
      // The walk did exercise every path.
      assert.ok(sawVictims > 50 && sawUnsynced > 50, `victims in ${sawVictims} steps, unsynced in ${sawUnsynced}`);
      const history = kv.history(1, kv.currentRevision()).events;
      let compared = 0;
      for (const w of watches.values()) {
        const want = history.filter((e) => Number(e.kv!.modRevision) >= w.from && inRange(w, dec(e.kv!.key))).map((e) => describeEvent(e));
        if (w.canceled) assert.deepEqual(w.got, want.slice(0, w.got.length));
        else assert.deepEqual(w.got, want);
        if (want.length > 0) compared++;
      }
      assert.ok(compared > 20, `compared ${compared} watches`);
    });
  }
});

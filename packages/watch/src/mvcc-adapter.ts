import type { MvccStore } from "@etcd-ts/mvcc";
import type { HistoryOptions, HistoryResult, WatchableKV } from "./watchable-kv.js";

/**
 * What `watchableKVFromMvcc` needs of `@etcd-ts/mvcc`'s `MvccStore`: its revision accessors and observer
 * as they are, plus `history(fromRev, toRev, options)` with exactly the contract of
 * `WatchableKV.history` (see `watchable-kv.ts`): the PUT/DELETE events of the revisions in
 * `[fromRev, toRev]` read from the `key` bucket in revision order, shaped as the observer's events
 * (DELETE: key + mod_revision), `prevKv` only when `options.prevKv`, whole revisions with `limit` as a
 * soft bound on events, `through` the last revision fully returned, and `MvccError("Compacted")` when
 * `fromRev < compactRevision()`.
 */
export type MvccHistorySource = Pick<MvccStore, "currentRevision" | "compactRevision" | "addObserver"> & {
  history(fromRev: number, toRev: number, options?: HistoryOptions): HistoryResult;
};

// Compile-time check: the MVCC store has the shape this adapter needs.
((store: MvccStore): MvccHistorySource => store) satisfies unknown;

/** Adapts the MVCC store to the watch package's `WatchableKV`. */
export function watchableKVFromMvcc(store: MvccHistorySource): WatchableKV {
  return {
    currentRevision: () => store.currentRevision(),
    compactRevision: () => store.compactRevision(),
    subscribe: (observer) => store.addObserver(observer),
    history: (fromRev, toRev, options) => store.history(fromRev, toRev, options),
  };
}

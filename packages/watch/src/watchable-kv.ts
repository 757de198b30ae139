import type { Event } from "@etcd-ts/api";
import type { HistoryOptions, HistoryResult } from "@etcd-ts/mvcc";

export type { HistoryOptions, HistoryResult };

/**
 * Receives the events of one revision, after the write transaction that made them has been applied
 * (visible to reads), in revision order: every revision that changed something is reported exactly once,
 * with all its events together in the order the transaction made them. Events carry `kv` (for a DELETE
 * only `key` and `modRevision`, as etcd) and `prevKv` (the key's state before the change, when it
 * existed). The observer must not throw, must not write to the store, and must not keep or modify the
 * arrays or events beyond reading them (they may be shared with other observers).
 */
export type RevisionObserver = (events: readonly Event[], revision: number) => void;

/**
 * What the watch package needs from the MVCC store (etcd's WatchableKV, reduced to the watch side).
 * Declared here, not imported, so that watch depends on a narrow contract (only the history read's
 * options and result are the store's own types); `mvcc-adapter.ts` adapts `@etcd-ts/mvcc`'s `MvccStore`
 * to it and `testing/memory-kv.ts` is an in-memory fake of it.
 *
 * Single-threaded contract: every method is synchronous, and between a write transaction's apply and the
 * observers' call nothing else runs, so `currentRevision()` read outside an observer call always equals
 * the last revision the observers were given.
 */
export interface WatchableKV {
  /** The newest revision (1 for an empty store, as etcd). */
  currentRevision(): number;
  /** History below this revision is gone: `history(fromRev < compactRevision(), …)` throws. */
  compactRevision(): number;
  /** Subscribes to every revision's events (see `RevisionObserver`); returns the unsubscribe function. */
  subscribe(observer: RevisionObserver): () => void;
  /**
   * The events of the revisions in `[fromRev, toRev]` (both inclusive), read from the store's history.
   * Requires `compactRevision() <= fromRev` and `toRev <= currentRevision()`; throws the store's
   * `Compacted` error when `fromRev` is below the compact revision (callers check `compactRevision()`
   * first and do not depend on the error's type). `fromRev > toRev` returns no events and
   * `through = toRev`.
   */
  history(fromRev: number, toRev: number, options?: HistoryOptions): HistoryResult;
}

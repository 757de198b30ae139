/**
 * @etcd-ts/watch — etcd's watch machinery: a `WatchableStore` of watchers over a narrow `WatchableKV`
 * (synced watchers fed from the write path, unsynced ones caught up from history, victims for slow
 * consumers) and `WatchStream`, the per-gRPC-stream state machine the server's Watch handler wraps.
 */
export {
  DEFAULT_MAX_EVENTS_PER_SYNC,
  DEFAULT_MAX_WATCHERS_PER_SYNC,
  DEFAULT_SYNC_INTERVAL_MS,
  DEFAULT_VICTIM_INTERVAL_MS,
  WatchableStore,
} from "./watchable-store.js";
export { WatchError, isWatchError } from "./errors.js";
export type { WatchErrorCode } from "./errors.js";
export type { WatchOptions, WatchableStoreOptions, WatchableStoreStats } from "./watchable-store.js";
export {
  CANCEL_REASONS,
  DEFAULT_MAX_PENDING_RESPONSES,
  DEFAULT_MAX_WATCHERS_PER_STREAM,
  DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS,
  INVALID_WATCH_ID,
  WatchStream,
} from "./watch-stream.js";
export type { WatchAuthorizer, WatchStreamOptions } from "./watch-stream.js";
export type { Watcher } from "./watcher.js";
export type { StoreWatchResponse, WatchConsumer, WatcherFilters, WatcherState } from "./watcher.js";
export type { HistoryOptions, HistoryResult, RevisionObserver, WatchableKV } from "./watchable-kv.js";
export { watchableKVFromMvcc } from "./mvcc-adapter.js";
export type { MvccHistorySource } from "./mvcc-adapter.js";
export { DEFAULT_MAX_RESPONSE_BYTES, fragmentResponse } from "./fragment.js";
export { timerScheduler } from "./scheduler.js";
export type { Scheduler } from "./scheduler.js";

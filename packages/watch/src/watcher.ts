import { Event_EventType, type Event } from "@etcd-ts/api";
import type { KeyRange } from "./key-range.js";
import { keyString } from "./key-range.js";

/**
 * What the store hands a watcher's consumer: the events of one or more whole revisions (live: exactly
 * one revision; catch-up: a run of revisions), a progress notification (no events, no compact
 * revision), or the news that the watcher's start revision was compacted (then the watcher is gone from
 * the store).
 */
export interface StoreWatchResponse {
  readonly watcher: Watcher;
  /** In revision order; after the watcher's filters; `prevKv` only if the watcher asked for it. */
  readonly events: readonly Event[];
  /** The store revision the response speaks for (etcd's WatchResponse.Revision; 0 for compacted). */
  readonly revision: number;
  /** Non-zero: the watcher's next revision was compacted away; no more responses follow. */
  readonly compactRevision: number;
}

/**
 * The receiving end of watchers — one per gRPC watch stream, shared by all its watchers, as etcd's
 * per-stream channel. The store never blocks on it: when `offer` refuses, the watcher falls behind
 * (becomes a victim) and is caught up from history once `ready` is true again.
 */
export interface WatchConsumer {
  /**
   * Takes a response, or returns false without taking it when the consumer's buffer is full. Called
   * synchronously from inside a write's observer call: must not call back into the store.
   */
  offer(response: StoreWatchResponse): boolean;
  /** Whether `offer` would take a response now. */
  readonly ready: boolean;
  /**
   * Called (from inside the store's sync) when the last of this consumer's watchers that was behind has
   * caught up: every watcher of the consumer is now synced. Must not call back into the store
   * synchronously.
   */
  allSynced?(): void;
}

/** Which group a watcher is in. */
export type WatcherState =
  /** Live: gets each revision's events from the write path as it is applied. */
  | "synced"
  /** Behind: waits for the periodic sync to catch it up from history. */
  | "unsynced"
  /** Behind and its consumer was full: waits for the consumer to become ready, then for a sync. */
  | "victim"
  /** Canceled, closed, or compacted: gets nothing more. */
  | "done";

export interface WatcherFilters {
  /** Drop PUT events (etcd's NOPUT filter). */
  readonly noPut?: boolean;
  /** Drop DELETE events (etcd's NODELETE filter). */
  readonly noDelete?: boolean;
}

/** One watcher: a key range watched from a revision on. Created by `WatchableStore.watch`. */
export class Watcher {
  /** `keyString(range.start)` for single-key watchers (their map key in a watcher group). */
  readonly singleKey: string | undefined;
  /** The next revision this watcher has not been given (meaningful while not synced). */
  minRev: number;
  state: WatcherState;

  constructor(
    /** The stream's watch ID (the store does not interpret it). */
    readonly id: bigint,
    readonly range: KeyRange,
    startRev: number,
    readonly filters: WatcherFilters,
    readonly prevKv: boolean,
    readonly consumer: WatchConsumer,
  ) {
    this.singleKey = range.end === undefined ? keyString(range.start) : undefined;
    this.minRev = startRev;
    this.state = "unsynced";
  }

  /** Whether the watcher's filters drop `event`. */
  filtered(event: Event): boolean {
    return event.type === Event_EventType.PUT ? this.filters.noPut === true : this.filters.noDelete === true;
  }
}

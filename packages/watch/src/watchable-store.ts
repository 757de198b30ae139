import type { Event } from "@etcd-ts/api";
import { WatchError } from "./errors.js";
import { normalizeRange } from "./key-range.js";
import type { Scheduler } from "./scheduler.js";
import { timerScheduler } from "./scheduler.js";
import { Watcher } from "./watcher.js";
import type { WatchConsumer, WatcherFilters, WatcherState } from "./watcher.js";
import { WatcherGroup } from "./watcher-group.js";
import type { WatchableKV } from "./watchable-kv.js";

/** etcd's sync loop period. */
export const DEFAULT_SYNC_INTERVAL_MS = 100;
/** How often consumers with victims are checked for room (etcd's victim loop ticks every 10 ms). */
export const DEFAULT_VICTIM_INTERVAL_MS = 10;
/** Unsynced watchers caught up per sync run (etcd's maxWatchersPerSync). */
export const DEFAULT_MAX_WATCHERS_PER_SYNC = 512;
/** Soft bound on history events read per sync run (see `HistoryOptions.limit`). */
export const DEFAULT_MAX_EVENTS_PER_SYNC = 1000;

export interface WatchableStoreOptions {
  readonly scheduler?: Scheduler;
  readonly syncIntervalMs?: number;
  readonly victimIntervalMs?: number;
  readonly maxWatchersPerSync?: number;
  readonly maxEventsPerSync?: number;
  /**
   * Told when a sync run fails (the KV's `history` threw: the store is closed or failed). The run is
   * retried after `syncIntervalMs`. Default: rethrown on the next tick, as the MVCC store does with an
   * observer's exception.
   */
  readonly onError?: (error: unknown) => void;
}

export interface WatchOptions {
  /** The stream's watch ID, carried in the responses (not interpreted by the store). */
  readonly id: bigint;
  /** etcd's range conventions: empty `key` is `\0`; empty `rangeEnd` one key; `"\0"` every key from `key`. */
  readonly key: Uint8Array;
  readonly rangeEnd?: Uint8Array;
  /** The first revision to report; 0: the next one (from now on). */
  readonly startRevision: number;
  readonly filters?: WatcherFilters;
  /** Report `prevKv` on events. */
  readonly prevKv?: boolean;
  readonly consumer: WatchConsumer;
}

export interface WatchableStoreStats {
  readonly synced: number;
  readonly unsynced: number;
  readonly victims: number;
}

/**
 * Watchers over a `WatchableKV` (etcd's watchableStore).
 *
 * - Synced watchers get each revision's events from the write path: the store subscribes to the KV and,
 *   when a write transaction's revision is applied, finds the watchers of each event's key through a
 *   `WatcherGroup` (map + interval tree) and offers each one response with all the revision's events it
 *   watches. Nothing polls.
 * - Unsynced watchers (a start revision in the past, or fallen behind) are caught up from history by a
 *   sync run every `syncIntervalMs`, at most `maxWatchersPerSync` watchers and about
 *   `maxEventsPerSync` events per run (the next run follows at once while work remains). A run reads
 *   `[min minRev, current]` in one history read; each watcher gets the part it has not seen, and moves
 *   to synced when it reached the current revision. Everything is synchronous, so between the history
 *   read and the move no write can slip in: no gap and no duplicate between history and live.
 * - A watcher whose start revision was compacted gets one response with `compactRevision` set and is
 *   removed.
 * - Victims: when a consumer refuses a response (its buffer is full), the watcher keeps the first
 *   revision it did not get as `minRev` and waits, holding no events, until its consumer is `ready`;
 *   then it is unsynced again and caught up from history. So a stalled reader costs writes nothing and
 *   holds at most its consumer's buffer.
 */
export class WatchableStore {
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new WatcherGroup();
  /** Victims by consumer: a consumer is checked once, not once per watcher. */
  private readonly victims = new Map<WatchConsumer, Set<Watcher>>();
  private victimCount = 0;
  /** Per consumer, how many of its watchers are not synced (for progress requests). */
  private readonly behind = new Map<WatchConsumer, number>();
  /** The last revision the observer reported; the store's notion of "now". */
  private observedRev: number;
  private readonly unsubscribe: () => void;
  private readonly scheduler: Scheduler;
  private readonly syncIntervalMs: number;
  private readonly victimIntervalMs: number;
  private readonly maxWatchersPerSync: number;
  private readonly maxEventsPerSync: number;
  private readonly onError: (error: unknown) => void;
  private cancelSyncTimer: (() => void) | undefined = undefined;
  private cancelVictimTimer: (() => void) | undefined = undefined;
  private closed = false;
  /** Whether the last sync run moved any watcher forward (then the next run follows at once). */
  private lastSyncProgressed = false;
  /** Whether the scheduled sync run is due at once (delay 0). */
  private syncSoon = false;

  constructor(
    private readonly kv: WatchableKV,
    options: WatchableStoreOptions = {},
  ) {
    this.scheduler = options.scheduler ?? timerScheduler;
    this.syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    this.victimIntervalMs = options.victimIntervalMs ?? DEFAULT_VICTIM_INTERVAL_MS;
    this.maxWatchersPerSync = options.maxWatchersPerSync ?? DEFAULT_MAX_WATCHERS_PER_SYNC;
    this.maxEventsPerSync = options.maxEventsPerSync ?? DEFAULT_MAX_EVENTS_PER_SYNC;
    this.onError =
      options.onError ??
      ((error) =>
        process.nextTick(() => {
          throw error;
        }));
    this.observedRev = kv.currentRevision();
    this.unsubscribe = kv.subscribe((events, revision) => this.notify(events, revision));
  }

  /** The current revision as far as watchers are concerned (the last one applied and reported). */
  revision(): number {
    return this.observedRev;
  }

  stats(): WatchableStoreStats {
    return { synced: this.synced.size, unsynced: this.unsynced.size, victims: this.victimCount };
  }

  /**
   * Adds a watcher. Start revision 0 or above the current revision: synced at once (gets revisions from
   * `max(current + 1, startRevision)` on); otherwise unsynced, caught up by the next sync run (which
   * reports a compacted start revision). Throws `WatchError` `EmptyRange` for `key >= rangeEnd`.
   */
  watch(options: WatchOptions): Watcher {
    if (this.closed) throw new WatchError("Closed", "watch: store closed");
    const range = normalizeRange(options.key, options.rangeEnd);
    if (range === undefined) throw new WatchError("EmptyRange", "mvcc: watcher range is empty");
    const cur = this.observedRev;
    const start = options.startRevision;
    const watcher = new Watcher(options.id, range, start, options.filters ?? {}, options.prevKv === true, options.consumer);
    if (start === 0 || start > cur) {
      watcher.minRev = Math.max(cur + 1, start);
      watcher.state = "synced";
      this.synced.add(watcher);
    } else {
      watcher.state = "unsynced";
      this.unsynced.add(watcher);
      this.adjustBehind(watcher.consumer, 1);
      this.scheduleSync(this.syncIntervalMs);
    }
    return watcher;
  }

  /** Removes `watcher`; it gets nothing more. Idempotent. */
  cancel(watcher: Watcher): void {
    this.leave(watcher);
    watcher.state = "done";
  }

  /** Whether `watcher` is live (synced). */
  isSynced(watcher: Watcher): boolean {
    return watcher.state === "synced";
  }

  /** Whether every watcher of `consumer` is synced. */
  allSynced(consumer: WatchConsumer): boolean {
    return (this.behind.get(consumer) ?? 0) === 0;
  }

  /**
   * Offers `watcher` a progress response (no events, the current revision) if it is synced — a
   * watcher behind will get events instead. A full consumer just misses it (it is receiving events).
   */
  progress(watcher: Watcher): void {
    if (watcher.state !== "synced") return;
    watcher.consumer.offer({ watcher, events: [], revision: this.observedRev, compactRevision: 0 });
  }

  /** Stops everything: unsubscribes from the KV, cancels the timers, drops every watcher. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.cancelSyncTimer?.();
    this.cancelVictimTimer?.();
    for (const w of [...this.synced.watchers, ...this.unsynced.watchers]) w.state = "done";
    this.synced.clear();
    this.unsynced.clear();
    for (const set of this.victims.values()) for (const w of set) w.state = "done";
    this.victims.clear();
    this.victimCount = 0;
    this.behind.clear();
    this.caughtUp.clear();
  }

  // ---- the write path ----

  /** The KV's observer: one revision's events, offered to the synced watchers of their keys. */
  private notify(events: readonly Event[], revision: number): void {
    if (revision <= this.observedRev) return;
    this.observedRev = revision;
    if (this.synced.size === 0) return;
    const batches = new Map<Watcher, Event[]>();
    let stripped: Array<Event | undefined> | undefined;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      const key = event.kv?.key;
      if (key === undefined) continue;
      this.synced.forEachWatching(key, (w) => {
        if (w.minRev > revision || w.filtered(event)) return;
        let view = event;
        if (!w.prevKv && event.prevKv !== undefined) {
          stripped ??= new Array<Event | undefined>(events.length);
          view = stripped[i] ??= withoutPrevKv(event);
        }
        const batch = batches.get(w);
        if (batch !== undefined) batch.push(view);
        else batches.set(w, [view]);
      });
    }
    for (const [w, batch] of batches) {
      if (!w.consumer.offer({ watcher: w, events: batch, revision, compactRevision: 0 })) {
        // The consumer is full: this revision was not delivered; the watcher resumes from it later.
        w.minRev = revision;
        this.synced.delete(w);
        this.adjustBehind(w.consumer, 1);
        this.addVictim(w);
      }
    }
  }

  // ---- catching up ----

  /** Schedules the next sync run; `delayMs` 0 brings forward a run already scheduled for later. */
  private scheduleSync(delayMs: number): void {
    if (this.closed) return;
    if (this.cancelSyncTimer !== undefined) {
      if (delayMs > 0 || this.syncSoon) return;
      this.cancelSyncTimer();
    }
    this.syncSoon = delayMs === 0;
    this.cancelSyncTimer = this.scheduler.schedule(() => {
      this.cancelSyncTimer = undefined;
      this.syncSoon = false;
      let remaining: number;
      try {
        remaining = this.syncWatchers();
      } catch (e) {
        this.onError(e);
        this.lastSyncProgressed = false;
        remaining = this.unsynced.size;
      }
      // More work and progress made: go on at once, as etcd's loop does; otherwise at the usual pace.
      if (remaining > 0) this.scheduleSync(this.lastSyncProgressed ? 0 : this.syncIntervalMs);
    }, delayMs);
  }

  /**
   * One sync run (etcd's syncWatchers): catches up to `maxWatchersPerSync` unsynced watchers from one
   * history read. Returns how many watchers remain unsynced. Called by the sync timer; public for tests
   * and for a server that wants to sync eagerly.
   */
  syncWatchers(): number {
    this.lastSyncProgressed = false;
    if (this.unsynced.size === 0 || this.closed) return 0;
    const curRev = this.observedRev;
    const compactRev = this.kv.compactRevision();
    const chosen = new WatcherGroup();
    let minRev = Infinity;
    let wantPrevKv = false;
    for (const w of this.unsynced.watchers) {
      if (chosen.size >= this.maxWatchersPerSync) break;
      if (w.minRev < compactRev) {
        if (w.consumer.offer({ watcher: w, events: [], revision: 0, compactRevision: compactRev })) {
          this.leave(w, true);
          w.state = "done";
        } else {
          this.unsynced.delete(w);
          this.addVictim(w);
        }
        continue;
      }
      if (w.minRev > curRev) {
        this.makeSynced(w);
        continue;
      }
      chosen.add(w);
      if (w.minRev < minRev) minRev = w.minRev;
      if (w.prevKv) wantPrevKv = true;
    }
    if (chosen.size > 0) this.catchUp(chosen, minRev, curRev, wantPrevKv);
    this.checkAllSynced();
    return this.unsynced.size;
  }

  private catchUp(chosen: WatcherGroup, minRev: number, curRev: number, wantPrevKv: boolean): void {
    const { events, through } = this.kv.history(minRev, curRev, {
      limit: this.maxEventsPerSync,
      prevKv: wantPrevKv,
    });
    const batches = new Map<Watcher, Event[]>();
    for (const event of events) {
      const kv = event.kv;
      if (kv === undefined) continue;
      const rev = Number(kv.modRevision);
      chosen.forEachWatching(kv.key, (w) => {
        if (rev < w.minRev || w.filtered(event)) return;
        const view = !w.prevKv && event.prevKv !== undefined ? withoutPrevKv(event) : event;
        const batch = batches.get(w);
        if (batch !== undefined) batch.push(view);
        else batches.set(w, [view]);
      });
    }
    for (const w of chosen.watchers) {
      // Watchers ahead of what this run read wait for a later run.
      if (w.minRev > through) continue;
      const batch = batches.get(w);
      if (batch !== undefined && !w.consumer.offer({ watcher: w, events: batch, revision: curRev, compactRevision: 0 })) {
        this.unsynced.delete(w);
        this.addVictim(w);
        continue;
      }
      w.minRev = through + 1;
      this.lastSyncProgressed = true;
      if (w.minRev > curRev) this.makeSynced(w);
    }
  }

  /** Moves an unsynced watcher that has reached the current revision into the synced group. */
  private makeSynced(w: Watcher): void {
    this.unsynced.delete(w);
    w.state = "synced";
    this.synced.add(w);
    this.adjustBehind(w.consumer, -1, true);
  }

  // ---- victims ----

  private addVictim(w: Watcher): void {
    w.state = "victim";
    let set = this.victims.get(w.consumer);
    if (set === undefined) this.victims.set(w.consumer, (set = new Set()));
    set.add(w);
    this.victimCount++;
    this.scheduleVictims();
  }

  private scheduleVictims(): void {
    if (this.cancelVictimTimer !== undefined || this.closed) return;
    this.cancelVictimTimer = this.scheduler.schedule(() => {
      this.cancelVictimTimer = undefined;
      if (this.syncVictims() > 0) this.scheduleVictims();
    }, this.victimIntervalMs);
  }

  /**
   * Moves the victims of every consumer that has room again back to unsynced (etcd's moveVictims, but
   * the events are re-read from history rather than held). Returns how many victims remain.
   */
  syncVictims(): number {
    let moved = 0;
    for (const [consumer, set] of this.victims) {
      if (!consumer.ready) continue;
      this.victims.delete(consumer);
      for (const w of set) {
        w.state = "unsynced";
        this.unsynced.add(w);
        moved++;
      }
      this.victimCount -= set.size;
    }
    if (moved > 0) this.scheduleSync(0);
    return this.victimCount;
  }

  // ---- bookkeeping ----

  /**
   * Takes `w` out of whichever group holds it. `tellConsumer`: if that leaves the consumer with every
   * watcher synced, call its `allSynced` at the end of this sync run (a cancel by the consumer itself
   * needs no telling).
   */
  private leave(w: Watcher, tellConsumer = false): void {
    const state: WatcherState = w.state;
    if (state === "synced") {
      this.synced.delete(w);
      return;
    }
    if (state === "unsynced") {
      this.unsynced.delete(w);
    } else if (state === "victim") {
      const set = this.victims.get(w.consumer);
      if (set?.delete(w) === true) {
        this.victimCount--;
        if (set.size === 0) this.victims.delete(w.consumer);
      }
    } else {
      return;
    }
    this.adjustBehind(w.consumer, -1, tellConsumer);
  }

  private readonly caughtUp = new Set<WatchConsumer>();

  private adjustBehind(consumer: WatchConsumer, delta: number, caughtUp = false): void {
    const n = (this.behind.get(consumer) ?? 0) + delta;
    if (n <= 0) {
      this.behind.delete(consumer);
      if (caughtUp) this.caughtUp.add(consumer);
    } else {
      this.behind.set(consumer, n);
    }
  }

  /** Tells consumers whose last watcher behind caught up in this run, after all its responses went out. */
  private checkAllSynced(): void {
    if (this.caughtUp.size === 0) return;
    const consumers = [...this.caughtUp];
    this.caughtUp.clear();
    for (const c of consumers) if (this.allSynced(c)) c.allSynced?.();
  }
}

/** A view of `event` without `prevKv` (events are shared between watchers: never modified). */
function withoutPrevKv(event: Event): Event {
  return { $typeName: "mvccpb.Event", type: event.type, kv: event.kv, prevKv: undefined };
}

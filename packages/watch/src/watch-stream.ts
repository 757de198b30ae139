import { create } from "@bufbuild/protobuf";
import { ResponseHeaderSchema, WatchCreateRequest_FilterType, WatchResponseSchema } from "@etcd-ts/api";
import type { Event, ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse } from "@etcd-ts/api";
import { DEFAULT_MAX_RESPONSE_BYTES, fragmentResponse } from "./fragment.js";
import type { Scheduler } from "./scheduler.js";
import { timerScheduler } from "./scheduler.js";
import { isWatchError } from "./errors.js";
import type { WatchableStore } from "./watchable-store.js";
import type { StoreWatchResponse, WatchConsumer, Watcher } from "./watcher.js";

/** etcd's default progress-notify interval (10 minutes). */
export const DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS = 10 * 60 * 1000;
/** Event responses a stream buffers before its watchers fall behind (etcd's chanBufLen). */
export const DEFAULT_MAX_PENDING_RESPONSES = 128;
/**
 * Watchers one stream may hold. etcd sets no limit; ours is far above what a client multiplexes on one
 * stream (clientv3 puts every watch of one context on it), and caps a client that creates without end.
 */
export const DEFAULT_MAX_WATCHERS_PER_STREAM = 10_000;
/** The watch ID of responses that belong to no watcher (clientv3.InvalidWatchID). */
export const INVALID_WATCH_ID = -1n;

/** etcd 3.4's cancel reasons (mvcc errors and rpctypes messages), sent in `cancel_reason`. */
export const CANCEL_REASONS = {
  duplicateId: "mvcc: duplicate watch ID provided on the WatchStream",
  emptyRange: "mvcc: watcher range is empty",
  permissionDenied: "etcdserver: permission denied",
  /** etcd-ts only: the stream holds `maxWatchers` watchers already. */
  tooManyWatchers: "etcdserver: too many watchers on this watch stream",
} as const;

/**
 * The server's permission check for a watch (etcd's isWatchPermitted), called on each create with the
 * request's key (`\0` when empty) and range end (etcd's conventions: empty = one key, `\0` = from key).
 * `true`: allowed. `false`: refused with "etcdserver: permission denied". An `Error` returned or thrown:
 * refused with its message as the cancel reason (the server gives etcd's Go status text, e.g.
 * "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token").
 */
export type WatchAuthorizer = (key: Uint8Array, rangeEnd: Uint8Array) => boolean | Error;

export interface WatchStreamOptions {
  readonly store: WatchableStore;
  /** The response header for a revision (cluster ID, member ID, raft term are the server's). */
  readonly header?: (revision: number) => ResponseHeader;
  readonly authorize?: WatchAuthorizer;
  /** Responses larger than this are split when the watcher asked for `fragment`. */
  readonly maxResponseBytes?: number;
  /** Period of progress notifications to idle `progress_notify` watchers. */
  readonly progressNotifyIntervalMs?: number;
  /** Buffered responses above which the store's offers are refused (the watchers fall behind). */
  readonly maxPendingResponses?: number;
  /** Watchers the stream holds at most; a create beyond is refused (`CANCEL_REASONS.tooManyWatchers`). */
  readonly maxWatchers?: number;
  readonly scheduler?: Scheduler;
  /**
   * Answer progress requests at once, even while some watcher of the stream is still catching up
   * (etcd 3.4.23's behaviour, which can claim a revision whose events are still to come). Default false:
   * answer once every watcher is synced (etcd 3.5's fix).
   */
  readonly immediateProgressRequests?: boolean;
}

/** Per watch ID, what the stream keeps besides the store's watcher. */
interface StreamWatch {
  readonly watcher: Watcher;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
  /** No event response since the last progress tick (etcd's `progress[id]`). */
  idle: boolean;
}

function defaultHeader(revision: number): ResponseHeader {
  return create(ResponseHeaderSchema, { revision: BigInt(revision) });
}

/**
 * The state of one gRPC Watch stream (etcd's serverWatchStream with its mvcc watchStream): the server's
 * handler passes each `WatchRequest` to `handle` and writes out what `take` returns, and calls `close`
 * when the stream ends. Nothing here touches gRPC.
 *
 * Output: a FIFO of `WatchResponse`s. Control responses (created, canceled, progress request) are always
 * queued; the store's event responses are refused once `maxPendingResponses` are waiting, which makes
 * the watchers fall behind and catch up from history later — a stalled client costs at most that many
 * responses. `onReadable` fires (in a microtask) when responses were queued; the server then takes until
 * empty or until gRPC asks it to wait ('drain'), and takes on after that.
 *
 * Ordering: a watch's `created` response precedes its events (the store delivers nothing synchronously
 * from `watch`); a progress request's response follows every event up to its revision.
 */
export class WatchStream {
  private readonly store: WatchableStore;
  private readonly header: (revision: number) => ResponseHeader;
  private readonly authorize: WatchAuthorizer | undefined;
  private readonly maxResponseBytes: number;
  private readonly progressNotifyIntervalMs: number;
  private readonly maxPending: number;
  private readonly maxWatchers: number;
  private readonly scheduler: Scheduler;
  private readonly immediateProgress: boolean;
  private readonly watches = new Map<bigint, StreamWatch>();
  private nextId = 0n;
  /** Responses from `queueHead` on; slots before it were taken and cleared (so they can be collected). */
  private readonly queue: (WatchResponse | undefined)[] = [];
  private queueHead = 0;
  private listener: (() => void) | undefined = undefined;
  private notifyScheduled = false;
  private progressWatches = 0;
  private cancelProgressTimer: (() => void) | undefined = undefined;
  /** A progress request waits for the stream's watchers to be synced. */
  private progressRequested = false;
  private isClosed = false;
  private readonly consumer: WatchConsumer;

  constructor(options: WatchStreamOptions) {
    this.store = options.store;
    this.header = options.header ?? defaultHeader;
    this.authorize = options.authorize;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.progressNotifyIntervalMs = options.progressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_INTERVAL_MS;
    this.maxPending = options.maxPendingResponses ?? DEFAULT_MAX_PENDING_RESPONSES;
    this.maxWatchers = options.maxWatchers ?? DEFAULT_MAX_WATCHERS_PER_STREAM;
    this.scheduler = options.scheduler ?? timerScheduler;
    this.immediateProgress = options.immediateProgressRequests === true;
    // The store sees only this narrow object, never the stream's public surface. Its getter's `this` is the
    // object itself, hence the stream under a name.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const stream = this;
    this.consumer = {
      offer: (response) => stream.offer(response),
      // Victims resume only once the reader has taken half the buffer, so that a slow reader does not
      // make its watchers bounce between victim and unsynced for every response it takes.
      get ready() {
        return !stream.isClosed && stream.pending <= stream.maxPending / 2;
      },
      allSynced: () => stream.onAllSynced(),
    };
  }

  /** Responses waiting to be taken. */
  get pending(): number {
    return this.queue.length - this.queueHead;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Number of watch IDs in use on this stream. */
  get watchCount(): number {
    return this.watches.size;
  }

  /** The next response to send, or undefined when none is waiting. */
  take(): WatchResponse | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const response = this.queue[this.queueHead];
    this.queue[this.queueHead] = undefined;
    this.queueHead++;
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return response;
  }

  /** Every waiting response. */
  takeAll(): WatchResponse[] {
    const out = this.queue.slice(this.queueHead).filter((response) => response !== undefined);
    this.queue.length = 0;
    this.queueHead = 0;
    return out;
  }

  /**
   * Sets the function told (in a microtask, coalesced) that responses were queued. One listener; a
   * later call replaces it.
   */
  onReadable(listener: () => void): void {
    this.listener = listener;
    if (this.pending > 0) this.signal();
  }

  /** Handles one request from the client. Requests after `close` and unknown request kinds are ignored. */
  handle(request: WatchRequest): void {
    if (this.isClosed) return;
    const union = request.requestUnion;
    switch (union.case) {
      case "createRequest":
        this.create(union.value);
        return;
      case "cancelRequest":
        this.cancel(union.value.watchId);
        return;
      case "progressRequest":
        this.requestProgress();
        return;
      default:
        // etcd ignores what it does not know rather than ending the stream.
        return;
    }
  }

  /** Frees every watcher and timer; drops waiting responses. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const watch of this.watches.values()) this.store.cancel(watch.watcher);
    this.watches.clear();
    this.cancelProgressTimer?.();
    this.cancelProgressTimer = undefined;
    this.queue.length = 0;
    this.queueHead = 0;
    this.listener = undefined;
  }

  // ---- requests ----

  private create(request: WatchCreateRequest): void {
    const key = request.key.length === 0 ? new Uint8Array([0]) : request.key;
    const rev = this.store.revision();
    if (this.authorize !== undefined) {
      let verdict: boolean | Error;
      try {
        verdict = this.authorize(key, request.rangeEnd);
      } catch (e) {
        verdict = e instanceof Error ? e : new Error(String(e));
      }
      if (verdict !== true) {
        const reason = verdict === false ? CANCEL_REASONS.permissionDenied : verdict.message;
        this.refuse(rev, reason);
        return;
      }
    }
    if (this.watches.size >= this.maxWatchers) {
      // Answered as etcd answers any create it refuses: created and canceled, for watch ID -1.
      this.refuse(rev, CANCEL_REASONS.tooManyWatchers);
      return;
    }
    let id = request.watchId;
    if (id === 0n) {
      while (this.watches.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watches.has(id)) {
      this.refuse(rev, CANCEL_REASONS.duplicateId);
      return;
    }
    let watcher: Watcher;
    try {
      watcher = this.store.watch({
        id,
        key,
        rangeEnd: request.rangeEnd,
        startRevision: Number(request.startRevision),
        filters: {
          noPut: request.filters.includes(WatchCreateRequest_FilterType.NOPUT),
          noDelete: request.filters.includes(WatchCreateRequest_FilterType.NODELETE),
        },
        prevKv: request.prevKv,
        consumer: this.consumer,
      });
    } catch (e) {
      if (isWatchError(e, "EmptyRange")) {
        this.refuse(rev, CANCEL_REASONS.emptyRange);
        return;
      }
      throw e;
    }
    this.watches.set(id, { watcher, progressNotify: request.progressNotify, fragment: request.fragment, idle: true });
    this.push(create(WatchResponseSchema, { header: this.header(rev), watchId: id, created: true }));
    if (request.progressNotify) {
      this.progressWatches++;
      this.scheduleProgress();
    }
  }

  /** etcd's answer to a create it refuses: created and canceled at once, for watch ID -1. */
  private refuse(rev: number, reason: string): void {
    this.push(
      create(WatchResponseSchema, {
        header: this.header(rev),
        watchId: INVALID_WATCH_ID,
        created: true,
        canceled: true,
        cancelReason: reason,
      }),
    );
  }

  private cancel(id: bigint): void {
    const watch = this.watches.get(id);
    // etcd answers nothing for an unknown ID.
    if (watch === undefined) return;
    this.store.cancel(watch.watcher);
    this.watches.delete(id);
    if (watch.progressNotify) this.progressWatches--;
    this.push(create(WatchResponseSchema, { header: this.header(this.store.revision()), watchId: id, canceled: true }));
    // The canceled watcher may have been the last one behind.
    if (this.progressRequested && this.store.allSynced(this.consumer)) this.pushProgressAll();
  }

  /**
   * A progress request: a response for watch ID -1 at the current revision, once every watcher of the
   * stream is synced (so that it never claims a revision whose events are still on their way; etcd 3.5
   * behaviour — 3.4.23 answers at once: `immediateProgressRequests`).
   */
  private requestProgress(): void {
    if (this.immediateProgress || this.store.allSynced(this.consumer)) this.pushProgressAll();
    else this.progressRequested = true;
  }

  private pushProgressAll(): void {
    this.progressRequested = false;
    this.push(create(WatchResponseSchema, { header: this.header(this.store.revision()), watchId: INVALID_WATCH_ID }));
  }

  private onAllSynced(): void {
    if (this.progressRequested && !this.isClosed) this.pushProgressAll();
  }

  // ---- progress notify ----

  private scheduleProgress(): void {
    if (this.cancelProgressTimer !== undefined || this.isClosed) return;
    this.cancelProgressTimer = this.scheduler.schedule(() => {
      this.cancelProgressTimer = undefined;
      if (this.isClosed || this.progressWatches === 0) return;
      for (const watch of this.watches.values()) {
        if (!watch.progressNotify) continue;
        // Only watchers that sent no events since the last tick get a progress notification.
        if (watch.idle) this.store.progress(watch.watcher);
        watch.idle = true;
      }
      this.scheduleProgress();
    }, this.progressNotifyIntervalMs);
  }

  // ---- the store's responses ----

  private offer(response: StoreWatchResponse): boolean {
    if (this.isClosed) return true;
    if (this.pending >= this.maxPending) return false;
    const id = response.watcher.id;
    const watch = this.watches.get(id);
    if (watch === undefined || watch.watcher !== response.watcher) return true;
    const message = create(WatchResponseSchema, {
      header: this.header(response.revision),
      watchId: id,
      events: response.events as Event[],
      compactRevision: BigInt(response.compactRevision),
      canceled: response.compactRevision !== 0,
    });
    if (response.events.length > 0) watch.idle = false;
    if (watch.fragment) for (const part of fragmentResponse(message, this.maxResponseBytes)) this.push(part);
    else this.push(message);
    return true;
  }

  private push(response: WatchResponse): void {
    this.queue.push(response);
    this.signal();
  }

  private signal(): void {
    if (this.notifyScheduled || this.listener === undefined) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      if (this.pending > 0) this.listener?.();
    });
  }
}

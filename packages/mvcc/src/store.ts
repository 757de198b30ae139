import { Event_EventType } from "@etcd-ts/api";
import type { Event, KeyValue } from "@etcd-ts/api";
import {
  CONSISTENT_INDEX_KEY,
  ETCD_BUCKETS,
  FINISHED_COMPACT_KEY,
  KEY_BUCKET,
  META_BUCKET,
  SCHEDULED_COMPACT_KEY,
  decodeConsistentIndex,
  writeConsistentIndex,
} from "@etcd-ts/schema";
import type { Backend, ReadTxn, WriteTxn as BackendWriteTxn } from "@etcd-ts/storage";
import { Crc32c } from "./crc32c.js";
import { MvccError } from "./errors.js";
import { decodeIndexFields, decodeKeyValue, encodeKeyValue, makeKeyValue } from "./key-value-codec.js";
import type { IndexFields } from "./key-value-codec.js";
import { KeyIndex, TreeIndex } from "./key-index.js";
import type { KeyAtRevision } from "./key-index.js";
import { RevisionSet, decodeRevisionKey, encodeRevisionKey, encodeUint64, mainOfRevisionKey, subOfRevisionKey } from "./revision.js";

/**
 * The multi-version key-value store (etcd's mvcc.store) over a `Backend`.
 *
 * - Every change is a row in the `key` bucket keyed by its revision (see `revision.ts`) whose value is
 *   the marshaled `mvccpb.KeyValue`; a delete writes a tombstone row. Nothing is overwritten in place, so
 *   any revision not yet compacted can be read.
 * - The in-memory `TreeIndex` maps each user key to its revisions; it is rebuilt from the `key` bucket
 *   on open, together with the current revision, the compact revision and the consistent index.
 * - Writes happen in `update(fn)`: one backend write transaction (group commit) in which `batch.txn(…)`
 *   runs one write transaction per request. A write transaction that changes something takes the next
 *   main revision; its changes get sub revisions 0, 1, 2, …; one that changes nothing takes none.
 * - Reads (`range`, `read`) see everything `update` has applied, before it is durable, as etcd's reads
 *   see its batch transaction's buffer.
 *
 * Range ends follow etcd: an empty `end` means the single key `key`; `end = "\0"` means every key
 * `>= key`; otherwise the keys in `[key, end)`.
 *
 * Single-threaded: all methods are synchronous except the waiting for durability and for physical
 * compaction.
 */

export interface RangeOptions {
  /** The revision to read at; 0 or absent means the current one. */
  readonly rev?: number;
  /** At most this many KeyValues (0 or absent: all). `count` still counts every key in range. */
  readonly limit?: number;
  /** Only count; `kvs` is empty. */
  readonly countOnly?: boolean;
}

export interface RangeResult {
  /** The keys in range as of the read revision, in key order. Values are views: do not modify. */
  readonly kvs: KeyValue[];
  /** How many keys are in range as of the read revision (regardless of `limit`). */
  readonly count: number;
  /** The revision of the view the range ran in (the response header's revision). */
  readonly rev: number;
}

/** A consistent read view. */
export interface ReadView {
  /** The revision this view reads at by default (the newest it sees). */
  readonly rev: number;
  /** Reads below this revision fail with `Compacted` (etcd's FirstRev). */
  readonly compactRev: number;
  /** Throws `MvccError` `FutureRev` (options.rev above `rev`) or `Compacted` (below `compactRev`). */
  range(key: Uint8Array, end: Uint8Array | undefined, options?: RangeOptions): RangeResult;
}

/**
 * One write transaction: all its changes share one main revision. Reads through it see its own
 * earlier changes (`rev` is then that new revision).
 */
export interface TxnWrite extends ReadView {
  /** Puts `key`; returns the transaction's revision. `lease` 0 is no lease. */
  put(key: Uint8Array, value: Uint8Array, lease?: bigint): number;
  /** Deletes the keys in range that exist; returns how many. */
  deleteRange(key: Uint8Array, end: Uint8Array | undefined): number;
  /** Changes made so far. */
  readonly changes: number;
}

/** The operations of one backend write transaction. */
export interface WriteBatch {
  /** Runs one write transaction (one revision if it changes anything). */
  txn<R>(fn: (txn: TxnWrite) => R): R;
  /**
   * Compacts at `rev`: from now on reads below `rev` fail with `Compacted`. The index is compacted at
   * once and the scheduled compact revision written in this batch; the obsolete rows are deleted later
   * in bounded batches of their own. Returns a promise that resolves when that physical deletion is
   * done and durable. Throws `Compacted` when `rev` is at or below the current compact revision,
   * `FutureRev` when above the current revision; nothing changes then.
   */
  compact(rev: number): Promise<void>;
  /** Records the last applied log index, in this batch (so with the data it describes). */
  setConsistentIndex(index: number): void;
  /**
   * The batch's backend transaction, for state kept beside the keyspace (leases, auth, membership) that
   * must commit atomically with it. Never write the `key` or `meta` buckets through it.
   */
  readonly backend: BackendWriteTxn;
  /** The store's revision as of now (the newest written, this batch's included). */
  readonly revision: number;
}

/**
 * Receives the events of one revision after the batch that made them was applied (visible to reads),
 * in revision order. Events carry `kv` (for a DELETE only key and mod_revision, as etcd) and `prevKv`
 * (the key's previous state, when it had one). Must not throw or write to the store; an exception is
 * rethrown on the next tick.
 */
export type StoreObserver = (events: readonly Event[], revision: number) => void;

/** How `history` reads (the watch package's catch-up reads use the same options). */
export interface HistoryOptions {
  /**
   * A soft bound on the events returned, so that one catch-up does bounded work. The read returns whole
   * revisions only: it stops at the first revision boundary at or after `limit` events (so it may return
   * more when one revision is large, and always returns the first revision that has events). 0 or
   * absent: no bound.
   */
  readonly limit?: number;
  /**
   * Set `prevKv` on the events (the key's state at `modRevision - 1`, when it existed and is not
   * compacted). Default false.
   */
  readonly prevKv?: boolean;
}

export interface HistoryResult {
  /**
   * The PUT and DELETE events of the revisions in `[fromRev, through]`, in revision order and, within a
   * revision, in the order its transaction made them: exactly the events the observers were (or would
   * have been) given for those revisions, with `prevKv` only when asked for.
   */
  readonly events: Event[];
  /**
   * The last revision whose events are all in `events`: `toRev` when the read was complete, lower when
   * `limit` stopped it (then the caller continues from `through + 1`). Always `>= fromRev - 1`.
   */
  readonly through: number;
}

/**
 * What the store needs of a lessor: etcd's mvcc keeps the lessor's key → lease map in step on every put
 * and delete, synchronously, and re-attaches every live key's lease when it rebuilds its index.
 * `@etcd-ts/lease`'s `Lessor` has this shape.
 *
 * Calls: a put of a key that existed detaches it from `leaseOf(key)` (when not 0), then a put with a
 * lease attaches it; a delete detaches the key from `leaseOf(key)`; opening the store calls
 * `attachOnRecovery` for every live key whose stored lease is not 0. None of these may throw.
 */
export interface LeaseAttachments {
  leaseOf(key: Uint8Array): bigint;
  attach(id: bigint, keys: Iterable<Uint8Array>): boolean;
  detach(id: bigint, keys: Iterable<Uint8Array>): boolean;
  attachOnRecovery(id: bigint, key: Uint8Array): boolean;
}

export interface MvccStoreOptions {
  /** The lessor to keep in step with keys' leases (none: leases are only stored in the KeyValues). */
  readonly leases?: LeaseAttachments;
  /** Rows examined per physical compaction batch (etcd's CompactionBatchLimit, default 1000). */
  readonly compactionBatchLimit?: number;
  /** Pause between physical compaction batches, letting writes through (default 0: next macrotask). */
  readonly compactionPauseMs?: number;
}

const EMPTY: Uint8Array = new Uint8Array(0);
/** From this many rows on, a range reads its rows in revision order rather than key order. */
const SORTED_READ_MIN = 64;
/** Rows `rangeInSteps` reads per step (about 50 ms of work). */
const RANGE_STEP_ROWS = 10_000;

/**
 * The order to read a range's rows in: keys in key order have revisions in no order, and reading the
 * rows in revision order walks the backend's B-tree forward instead of jumping around it (several times
 * faster on large ranges). Undefined for a few rows: key order.
 */
function rowOrder(revs: readonly number[]): Uint32Array | undefined {
  const n = revs.length >>> 1;
  if (n < SORTED_READ_MIN) return undefined;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => revs[2 * a]! - revs[2 * b]! || revs[2 * a + 1]! - revs[2 * b + 1]!);
}

/** A stored consistent index that is not 8 bytes: the backend is not one this store wrote. */
function corruptConsistentIndex(bytes: Uint8Array): never {
  throw new MvccError("Corrupt", `mvcc: expected 8 bytes, got ${bytes.length}`);
}

/** The normalized range end: `undefined` single key, `null` every key from `key`, else the bound. */
function rangeEnd(end: Uint8Array | undefined): Uint8Array | undefined | null {
  if (end === undefined || end.length === 0) return undefined;
  if (end.length === 1 && end[0] === 0) return null;
  return end;
}

interface RevisionEvents {
  readonly revision: number;
  readonly events: Event[];
}

function makeEvent(type: Event_EventType, kv: KeyValue, prevKv: KeyValue | undefined): Event {
  return { $typeName: "mvccpb.Event", type, kv, prevKv };
}

export class MvccStore {
  private readonly index = new TreeIndex();
  private currentRev = 1;
  /** -1 until the first compaction, as in etcd (so that compacting at revision 0 succeeds once). */
  private compactMainRev = -1;
  private consistentIdx = 0;
  private readonly observers = new Set<StoreObserver>();
  private failure: unknown = undefined;
  private closed = false;
  private compactionQueue: Promise<void> = Promise.resolve();
  /** Ranges read in steps now running; physical compaction waits for them (`afterRangesInSteps`). */
  private rangesInSteps = 0;
  private afterRangesInSteps: (() => void)[] = [];
  private readonly compactionBatchLimit: number;
  private readonly compactionPauseMs: number;
  /** @internal */
  readonly leases: LeaseAttachments | undefined;
  /** Scratch for index lookups on the write path. */
  private readonly state: KeyAtRevision = { modMain: 0, modSub: 0, createdMain: 0, version: 0 };

  private constructor(
    readonly backend: Backend,
    options: MvccStoreOptions,
  ) {
    this.compactionBatchLimit = options.compactionBatchLimit ?? 1000;
    this.compactionPauseMs = options.compactionPauseMs ?? 0;
    this.leases = options.leases;
  }

  /**
   * Opens the store over `backend`: creates etcd's buckets when missing, rebuilds the index and resumes
   * a compaction that a crash interrupted. The store does not own the backend (closing the store does
   * not close it).
   */
  static open(backend: Backend, options: MvccStoreOptions = {}): MvccStore {
    const store = new MvccStore(backend, options);
    const existing = new Set(backend.view((tx) => tx.buckets()));
    const missing = ETCD_BUCKETS.filter((b) => !existing.has(b));
    if (missing.length > 0) {
      backend
        .update((tx) => {
          for (const bucket of missing) tx.createBucket(bucket);
        })
        .catch((e: unknown) => store.fail(e));
    }
    store.restore();
    return store;
  }

  private restore(): void {
    let scheduled = 0;
    // The lease of each key's newest row (a tombstone clears it), when there is a lessor to tell.
    const keyLeases = this.leases !== undefined ? new Map<KeyIndex, bigint>() : undefined;
    this.backend.view((tx) => {
      const finished = tx.get(META_BUCKET, FINISHED_COMPACT_KEY);
      if (finished !== undefined) this.compactMainRev = decodeRevisionKey(finished).main;
      const sched = tx.get(META_BUCKET, SCHEDULED_COMPACT_KEY);
      if (sched !== undefined) scheduled = decodeRevisionKey(sched).main;
      const ci = tx.get(META_BUCKET, CONSISTENT_INDEX_KEY);
      if (ci !== undefined) this.consistentIdx = decodeConsistentIndex(ci) ?? corruptConsistentIndex(ci);

      const kv: IndexFields = { key: EMPTY, createRevision: 0, version: 0, lease: 0n };
      for (const { key, value } of tx.range(KEY_BUCKET)) {
        const rev = decodeRevisionKey(key);
        decodeIndexFields(value, kv);
        this.currentRev = rev.main;
        let ki = this.index.keyIndex(kv.key);
        if (ki !== undefined) {
          if (!rev.tombstone) ki.put(rev.main, rev.sub);
          else if (ki.isLive()) ki.tombstone(rev.main, rev.sub);
        } else if (!rev.tombstone) {
          // The first row seen of a key: its created revision and version come from the value, as the
          // rows before it may have been compacted away.
          ki = this.index.keyIndexForWrite(kv.key);
          ki.restore(kv.createRevision, rev.main, rev.sub, kv.version);
        }
        if (keyLeases !== undefined && ki !== undefined) {
          if (rev.tombstone || kv.lease === 0n) keyLeases.delete(ki);
          else keyLeases.set(ki, kv.lease);
        }
      }
    });
    if (keyLeases !== undefined) {
      for (const [ki, lease] of keyLeases) if (ki.isLive()) this.leases!.attachOnRecovery(lease, ki.key);
    }
    if (this.currentRev < 1) this.currentRev = 1;
    // Compaction may have deleted every row up to the compact revision (the newest ones being tombstones).
    if (this.currentRev < this.compactMainRev) this.currentRev = this.compactMainRev;
    // etcd resumes only a scheduled compaction above 0 (0 reads as "none").
    if (scheduled > 0 && scheduled > this.compactMainRev) {
      // A compaction was scheduled but its physical deletion had not finished: do it again.
      this.compactMainRev = scheduled;
      const keep = new RevisionSet();
      this.index.compact(scheduled, keep);
      this.schedulePhysicalCompaction(scheduled, keep).catch(() => {
        // Nobody awaits a resumed compaction; a failure has already marked the store failed.
      });
    }
  }

  /** The newest revision (1 for an empty store, as etcd). */
  currentRevision(): number {
    return this.currentRev;
  }

  /**
   * Reads below this revision fail with `Compacted`; -1 before any compaction (etcd's value, which
   * HashKV reports), so compacting at 0 succeeds once, as in etcd.
   */
  compactRevision(): number {
    return this.compactMainRev;
  }

  /** The last applied log index as stored (0 for a new store). */
  consistentIndex(): number {
    return this.consistentIdx;
  }

  /** Number of keys in the index (live or with revisions not yet compacted); for status and tests. */
  indexedKeys(): number {
    return this.index.size;
  }

  private checkUsable(): void {
    if (this.closed) throw new MvccError("Closed");
    if (this.failure !== undefined) throw new MvccError("Failed", undefined, { cause: this.failure });
  }

  private fail(e: unknown): void {
    if (this.failure === undefined) this.failure = e ?? new Error("unknown failure");
  }

  /** A range over the current state (one backend read view). */
  range(key: Uint8Array, end: Uint8Array | undefined, options?: RangeOptions): RangeResult {
    return this.read((view) => view.range(key, end, options));
  }

  /** Runs `fn` against one consistent read view of the current state. */
  read<T>(fn: (view: ReadView) => T): T {
    this.checkUsable();
    const rev = this.currentRev;
    return this.backend.view((tx) => {
      const view: ReadView = {
        rev,
        compactRev: this.compactMainRev,
        range: (key, end, options) => this.rangeAt(tx, key, end, rev, options),
      };
      return fn(view);
    });
  }

  /**
   * A range as `range` gives it, but read in steps of `rowsPerStep` rows with the event loop let go
   * between steps. The read revision and the keys in range are fixed when it is called; physical
   * compaction waits until the range has read its rows. A range over many keys then costs every other
   * caller a short pause per step instead of one as long as the whole read (which, past a few seconds,
   * also stalls the HTTP/2 pings of every connection). A range of at most `rowsPerStep` rows is read at
   * once and returned as it is, not as a promise.
   */
  rangeInSteps(
    key: Uint8Array,
    end: Uint8Array | undefined,
    options?: RangeOptions,
    rowsPerStep = RANGE_STEP_ROWS,
  ): RangeResult | Promise<RangeResult> {
    this.checkUsable();
    const curRev = this.currentRev;
    const normalizedEnd = rangeEnd(end);
    if (normalizedEnd === undefined) return this.range(key, end, options);
    const rev = this.checkedReadRevision(curRev, options);
    const { revs, count } = this.rangeRevisions(key, normalizedEnd, rev, options);
    const n = revs.length >>> 1;
    const kvs: KeyValue[] = new Array<KeyValue>(n);
    const order = rowOrder(revs);
    if (n <= rowsPerStep) {
      this.backend.view((tx) => this.readRows(tx, revs, order, kvs, 0, n));
      return { kvs, count, rev: curRev };
    }
    this.rangesInSteps++;
    const steps = async (): Promise<RangeResult> => {
      try {
        for (let from = 0; from < n; from += rowsPerStep) {
          if (from > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          this.checkUsable();
          this.backend.view((tx) => this.readRows(tx, revs, order, kvs, from, Math.min(n, from + rowsPerStep)));
        }
        return { kvs, count, rev: curRev };
      } finally {
        this.endRangeInSteps();
      }
    };
    return steps();
  }

  private endRangeInSteps(): void {
    if (--this.rangesInSteps > 0) return;
    const waiting = this.afterRangesInSteps;
    this.afterRangesInSteps = [];
    for (const resume of waiting) setImmediate(resume);
  }

  /** The revision a read asks for; throws `FutureRev` above `curRev`, `Compacted` below the compact revision. */
  private checkedReadRevision(curRev: number, options: RangeOptions | undefined): number {
    const requested = options?.rev ?? 0;
    if (requested > curRev) throw new MvccError("FutureRev");
    const rev = requested <= 0 ? curRev : requested;
    if (rev < this.compactMainRev) throw new MvccError("Compacted");
    return rev;
  }

  /** The rows a multi-key range reads at `rev` (main/sub pairs in key order, at most `limit`) and its count. */
  private rangeRevisions(
    key: Uint8Array,
    end: Uint8Array | null,
    rev: number,
    options: RangeOptions | undefined,
  ): { revs: number[]; count: number } {
    const countOnly = options?.countOnly === true;
    const limit = options?.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    const revs: number[] = [];
    let count = 0;
    this.index.visitAt(key, end ?? undefined, rev, (_ki, state) => {
      if (!countOnly && count < limit) revs.push(state.modMain, state.modSub);
      count++;
    });
    return { revs, count };
  }

  /** Reads rows `order[from..to)` of `revs` (in key order without `order`) into their places in `kvs`. */
  private readRows(tx: ReadTxn, revs: readonly number[], order: Uint32Array | undefined, kvs: KeyValue[], from: number, to: number): void {
    for (let j = from; j < to; j++) {
      const i = order === undefined ? j : order[j]!;
      kvs[i] = this.readKeyValue(tx, revs[2 * i]!, revs[2 * i + 1]!);
    }
  }

  /** etcd's rangeKeys: `curRev` is the newest revision the view sees. */
  private rangeAt(
    tx: ReadTxn,
    key: Uint8Array,
    end: Uint8Array | undefined,
    curRev: number,
    options: RangeOptions | undefined,
  ): RangeResult {
    const rev = this.checkedReadRevision(curRev, options);
    const normalizedEnd = rangeEnd(end);
    if (normalizedEnd === undefined) {
      const ki = this.index.keyIndex(key);
      const state = this.state;
      if (ki === undefined || !ki.get(rev, state)) return { kvs: [], count: 0, rev: curRev };
      if (options?.countOnly === true) return { kvs: [], count: 1, rev: curRev };
      return { kvs: [this.readKeyValue(tx, state.modMain, state.modSub)], count: 1, rev: curRev };
    }
    const { revs, count } = this.rangeRevisions(key, normalizedEnd, rev, options);
    const n = revs.length >>> 1;
    const kvs: KeyValue[] = new Array<KeyValue>(n);
    this.readRows(tx, revs, rowOrder(revs), kvs, 0, n);
    return { kvs, count, rev: curRev };
  }

  private readKeyValue(tx: ReadTxn, main: number, sub: number): KeyValue {
    const bytes = tx.get(KEY_BUCKET, encodeRevisionKey(main, sub));
    if (bytes === undefined) throw new MvccError("Corrupt", `mvcc: revision ${main}.${sub} is indexed but not stored`);
    return decodeKeyValue(bytes);
  }

  /**
   * Runs `fn` in one backend write transaction and returns its result with the promise of durability.
   * Observers get the batch's events before this returns. If `fn` throws, the backend transaction is
   * rolled back and the error rethrown; if the batch had changed the index by then, the store can no
   * longer be trusted and fails every later call (callers check requests before they write, as etcd's
   * applier does, so a client error never gets here).
   */
  update<T>(fn: (batch: WriteBatch) => T): { result: T; durable: Promise<void> } {
    this.checkUsable();
    const pending: RevisionEvents[] | null = this.observers.size > 0 ? [] : null;
    let batch: StoreWriteBatch | undefined;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    let durable: Promise<void>;
    try {
      durable = this.backend.update((tx) => {
        batch = new StoreWriteBatch(this, tx, pending);
        try {
          outcome = { ok: true, value: fn(batch) };
        } catch (e) {
          outcome = { ok: false, error: e };
          throw e;
        } finally {
          batch.closed = true;
        }
      });
    } catch (e) {
      // A backend that throws instead of rejecting: same handling as a rejected update.
      if (batch?.mutated === true) this.fail(e);
      throw e;
    }
    if (outcome === undefined || !outcome.ok) {
      durable.catch(() => {
        // The error is rethrown below; the rejected promise carries the same one.
      });
      if (batch?.mutated === true) this.fail(outcome?.error);
      if (outcome === undefined) throw new MvccError("Failed", "mvcc: the backend refused the write transaction");
      throw outcome.error;
    }
    durable.catch((e: unknown) => this.fail(e));
    if (batch!.consistentIndex !== undefined) this.consistentIdx = batch!.consistentIndex;
    if (pending !== null) this.deliver(pending);
    return { result: outcome.value, durable };
  }

  /**
   * The events of the revisions in `[fromRev, toRev]`, read back from the `key` bucket, shaped as the
   * observers got them (DELETE: key and mod_revision only) — what a watcher that starts in the past
   * needs. Throws `Compacted` when `fromRev` is below the compact revision. `fromRev > toRev` gives no
   * events and `through = toRev`.
   */
  history(fromRev: number, toRev: number, options?: HistoryOptions): HistoryResult {
    this.checkUsable();
    if (fromRev < this.compactMainRev) throw new MvccError("Compacted");
    if (fromRev > toRev) return { events: [], through: toRev };
    const limit = options?.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    const withPrev = options?.prevKv === true;
    const events: Event[] = [];
    let through = toRev;
    this.backend.view((tx) => {
      const start = encodeRevisionKey(Math.max(fromRev, 0), 0);
      const end = encodeUint64(toRev + 1);
      let lastMain = fromRev - 1;
      for (const { key, value } of tx.range(KEY_BUCKET, { start, end })) {
        const rev = decodeRevisionKey(key);
        if (rev.main !== lastMain && events.length >= limit) {
          through = lastMain;
          break;
        }
        lastMain = rev.main;
        const stored = decodeKeyValue(value);
        const kv = rev.tombstone ? makeKeyValue(stored.key, 0n, BigInt(rev.main), 0n, EMPTY, 0n) : stored;
        let prevKv: KeyValue | undefined;
        if (withPrev) {
          const ki = this.index.keyIndex(stored.key);
          if (ki !== undefined && ki.get(rev.main - 1, this.state)) prevKv = this.readKeyValue(tx, this.state.modMain, this.state.modSub);
        }
        events.push(makeEvent(rev.tombstone ? Event_EventType.DELETE : Event_EventType.PUT, kv, prevKv));
      }
    });
    return { events, through };
  }

  /**
   * etcd's HashByRev (Maintenance.HashKV): a CRC-32C over the `key` bucket's name and the rows up to
   * `rev` (0: the current revision), skipping rows at or below the compact revision that a compaction at
   * `rev` would delete. Equal stores give equal hashes, across etcd and etcd-ts alike, since the rows
   * are byte for byte etcd's. Throws `Compacted` when `0 < rev <= compactRevision()`, `FutureRev` when
   * `rev > currentRevision()`.
   */
  hashByRev(rev: number): { hash: number; currentRevision: number; compactRevision: number } {
    this.checkUsable();
    const compactRev = this.compactMainRev;
    const currentRev = this.currentRev;
    if (rev > 0 && rev <= compactRev) throw new MvccError("Compacted");
    if (rev > 0 && rev > currentRev) throw new MvccError("FutureRev");
    const atRev = rev === 0 ? currentRev : rev;
    const keep = this.index.keep(atRev);
    const crc = new Crc32c().update(new TextEncoder().encode(KEY_BUCKET));
    this.backend.view((tx) => {
      for (const { key, value } of tx.range(KEY_BUCKET, { end: encodeUint64(atRev + 1) })) {
        const main = mainOfRevisionKey(key);
        // Rows a compaction would delete are left out, unless nothing would be kept at all (etcd's rule).
        if (main <= compactRev && keep.size > 0 && !keep.has(main, subOfRevisionKey(key))) continue;
        crc.update(key).update(value);
      }
    });
    return { hash: crc.value, currentRevision: currentRev, compactRevision: compactRev };
  }

  /** Subscribes to every revision's events; returns the unsubscribe function. */
  addObserver(observer: StoreObserver): () => void {
    const wrapped: StoreObserver = (events, revision) => observer(events, revision);
    this.observers.add(wrapped);
    return () => {
      this.observers.delete(wrapped);
    };
  }

  private deliver(pending: RevisionEvents[]): void {
    for (const { revision, events } of pending) {
      for (const observer of this.observers) {
        try {
          observer(events, revision);
        } catch (e) {
          process.nextTick(() => {
            throw e;
          });
        }
      }
    }
  }

  /** Resolves when every compaction scheduled so far has finished its physical deletion. */
  compactionsDone(): Promise<void> {
    return this.compactionQueue;
  }

  /** Stops the store: later calls throw `Closed`, unfinished physical compactions reject (and resume on reopen). */
  close(): void {
    this.closed = true;
  }

  // ---- internals shared with the write batch ----

  /** @internal */
  beginCompaction(tx: BackendWriteTxn, rev: number): Promise<void> {
    if (rev <= this.compactMainRev) throw new MvccError("Compacted");
    if (rev > this.currentRev) throw new MvccError("FutureRev");
    this.compactMainRev = rev;
    tx.put(META_BUCKET, SCHEDULED_COMPACT_KEY, encodeRevisionKey(rev, 0));
    const keep = new RevisionSet();
    this.index.compact(rev, keep);
    return this.schedulePhysicalCompaction(rev, keep);
  }

  /**
   * Deletes the rows at or below `rev` that `keep` does not hold, `compactionBatchLimit` rows per
   * backend transaction, then records `finishedCompactRev`. Compactions run one after another.
   */
  private schedulePhysicalCompaction(rev: number, keep: RevisionSet): Promise<void> {
    const run = (): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        let from = encodeRevisionKey(0, 0);
        const end = encodeUint64(rev + 1);
        const limit = this.compactionBatchLimit;
        const step = (): void => {
          if (this.closed) return reject(new MvccError("Closed"));
          if (this.failure !== undefined) return reject(new MvccError("Failed", undefined, { cause: this.failure }));
          // A range being read in steps may still need rows this batch would delete.
          if (this.rangesInSteps > 0) {
            this.afterRangesInSteps.push(step);
            return;
          }
          let done = false;
          let written: Promise<void>;
          try {
            written = this.backend.update((tx) => {
              const keys: Uint8Array[] = [];
              for (const entry of tx.range(KEY_BUCKET, { start: from, end, limit })) keys.push(entry.key);
              for (const key of keys) {
                if (!keep.has(mainOfRevisionKey(key), subOfRevisionKey(key))) tx.delete(KEY_BUCKET, key);
              }
              if (keys.length < limit) {
                tx.put(META_BUCKET, FINISHED_COMPACT_KEY, encodeRevisionKey(rev, 0));
                done = true;
              } else {
                const last = keys[keys.length - 1]!;
                from = encodeRevisionKey(mainOfRevisionKey(last), subOfRevisionKey(last) + 1);
              }
            });
          } catch (e) {
            this.fail(e);
            return reject(e);
          }
          written.catch((e: unknown) => this.fail(e));
          // Set inside the update's callback, which flow analysis does not follow.
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (done) written.then(resolve, reject);
          else if (this.compactionPauseMs > 0) setTimeout(step, this.compactionPauseMs);
          else setImmediate(step);
        };
        step();
      });
    const job = this.compactionQueue.then(run, run);
    this.compactionQueue = job.catch(() => {});
    return job;
  }

  /** @internal The index, for the write transaction. */
  get treeIndex(): TreeIndex {
    return this.index;
  }

  /** @internal */
  readAt(tx: ReadTxn, key: Uint8Array, end: Uint8Array | undefined, curRev: number, options?: RangeOptions): RangeResult {
    return this.rangeAt(tx, key, end, curRev, options);
  }

  /** @internal */
  readRevision(tx: ReadTxn, main: number, sub: number): KeyValue {
    return this.readKeyValue(tx, main, sub);
  }

  /** @internal Called when a write transaction that changed something ends. */
  advanceRevision(): number {
    return ++this.currentRev;
  }

  /** @internal */
  recordConsistentIndex(tx: BackendWriteTxn, index: number): void {
    writeConsistentIndex(tx, index);
  }
}

class StoreWriteBatch implements WriteBatch {
  /** Whether the in-memory state has changed (a rollback of the backend would then leave it wrong). */
  mutated = false;
  closed = false;
  /** The consistent index this batch records; the store takes it once the batch has applied. */
  consistentIndex: number | undefined;
  private inTxn = false;

  constructor(
    private readonly store: MvccStore,
    private readonly tx: BackendWriteTxn,
    private readonly pending: RevisionEvents[] | null,
  ) {}

  private checkOpen(): void {
    if (this.closed) throw new MvccError("Closed", "mvcc: write batch used after update returned");
  }

  get backend(): BackendWriteTxn {
    this.checkOpen();
    return this.tx;
  }

  get revision(): number {
    return this.store.currentRevision();
  }

  txn<R>(fn: (txn: TxnWrite) => R): R {
    this.checkOpen();
    if (this.inTxn) throw new Error("mvcc: write transactions do not nest");
    this.inTxn = true;
    const events = this.pending !== null ? [] : null;
    const txn = new StoreTxnWrite(this.store, this.tx, this.store.currentRevision(), events, this);
    try {
      return fn(txn);
    } finally {
      txn.ended = true;
      this.inTxn = false;
      if (txn.changes > 0) {
        const revision = this.store.advanceRevision();
        if (events !== null) this.pending!.push({ revision, events });
      }
    }
  }

  compact(rev: number): Promise<void> {
    this.checkOpen();
    if (this.inTxn) throw new Error("mvcc: compact inside a write transaction");
    const physical = this.store.beginCompaction(this.tx, rev);
    this.mutated = true;
    return physical;
  }

  setConsistentIndex(index: number): void {
    this.checkOpen();
    this.store.recordConsistentIndex(this.tx, index);
    this.consistentIndex = index;
  }
}

class StoreTxnWrite implements TxnWrite {
  changes = 0;
  ended = false;
  private readonly state: KeyAtRevision = { modMain: 0, modSub: 0, createdMain: 0, version: 0 };

  constructor(
    private readonly store: MvccStore,
    private readonly tx: BackendWriteTxn,
    private readonly beginRev: number,
    private readonly events: Event[] | null,
    private readonly batch: StoreWriteBatch,
  ) {}

  get rev(): number {
    return this.changes > 0 ? this.beginRev + 1 : this.beginRev;
  }

  get compactRev(): number {
    return this.store.compactRevision();
  }

  private checkOpen(): void {
    if (this.ended) throw new MvccError("Closed", "mvcc: write transaction used after it ended");
  }

  range(key: Uint8Array, end: Uint8Array | undefined, options?: RangeOptions): RangeResult {
    this.checkOpen();
    return this.store.readAt(this.tx, key, end, this.rev, options);
  }

  put(key: Uint8Array, value: Uint8Array, lease: bigint = 0n): number {
    this.checkOpen();
    const rev = this.beginRev + 1;
    const ki = this.store.treeIndex.keyIndexForWrite(key);
    const state = this.state;
    // As of `rev`, so that an earlier change of this transaction counts (a delete resets the version).
    const existed = ki.get(rev, state);
    const created = existed ? state.createdMain : rev;
    const version = existed ? state.version + 1 : 1;
    const prevKv = existed && this.events !== null ? this.store.readRevision(this.tx, state.modMain, state.modSub) : undefined;
    const sub = this.changes;
    this.tx.put(KEY_BUCKET, encodeRevisionKey(rev, sub), encodeKeyValue(key, created, rev, version, value, lease));
    this.batch.mutated = true;
    ki.put(rev, sub);
    this.changes++;
    const leases = this.store.leases;
    if (leases !== undefined) {
      if (existed) {
        const oldLease = leases.leaseOf(key);
        if (oldLease !== 0n) leases.detach(oldLease, [key]);
      }
      if (lease !== 0n) leases.attach(lease, [key]);
    }
    if (this.events !== null) {
      const kv = makeKeyValue(ki.key, BigInt(created), BigInt(rev), BigInt(version), value, lease);
      this.events.push(makeEvent(Event_EventType.PUT, kv, prevKv));
    }
    return rev;
  }

  deleteRange(key: Uint8Array, end: Uint8Array | undefined): number {
    this.checkOpen();
    const atRev = this.rev;
    const normalizedEnd = rangeEnd(end);
    const victims: KeyIndex[] = [];
    if (normalizedEnd === undefined) {
      const ki = this.store.treeIndex.keyIndex(key);
      if (ki !== undefined && ki.get(atRev, this.state)) victims.push(ki);
    } else {
      this.store.treeIndex.visitAt(key, normalizedEnd ?? undefined, atRev, (ki) => {
        victims.push(ki);
      });
    }
    for (const ki of victims) this.deleteKey(ki);
    return victims.length;
  }

  private deleteKey(ki: KeyIndex): void {
    const rev = this.beginRev + 1;
    let prevKv: KeyValue | undefined;
    if (this.events !== null && ki.get(rev, this.state)) {
      prevKv = this.store.readRevision(this.tx, this.state.modMain, this.state.modSub);
    }
    const sub = this.changes;
    const key = ki.key;
    this.tx.put(KEY_BUCKET, encodeRevisionKey(rev, sub, true), encodeKeyValue(key, 0, 0, 0, EMPTY, 0n));
    this.batch.mutated = true;
    ki.tombstone(rev, sub);
    this.changes++;
    const leases = this.store.leases;
    if (leases !== undefined) {
      const oldLease = leases.leaseOf(key);
      if (oldLease !== 0n) leases.detach(oldLease, [key]);
    }
    if (this.events !== null) {
      this.events.push(makeEvent(Event_EventType.DELETE, makeKeyValue(key, 0n, BigInt(rev), 0n, EMPTY, 0n), prevKv));
    }
  }
}

/** Opens an `MvccStore` over `backend` (see `MvccStore.open`). */
export function openMvccStore(backend: Backend, options?: MvccStoreOptions): MvccStore {
  return MvccStore.open(backend, options);
}

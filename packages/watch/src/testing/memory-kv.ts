import { Event_EventType } from "@etcd-ts/api";
import type { Event, KeyValue } from "@etcd-ts/api";
import { keyString } from "../key-range.js";
import type { HistoryOptions, HistoryResult, RevisionObserver, WatchableKV } from "../watchable-kv.js";

type Bytes = Uint8Array | string;

const encoder = new TextEncoder();

function bytes(b: Bytes): Uint8Array {
  return typeof b === "string" ? encoder.encode(b) : b;
}

function makeKv(key: Uint8Array, value: Uint8Array, create: number, mod: number, version: number, lease: bigint): KeyValue {
  return {
    $typeName: "mvccpb.KeyValue",
    key,
    value,
    createRevision: BigInt(create),
    modRevision: BigInt(mod),
    version: BigInt(version),
    lease,
  };
}

/** The write operations of one transaction (one revision) of the fake. */
export interface MemoryTxn {
  put(key: Bytes, value: Bytes, lease?: bigint): void;
  /** Deletes the keys in range that exist (etcd's range conventions; empty `end`: the single key). */
  delete(key: Bytes, end?: Bytes): void;
}

/**
 * A faithful little MVCC implementing `WatchableKV`, for tests: every write transaction that changes
 * something takes the next revision; its events (PUT with the full KeyValue, DELETE with key and
 * mod_revision, `prevKv` when the key existed) go to the observers synchronously, then stay in a history
 * log until compacted. It also counts history reads, so tests can see how much catching up costs.
 */
export class MemoryWatchableKV implements WatchableKV {
  private rev = 1;
  private compactRev = 0;
  private readonly live = new Map<string, KeyValue>();
  /** Revisions that changed something, ascending, with their events (including `prevKv`). */
  private log: Array<{ revision: number; events: Event[] }> = [];
  private readonly observers = new Set<RevisionObserver>();
  /** Number of `history` calls and events they returned. */
  historyReads = 0;
  historyEvents = 0;

  currentRevision(): number {
    return this.rev;
  }

  compactRevision(): number {
    return this.compactRev;
  }

  subscribe(observer: RevisionObserver): () => void {
    const wrapped: RevisionObserver = (events, revision) => observer(events, revision);
    this.observers.add(wrapped);
    return () => {
      this.observers.delete(wrapped);
    };
  }

  /** One transaction; returns its revision (the current one when it changed nothing). */
  txn(fn: (txn: MemoryTxn) => void): number {
    const revision = this.rev + 1;
    const events: Event[] = [];
    fn({
      put: (k, v, lease = 0n) => {
        const key = bytes(k);
        const ks = keyString(key);
        const prev = this.live.get(ks);
        const kv = makeKv(
          key,
          bytes(v),
          prev === undefined ? revision : Number(prev.createRevision),
          revision,
          prev === undefined ? 1 : Number(prev.version) + 1,
          lease,
        );
        this.live.set(ks, kv);
        events.push({ $typeName: "mvccpb.Event", type: Event_EventType.PUT, kv, prevKv: prev });
      },
      delete: (k, e) => {
        const key = bytes(k);
        const end = e === undefined ? undefined : bytes(e);
        const keys = [...this.live.keys()]
          .filter((ks) => {
            const candidate = Buffer.from(ks, "latin1");
            if (end === undefined || end.length === 0) return Buffer.compare(candidate, key) === 0;
            if (Buffer.compare(candidate, key) < 0) return false;
            return (end.length === 1 && end[0] === 0) || Buffer.compare(candidate, end) < 0;
          })
          .sort((a, b) => Buffer.compare(Buffer.from(a, "latin1"), Buffer.from(b, "latin1")));
        for (const ks of keys) {
          const prev = this.live.get(ks)!;
          this.live.delete(ks);
          const kv: KeyValue = {
            $typeName: "mvccpb.KeyValue",
            key: prev.key,
            value: new Uint8Array(0),
            createRevision: 0n,
            modRevision: BigInt(revision),
            version: 0n,
            lease: 0n,
          };
          events.push({ $typeName: "mvccpb.Event", type: Event_EventType.DELETE, kv, prevKv: prev });
        }
      },
    });
    if (events.length === 0) return this.rev;
    this.rev = revision;
    this.log.push({ revision, events });
    for (const observer of this.observers) observer(events, revision);
    return revision;
  }

  put(key: Bytes, value: Bytes, lease?: bigint): number {
    return this.txn((t) => t.put(key, value, lease));
  }

  delete(key: Bytes, end?: Bytes): number {
    return this.txn((t) => t.delete(key, end));
  }

  /** The value of `key` now (for tests). */
  get(key: Bytes): KeyValue | undefined {
    return this.live.get(keyString(bytes(key)));
  }

  /** Forgets history below `rev` (etcd: reads below the compact revision fail). */
  compact(rev: number): void {
    if (rev <= this.compactRev) throw new Error("mvcc: required revision has been compacted");
    if (rev > this.rev) throw new Error("mvcc: required revision is a future revision");
    this.compactRev = rev;
    this.log = this.log.filter((r) => r.revision >= rev);
  }

  history(fromRev: number, toRev: number, options: HistoryOptions = {}): HistoryResult {
    if (fromRev < this.compactRev) throw new Error("mvcc: required revision has been compacted");
    if (toRev > this.rev) throw new Error("mvcc: required revision is a future revision");
    this.historyReads++;
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    const events: Event[] = [];
    let through = toRev;
    if (fromRev > toRev) return { events, through };
    // Binary search for the first revision >= fromRev.
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.revision < fromRev) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.log.length; i++) {
      const entry = this.log[i]!;
      if (entry.revision > toRev) break;
      if (events.length >= limit) {
        through = entry.revision - 1;
        break;
      }
      for (const e of entry.events) {
        events.push(options.prevKv === true ? e : { $typeName: "mvccpb.Event", type: e.type, kv: e.kv, prevKv: undefined });
      }
    }
    this.historyEvents += events.length;
    return { events, through };
  }
}

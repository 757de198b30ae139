import { RaftError } from "./errors.js";
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";
import { EMPTY_BYTES, EntryType, emptyHardState, entrySize } from "./types.js";

/**
 * The log and state raft has already persisted, seen read-only from raft's side. The application writes to
 * its storage itself (entries and hard state from each Ready, before sending that Ready's messages) and
 * raft reads from it. Methods may throw only the errors named in their contract; any other error is
 * treated as fatal by the caller.
 */
export interface Storage {
  /** The saved HardState and the ConfState of the latest snapshot (the initial membership). */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxSize` bytes in total but always at least one entry if any exists.
   * @throws RaftError Compacted if lo <= the snapshot index; RaftError Unavailable if hi > lastIndex() + 1.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * The term of entry i, for i in [firstIndex() - 1, lastIndex()] (the snapshot's index has its term).
   * @throws RaftError Compacted if i < firstIndex() - 1; RaftError Unavailable if i > lastIndex().
   */
  term(i: number): number;
  /** Index of the last entry in the log (the snapshot index if the log is empty). */
  lastIndex(): number;
  /** Index of the first entry that may still be read (snapshot index + 1). */
  firstIndex(): number;
  /**
   * The most recent snapshot, to send to a follower that is too far behind.
   * @throws RaftError SnapshotTemporarilyUnavailable if it is being built; raft retries later.
   */
  snapshot(): Snapshot;
}

export interface MemoryStorageOptions {
  /** The membership a brand-new cluster starts with (held as the ConfState of an empty snapshot). */
  confState?: ConfState;
}

/**
 * Storage backed by arrays, for tests and for a server that persists elsewhere (e.g. a WAL) and mirrors
 * the log here. `entries[0]` is a dummy entry holding the snapshot's index and term.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot;
  private ents: Entry[];

  constructor(options: MemoryStorageOptions = {}) {
    const cs = options.confState ?? { voters: [], learners: [] };
    this.snap = {
      data: EMPTY_BYTES,
      metadata: { index: 0, term: 0, confState: { voters: [...cs.voters], learners: [...cs.learners] } },
    };
    this.ents = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  hardStateSnapshot(): HardState {
    return { ...this.hardState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  private get offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.offset;
    if (lo <= offset) throw new RaftError("Compacted");
    if (hi > this.lastIndex() + 1) throw new RaftError("Unavailable");
    // Only the dummy entry: nothing to return.
    if (this.ents.length === 1) throw new RaftError("Unavailable");
    const start = lo - offset;
    return this.ents.slice(start, limitEnd(this.ents, start, hi - offset, maxSize));
  }

  term(i: number): number {
    const offset = this.offset;
    if (i < offset) throw new RaftError("Compacted");
    if (i - offset >= this.ents.length) throw new RaftError("Unavailable");
    return this.ents[i - offset]!.term;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the whole log with a snapshot received from the leader.
   * @throws RaftError SnapshotOutOfDate if it is older than the snapshot held.
   */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new RaftError("SnapshotOutOfDate");
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY_BYTES }];
  }

  /**
   * Records a snapshot of the state machine at applied index i, so it can be sent to slow followers;
   * call compact() afterwards to drop the entries it covers.
   * @throws RaftError SnapshotOutOfDate if i is not newer than the snapshot held; RaftError Unavailable if i > lastIndex().
   */
  createSnapshot(i: number, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new RaftError("SnapshotOutOfDate");
    if (i > this.lastIndex()) throw new RaftError("Unavailable");
    const cs = confState ?? this.snap.metadata.confState;
    this.snap = {
      data,
      metadata: {
        index: i,
        term: this.ents[i - this.offset]!.term,
        confState: { voters: [...cs.voters], learners: [...cs.learners] },
      },
    };
    return this.snap;
  }

  /**
   * Discards entries up to and including compactIndex. The caller must not compact past what it has
   * applied (and should have created a snapshot covering it).
   * @throws RaftError Compacted if already compacted that far; RaftError Unavailable if compactIndex > lastIndex().
   */
  compact(compactIndex: number): void {
    const offset = this.offset;
    if (compactIndex <= offset) throw new RaftError("Compacted");
    if (compactIndex > this.lastIndex()) throw new RaftError("Unavailable");
    const i = compactIndex - offset;
    const dummy = { term: this.ents[i]!.term, index: compactIndex, type: EntryType.Normal, data: EMPTY_BYTES };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries persisted from a Ready. Entries that overlap the log replace the conflicting suffix;
   * entries already covered by the snapshot are ignored. Entries must be contiguous.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    // Skip what the snapshot already covers.
    const toAppend = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const offset = toAppend[0]!.index - this.offset;
    if (offset > this.ents.length) {
      throw new Error(`raft: missing log entry [last: ${this.lastIndex()}, append at: ${toAppend[0]!.index}]`);
    }
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of toAppend) this.ents.push(e);
  }
}

/**
 * The end (exclusive) of the longest run ents[start..end) whose total size is within maxSize, but always
 * at least one entry. Walks only what it returns, so a small limit over a long log stays cheap.
 */
export function limitEnd(ents: readonly Entry[], start: number, end: number, maxSize: number): number {
  if (maxSize === Infinity || end - start <= 1) return end;
  let size = entrySize(ents[start]!);
  let i = start + 1;
  for (; i < end; i++) {
    size += entrySize(ents[i]!);
    if (size > maxSize) break;
  }
  return i;
}

/** The longest prefix of ents whose total size is within maxSize, but always at least one entry. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0 || maxSize === Infinity) return ents;
  let size = entrySize(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]!);
    if (size > maxSize) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

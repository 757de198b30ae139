import { RaftError, isRaftError } from "./errors.js";
import type { Logger } from "./logger.js";
import { Unstable } from "./log-unstable.js";
import type { Storage } from "./storage.js";
import { limitSize } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";

/**
 * The replicated log as raft sees it: stable entries in Storage followed by the unstable segment, plus
 * the commit and apply cursors. Invariant: applied <= committed <= lastIndex().
 */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the application has applied (told through advance()). */
  applied: number;
  private readonly logger: Logger;
  /** Bytes of committed entries handed out per Ready. */
  readonly maxNextEntriesSize: number;

  constructor(storage: Storage, logger: Logger, maxNextEntriesSize = Infinity) {
    this.storage = storage;
    this.logger = logger;
    this.maxNextEntriesSize = maxNextEntriesSize;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.entries)=${this.unstable.entries.length}`;
  }

  /**
   * Appends entries after (index, logTerm) if that entry matches our log (the AppendEntries consistency
   * check) and returns the new last index, or undefined if it does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`raft: entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`raft: after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of ents that is not in our log (a different term or beyond the end),
   * or 0 if all of them are already there.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) {
        if (e.index <= this.lastIndex()) {
          this.logger.info(
            `found conflict at index ${e.index} [existing term: ${this.zeroTermOnError(e.index)}, conflicting term: ${e.term}]`,
          );
        }
        return e.index;
      }
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term (or whose term is unknown because it was compacted).
   * The leader uses it to skip a whole term of mismatching entries per round trip (fast back-off).
   */
  findConflictByTerm(index: number, term: number): number {
    const li = this.lastIndex();
    if (index > li) return index;
    for (;;) {
      let t: number;
      try {
        t = this.term(index);
      } catch {
        return index;
      }
      if (t <= term) return index;
      index--;
    }
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, limited to maxNextEntriesSize bytes. */
  nextEntries(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntriesSize);
    return [];
  }

  hasNextEntries(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined && this.unstable.snapshot.metadata.index !== 0;
  }

  /** The snapshot to send to a follower. @throws RaftError SnapshotTemporarilyUnavailable */
  snapshot(): Snapshot {
    if (this.unstable.snapshot) return this.unstable.snapshot;
    return this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // Never decrease the commit index.
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new Error(`raft: tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]`);
      }
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(`raft: applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * The term of entry i. @throws RaftError Compacted / RaftError Unavailable as Storage.term does; returns 0 for
   * an index beyond the log or before the dummy entry's predecessor, like etcd.
   */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** term(i), or 0 if i was compacted. */
  zeroTermOnError(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (isRaftError(e, "Compacted") || isRaftError(e, "Unavailable")) return 0;
      throw e;
    }
  }

  /** Entries from i to the end, at most maxSize bytes (but at least one). @throws RaftError Compacted */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), Infinity);
      } catch (e) {
        // A concurrent compaction can race in a real system; retry.
        if (isRaftError(e, "Compacted")) continue;
        throw e;
      }
    }
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours if its last term is higher, or equal
   * with an index at least as high. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lastIndex >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    try {
      return this.term(i) === term;
    } catch {
      return false;
    }
  }

  /** Commits maxIndex if its entry is from `term` — a leader only commits its own term's entries by
   * counting replicas (§5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnError(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.logger.info(`log [${this.toString()}] starts to restore snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi) from storage and the unstable segment. @throws RaftError Compacted */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, Math.min(hi, uoff), maxSize);
      } catch (e) {
        if (isRaftError(e, "Unavailable")) {
          throw new Error(`raft: entries[${lo}:${Math.min(hi, uoff)}) is unavailable from storage`);
        }
        throw e;
      }
      // Storage hit the size limit before the unstable part: stop here.
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      if (ents.length === 0) return this.unstable.slice(Math.max(lo, uoff), hi, maxSize);
      // Entries from storage came within the limit; add unstable ones while the total stays within it.
      const unstable = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.concat(unstable);
    }
    return limitSize(ents, maxSize);
  }

  /** @throws RaftError Compacted if lo was compacted; programming errors for other out-of-range requests. */
  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw new Error(`raft: invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new RaftError("Compacted");
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw new Error(`raft: slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}

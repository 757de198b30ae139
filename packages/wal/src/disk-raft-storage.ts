// Raft's Storage backed by disk: a WAL (entries, hard state, snapshot markers) and a Snapshotter, with
// the log since the last snapshot mirrored in a MemoryStorage that raft reads from.
//
// Layout of the data directory: `<dir>/wal/` (segments) and `<dir>/snap/` (snapshot files), as etcd's
// `member/wal` and `member/snap`.

import { join } from "node:path";
import {
  MemoryStorage,
  RaftError,
  isEmptySnapshot,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  type Storage,
} from "@etcd-ts/raft";
import { WalError } from "./errors.js";
import type { SnapshotMarker } from "./record.js";
import { Snapshotter } from "./snapshotter.js";
import { Wal, type WalFileOps, type WalMetrics, type WalOptions } from "./wal.js";

export interface DiskRaftStorageOptions {
  /** Written once when the log is created (member ID, cluster ID, ...); ignored when it exists. */
  metadata?: Uint8Array;
  /** The membership a brand-new log starts with (saved as a snapshot at index 0); ignored when it exists. */
  confState?: ConfState;
  /** WAL segment size in bytes (default 64 MiB). */
  segmentSize?: number;
  /** Zero-fill WAL segments in advance (default true; see WalOptions.preallocate). */
  preallocate?: boolean;
  /** Snapshot files kept (default 5). */
  snapshotRetention?: number;
  /** The WAL's file operations (see WalOptions.fileOps): the seam for disk-fault tests. */
  walFileOps?: WalFileOps;
}

/** What one Ready asks to persist; `mustSync: false` (only the commit index changed) skips the fsync. */
export interface PersistUpdate {
  hardState?: HardState | undefined;
  entries: readonly Entry[];
  snapshot?: Snapshot | undefined;
  mustSync?: boolean;
}

const EMPTY = new Uint8Array(0);

function sameMarker(a: SnapshotMarker, b: SnapshotMarker): boolean {
  return a.index === b.index && a.term === b.term;
}

/**
 * Implements raft's read-only `Storage` from memory and makes every change durable through the WAL.
 *
 * Contract: what raft reads through `Storage` after persist()/applySnapshot()/createSnapshot() resolve is
 * on disk. append() and setHardState() are the low-level, buffered alternative: they update memory at
 * once and are durable only after sync().
 */
export class DiskRaftStorage implements Storage {
  /** The bytes given as `metadata` when the log was created. */
  readonly metadata: Uint8Array;
  /** Whether open() created a new log (no WAL existed). */
  readonly isNew: boolean;
  private readonly wal: Wal;
  private readonly snapshotter: Snapshotter;
  private readonly memory: MemoryStorage;
  /** Serializes snapshot creation against itself. */
  private snapshotChain: Promise<unknown> = Promise.resolve();

  private constructor(wal: Wal, snapshotter: Snapshotter, memory: MemoryStorage, metadata: Uint8Array, isNew: boolean) {
    this.wal = wal;
    this.snapshotter = snapshotter;
    this.memory = memory;
    this.metadata = metadata;
    this.isNew = isNew;
  }

  /** Whether `dir` holds a log (so open() would recover rather than create). The server uses this to
   * tell a restarting member from a new one, as etcd does with wal.Exist. */
  static exists(dir: string): Promise<boolean> {
    return Wal.exists(join(dir, "wal"));
  }

  /**
   * Opens the log in `dir`, creating it if there is none. Recovery: the newest intact snapshot file whose
   * marker is in the WAL (broken files are set aside as `.broken`), then the WAL's entries after it, then
   * the last hard state. A torn WAL tail is repaired; corruption elsewhere throws WalError Corrupt.
   */
  static async open(dir: string, options: DiskRaftStorageOptions = {}): Promise<DiskRaftStorage> {
    const walDir = join(dir, "wal");
    const snapshotter = new Snapshotter(join(dir, "snap"), { retain: options.snapshotRetention });
    const walOptions: WalOptions = {};
    if (options.segmentSize !== undefined) walOptions.segmentSize = options.segmentSize;
    if (options.preallocate !== undefined) walOptions.preallocate = options.preallocate;
    if (options.walFileOps !== undefined) walOptions.fileOps = options.walFileOps;
    if (!(await Wal.exists(walDir))) {
      const confState = options.confState ?? { voters: [], learners: [] };
      // The snapshot file first: the WAL's initial marker (0, 0) then always has its file.
      await snapshotter.save({ data: EMPTY, metadata: { index: 0, term: 0, confState } });
      const metadata = options.metadata ?? EMPTY;
      const wal = await Wal.create(walDir, metadata, walOptions);
      return new DiskRaftStorage(wal, snapshotter, new MemoryStorage({ confState }), metadata, true);
    }
    await snapshotter.removeTemps();
    // The newest snapshot file whose marker the WAL holds, picked while the WAL is read for opening: one
    // read of the log, not two (a restart's time and peak memory grow with the log since the snapshot).
    const found: { snap?: Snapshot | undefined } = {};
    const opened = await Wal.open(walDir, {
      ...walOptions,
      chooseAt: async (markers) => {
        const snap = await snapshotter.loadNewest((m) => markers.some((w) => sameMarker(w, m)));
        found.snap = snap;
        return snap ? { index: snap.metadata.index, term: snap.metadata.term } : { index: 0, term: 0 };
      },
    });
    const { snap } = found;
    const at = opened.snapshotMarker;
    try {
      let memory: MemoryStorage;
      if (snap && !isEmptySnapshot(snap)) {
        memory = new MemoryStorage();
        memory.applySnapshot(snap);
      } else {
        memory = new MemoryStorage(snap ? { confState: snap.metadata.confState } : {});
      }
      const hs = { ...opened.hardState };
      // A crash can keep a snapshot marker but lose the hard state saved after it; the snapshot's
      // entries are committed by definition, and raft refuses a commit index below its snapshot.
      if (hs.commit < at.index) hs.commit = at.index;
      if (hs.term < at.term) hs.term = at.term;
      memory.setHardState(hs);
      memory.append(opened.entries);
      return new DiskRaftStorage(opened.wal, snapshotter, memory, opened.metadata, false);
    } catch (e) {
      await opened.wal.close();
      throw e;
    }
  }

  // --- raft's Storage ------------------------------------------------------------------------------

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.memory.initialState();
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.memory.entries(lo, hi, maxSize);
  }

  term(i: number): number {
    return this.memory.term(i);
  }

  lastIndex(): number {
    return this.memory.lastIndex();
  }

  firstIndex(): number {
    return this.memory.firstIndex();
  }

  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  // --- writes ---------------------------------------------------------------------------------------

  /** The last hard state persisted (or buffered by setHardState). */
  get hardState(): HardState {
    return this.memory.hardStateSnapshot();
  }

  /**
   * Persists one Ready: an incoming snapshot (file, then WAL marker), then entries and hard state, all
   * made durable by one WAL fsync (skipped only when `mustSync` is false and there is no snapshot); then
   * updates what raft reads. Resolves when durable — send the Ready's messages after that.
   */
  async persist(update: PersistUpdate): Promise<void> {
    const snap = update.snapshot && !isEmptySnapshot(update.snapshot) ? update.snapshot : undefined;
    if (snap) {
      if (snap.metadata.index <= this.memory.snapshot().metadata.index) throw new RaftError("SnapshotOutOfDate");
      await this.snapshotter.save(snap);
      this.wal.saveSnapshotMarker({ index: snap.metadata.index, term: snap.metadata.term }, { replacesLog: true });
    }
    const entries = skipCovered(update.entries, snap ? snap.metadata.index : this.coveredIndex());
    this.wal.save(update.hardState, entries);
    if (update.mustSync !== false || snap) await this.wal.sync();
    if (snap) this.memory.applySnapshot(snap);
    this.memory.append(entries);
    if (update.hardState) this.memory.setHardState(update.hardState);
  }

  /** Installs a snapshot received from the leader (replacing the whole log); durable when it resolves.
   * @throws RaftError SnapshotOutOfDate if not newer than the snapshot held. */
  async applySnapshot(snap: Snapshot): Promise<void> {
    await this.persist({ entries: [], snapshot: snap });
  }

  /** Buffers entries (replacing a conflicting tail) and shows them to raft at once; durable after sync(). */
  append(entries: readonly Entry[]): void {
    const kept = skipCovered(entries, this.coveredIndex());
    this.wal.save(undefined, kept);
    this.memory.append(kept);
  }

  /** Buffers the hard state; durable after sync(). */
  setHardState(hs: HardState): void {
    this.wal.save(hs, []);
    this.memory.setHardState(hs);
  }

  /** Makes everything buffered durable (one fsync). */
  sync(): Promise<void> {
    return this.wal.sync();
  }

  /** The WAL's cumulative counters (fsyncs, bytes written) for metrics. */
  walMetrics(): WalMetrics {
    return this.wal.metrics();
  }

  /** See `Wal.onFsync`: every WAL fsync's duration in milliseconds, as it completes. */
  onWalFsync(observer: (millis: number) => void): () => void {
    return this.wal.onFsync(observer);
  }

  /**
   * Records a snapshot of the state machine at applied index `index` (file, then WAL marker, synced) so
   * slow followers can be sent it and the log before it compacted. Resolves with the snapshot once durable.
   * @throws RaftError SnapshotOutOfDate if `index` is not newer than the snapshot held; RaftError Unavailable if
   * `index` > lastIndex().
   */
  createSnapshot(index: number, confState: ConfState | undefined, data: Uint8Array): Promise<Snapshot> {
    const run = this.snapshotChain.then(async () => {
      const current = this.memory.snapshot().metadata;
      if (index <= current.index) throw new RaftError("SnapshotOutOfDate");
      if (index > this.memory.lastIndex()) throw new RaftError("Unavailable");
      const cs = confState ?? current.confState;
      const snap: Snapshot = {
        data,
        metadata: { index, term: this.memory.term(index), confState: { voters: [...cs.voters], learners: [...cs.learners] } },
      };
      await this.snapshotter.save(snap);
      this.wal.saveSnapshotMarker({ index, term: snap.metadata.term });
      await this.wal.sync();
      return this.memory.createSnapshot(index, cs, data);
    });
    this.snapshotChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Drops the entries up to `index` from memory and deletes the WAL segments made unnecessary by the
   * newest snapshot (restart begins at that snapshot, so the WAL before it is never read again; memory
   * may keep entries before it, after `index`, to catch slow followers up without a snapshot). `index`
   * must not be past the snapshot (raft must be able to send a follower everything after what it
   * compacted: the snapshot, then entries).
   * @throws WalError InvalidArgument past the snapshot; RaftError Compacted if already compacted that far.
   */
  async compact(index: number): Promise<void> {
    const snapIndex = this.memory.snapshot().metadata.index;
    if (index > snapIndex) {
      throw new WalError("InvalidArgument", `cannot compact to ${index}: the newest snapshot is at ${snapIndex}`);
    }
    this.memory.compact(index);
    await this.wal.releaseTo(snapIndex);
  }

  /** Entries up to here are compacted or covered by the snapshot: committed, so never rewritten. */
  private coveredIndex(): number {
    return Math.max(this.memory.firstIndex() - 1, this.memory.snapshot().metadata.index);
  }

  /** WAL segment file names, oldest first (for tests and status). */
  walSegments(): string[] {
    return this.wal.segmentNames();
  }

  /** Syncs anything buffered and closes the WAL. */
  async close(): Promise<void> {
    await this.snapshotChain;
    await this.wal.close();
  }
}

/** The entries after `covered` (the snapshot index): raft may hand over entries a snapshot includes. */
function skipCovered(entries: readonly Entry[], covered: number): readonly Entry[] {
  const first = entries[0];
  if (!first || first.index > covered) return entries;
  return entries.slice(covered - first.index + 1);
}

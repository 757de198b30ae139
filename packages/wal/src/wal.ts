// The write-ahead log: raft's entries, hard state and snapshot markers, appended to a directory of
// segment files and made durable by sync().
//
// Durability contract: save() and saveSnapshotMarker() only encode into memory (they are synchronous and
// cheap); sync() writes everything saved so far and fdatasyncs it, and what was saved before a call to
// sync() is durable when that call resolves. Everything saved between two syncs is written with one
// write and made durable with one fdatasync — that is the group commit. A crash loses at most what was
// saved but not yet synced; open() recovers every record up to the last complete one.

import { mkdir, open, rename, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { isEmptyHardState, type Entry, type HardState } from "@etcd-ts/raft";
import { DirLock } from "./dir-lock.js";
import { fsyncDir, nodeFileOps, type WalFileOps } from "./durable-fs.js";
import { WalError, ioFailure } from "./errors.js";
import {
  encodeRecords,
  entryRecord,
  hardStateRecord,
  metadataRecord,
  segmentHeaderRecord,
  snapshotMarkerRecord,
  type RecordSpec,
  type SnapshotMarker,
  type StoredSnapshotMarker,
} from "./record.js";
import { TEMP_SUFFIX, listSegments, readWal, segmentFileName, type SegmentInfo } from "./reader.js";

export type { SnapshotMarker } from "./record.js";

/** The name of the zero-filled file prepared for the next segment (a temp file until it is used). */
const PREPARED_NEXT = `next-segment${TEMP_SUFFIX}`;
const ZEROS = Buffer.alloc(1024 * 1024);

/** etcd's segment size: a segment is closed and a new one started once it reaches this many bytes. */
export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;

export interface WalOptions {
  /** Bytes after which the next save starts a new segment. Default 64 MiB. */
  segmentSize?: number;
  /**
   * Fill each new segment with zeros up to segmentSize before using it (default true). Overwriting
   * allocated blocks lets fdatasync skip the file-size and block-allocation metadata that appending
   * needs: on the disk measured in README.md it makes a small sync about twice as fast. The next
   * segment is prepared in the background once the current one is half full. A reader treats an
   * all-zero rest of a segment as its end.
   */
  preallocate?: boolean;
  /**
   * The writes and fdatasyncs of segment files go through these (default: the real file system). Tests
   * inject disk faults here; any throw fails the Wal for good (see `WalError` `Failed`).
   */
  fileOps?: WalFileOps;
}

export type { WalFileOps } from "./durable-fs.js";

export interface WalOpenOptions extends WalOptions {
  /**
   * The snapshot the caller restores from; entries after it are returned. Must be one of the WAL's
   * markers (see Wal.readSnapshotMarkers). Default: the newest marker in the WAL.
   */
  at?: SnapshotMarker;
  /**
   * Picks `at` from the markers the WAL holds (oldest first), once it has been read: a caller that must
   * match the markers against its snapshot files reads the WAL once instead of twice (every segment is
   * read whole, preallocated tail included). Ignored when `at` is given.
   */
  chooseAt?: (markers: readonly SnapshotMarker[]) => Promise<SnapshotMarker>;
}

export interface WalOpenResult {
  wal: Wal;
  /** The bytes given to Wal.create. */
  metadata: Uint8Array;
  /** The last hard state saved (all zero if none was). */
  hardState: HardState;
  /** The snapshot the entries follow (options.at, or the newest marker). */
  snapshotMarker: SnapshotMarker;
  /** The log after snapshotMarker.index, contiguous, with overwritten entries resolved. */
  entries: Entry[];
  /** Set when open() cut a torn write off the end of the last segment. */
  repaired?: { file: string; offset: number; droppedBytes: number; reason: string };
}

/** Counters for monitoring (etcd exports the like as wal_fsync_duration_seconds). */
export interface WalMetrics {
  /** fdatasyncs of segment data done by sync() (not counting segment creation). */
  fsyncs: number;
  /** Total milliseconds spent in those fdatasyncs. */
  fsyncMillis: number;
  /** Record bytes written. */
  bytesWritten: number;
  /** Segments started since open/create. */
  segmentsCreated: number;
}

type PendingWrite =
  | { kind: "data"; buf: Buffer }
  /** Close the current segment and start `segment` with the already-encoded header records. */
  | { kind: "roll"; segment: SegmentInfo; header: Buffer };

interface SegmentState extends SegmentInfo {
  /** The latest snapshot marker when the segment was started (repeated in its header). */
  headerMarker: SnapshotMarker;
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0n, commit: 0 };

/**
 * A write-ahead log in one directory. Not safe for two writers: the directory is locked while open.
 *
 * Every segment starts with a header, the metadata, the current hard state and the current snapshot
 * marker, so segments before a snapshot can be deleted (releaseTo) without losing state.
 */
export class Wal {
  readonly dir: string;
  private readonly segmentSize: number;
  private readonly preallocate: boolean;
  private readonly ops: WalFileOps;
  /** The zero-filled file for the next segment, being prepared (resolves to its path, or undefined if
   * preparing failed: the roll then creates the file itself). */
  private preparedNext: Promise<string | undefined> | undefined;
  private readonly lock: DirLock;
  private readonly metadata: Uint8Array;
  private segments: SegmentState[];
  private fh: FileHandle | undefined;
  /** The file `fh` is open on (the newest segment). */
  private path: string;
  /** Bytes of the current segment on disk (the write position). */
  private written: number;
  /** Bytes of the newest segment including what is saved but not yet written. */
  private logicalSize: number;
  private chain: number;
  private last: number;
  private hs: HardState;
  private marker: StoredSnapshotMarker;
  /** Distinct markers that are (or will be, once synced) in the remaining segments, oldest first. */
  private markers: SnapshotMarker[];
  private pending: PendingWrite[] = [];
  private savedCount = 0;
  private durableCount = 0;
  private flushing: Promise<void> | undefined;
  /** Serializes file work (flushes, releases, close) in call order. */
  private ioChain: Promise<unknown> = Promise.resolve();
  private failure: WalError | undefined;
  private closed = false;
  private readonly counters: WalMetrics = { fsyncs: 0, fsyncMillis: 0, bytesWritten: 0, segmentsCreated: 0 };
  private readonly fsyncObservers = new Set<(millis: number) => void>();

  private constructor(init: {
    dir: string;
    segmentSize: number;
    preallocate: boolean;
    ops: WalFileOps;
    lock: DirLock;
    metadata: Uint8Array;
    segments: SegmentState[];
    fh: FileHandle;
    written: number;
    chain: number;
    lastIndex: number;
    hardState: HardState;
    marker: StoredSnapshotMarker;
    markers: SnapshotMarker[];
  }) {
    this.dir = init.dir;
    this.segmentSize = init.segmentSize;
    this.preallocate = init.preallocate;
    this.ops = init.ops;
    this.lock = init.lock;
    this.metadata = init.metadata;
    this.segments = init.segments;
    this.fh = init.fh;
    this.path = join(init.dir, init.segments[init.segments.length - 1]!.name);
    this.written = init.written;
    this.logicalSize = init.written;
    this.chain = init.chain;
    this.last = init.lastIndex;
    this.hs = init.hardState;
    this.marker = init.marker;
    this.markers = init.markers;
  }

  /** Whether `dir` holds WAL segments. */
  static async exists(dir: string): Promise<boolean> {
    return (await listSegments(dir)).segments.length > 0;
  }

  /**
   * Creates a WAL in `dir` (created if missing) holding `metadata`, durably: the first segment is written
   * to a temp file, synced and renamed into place.
   * @throws WalError Exists if `dir` already holds segments; Locked.
   */
  static async create(dir: string, metadata: Uint8Array, options: WalOptions = {}): Promise<Wal> {
    await mkdir(dir, { recursive: true });
    await fsyncDir(dirname(dir));
    const lock = await DirLock.acquire(dir);
    try {
      if ((await listSegments(dir)).segments.length > 0) throw new WalError("Exists", "a WAL already exists", { file: dir });
      const marker: StoredSnapshotMarker = { index: 0, term: 0, replacesLog: false };
      const segment: SegmentState = { seq: 0, firstIndex: 1, name: segmentFileName(0, 1), headerMarker: marker };
      const { buf, chain } = encodeRecords(0, segmentHeaderRecords(0, 0, metadata, EMPTY_HARD_STATE, marker));
      const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
      const preallocate = options.preallocate ?? true;
      const ops = options.fileOps ?? nodeFileOps;
      let fh: FileHandle;
      try {
        fh = await createSegmentFile(ops, dir, segment.name, buf, preallocate ? segmentSize : 0, undefined);
      } catch (e) {
        // Preallocating the first segment is where a new member on a full disk stops: say where.
        throw ioFailure("creating the first WAL segment", join(dir, segment.name), e);
      }
      return new Wal({
        dir,
        segmentSize,
        preallocate,
        ops,
        lock,
        metadata: new Uint8Array(metadata),
        segments: [segment],
        fh,
        written: buf.length,
        chain,
        lastIndex: 0,
        hardState: EMPTY_HARD_STATE,
        marker,
        markers: [{ index: 0, term: 0 }],
      });
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /**
   * Opens the WAL in `dir` for appending and returns what it holds. Reads and validates every segment
   * first; only then, if the last segment ends in a torn write (a record cut short, or sectors that
   * were never written), truncates it to its last complete record and syncs, and deletes temp files of
   * an interrupted segment roll. On any error nothing has been modified.
   * @throws WalError NotFound, Corrupt (with file and offset), SnapshotNotFound, Locked.
   */
  static async open(dir: string, options: WalOpenOptions = {}): Promise<WalOpenResult> {
    if (!(await Wal.exists(dir))) throw new WalError("NotFound", "no WAL segments", { file: dir });
    const lock = await DirLock.acquire(dir);
    let fh: FileHandle | undefined;
    try {
      const contents = await readWal(dir);
      const at =
        options.at ?? (options.chooseAt ? await options.chooseAt(contents.markers) : contents.markers[contents.markers.length - 1]!);
      const entries = contents.entriesAfter(at);
      const { tail } = contents;
      fh = await open(tail.file, "r+");
      let repaired: WalOpenResult["repaired"];
      if (tail.reason !== undefined) {
        // Truncation also drops the segment's preallocated zeros; it is appended to until the next roll.
        await fh.truncate(tail.validEnd);
        await fh.datasync();
        repaired = { file: tail.file, offset: tail.validEnd, droppedBytes: tail.size - tail.validEnd, reason: tail.reason };
      }
      if (contents.temps.length > 0) {
        for (const name of contents.temps) await unlink(join(dir, name)).catch(() => undefined);
        await fsyncDir(dir);
      }
      const segments: SegmentState[] = contents.segments.map((s) => ({
        ...s,
        headerMarker: contents.headerMarkers.get(s.seq) ?? { index: 0, term: 0 },
      }));
      const wal = new Wal({
        dir,
        segmentSize: options.segmentSize ?? DEFAULT_SEGMENT_SIZE,
        preallocate: options.preallocate ?? true,
        ops: options.fileOps ?? nodeFileOps,
        lock,
        metadata: contents.metadata,
        segments,
        fh,
        written: tail.validEnd,
        chain: contents.chain,
        lastIndex: contents.lastIndex,
        hardState: contents.hardState,
        marker: contents.marker,
        markers: contents.markers.slice(),
      });
      const result: WalOpenResult = {
        wal,
        metadata: contents.metadata,
        hardState: contents.hardState,
        snapshotMarker: { index: at.index, term: at.term },
        entries,
      };
      if (repaired) result.repaired = repaired;
      return result;
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await lock.release();
      throw e;
    }
  }

  /**
   * The snapshot markers in the WAL at `dir`, oldest first, without opening it for writing (a torn
   * tail is ignored, not repaired). A snapshot file is usable for restart only if its marker is here.
   * @throws WalError NotFound, Corrupt.
   */
  static async readSnapshotMarkers(dir: string): Promise<SnapshotMarker[]> {
    return (await readWal(dir)).markers;
  }

  /** Index of the last entry saved (the snapshot marker's index if the log after it is empty). */
  get lastIndex(): number {
    return this.last;
  }

  /** The last hard state saved. */
  get hardState(): HardState {
    return { ...this.hs };
  }

  /** The newest snapshot marker saved. */
  get snapshotMarker(): SnapshotMarker {
    return { index: this.marker.index, term: this.marker.term };
  }

  /**
   * Appends `entries` and then `hardState` (skipped when undefined or empty). Synchronous: the records
   * are encoded into memory and become durable with the next sync().
   *
   * Entries must be contiguous. The first may be at any index in (snapshot marker, lastIndex + 1]: an
   * entry at index i replaces the saved entries >= i, as a raft follower's log requires when a new
   * leader overwrites an uncommitted tail.
   * @throws WalError InvalidArgument (nothing is saved), Closed, Failed.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.assertUsable();
    const first = entries[0];
    if (first) {
      if (first.index <= this.marker.index) {
        throw new WalError("InvalidArgument", `entry ${first.index} is at or below the snapshot marker ${this.marker.index}`);
      }
      if (first.index > this.last + 1) {
        throw new WalError("InvalidArgument", `entry ${first.index} would leave a gap after ${this.last}`);
      }
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== first.index + i) {
          throw new WalError("InvalidArgument", `entries are not contiguous at ${entries[i]!.index}`);
        }
      }
    }
    const records: RecordSpec[] = entries.map(entryRecord);
    const withHardState = hardState !== undefined && !isEmptyHardState(hardState);
    if (withHardState) records.push(hardStateRecord(hardState));
    if (records.length === 0) return;
    this.append(records);
    if (first) this.last = first.index + entries.length - 1;
    if (withHardState) this.hs = { ...hardState };
    this.maybeRoll();
  }

  /**
   * Records that a snapshot at (index, term) exists (its file must already be durable — see Snapshotter):
   * the log may be read starting after it, and releaseTo() may drop the segments before it. Durable with
   * the next sync(). With `replacesLog` (a snapshot installed from the leader) every entry the log held
   * is discarded; otherwise entries after `index` stay. A marker beyond the last entry always empties
   * the log, which then continues at index + 1.
   * @throws WalError InvalidArgument if older than the newest marker; Closed, Failed.
   */
  saveSnapshotMarker(marker: SnapshotMarker, options: { replacesLog?: boolean } = {}): void {
    this.assertUsable();
    if (marker.index < this.marker.index) {
      throw new WalError("InvalidArgument", `snapshot marker ${marker.index} is older than ${this.marker.index}`);
    }
    const stored: StoredSnapshotMarker = { index: marker.index, term: marker.term, replacesLog: options.replacesLog ?? false };
    this.append([snapshotMarkerRecord(stored)]);
    if (stored.replacesLog || stored.index > this.last) this.last = stored.index;
    this.marker = stored;
    const prev = this.markers[this.markers.length - 1];
    if (!prev || prev.index !== marker.index || prev.term !== marker.term) this.markers.push({ index: marker.index, term: marker.term });
    this.maybeRoll();
  }

  /**
   * Writes everything saved so far and fdatasyncs it; resolves when it is durable. Calls made while a
   * sync is in flight are served together by the next one (group commit). The work runs on libuv's
   * thread pool, so the event loop keeps serving meanwhile.
   * @throws WalError Failed if a write or fsync failed (this one or an earlier one), Closed.
   */
  async sync(): Promise<void> {
    if (this.failure) throw this.failure;
    const target = this.savedCount;
    while (this.durableCount < target) {
      // A flush that failed while this loop awaited sets it (the narrowing from the check above is stale).
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition, @typescript-eslint/only-throw-error
      if (this.failure) throw this.failure;
      if (!this.flushing) {
        this.flushing = this.serialized(() => this.flush()).finally(() => {
          this.flushing = undefined;
        });
      }
      await this.flushing;
    }
  }

  /**
   * Deletes the segments that hold nothing after the newest snapshot marker at or below `index`: raft
   * will never need their entries again, and the marker (with the hard state and metadata) is repeated in
   * a later segment. Syncs first, so the marker it relies on is durable. The newest segment is never
   * deleted. Segments are deleted oldest first, so a crash midway leaves a valid WAL.
   * @throws WalError Failed, Closed.
   */
  async releaseTo(index: number): Promise<void> {
    await this.sync();
    await this.serialized(async () => {
      this.assertUsable();
      let marker: SnapshotMarker | undefined;
      for (const m of this.markers) if (m.index <= index) marker = m;
      if (!marker) return;
      // Segments 0..k-1 may go when segment k started at or below marker + 1: the entries in them that
      // are still part of the log are all below segment k's first index. Names are not monotonic (a
      // tail overwrite can lower them), so take the newest such k.
      let drop = 0;
      for (let k = 1; k < this.segments.length; k++) {
        if (this.segments[k]!.firstIndex <= marker.index + 1) drop = k;
      }
      if (drop === 0) return;
      try {
        for (let i = 0; i < drop; i++) await unlink(join(this.dir, this.segments[i]!.name));
        await fsyncDir(this.dir);
      } catch (e) {
        throw this.fail("deleting released segments", e);
      }
      this.segments = this.segments.slice(drop);
      const oldest = this.segments[0]!.headerMarker.index;
      this.markers = this.markers.filter((m) => m.index >= oldest);
    });
  }

  /** A copy of the counters. */
  metrics(): WalMetrics {
    return { ...this.counters };
  }

  /**
   * Calls `observer` with the milliseconds of every fsync as it completes (for a latency histogram,
   * which the cumulative `metrics()` cannot give). Returns the function that removes it.
   */
  onFsync(observer: (millis: number) => void): () => void {
    this.fsyncObservers.add(observer);
    return () => this.fsyncObservers.delete(observer);
  }

  /** The segment files currently in the WAL, oldest first (for tests and status). */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /** Syncs what was saved (unless the Wal has failed), closes the file and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failure) await this.sync().catch(() => undefined);
    this.closed = true;
    await this.serialized(async () => {
      await this.fh?.close().catch(() => undefined);
      this.fh = undefined;
      const prepared = await this.preparedNext;
      this.preparedNext = undefined;
      if (prepared) await unlink(prepared).catch(() => undefined);
    });
    await this.lock.release();
  }

  // --- internals ----------------------------------------------------------------------------------

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new WalError("Closed", "the WAL is closed", { file: this.dir });
  }

  /** Makes the Wal refuse all further work; the first failure is the one every later call reports. */
  private fail(what: string, cause: unknown, file: string = this.dir): WalError {
    this.failure ??= ioFailure(
      what,
      file,
      cause,
      "; nothing saved since the last successful sync is durable and the WAL takes no more writes (restart to recover from what is on disk)",
    );
    return this.failure;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.ioChain.then(fn, fn);
    this.ioChain = run.catch(() => undefined);
    return run;
  }

  private append(records: readonly RecordSpec[]): void {
    const { buf, chain } = encodeRecords(this.chain, records);
    this.chain = chain;
    this.pending.push({ kind: "data", buf });
    this.logicalSize += buf.length;
    this.savedCount++;
  }

  /** Starts a new segment (in memory; the next flush creates the file) once the current one is full. */
  private maybeRoll(): void {
    if (this.logicalSize < this.segmentSize) return;
    const seq = this.segments[this.segments.length - 1]!.seq + 1;
    const marker: StoredSnapshotMarker = { index: this.marker.index, term: this.marker.term, replacesLog: false };
    const segment: SegmentState = {
      seq,
      firstIndex: this.last + 1,
      name: segmentFileName(seq, this.last + 1),
      headerMarker: { index: marker.index, term: marker.term },
    };
    const { buf, chain } = encodeRecords(this.chain, segmentHeaderRecords(seq, this.chain, this.metadata, this.hs, marker));
    this.chain = chain;
    this.pending.push({ kind: "roll", segment, header: buf });
    this.segments.push(segment);
    this.logicalSize = buf.length;
    this.savedCount++;
  }

  /**
   * Writes the pending records (rolling segments on the way) and fdatasyncs. Runs serialized. Any failure
   * fails the Wal for good: after a failed fdatasync the kernel may have dropped the dirty pages and
   * marked them clean, so a second fdatasync on the same file could succeed without the data being on
   * disk ("fsyncgate"); nothing is retried, and nothing saved since the last sync is acknowledged.
   */
  private async flush(): Promise<void> {
    this.assertUsable();
    const writes = this.pending;
    const target = this.savedCount;
    this.pending = [];
    let bufs: Buffer[] = [];
    for (const w of writes) {
      if (w.kind === "data") {
        bufs.push(w.buf);
        continue;
      }
      // The old segment is complete and durable before the new one exists: readers rely on only the
      // newest segment having a torn tail.
      const fh = this.fh!;
      await this.writeOut(bufs);
      bufs = [];
      await this.datasync(fh);
      this.fh = undefined;
      await this.attempt("closing", this.path, () => fh.close());
      const prepared = await this.preparedNext;
      this.preparedNext = undefined;
      const path = join(this.dir, w.segment.name);
      this.fh = await this.attempt("starting the segment", path, () =>
        createSegmentFile(this.ops, this.dir, w.segment.name, w.header, this.preallocate ? this.segmentSize : 0, prepared),
      );
      this.path = path;
      this.written = w.header.length;
      this.counters.bytesWritten += w.header.length;
      this.counters.segmentsCreated++;
    }
    await this.writeOut(bufs);
    await this.datasync(this.fh!);
    if (this.preallocate && !this.preparedNext && this.written >= this.segmentSize / 2) {
      this.preparedNext = prepareZeroFile(this.ops, join(this.dir, PREPARED_NEXT), this.segmentSize);
    }
    this.durableCount = target;
  }

  /** Runs one file operation; a failure fails the Wal with the operation, the file and the errno. */
  private async attempt<T>(what: string, path: string, op: () => T | Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw this.fail(what, e, path);
    }
  }

  private async writeOut(bufs: readonly Buffer[]): Promise<void> {
    if (bufs.length === 0) return;
    const fh = this.fh!;
    const n = await this.attempt(`writing at offset ${this.written}`, this.path, () => this.ops.write(fh, this.path, bufs, this.written));
    this.written += n;
    this.counters.bytesWritten += n;
  }

  private async datasync(fh: FileHandle): Promise<void> {
    const start = performance.now();
    await this.attempt("fdatasync", this.path, () => this.ops.datasync(fh, this.path));
    const elapsed = performance.now() - start;
    this.counters.fsyncs++;
    this.counters.fsyncMillis += elapsed;
    for (const observer of this.fsyncObservers) observer(elapsed);
  }
}

function segmentHeaderRecords(
  seq: number,
  prevChain: number,
  metadata: Uint8Array,
  hardState: HardState,
  marker: StoredSnapshotMarker,
): RecordSpec[] {
  return [segmentHeaderRecord(seq, prevChain), metadataRecord(metadata), hardStateRecord(hardState), snapshotMarkerRecord(marker)];
}

/**
 * Creates a segment holding `header` atomically (temp file, fdatasync, rename, fsync dir) and returns
 * it open for writing after the header. With `preallocatedSize`, the file is zero-filled to that size:
 * `prepared` is such a file made in advance, else it is filled here.
 */
async function createSegmentFile(
  ops: WalFileOps,
  dir: string,
  name: string,
  header: Buffer,
  preallocatedSize: number,
  prepared: string | undefined,
): Promise<FileHandle> {
  const path = join(dir, name);
  const tmp = prepared ?? path + TEMP_SUFFIX;
  const fh = await open(tmp, prepared ? "r+" : "w+");
  try {
    if (!prepared) await writeZeros(ops, fh, tmp, header.length, preallocatedSize);
    await ops.write(fh, tmp, [header], 0);
    await ops.datasync(fh, tmp);
    await rename(tmp, path);
    await fsyncDir(dir);
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
  return fh;
}

async function writeZeros(ops: WalFileOps, fh: FileHandle, path: string, from: number, to: number): Promise<void> {
  for (let at = from; at < to; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, to - at);
    await ops.write(fh, path, [n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n)], at);
  }
}

/** Writes a zero-filled file of `size` bytes and syncs it; resolves to its path, or undefined on failure
 * (the caller then creates the segment itself). */
async function prepareZeroFile(ops: WalFileOps, path: string, size: number): Promise<string | undefined> {
  try {
    const fh = await open(path, "w");
    try {
      await writeZeros(ops, fh, path, 0, size);
      await ops.datasync(fh, path);
    } finally {
      await fh.close();
    }
    return path;
  } catch {
    await unlink(path).catch(() => undefined);
    return undefined;
  }
}

// Reading a WAL directory back: segment listing, record validation, torn-tail detection, and the
// reconstruction of the log (with overwrites and snapshot markers applied). Internal to the package.
//
// Reading never modifies anything; Wal.open() repairs a torn tail only after the whole WAL has been
// read and validated.

import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Entry, HardState } from "@etcd-ts/raft";
import { WalError } from "./errors.js";
import {
  RecordType,
  checkFrame,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshotMarker,
  type SnapshotMarker,
  type StoredSnapshotMarker,
} from "./record.js";

/** Torn writes lose whole sectors; 512 bytes is the smallest sector a disk has. */
const SECTOR_SIZE = 512;

export const SEGMENT_SUFFIX = ".wal";
export const TEMP_SUFFIX = ".tmp";

export interface SegmentInfo {
  /** Sequence number: segments are numbered 0, 1, 2, ... with no gaps. */
  seq: number;
  /** The log's last index + 1 when the segment was started: every entry in earlier segments that is
   * still part of the log has a smaller index. Not monotonic: after a leader overwrote a tail, a later
   * segment can start lower than an earlier one. */
  firstIndex: number;
  /** File name within the WAL directory. */
  name: string;
}

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function segmentFileName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, "0")}-${firstIndex.toString(16).padStart(16, "0")}${SEGMENT_SUFFIX}`;
}

export function parseSegmentName(name: string): SegmentInfo | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  return { seq: parseInt(m[1]!, 16), firstIndex: parseInt(m[2]!, 16), name };
}

/** Segments of `dir` in order, checked for gaps; plus leftover temp files of an interrupted roll. */
export async function listSegments(dir: string): Promise<{ segments: SegmentInfo[]; temps: string[] }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { segments: [], temps: [] };
    throw e;
  }
  const segments: SegmentInfo[] = [];
  const temps: string[] = [];
  for (const name of names) {
    const seg = parseSegmentName(name);
    if (seg) segments.push(seg);
    // Temp files: a segment being created, or a preallocated next segment.
    else if (name.endsWith(TEMP_SUFFIX)) temps.push(name);
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1]!;
    const cur = segments[i]!;
    if (cur.seq !== prev.seq + 1) {
      throw new WalError("Corrupt", `segment ${prev.seq + 1} is missing between ${prev.name} and ${cur.name}`, {
        file: join(dir, cur.name),
      });
    }
  }
  return { segments, temps };
}

const ZERO_CHUNK = Buffer.alloc(64 * 1024);

/** Whether buf[from, to) is all zero bytes. */
export function isAllZero(buf: Buffer, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZERO_CHUNK.length) {
    const end = Math.min(to, at + ZERO_CHUNK.length);
    if (!buf.subarray(at, end).equals(ZERO_CHUNK.subarray(0, end - at))) return false;
  }
  return true;
}

const READ_CHUNK = 1024 * 1024;

/**
 * A segment's bytes up to where its data ends, and the file's size. The zeros after the data (a
 * preallocated segment is mostly zeros until filled) are read to find that end but not kept: a restart
 * holds the log's bytes rather than the whole segment (64 MiB each by default). The file holds only
 * zeros past `buf`, which is all the parser assumes of what lies past a buffer's end.
 */
async function readWritten(file: string): Promise<{ buf: Buffer; size: number }> {
  const fh = await open(file, "r");
  try {
    const kept: Buffer[] = [];
    let zerosPending = 0;
    let size = 0;
    let chunk = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(chunk, 0, READ_CHUNK, size);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (isAllZero(chunk, 0, bytesRead)) {
        zerosPending += bytesRead;
        continue;
      }
      if (zerosPending > 0) kept.push(Buffer.alloc(zerosPending));
      zerosPending = 0;
      kept.push(chunk.subarray(0, bytesRead));
      chunk = Buffer.allocUnsafe(READ_CHUNK);
    }
    return { buf: kept.length === 1 ? kept[0]! : Buffer.concat(kept), size };
  } finally {
    await fh.close();
  }
}

/** Whether the bad frame at [off, regionEnd) looks like a torn write rather than corruption: it runs past
 * the end of the file, or some sector it overlaps reads as zeros from the frame (or the sector start)
 * to the sector end (or EOF) — a sector the disk never wrote. */
function looksTorn(buf: Buffer, off: number, regionEnd: number): boolean {
  if (regionEnd > buf.length) return true;
  let start = off;
  while (start < regionEnd) {
    const sectorEnd = Math.min((Math.floor(start / SECTOR_SIZE) + 1) * SECTOR_SIZE, buf.length);
    let zero = true;
    for (let i = start; i < sectorEnd; i++) {
      if (buf[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) return true;
    start = sectorEnd;
  }
  return false;
}

/**
 * The log as reconstructed from the records: entries [from, from + entries.length), where every entry is
 * the latest written at its index (a later entry at index i replaces the entries >= i).
 */
class LogBuilder {
  from: number;
  entries: Entry[] = [];
  /** The latest snapshot marker; entries at or below it are never written again. */
  marker: StoredSnapshotMarker = { index: 0, term: 0, replacesLog: false };
  readonly markers: SnapshotMarker[] = [];

  constructor(from: number) {
    this.from = from;
  }

  get lastIndex(): number {
    return this.from + this.entries.length - 1;
  }

  /** Returns an error message when the entry cannot follow the log. */
  addEntry(e: Entry): string | undefined {
    if (e.index <= this.marker.index) return `entry ${e.index} is at or below snapshot marker ${this.marker.index}`;
    if (e.index > this.lastIndex + 1) return `entry ${e.index} leaves a gap after ${this.lastIndex}`;
    if (e.index < this.from) {
      this.from = e.index;
      this.entries = [e];
    } else {
      this.entries.length = e.index - this.from;
      this.entries.push(e);
    }
    return undefined;
  }

  addMarker(m: StoredSnapshotMarker): string | undefined {
    if (m.index < this.marker.index) return `snapshot marker ${m.index} is older than ${this.marker.index}`;
    if (m.replacesLog || m.index > this.lastIndex) {
      this.from = m.index + 1;
      this.entries = [];
    }
    this.marker = m;
    const last = this.markers[this.markers.length - 1];
    if (!last || last.index !== m.index || last.term !== m.term) this.markers.push({ index: m.index, term: m.term });
    return undefined;
  }
}

export interface WalContents {
  segments: SegmentInfo[];
  temps: string[];
  metadata: Uint8Array;
  hardState: HardState;
  /** Every distinct snapshot marker in the WAL, oldest first; the last is the newest. */
  markers: SnapshotMarker[];
  /** The latest marker record (with its flag). */
  marker: StoredSnapshotMarker;
  /** The latest marker written in each segment's header, by seq. */
  headerMarkers: Map<number, SnapshotMarker>;
  /** The log's last index (including entries at or before any marker). */
  lastIndex: number;
  /** Chain value after the last valid record. */
  chain: number;
  /** The last segment: where its valid records end and its size on disk. */
  tail: { file: string; validEnd: number; size: number; reason: string | undefined };
  /** Entries after `at` (which must be one of `markers`), or SnapshotNotFound. */
  entriesAfter(at: SnapshotMarker): Entry[];
}

/**
 * Reads and validates every segment of the WAL in `dir`.
 * @throws WalError NotFound (no segments) or Corrupt (naming the file and offset).
 */
export async function readWal(dir: string): Promise<WalContents> {
  const { segments, temps } = await listSegments(dir);
  const first = segments[0];
  if (!first) throw new WalError("NotFound", "no WAL segments", { file: dir });
  const log = new LogBuilder(first.seq === 0 ? 1 : first.firstIndex);
  let metadata: Uint8Array | undefined;
  let hardState: HardState = { term: 0, vote: 0n, commit: 0 };
  let chain = 0;
  const headerMarkers = new Map<number, SnapshotMarker>();
  let tail: WalContents["tail"] = { file: "", validEnd: 0, size: 0, reason: undefined };

  for (let s = 0; s < segments.length; s++) {
    const seg = segments[s]!;
    const file = join(dir, seg.name);
    const isLast = s === segments.length - 1;
    const { buf, size } = await readWritten(file);
    const corrupt = (reason: string, offset: number): WalError => new WalError("Corrupt", reason, { file, offset });
    if (s > 0 && seg.firstIndex !== log.lastIndex + 1) {
      throw corrupt(`segment starts at index ${seg.firstIndex} but the log before it ends at ${log.lastIndex}`, 0);
    }
    let off = 0;
    let reason: string | undefined;
    let sawHeader = false;
    while (off < buf.length) {
      const frame = checkFrame(buf, off, chain);
      if (!frame.ok && sawHeader && isAllZero(buf, off, buf.length)) {
        // The preallocated, never-written rest of the segment: a clean end. (In an older segment, a lost
        // tail would break the checksum chain at the next segment's header.)
        break;
      }
      if (!frame.ok) {
        // Only the tail of the last segment can be torn: earlier segments were synced before the next
        // was created, and a segment's header records were synced before it was renamed into place.
        if (isLast && sawHeader && frame.regionEnd >= 0 && looksTorn(buf, off, frame.regionEnd)) {
          reason = frame.reason;
          break;
        }
        throw corrupt(frame.reason, off);
      }
      const payload = buf.subarray(frame.payloadStart, frame.end);
      let err: string | undefined;
      if (!sawHeader) {
        const header = frame.type === RecordType.SegmentHeader ? decodeSegmentHeader(payload) : undefined;
        if (!header) throw corrupt("segment does not start with a segment header", off);
        if (header.seq !== seg.seq) throw corrupt(`segment header says seq ${header.seq}`, off);
        if (s > 0 && header.prevChain !== chain) throw corrupt("segment does not continue the previous segment's checksum chain", off);
        sawHeader = true;
      } else {
        switch (frame.type) {
          case RecordType.SegmentHeader:
            err = "segment header in the middle of a segment";
            break;
          case RecordType.Metadata:
            if (metadata === undefined) metadata = new Uint8Array(payload);
            else if (!Buffer.from(metadata).equals(payload)) err = "metadata differs from the earlier segments'";
            break;
          case RecordType.Entry: {
            const e = decodeEntry(payload);
            err = e ? log.addEntry(e) : "malformed entry record";
            break;
          }
          case RecordType.HardState: {
            const hs = decodeHardState(payload);
            if (hs) hardState = hs;
            else err = "malformed hard state record";
            break;
          }
          case RecordType.SnapshotMarker: {
            const m = decodeSnapshotMarker(payload);
            err = m ? log.addMarker(m) : "malformed snapshot marker record";
            if (m && !headerMarkers.has(seg.seq)) headerMarkers.set(seg.seq, { index: m.index, term: m.term });
            break;
          }
        }
      }
      if (err) throw corrupt(err, off);
      chain = frame.chain;
      off = frame.end;
    }
    if (!sawHeader) throw corrupt("segment has no valid header", 0);
    if (isLast) tail = { file, validEnd: off, size, reason };
  }
  if (metadata === undefined) throw new WalError("Corrupt", "no metadata record", { file: dir });
  // Every segment header repeats the current marker, so a WAL without one was not written by us.
  if (log.markers.length === 0) throw new WalError("Corrupt", "no snapshot marker record", { file: dir });

  return {
    segments,
    temps,
    metadata,
    hardState,
    markers: log.markers,
    marker: log.marker,
    headerMarkers,
    lastIndex: log.lastIndex,
    chain,
    tail,
    entriesAfter(at: SnapshotMarker): Entry[] {
      if (!log.markers.some((m) => m.index === at.index && m.term === at.term)) {
        throw new WalError("SnapshotNotFound", `snapshot marker (index ${at.index}, term ${at.term}) is not in the WAL`, {
          file: dir,
        });
      }
      if (at.index + 1 < log.from) {
        throw new WalError(
          "SnapshotNotFound",
          `entries ${at.index + 1}..${log.from - 1} after snapshot marker ${at.index} are no longer in the WAL`,
          { file: dir },
        );
      }
      return log.entries.slice(Math.max(0, at.index + 1 - log.from));
    },
  };
}

// Raft snapshots as files: `<dir>/<term 16 hex>-<index 16 hex>.snap`, written atomically and checked
// by a CRC on load.
//
// File format: 8-byte magic "etssnap1", u64 LE body length, u32 LE CRC-32 of the body, then the body:
// the raft Snapshot encoded with @etcd-ts/raft's encodeSnapshot (metadata + opaque data).

import { mkdir, readFile, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { decodeSnapshot, encodeSnapshot, type Snapshot } from "@etcd-ts/raft";
import { fsyncDir, writeFileAtomic } from "./durable-fs.js";
import { WalError, isWalError, ioFailure } from "./errors.js";
import { readU64, writeU64, type SnapshotMarker } from "./record.js";

const MAGIC = Buffer.from("etssnap1", "latin1");
const HEADER_SIZE = 8 + 8 + 4;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** etcd keeps 5 snapshot files by default (--max-snapshots). */
export const DEFAULT_SNAPSHOT_RETENTION = 5;

export interface SnapshotterOptions {
  /** How many snapshot files save() keeps (newest first). Default 5; at least 1. */
  retain?: number;
}

export function snapshotFileName(marker: SnapshotMarker): string {
  return `${marker.term.toString(16).padStart(16, "0")}-${marker.index.toString(16).padStart(16, "0")}.snap`;
}

function parseSnapshotName(name: string): SnapshotMarker | undefined {
  const m = SNAP_NAME.exec(name);
  return m ? { term: parseInt(m[1]!, 16), index: parseInt(m[2]!, 16) } : undefined;
}

/**
 * Stores raft snapshots in a directory. Ordering contract for callers: save the snapshot file first and
 * only then write its marker to the WAL, so that a marker always has a file (a crash in between leaves
 * an orphan file, which is harmless: restart picks the newest file whose marker is in the WAL).
 */
export class Snapshotter {
  readonly dir: string;
  private readonly retain: number;

  constructor(dir: string, options: SnapshotterOptions = {}) {
    this.dir = dir;
    this.retain = Math.max(1, options.retain ?? DEFAULT_SNAPSHOT_RETENTION);
  }

  /**
   * Writes `snap` durably and atomically (temp file, fdatasync, rename, fsync dir), then deletes the
   * oldest files beyond the retention count. Resolves when the file is durable.
   */
  async save(snap: Snapshot): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const body = Buffer.from(encodeSnapshot(snap));
    const header = Buffer.alloc(HEADER_SIZE);
    MAGIC.copy(header, 0);
    writeU64(header, body.length, 8);
    header.writeUInt32LE(crc32(body), 16);
    const path = join(this.dir, snapshotFileName(snap.metadata));
    try {
      await writeFileAtomic(this.dir, path, [header, body]);
    } catch (e) {
      throw ioFailure("writing the snapshot file", path, e);
    }
    await this.purge(this.retain);
  }

  /** The snapshot files present (intact or not), newest first. */
  async list(): Promise<SnapshotMarker[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const markers: SnapshotMarker[] = [];
    for (const name of names) {
      const m = parseSnapshotName(name);
      if (m) markers.push(m);
    }
    return markers.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /**
   * Loads the snapshot with this marker.
   * @throws WalError Corrupt if the file is damaged or does not match its name; NotFound if absent.
   */
  async load(marker: SnapshotMarker): Promise<Snapshot> {
    const path = join(this.dir, snapshotFileName(marker));
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new WalError("NotFound", "no such snapshot", { file: path });
      throw e;
    }
    const corrupt = (why: string, cause?: unknown) =>
      new WalError("Corrupt", `snapshot file ${why}`, cause === undefined ? { file: path } : { file: path, cause });
    if (buf.length < HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) throw corrupt("has no valid header");
    const length = readU64(buf, 8);
    if (length === undefined || length !== buf.length - HEADER_SIZE) throw corrupt("has the wrong length");
    const body = buf.subarray(HEADER_SIZE);
    if (crc32(body) !== buf.readUInt32LE(16)) throw corrupt("fails its checksum");
    let snap: Snapshot;
    try {
      snap = decodeSnapshot(body);
    } catch (e) {
      throw corrupt("does not decode", e);
    }
    if (snap.metadata.index !== marker.index || snap.metadata.term !== marker.term) throw corrupt("does not match its name");
    return snap;
  }

  /**
   * The newest intact snapshot whose marker passes `accept` (e.g. "is in the WAL"), or undefined. A file
   * that fails to load is renamed to `<name>.broken` (kept for inspection, never loaded again) and the
   * next older one is tried, as etcd does.
   */
  async loadNewest(accept: (marker: SnapshotMarker) => boolean = () => true): Promise<Snapshot | undefined> {
    for (const marker of await this.list()) {
      if (!accept(marker)) continue;
      try {
        return await this.load(marker);
      } catch (e) {
        if (!isWalError(e, "Corrupt")) throw e;
        const path = join(this.dir, snapshotFileName(marker));
        await rename(path, `${path}.broken`);
        await fsyncDir(this.dir);
      }
    }
    return undefined;
  }

  /** Deletes all but the `retain` newest snapshot files; returns how many. */
  async purge(retain: number = this.retain): Promise<number> {
    const all = await this.list();
    let removed = 0;
    for (const marker of all.slice(Math.max(1, retain))) {
      await unlink(join(this.dir, snapshotFileName(marker))).catch(() => undefined);
      removed++;
    }
    if (removed > 0) await fsyncDir(this.dir);
    return removed;
  }

  /** Deletes temp files of saves interrupted by a crash. Call at startup, before any save(). */
  async removeTemps(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    const temps = names.filter((n) => n.endsWith(".snap.tmp"));
    for (const name of temps) await unlink(join(this.dir, name)).catch(() => undefined);
    if (temps.length > 0) await fsyncDir(this.dir);
  }
}

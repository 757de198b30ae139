import { createHash, timingSafeEqual } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { SnapshotError } from "./errors.js";

/** Bytes of the SHA-256 etcd appends to a snapshot. */
export const SNAPSHOT_HASH_SIZE = 32;

/**
 * etcd's test for "this file ends with a SHA-256" (`hasChecksum` in clientv3/snapshot): a bbolt database
 * is a whole number of pages, so a multiple of 512 bytes; with the hash it is 32 bytes more.
 */
export function hasSnapshotHash(fileSize: number): boolean {
  return fileSize % 512 === SNAPSHOT_HASH_SIZE;
}

export interface SnapshotHashInfo {
  /** Bytes before the hash: the bbolt database. */
  readonly dbSize: number;
  /** The SHA-256, hex. */
  readonly sha256: string;
}

const READ_BUFFER_SIZE = 1 << 20;

/**
 * Checks the trailing SHA-256 of an etcd snapshot file (bytes or a path) the way `etcdctl snapshot
 * restore` does. Throws `MissingHash` when the file has none, `HashMismatch` when it is wrong.
 */
export function verifySnapshotHash(file: Uint8Array | string): SnapshotHashInfo {
  const { size, stored, actual } = typeof file === "string" ? hashFile(file) : hashBytes(file);
  if (stored === undefined || actual === undefined) {
    throw new SnapshotError(
      "MissingHash",
      `snapshot has no trailing sha256 (${size} bytes is not a multiple of 512 plus 32); a db file copied from a data directory needs skipHashCheck`,
    );
  }
  if (!timingSafeEqual(stored, actual)) {
    throw new SnapshotError(
      "HashMismatch",
      `snapshot sha256 mismatch: the file says ${hex(stored)}, its ${size - SNAPSHOT_HASH_SIZE} database bytes hash to ${hex(actual)}`,
    );
  }
  return { dbSize: size - SNAPSHOT_HASH_SIZE, sha256: hex(actual) };
}

/** The database bytes followed by their SHA-256: what `etcdctl snapshot save` writes. */
export function appendSnapshotHash(db: Uint8Array): Uint8Array {
  const out = new Uint8Array(db.length + SNAPSHOT_HASH_SIZE);
  out.set(db, 0);
  out.set(createHash("sha256").update(db).digest(), db.length);
  return out;
}

interface HashResult {
  readonly size: number;
  readonly stored: Uint8Array | undefined;
  readonly actual: Uint8Array | undefined;
}

function hashBytes(bytes: Uint8Array): HashResult {
  if (!hasSnapshotHash(bytes.length)) return { size: bytes.length, stored: undefined, actual: undefined };
  const dbSize = bytes.length - SNAPSHOT_HASH_SIZE;
  return {
    size: bytes.length,
    stored: bytes.subarray(dbSize),
    actual: createHash("sha256").update(bytes.subarray(0, dbSize)).digest(),
  };
}

function hashFile(path: string): HashResult {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (!hasSnapshotHash(size)) return { size, stored: undefined, actual: undefined };
    const dbSize = size - SNAPSHOT_HASH_SIZE;
    const hash = createHash("sha256");
    const buffer = new Uint8Array(READ_BUFFER_SIZE);
    let offset = 0;
    while (offset < dbSize) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, dbSize - offset), offset);
      if (n === 0) throw new SnapshotError("Corrupt", `snapshot file shrank while it was read`);
      hash.update(buffer.subarray(0, n));
      offset += n;
    }
    const stored = new Uint8Array(SNAPSHOT_HASH_SIZE);
    if (readSync(fd, stored, 0, SNAPSHOT_HASH_SIZE, dbSize) !== SNAPSHOT_HASH_SIZE) {
      throw new SnapshotError("Corrupt", `snapshot file shrank while it was read`);
    }
    return { size, stored, actual: hash.digest() };
  } finally {
    closeSync(fd);
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

import { KEY_BUCKET } from "@etcd-ts/schema";
import { BoltFile } from "./bolt-reader.js";
import { Crc32c } from "./checksums.js";
import { SnapshotError } from "./errors.js";

/** `etcdctl snapshot status`'s answer, field for field (its JSON names). */
export interface SnapshotStatus {
  /** CRC-32C over every bucket name, key and value, in file order. */
  readonly hash: number;
  /** Main revision of the last key in the `key` bucket (0 when it is empty or missing). */
  readonly revision: number;
  /** Key/value pairs over all buckets. */
  readonly totalKey: number;
  /** Database bytes: high-water page id × page size (the trailing SHA-256 not counted). */
  readonly totalSize: number;
}

/** The 8-byte big-endian main revision at the start of every `key` bucket key. */
const MAIN_REVISION_BYTES = 8;

/**
 * Computes what etcd 3.4's `etcdctl snapshot status` prints for a snapshot file (bytes, a path, or an
 * open file). Like etcdctl it first runs bbolt's integrity check and refuses a file that fails it; it
 * does not check the trailing SHA-256 (`verifySnapshotHash` does).
 */
export function snapshotStatus(file: Uint8Array | string | BoltFile): SnapshotStatus {
  const bolt = file instanceof BoltFile ? file : BoltFile.open(file);
  try {
    const problems = bolt.check();
    if (problems.length > 0) {
      throw new SnapshotError("Corrupt", `snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join("\n")}`);
    }
    const crc = new Crc32c();
    let revision = 0;
    let totalKey = 0;
    for (const bucket of bolt.buckets()) {
      crc.write(bucket.nameBytes);
      const isKeyBucket = bucket.name === KEY_BUCKET;
      for (const element of bolt.elements(bucket.name)) {
        crc.write(element.key);
        crc.write(element.value);
        if (isKeyBucket) revision = mainRevision(element.key);
        totalKey++;
      }
    }
    return { hash: crc.sum32(), revision, totalKey, totalSize: bolt.dbSize };
  } finally {
    if (!(file instanceof BoltFile)) bolt.close();
  }
}

function mainRevision(key: Uint8Array): number {
  if (key.length < MAIN_REVISION_BYTES) {
    throw new SnapshotError("Corrupt", `key bucket: a ${key.length}-byte key is not a revision`);
  }
  const view = new DataView(key.buffer, key.byteOffset, MAIN_REVISION_BYTES);
  return Number(view.getBigInt64(0, false));
}

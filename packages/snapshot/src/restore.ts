import { fstatSync, openSync, closeSync } from "node:fs";
import type { Backend } from "@etcd-ts/storage";
import { BoltFile } from "./bolt-reader.js";
import { SnapshotError } from "./errors.js";
import { hasSnapshotHash, verifySnapshotHash } from "./snapshot-hash.js";

export interface RestoreOptions {
  /**
   * Restore a file without checking (or without having) the trailing SHA-256, like etcdctl's
   * `--skip-hash-check`: needed for a `member/snap/db` copied out of a data directory.
   */
  readonly skipHashCheck?: boolean;
}

export interface RestoreResult {
  readonly buckets: number;
  readonly keys: number;
  /** Bytes of the bbolt database that was read. */
  readonly dbSize: number;
}

/**
 * Replaces the whole content of `backend` with the buckets and key/values of a bbolt file (an etcd
 * snapshot, from etcd or etcd-ts), in one `update`: either all of it lands or, when the file turns out to
 * be damaged halfway, none of it. Buckets the backend has and the file lacks are deleted.
 *
 * This is a plain copy. `etcdctl snapshot restore` additionally drops the `members` and
 * `members_removed` buckets and rewrites `consistent_index` for the new cluster; that is the server's
 * part, as it knows the new membership.
 */
export async function restoreBoltSnapshot(
  file: Uint8Array | string,
  backend: Backend,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const size = typeof file === "string" ? fileSize(file) : file.length;
  if (!options.skipHashCheck) {
    if (!hasSnapshotHash(size)) {
      throw new SnapshotError("MissingHash", "snapshot missing hash but skipHashCheck is false");
    }
    verifySnapshotHash(file);
  }
  const bolt = BoltFile.open(file);
  try {
    let buckets = 0;
    let keys = 0;
    await backend.update((txn) => {
      for (const existing of txn.buckets()) txn.deleteBucket(existing);
      for (const bucket of bolt.buckets()) {
        txn.createBucket(bucket.name);
        buckets++;
        for (const { key, value } of bucket.entries()) {
          txn.put(bucket.name, key, value);
          keys++;
        }
      }
    });
    return { buckets, keys, dbSize: bolt.dbSize };
  } finally {
    bolt.close();
  }
}

function fileSize(path: string): number {
  const fd = openSync(path, "r");
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

import type { ReadTxn } from "@etcd-ts/storage";

/**
 * CRC-32C (Castagnoli), the checksum etcd uses for `Hash` and `HashKV`, so that members of one cluster
 * (and etcd itself, over the same data) agree on the numbers.
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export class Crc32c {
  private crc = 0xffffffff;

  update(bytes: Uint8Array): this {
    let c = this.crc;
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = c;
    return this;
  }

  digest(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }
}

const KEY_BUCKET = "key";
const encoder = new TextEncoder();

/** The first key-bucket key of revision `main` (8-byte big-endian main, `_`, sub 0). */
function revisionFloor(main: number): Uint8Array {
  const bytes = new Uint8Array(17);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(main));
  bytes[8] = 0x5f;
  return bytes;
}

/**
 * etcd's HashKV: CRC-32C of the bucket name and every row of the `key` bucket at or below `revision`.
 * Call it when no physical compaction is in progress, so the rows at or below the compact revision are
 * exactly the ones compaction keeps (etcd filters with the index's keep set for the same effect).
 */
export function hashKeyBucket(txn: ReadTxn, revision: number): number {
  const hash = new Crc32c().update(encoder.encode(KEY_BUCKET));
  for (const { key, value } of txn.range(KEY_BUCKET, { end: revisionFloor(revision + 1) })) hash.update(key).update(value);
  return hash.digest();
}

/** etcd's Hash: every bucket and row except the consistent index, which differs between members. */
export function hashBackend(txn: ReadTxn): number {
  const hash = new Crc32c();
  for (const bucket of txn.buckets()) {
    const name = encoder.encode(bucket);
    hash.update(name);
    for (const { key, value } of txn.range(bucket)) {
      if (bucket === "meta" && new TextDecoder().decode(key) === "consistent_index") continue;
      hash.update(key).update(value);
    }
  }
  return hash.digest();
}

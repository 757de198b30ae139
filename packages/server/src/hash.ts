import type { ReadTxn } from "@etcd-ts/storage";
import { isMemberLocalRow } from "./membership.js";

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

const encoder = new TextEncoder();

/** etcd's Hash: every bucket and row except what differs between members (the consistent index, the member's own IDs). */
export function hashBackend(txn: ReadTxn): number {
  const hash = new Crc32c();
  for (const bucket of txn.buckets()) {
    const name = encoder.encode(bucket);
    hash.update(name);
    for (const { key, value } of txn.range(bucket)) {
      if (bucket === "meta" && new TextDecoder().decode(key) === "consistent_index") continue;
      // The member's own IDs differ between members (etcd keeps them out of its backend altogether).
      if (isMemberLocalRow(bucket, key)) continue;
      hash.update(key).update(value);
    }
  }
  return hash.digest();
}

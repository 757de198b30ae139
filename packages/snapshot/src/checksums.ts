/**
 * The two non-cryptographic checksums the formats need: FNV-1a 64 (bbolt's meta page checksum) and
 * CRC-32C, the Castagnoli polynomial (`etcdctl snapshot status`'s hash). Node 20 has neither built in.
 */

const FNV64_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const U64_MASK = 0xffffffffffffffffn;

/** FNV-1a 64 of `bytes`. Only used on 56-byte meta pages, so BigInt arithmetic is cheap enough. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV64_OFFSET_BASIS;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * FNV64_PRIME) & U64_MASK;
  }
  return hash;
}

const CASTAGNOLI_REFLECTED = 0x82f63b78;

/**
 * Slicing-by-8 tables, flattened: table k (bytes k*256 … k*256+255) advances the CRC over a byte that is
 * followed by k more bytes. Eight bytes per step instead of one: about 8× faster than the plain table,
 * which matters for `snapshotStatus` on a multi-gigabyte snapshot.
 */
const CRC32C_TABLES: Uint32Array = (() => {
  const tables = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? CASTAGNOLI_REFLECTED ^ (c >>> 1) : c >>> 1;
    tables[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n]!;
    for (let k = 1; k < 8; k++) {
      c = (tables[c & 0xff]! ^ (c >>> 8)) >>> 0;
      tables[k * 256 + n] = c;
    }
  }
  return tables;
})();

/** A running CRC-32C, fed in pieces like Go's `hash.Hash32` (`write` then `sum32`). */
export class Crc32c {
  private state = 0xffffffff;

  write(bytes: Uint8Array): void {
    const t = CRC32C_TABLES;
    let c = this.state;
    let i = 0;
    const end8 = bytes.length - (bytes.length % 8);
    for (; i < end8; i += 8) {
      const low = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
      c =
        (t[1792 + (low & 0xff)]! ^
          t[1536 + ((low >>> 8) & 0xff)]! ^
          t[1280 + ((low >>> 16) & 0xff)]! ^
          t[1024 + (low >>> 24)]! ^
          t[768 + bytes[i + 4]!]! ^
          t[512 + bytes[i + 5]!]! ^
          t[256 + bytes[i + 6]!]! ^
          t[bytes[i + 7]!]!) >>>
        0;
    }
    for (; i < bytes.length; i++) c = (t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
    this.state = c;
  }

  sum32(): number {
    return (this.state ^ 0xffffffff) >>> 0;
  }
}

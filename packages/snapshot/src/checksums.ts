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

const CRC32C_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? CASTAGNOLI_REFLECTED ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** A running CRC-32C, fed in pieces like Go's `hash.Hash32` (`write` then `sum32`). */
export class Crc32c {
  private state = 0xffffffff;

  write(bytes: Uint8Array): void {
    let c = this.state;
    for (let i = 0; i < bytes.length; i++) {
      c = (CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
    }
    this.state = c;
  }

  sum32(): number {
    return (this.state ^ 0xffffffff) >>> 0;
  }
}

/**
 * Bytewise (memcmp) order of two byte strings: negative when `a` sorts first, 0 when equal, positive
 * when `b` sorts first. A key sorts before any longer key it prefixes, so the empty key is the smallest.
 * This is the one key order every engine keeps (SQLite compares BLOBs this way; so does LMDB's default
 * comparator).
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  // A plain loop beats Buffer.compare's native call for the short keys that dominate (etcd's revision
  // keys are 17 bytes); long keys are rare.
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

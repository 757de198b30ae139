/**
 * Key ranges as watchers hold them, normalized from etcd's wire conventions (see `normalizeRange`).
 * Keys are bytes compared bytewise.
 */

/** Bytewise comparison: negative, 0 or positive as `a` sorts before, with or after `b`. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** A string with one character per byte, usable as a Map key (latin1 maps bytes 1:1 to code units). */
export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

/**
 * A watched range. `end === undefined`: the single key `start`; `end === null`: every key `>= start`;
 * otherwise the keys in `[start, end)` (non-empty: `start < end`).
 */
export interface KeyRange {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null | undefined;
}

/**
 * etcd's conventions for a watch request's key and range end: an empty key is `\0` (the smallest key);
 * an empty range end means the single key; a range end of `\0` means every key from `key`. Returns
 * `undefined` for an empty range (`key >= rangeEnd`), which etcd refuses with "mvcc: watcher range is
 * empty".
 */
export function normalizeRange(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyRange | undefined {
  const start = key.length === 0 ? new Uint8Array([0]) : key.slice();
  if (rangeEnd === undefined || rangeEnd.length === 0) return { start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: null };
  if (compareKeys(start, rangeEnd) >= 0) return undefined;
  return { start, end: rangeEnd.slice() };
}

/** Whether `key` is in `range`. */
export function rangeContains(range: KeyRange, key: Uint8Array): boolean {
  if (range.end === undefined) return compareKeys(range.start, key) === 0;
  if (compareKeys(key, range.start) < 0) return false;
  return range.end === null || compareKeys(key, range.end) < 0;
}

import { compareBytes } from "@etcd-ts/storage";

/**
 * Key-range permissions as sets of keys (etcd's range_perm_cache, without its interval-tree corner cases).
 *
 * etcd's key-range conventions, used by role permissions and requests alike:
 * - `rangeEnd` empty: the single key `key`;
 * - `rangeEnd` = `"\0"` (one zero byte): every key `>= key` (from-key; with an empty `key`, the whole keyspace);
 * - otherwise: the half-open range `[key, rangeEnd)`.
 *
 * A set is kept as sorted, disjoint, non-adjacent half-open intervals `[begin, end)`, `end` undefined
 * meaning "to the end of the keyspace". A single key `k` is the interval `[k, k + "\0")` — exactly the keys
 * `>= k` and `< k\0`, i.e. `k` alone — so points and ranges live in one representation and a request is
 * permitted only if its whole key set lies inside one merged interval.
 */
export interface KeyInterval {
  readonly begin: Uint8Array;
  /** Exclusive; undefined = unbounded (to the end of the keyspace). */
  readonly end: Uint8Array | undefined;
}

/** The `rangeEnd` meaning "every key from `key` on". */
export const FROM_KEY_RANGE_END: Uint8Array = new Uint8Array([0]);

function isFromKey(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** The key right after `key` in byte order: `key + "\0"`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/**
 * The keys a permission or request names, as an interval. A request range whose end is at or before its
 * start names no keys in etcd's MVCC; here it is treated as the single key `key`, so a caller can never
 * pass with a range the permission set does not at least touch.
 */
export function keyInterval(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyInterval {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { begin: key, end: successor(key) };
  if (isFromKey(rangeEnd)) return { begin: key, end: undefined };
  if (compareBytes(rangeEnd, key) <= 0) return { begin: key, end: successor(key) };
  return { begin: key, end: rangeEnd };
}

/** Compares interval ends, undefined (unbounded) above every key. */
function compareEnds(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  if (a === undefined) return b === undefined ? 0 : 1;
  if (b === undefined) return -1;
  return compareBytes(a, b);
}

/** An immutable union of key intervals, answering "is every key of this range inside?". */
export class KeyIntervalSet {
  /** Sorted by begin; disjoint and non-adjacent after construction. */
  readonly intervals: readonly KeyInterval[];

  constructor(intervals: Iterable<KeyInterval>) {
    const sorted = [...intervals].sort((a, b) => compareBytes(a.begin, b.begin));
    const merged: KeyInterval[] = [];
    for (const ivl of sorted) {
      const last = merged[merged.length - 1];
      // [a, b) ∪ [c, d) with c <= b is [a, max(b, d)): byte strings have no gap between b and b.
      if (last !== undefined && (last.end === undefined || compareBytes(ivl.begin, last.end) <= 0)) {
        if (compareEnds(ivl.end, last.end) > 0) merged[merged.length - 1] = { begin: last.begin, end: ivl.end };
      } else {
        merged.push(ivl);
      }
    }
    this.intervals = merged;
  }

  /** True when every key of `ivl` is in the set. */
  contains(ivl: KeyInterval): boolean {
    // The last merged interval starting at or before ivl.begin is the only one that can cover it.
    let lo = 0;
    let hi = this.intervals.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.intervals[mid]!.begin, ivl.begin) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const candidate = this.intervals[lo - 1];
    if (candidate === undefined) return false;
    return compareEnds(ivl.end, candidate.end) <= 0 && compareEnds(ivl.begin, candidate.end) < 0;
  }

  /** True when the set holds every key of etcd's range `(key, rangeEnd)` (conventions above). */
  containsRange(key: Uint8Array, rangeEnd?: Uint8Array): boolean {
    return this.contains(keyInterval(key, rangeEnd));
  }

  get isEmpty(): boolean {
    return this.intervals.length === 0;
  }
}

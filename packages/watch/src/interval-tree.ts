import { compareKeys } from "./key-range.js";

/**
 * A set of half-open key intervals `[start, end)` (`end === null`: unbounded) each carrying a value,
 * answering "which intervals contain this key" in O(log n + matches) expected time — what etcd's
 * `adt.IntervalTree` does for range watchers, so that a write costs nothing for watchers whose ranges do
 * not hold its key.
 *
 * A treap ordered by `(start, end)` and augmented with the largest `end` of each subtree. Priorities come
 * from a fixed-seed xorshift, so the shape (and so every run) is deterministic. Intervals are unique by
 * `(start, end)`: callers keep several values under one interval in the value itself.
 */
interface IntervalNode<V> {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
  readonly priority: number;
  value: V;
  left: IntervalNode<V> | undefined;
  right: IntervalNode<V> | undefined;
  /** The largest `end` in this subtree (`null`: unbounded). */
  maxEnd: Uint8Array | null;
}

/** Compares two interval ends, `null` being greater than every key. */
function compareEnds(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return compareKeys(a, b);
}

function compareIntervals(aStart: Uint8Array, aEnd: Uint8Array | null, b: IntervalNode<unknown>): number {
  const c = compareKeys(aStart, b.start);
  return c !== 0 ? c : compareEnds(aEnd, b.end);
}

function update<V>(node: IntervalNode<V>): void {
  let max = node.end;
  if (node.left !== undefined && compareEnds(node.left.maxEnd, max) > 0) max = node.left.maxEnd;
  if (node.right !== undefined && compareEnds(node.right.maxEnd, max) > 0) max = node.right.maxEnd;
  node.maxEnd = max;
}

function rotateRight<V>(node: IntervalNode<V>): IntervalNode<V> {
  const left = node.left!;
  node.left = left.right;
  left.right = node;
  update(node);
  update(left);
  return left;
}

function rotateLeft<V>(node: IntervalNode<V>): IntervalNode<V> {
  const right = node.right!;
  node.right = right.left;
  right.left = node;
  update(node);
  update(right);
  return right;
}

function merge<V>(a: IntervalNode<V> | undefined, b: IntervalNode<V> | undefined): IntervalNode<V> | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.priority > b.priority) {
    a.right = merge(a.right, b);
    update(a);
    return a;
  }
  b.left = merge(a, b.left);
  update(b);
  return b;
}

export class IntervalTree<V> {
  private root: IntervalNode<V> | undefined = undefined;
  private count = 0;
  private seed = 0x2545f491;

  /** Number of intervals. */
  get size(): number {
    return this.count;
  }

  private nextPriority(): number {
    // xorshift32: deterministic, well spread, enough for treap balance.
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  /** The value stored for exactly `[start, end)`, if any. */
  get(start: Uint8Array, end: Uint8Array | null): V | undefined {
    let node = this.root;
    while (node !== undefined) {
      const c = compareIntervals(start, end, node);
      if (c === 0) return node.value;
      node = c < 0 ? node.left : node.right;
    }
    return undefined;
  }

  /** Stores `value` for `[start, end)`, replacing the value already stored for that interval. */
  set(start: Uint8Array, end: Uint8Array | null, value: V): void {
    const insert = (node: IntervalNode<V> | undefined): IntervalNode<V> => {
      if (node === undefined) {
        this.count++;
        return { start, end, priority: this.nextPriority(), value, left: undefined, right: undefined, maxEnd: end };
      }
      const c = compareIntervals(start, end, node);
      if (c === 0) {
        node.value = value;
        return node;
      }
      if (c < 0) {
        node.left = insert(node.left);
        if (node.left.priority > node.priority) return rotateRight(node);
      } else {
        node.right = insert(node.right);
        if (node.right.priority > node.priority) return rotateLeft(node);
      }
      update(node);
      return node;
    };
    this.root = insert(this.root);
  }

  /** Removes `[start, end)`; returns whether it was there. */
  delete(start: Uint8Array, end: Uint8Array | null): boolean {
    let removed = false;
    const remove = (node: IntervalNode<V> | undefined): IntervalNode<V> | undefined => {
      if (node === undefined) return undefined;
      const c = compareIntervals(start, end, node);
      if (c === 0) {
        removed = true;
        return merge(node.left, node.right);
      }
      if (c < 0) node.left = remove(node.left);
      else node.right = remove(node.right);
      update(node);
      return node;
    };
    this.root = remove(this.root);
    // remove() sets it, which flow analysis does not follow into the closure.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    if (removed) this.count--;
    return removed;
  }

  clear(): void {
    this.root = undefined;
    this.count = 0;
  }

  /** Calls `visit` with the value of every interval containing `key`, in `(start, end)` order. */
  stab(key: Uint8Array, visit: (value: V) => void): void {
    const walk = (node: IntervalNode<V> | undefined): void => {
      if (node === undefined) return;
      // Every interval below ends at or before `key`: none contains it.
      if (node.maxEnd !== null && compareKeys(node.maxEnd, key) <= 0) return;
      walk(node.left);
      // Intervals at and right of a node starting after `key` all start after it.
      if (compareKeys(node.start, key) > 0) return;
      if (node.end === null || compareKeys(key, node.end) < 0) visit(node.value);
      walk(node.right);
    };
    walk(this.root);
  }

  /** Every interval and value, in `(start, end)` order (for tests and diagnostics). */
  entries(): Array<{ start: Uint8Array; end: Uint8Array | null; value: V }> {
    const out: Array<{ start: Uint8Array; end: Uint8Array | null; value: V }> = [];
    const walk = (node: IntervalNode<V> | undefined): void => {
      if (node === undefined) return;
      walk(node.left);
      out.push({ start: node.start, end: node.end, value: node.value });
      walk(node.right);
    };
    walk(this.root);
    return out;
  }
}

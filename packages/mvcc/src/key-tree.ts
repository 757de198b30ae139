/**
 * An ordered map from string keys to values, in the strings' code unit order (for the latin1 strings of
 * `latin1.ts`, that is the bytewise order of the bytes): a B+tree with values in the leaves and the
 * leaves linked, so that a range scan is one descent plus a walk along the leaves.
 *
 * Costs: get/set/delete O(log n); a scan O(log n + k). Deletion removes emptied nodes and merges a leaf
 * into its right sibling when both are small, without further rebalancing: the height never exceeds what
 * the insertions built, which is all the O(log n) bound needs.
 *
 * The map must not be changed during a scan (collect first, then change).
 */

/** Most keys a node holds before it splits. */
const MAX_KEYS = 64;
/** A leaf this small tries to merge with its right sibling. */
const MERGE_BELOW = MAX_KEYS / 4;

class Leaf<V> {
  constructor(
    public keys: string[],
    public values: V[],
    public next: Leaf<V> | null = null,
    public prev: Leaf<V> | null = null,
  ) {}
}

class Branch<V> {
  /** `keys[i]` is a lower bound of every key below `children[i + 1]`; `keys.length === children.length - 1`. */
  constructor(
    public keys: string[],
    public children: Node<V>[],
  ) {}
}

type Node<V> = Leaf<V> | Branch<V>;

/** First index whose key is >= `key` (`keys.length` when none). */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose key is > `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class KeyTree<V> {
  private root: Node<V> = new Leaf<V>([], []);
  private count = 0;

  get size(): number {
    return this.count;
  }

  private findLeaf(key: string): Leaf<V> {
    let node = this.root;
    while (node instanceof Branch) node = node.children[upperBound(node.keys, key)]!;
    return node;
  }

  get(key: string): V | undefined {
    const leaf = this.findLeaf(key);
    const i = lowerBound(leaf.keys, key);
    return i < leaf.keys.length && leaf.keys[i] === key ? leaf.values[i] : undefined;
  }

  /** Reused descent path of `set`/`delete` (the tree is used from one thread). */
  private readonly pathNodes: Branch<V>[] = [];
  private readonly pathSlots: number[] = [];

  /** Descends to the leaf for `key`, recording the path in `pathNodes`/`pathSlots`. */
  private descend(key: string): Leaf<V> {
    const nodes = this.pathNodes;
    const slots = this.pathSlots;
    nodes.length = 0;
    slots.length = 0;
    let node = this.root;
    while (node instanceof Branch) {
      const slot = upperBound(node.keys, key);
      nodes.push(node);
      slots.push(slot);
      node = node.children[slot]!;
    }
    return node;
  }

  /** Inserts or replaces. */
  set(key: string, value: V): void {
    const leaf = this.descend(key);
    const keys = leaf.keys;
    const values = leaf.values;
    const i = lowerBound(keys, key);
    if (i < keys.length && keys[i] === key) {
      values[i] = value;
      return;
    }
    // Shift by hand: cheaper than splice, which allocates the array of removed elements.
    let j = keys.length;
    keys.push(key);
    values.push(value);
    for (; j > i; j--) {
      keys[j] = keys[j - 1]!;
      values[j] = values[j - 1]!;
    }
    keys[i] = key;
    values[i] = value;
    this.count++;
    if (keys.length > MAX_KEYS) this.split(leaf, this.pathNodes, this.pathSlots);
  }

  private split(leaf: Leaf<V>, path: Branch<V>[], slots: number[]): void {
    const mid = leaf.keys.length >>> 1;
    const right = new Leaf<V>(leaf.keys.splice(mid), leaf.values.splice(mid), leaf.next, leaf);
    if (leaf.next !== null) leaf.next.prev = right;
    leaf.next = right;
    let separator = right.keys[0]!;
    let newChild: Node<V> = right;
    let child: Node<V> = leaf;
    for (let depth = path.length - 1; depth >= 0; depth--) {
      const parent = path[depth]!;
      const slot = slots[depth]!;
      parent.keys.splice(slot, 0, separator);
      parent.children.splice(slot + 1, 0, newChild);
      if (parent.keys.length <= MAX_KEYS) return;
      const m = parent.keys.length >>> 1;
      const up = parent.keys[m]!;
      const rightBranch = new Branch<V>(parent.keys.slice(m + 1), parent.children.slice(m + 1));
      parent.keys.length = m;
      parent.children.length = m + 1;
      separator = up;
      newChild = rightBranch;
      child = parent;
    }
    this.root = new Branch<V>([separator], [child, newChild]);
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const leaf = this.descend(key);
    const path = this.pathNodes;
    const slots = this.pathSlots;
    const i = lowerBound(leaf.keys, key);
    if (i >= leaf.keys.length || leaf.keys[i] !== key) return false;
    leaf.keys.splice(i, 1);
    leaf.values.splice(i, 1);
    this.count--;
    if (path.length === 0) return true;
    const parent = path[path.length - 1]!;
    const slot = slots[slots.length - 1]!;
    if (leaf.keys.length === 0) {
      this.unlink(leaf);
      this.removeChild(path, slots, path.length - 1);
    } else if (leaf.keys.length < MERGE_BELOW && slot + 1 < parent.children.length) {
      const right = parent.children[slot + 1] as Leaf<V>;
      if (leaf.keys.length + right.keys.length <= MAX_KEYS / 2) {
        for (let k = 0; k < right.keys.length; k++) {
          leaf.keys.push(right.keys[k]!);
          leaf.values.push(right.values[k]!);
        }
        this.unlink(right);
        slots[slots.length - 1] = slot + 1;
        this.removeChild(path, slots, path.length - 1);
      }
    }
    return true;
  }

  private unlink(leaf: Leaf<V>): void {
    if (leaf.prev !== null) leaf.prev.next = leaf.next;
    if (leaf.next !== null) leaf.next.prev = leaf.prev;
    leaf.prev = leaf.next = null;
  }

  /** Removes `path[depth].children[slots[depth]]`, then any branch left empty, then a one-child root. */
  private removeChild(path: Branch<V>[], slots: number[], depth: number): void {
    for (; depth >= 0; depth--) {
      const parent = path[depth]!;
      const slot = slots[depth]!;
      parent.children.splice(slot, 1);
      parent.keys.splice(slot === 0 ? 0 : slot - 1, 1);
      if (parent.children.length > 0) break;
      if (depth === 0) {
        this.root = new Leaf<V>([], []);
        return;
      }
    }
    while (this.root instanceof Branch && this.root.children.length === 1) this.root = this.root.children[0]!;
  }

  /**
   * Calls `visit` for each entry with `start <= key < end` in ascending key order (`end` undefined: to the
   * last key) until `visit` returns false.
   */
  // A visitor that returns nothing goes on.
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type
  scan(start: string, end: string | undefined, visit: (key: string, value: V) => boolean | void): void {
    let leaf: Leaf<V> | null = this.findLeaf(start);
    let i = lowerBound(leaf.keys, start);
    while (leaf !== null) {
      const keys = leaf.keys;
      for (; i < keys.length; i++) {
        const key = keys[i]!;
        if (end !== undefined && key >= end) return;
        if (visit(key, leaf.values[i]!) === false) return;
      }
      leaf = leaf.next;
      i = 0;
    }
  }

  /** Every entry in ascending key order. */
  *entries(): IterableIterator<[string, V]> {
    let leaf: Leaf<V> | null = this.findLeaf("");
    while (leaf !== null) {
      for (let i = 0; i < leaf.keys.length; i++) yield [leaf.keys[i]!, leaf.values[i]!];
      leaf = leaf.next;
    }
  }

  /** Height of the tree (1 for a lone leaf); for tests. */
  height(): number {
    let h = 1;
    let node = this.root;
    while (node instanceof Branch) {
      node = node.children[0]!;
      h++;
    }
    return h;
  }
}

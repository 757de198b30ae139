import { compareBytes } from "./compare-bytes.js";
import type { Entry, RangeOptions } from "./backend.js";

/**
 * An immutable AVL tree of byte keys in bytewise order. Every change copies the O(log n) nodes on the
 * path from the root and shares the rest, so an old root stays a complete, unchanging version of the map:
 * that is what makes the memory engine's snapshots free and its aborted transactions a matter of
 * forgetting a root.
 */
export interface TreeNode {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly left: TreeNode | null;
  readonly right: TreeNode | null;
  readonly height: number;
}

function height(node: TreeNode | null): number {
  return node === null ? 0 : node.height;
}

function makeNode(key: Uint8Array, value: Uint8Array, left: TreeNode | null, right: TreeNode | null): TreeNode {
  const lh = height(left);
  const rh = height(right);
  return { key, value, left, right, height: (lh > rh ? lh : rh) + 1 };
}

function rotateRight(node: TreeNode): TreeNode {
  const l = node.left!;
  return makeNode(l.key, l.value, l.left, makeNode(node.key, node.value, l.right, node.right));
}

function rotateLeft(node: TreeNode): TreeNode {
  const r = node.right!;
  return makeNode(r.key, r.value, makeNode(node.key, node.value, node.left, r.left), r.right);
}

/** Builds a node from the given parts and restores the AVL balance (children differ by at most 2). */
function balance(key: Uint8Array, value: Uint8Array, left: TreeNode | null, right: TreeNode | null): TreeNode {
  const lh = height(left);
  const rh = height(right);
  if (lh > rh + 1) {
    const l = left!;
    if (height(l.left) >= height(l.right)) return rotateRight(makeNode(key, value, l, right));
    return rotateRight(makeNode(key, value, rotateLeft(l), right));
  }
  if (rh > lh + 1) {
    const r = right!;
    if (height(r.right) >= height(r.left)) return rotateLeft(makeNode(key, value, left, r));
    return rotateLeft(makeNode(key, value, left, rotateRight(r)));
  }
  return makeNode(key, value, left, right);
}

export function treeGet(root: TreeNode | null, key: Uint8Array): TreeNode | undefined {
  let node = root;
  while (node !== null) {
    const c = compareBytes(key, node.key);
    if (c === 0) return node;
    node = c < 0 ? node.left : node.right;
  }
  return undefined;
}

/** A new root with `key` set to `value`; `root` is unchanged. The caller owns neither array afterwards. */
export function treePut(root: TreeNode | null, key: Uint8Array, value: Uint8Array): TreeNode {
  if (root === null) return makeNode(key, value, null, null);
  const c = compareBytes(key, root.key);
  if (c === 0) return makeNode(root.key, value, root.left, root.right);
  if (c < 0) return balance(root.key, root.value, treePut(root.left, key, value), root.right);
  return balance(root.key, root.value, root.left, treePut(root.right, key, value));
}

function removeMin(node: TreeNode): { min: TreeNode; rest: TreeNode | null } {
  if (node.left === null) return { min: node, rest: node.right };
  const { min, rest } = removeMin(node.left);
  return { min, rest: balance(node.key, node.value, rest, node.right) };
}

/** A new root without `key` (the same root when `key` is absent). */
export function treeDelete(root: TreeNode | null, key: Uint8Array): TreeNode | null {
  if (root === null) return null;
  const c = compareBytes(key, root.key);
  if (c < 0) {
    const left = treeDelete(root.left, key);
    return left === root.left ? root : balance(root.key, root.value, left, root.right);
  }
  if (c > 0) {
    const right = treeDelete(root.right, key);
    return right === root.right ? root : balance(root.key, root.value, root.left, right);
  }
  if (root.left === null) return root.right;
  if (root.right === null) return root.left;
  const { min, rest } = removeMin(root.right);
  return balance(min.key, min.value, root.left, rest);
}

/**
 * The nodes of `root` within `options` (start inclusive, end exclusive), ascending or, with `reverse`,
 * descending, at most `limit` of them. Walks an explicit stack: O(log n) to the first node, O(1)
 * amortized per step.
 */
export function* treeRange(root: TreeNode | null, options: RangeOptions = {}): Generator<TreeNode, void, undefined> {
  const { start, end, reverse = false } = options;
  let remaining = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
  if (start !== undefined && end !== undefined && compareBytes(start, end) >= 0) return;
  const stack: TreeNode[] = [];
  let node = root;
  if (!reverse) {
    // Descend to the smallest key >= start, remembering every node still to visit on the way.
    while (node !== null) {
      if (start === undefined || compareBytes(node.key, start) >= 0) {
        stack.push(node);
        node = node.left;
      } else node = node.right;
    }
    while (remaining > 0) {
      const top = stack.pop();
      if (top === undefined) return;
      if (end !== undefined && compareBytes(top.key, end) >= 0) return;
      yield top;
      remaining--;
      for (let n = top.right; n !== null; n = n.left) stack.push(n);
    }
  } else {
    // Descend to the largest key < end.
    while (node !== null) {
      if (end === undefined || compareBytes(node.key, end) < 0) {
        stack.push(node);
        node = node.right;
      } else node = node.left;
    }
    while (remaining > 0) {
      const top = stack.pop();
      if (top === undefined) return;
      if (start !== undefined && compareBytes(top.key, start) < 0) return;
      yield top;
      remaining--;
      for (let n = top.left; n !== null; n = n.right) stack.push(n);
    }
  }
}

/** Copies a tree node into an `Entry` the caller owns (stored arrays are plain Uint8Arrays, so slice copies). */
export function entryOf(node: TreeNode): Entry {
  return { key: node.key.slice(), value: node.value.slice() };
}

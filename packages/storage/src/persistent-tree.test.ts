import assert from "node:assert/strict";
import { test } from "node:test";
import { compareBytes } from "./compare-bytes.js";
import { treeDelete, treeGet, treePut, treeRange } from "./persistent-tree.js";
import type { TreeNode } from "./persistent-tree.js";

/** A small deterministic PRNG (mulberry32), so a failure replays exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Checks order and the AVL balance of every node; returns the height. */
function checkTree(node: TreeNode | null): number {
  if (node === null) return 0;
  const lh = checkTree(node.left);
  const rh = checkTree(node.right);
  assert.ok(Math.abs(lh - rh) <= 1, "unbalanced");
  assert.equal(node.height, Math.max(lh, rh) + 1, "stale height");
  if (node.left !== null) assert.ok(compareBytes(node.left.key, node.key) < 0, "left not smaller");
  if (node.right !== null) assert.ok(compareBytes(node.right.key, node.key) > 0, "right not larger");
  return node.height;
}

const hex = (k: Uint8Array) => Buffer.from(k).toString("hex");

test("random puts and deletes match a sorted reference, keep AVL balance, and leave old roots intact", () => {
  const random = prng(20261122);
  const randomKey = () => Uint8Array.from({ length: Math.floor(random() * 3) }, () => [0, 1, 0x7f, 0x80, 0xff][Math.floor(random() * 5)]!);
  let root: TreeNode | null = null;
  const reference = new Map<string, { key: Uint8Array; value: number }>();
  const versions: { root: TreeNode | null; expected: string[] }[] = [];
  for (let step = 0; step < 4000; step++) {
    const key = randomKey();
    if (random() < 0.6) {
      root = treePut(root, key, Uint8Array.of(step & 0xff));
      reference.set(hex(key), { key, value: step & 0xff });
    } else {
      root = treeDelete(root, key);
      reference.delete(hex(key));
    }
    if (step % 97 === 0) {
      checkTree(root);
      const expected = [...reference.values()].sort((a, b) => compareBytes(a.key, b.key)).map((e) => hex(e.key));
      assert.deepEqual(
        [...treeRange(root)].map((n) => hex(n.key)),
        expected,
      );
      assert.deepEqual(
        [...treeRange(root, { reverse: true })].map((n) => hex(n.key)),
        [...expected].reverse(),
      );
      const start = randomKey();
      const end = randomKey();
      const inRange = expected.filter(
        (k) => compareBytes(Buffer.from(k, "hex"), start) >= 0 && compareBytes(Buffer.from(k, "hex"), end) < 0,
      );
      assert.deepEqual(
        [...treeRange(root, { start, end, limit: 3 })].map((n) => hex(n.key)),
        inRange.slice(0, 3),
      );
      assert.deepEqual(
        [...treeRange(root, { start, end, reverse: true, limit: 3 })].map((n) => hex(n.key)),
        [...inRange].reverse().slice(0, 3),
      );
      for (const [k, { value }] of reference) assert.deepEqual(treeGet(root, Buffer.from(k, "hex"))?.value, Uint8Array.of(value));
      versions.push({ root, expected });
    }
  }
  // Every earlier root still reads exactly as it did.
  for (const { root: old, expected } of versions)
    assert.deepEqual(
      [...treeRange(old)].map((n) => hex(n.key)),
      expected,
    );
});

test("100k ascending inserts stay logarithmic in height", () => {
  let root: TreeNode | null = null;
  for (let i = 0; i < 100_000; i++) {
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i);
    root = treePut(root, key, key);
  }
  assert.ok(checkTree(root) <= 1.45 * Math.log2(100_000) + 2);
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KeyTree } from "./key-tree.js";

/** A tiny deterministic PRNG (tests must not depend on Math.random). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const key = (n: number) => n.toString(36).padStart(4, "0");

function scan<V>(tree: KeyTree<V>, start: string, end?: string): string[] {
  const out: string[] = [];
  tree.scan(start, end, (k) => {
    out.push(k);
  });
  return out;
}

describe("KeyTree (B+tree)", () => {
  it("agrees with a sorted model under random inserts and deletes", () => {
    const random = prng(42);
    const tree = new KeyTree<number>();
    const model = new Map<string, number>();
    for (let step = 0; step < 40000; step++) {
      const n = Math.floor(random() * 5000);
      const k = key(n);
      if (random() < 0.6) {
        tree.set(k, step);
        model.set(k, step);
      } else {
        assert.equal(tree.delete(k), model.delete(k));
      }
      if (step % 5000 === 0 || step === 39999) {
        const sorted = [...model.keys()].sort();
        assert.equal(tree.size, model.size);
        assert.deepEqual(
          [...tree.entries()].map(([k]) => k),
          sorted,
        );
        const lo = key(1000);
        const hi = key(2000);
        assert.deepEqual(
          scan(tree, lo, hi),
          sorted.filter((k) => k >= lo && k < hi),
        );
        for (const probe of [0, 17, 999, 4999]) {
          assert.equal(tree.get(key(probe)), model.get(key(probe)));
        }
      }
    }
  });

  it("scans from a key, to the end, and stops when asked", () => {
    const tree = new KeyTree<string>();
    for (const k of ["b", "a", "d", "c", "ab"]) tree.set(k, k);
    assert.deepEqual(scan(tree, "ab"), ["ab", "b", "c", "d"]);
    assert.deepEqual(scan(tree, "a", "c"), ["a", "ab", "b"]);
    assert.deepEqual(scan(tree, "c", "a"), []);
    const seen: string[] = [];
    tree.scan("", undefined, (_k, v) => {
      seen.push(v);
      return seen.length < 2;
    });
    assert.deepEqual(seen, ["a", "ab"]);
  });

  it("set replaces a value without adding a key", () => {
    const tree = new KeyTree<number>();
    tree.set("k", 1);
    tree.set("k", 2);
    assert.equal(tree.get("k"), 2);
    assert.equal(tree.size, 1);
  });

  it("stays shallow with many keys, and shrinks when they go", () => {
    const tree = new KeyTree<number>();
    const keys: string[] = [];
    for (let i = 0; i < 200000; i++) keys.push(`key-${(i * 7919) % 200000}`);
    for (const [i, k] of keys.entries()) tree.set(k, i);
    assert.equal(tree.size, 200000);
    assert.ok(tree.height() <= 4, `height ${tree.height()}`);
    const sorted = [...keys].sort();
    let i = 0;
    tree.scan("", undefined, (k) => {
      assert.equal(k, sorted[i++]!);
    });
    for (const k of keys) assert.ok(tree.delete(k));
    assert.equal(tree.size, 0);
    assert.equal(tree.height(), 1);
    assert.deepEqual([...tree.entries()], []);
  });
});

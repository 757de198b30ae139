import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IntervalTree } from "./interval-tree.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("IntervalTree", () => {
  it("finds the intervals containing a key, with unbounded ends", () => {
    const tree = new IntervalTree<string>();
    tree.set(enc("a"), enc("c"), "[a,c)");
    tree.set(enc("b"), null, "[b,∞)");
    tree.set(enc("c"), enc("d"), "[c,d)");
    const at = (k: string): string[] => {
      const out: string[] = [];
      tree.stab(enc(k), (v) => out.push(v));
      return out.sort();
    };
    assert.deepEqual(at("a"), ["[a,c)"]);
    assert.deepEqual(at("b"), ["[a,c)", "[b,∞)"]);
    assert.deepEqual(at("c"), ["[b,∞)", "[c,d)"]);
    assert.deepEqual(at("zzz"), ["[b,∞)"]);
    assert.deepEqual(at("0"), []);
    assert.equal(tree.delete(enc("b"), null), true);
    assert.equal(tree.delete(enc("b"), null), false);
    assert.deepEqual(at("zzz"), []);
    assert.equal(tree.size, 2);
  });

  it("agrees with a brute-force scan over random inserts, deletes and stabs", () => {
    const tree = new IntervalTree<number>();
    const model = new Map<string, { start: number; end: number | null; id: number }>();
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const k = (n: number): Uint8Array => new Uint8Array([n >> 8, n & 0xff]);
    for (let step = 0; step < 5000; step++) {
      const op = rand(10);
      if (op < 5) {
        const start = rand(500);
        const end = rand(8) === 0 ? null : start + 1 + rand(60);
        const id = step;
        model.set(`${start}:${end}`, { start, end, id });
        tree.set(k(start), end === null ? null : k(end), id);
      } else if (op < 7 && model.size > 0) {
        const entries = [...model.values()];
        const victim = entries[rand(entries.length)]!;
        model.delete(`${victim.start}:${victim.end}`);
        assert.equal(tree.delete(k(victim.start), victim.end === null ? null : k(victim.end)), true);
      } else {
        const point = rand(600);
        const got: number[] = [];
        tree.stab(k(point), (v) => got.push(v));
        const want = [...model.values()].filter((i) => i.start <= point && (i.end === null || point < i.end)).map((i) => i.id);
        assert.deepEqual(
          got.sort((a, b) => a - b),
          want.sort((a, b) => a - b),
        );
      }
      assert.equal(tree.size, model.size);
    }
  });
});

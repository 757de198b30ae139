import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExpiryQueue, TimeHeap } from "./expiry-queue.js";

/** A deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
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

function drain(queue: ExpiryQueue): [bigint, number][] {
  const out: [bigint, number][] = [];
  for (let head = queue.peek(); head !== undefined; head = queue.peek()) {
    out.push([head.id, head.time]);
    queue.delete(head.id);
  }
  return out;
}

describe("ExpiryQueue", () => {
  it("yields entries by time, ties by ID, one entry per ID", () => {
    const queue = new ExpiryQueue();
    queue.set(5n, 300);
    queue.set(2n, 100);
    queue.set(9n, 100);
    queue.set(1n, 200);
    queue.set(5n, 50); // moves earlier
    queue.set(2n, 400); // moves later
    assert.equal(queue.size, 4);
    assert.equal(queue.timeOf(2n), 400);
    assert.deepEqual(drain(queue), [
      [5n, 50],
      [9n, 100],
      [1n, 200],
      [2n, 400],
    ]);
    assert.equal(queue.size, 0);
  });

  it("matches a sorted reference under random sets and deletes", () => {
    const random = prng(42);
    const queue = new ExpiryQueue();
    const reference = new Map<bigint, number>();
    for (let step = 0; step < 20_000; step++) {
      const id = BigInt(Math.floor(random() * 500));
      if (random() < 0.25) {
        queue.delete(id);
        reference.delete(id);
      } else {
        const time = Math.floor(random() * 1000);
        queue.set(id, time);
        reference.set(id, time);
      }
      if (step % 1000 === 0) {
        const expected = [...reference].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0];
        const head = queue.peek();
        assert.deepEqual(head === undefined ? undefined : [head.id, head.time], expected);
      }
    }
    const expected = [...reference].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    assert.deepEqual(drain(queue), expected);
  });

  it("deleting an absent ID is a no-op; clear empties", () => {
    const queue = new ExpiryQueue();
    queue.delete(1n);
    queue.set(1n, 1);
    queue.clear();
    assert.equal(queue.size, 0);
    assert.equal(queue.peek(), undefined);
    assert.equal(queue.has(1n), false);
  });
});

describe("TimeHeap", () => {
  it("pops by time (ties by ID), duplicates allowed", () => {
    const random = prng(7);
    const heap = new TimeHeap();
    const reference: [bigint, number][] = [];
    for (let i = 0; i < 5000; i++) {
      const id = BigInt(Math.floor(random() * 100));
      const time = Math.floor(random() * 1000);
      heap.push(id, time);
      reference.push([id, time]);
    }
    reference.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const popped: [bigint, number][] = [];
    for (let item = heap.pop(); item !== undefined; item = heap.pop()) popped.push([item.id, item.time]);
    assert.deepEqual(popped, reference);
    assert.equal(heap.size, 0);
  });
});

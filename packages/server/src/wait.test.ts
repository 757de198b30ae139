import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isRpcError } from "@etcd-ts/api";
import { AppliedIndexWaiters, WaitRegistry } from "./wait.js";

const tooMany = (e: unknown) => isRpcError(e, "tooManyRequests");

describe("AppliedIndexWaiters", () => {
  it("resolves waiters as the applied index reaches them, at once for an index already applied", async () => {
    const w = new AppliedIndexWaiters();
    w.advance(5);
    await w.waitFor(3);
    const order: number[] = [];
    const a = w.waitFor(7).then(() => order.push(7));
    const b = w.waitFor(6).then(() => order.push(6));
    assert.equal(w.size, 2);
    w.advance(6);
    await b;
    assert.deepEqual(order, [6]);
    assert.equal(w.size, 1);
    w.advance(10);
    await a;
    assert.equal(w.size, 0);
  });

  it("removes a waiter whose signal aborts (timeout, cancelled call): an abandoned wait leaves nothing", async () => {
    const w = new AppliedIndexWaiters();
    const controllers = Array.from({ length: 1000 }, () => new AbortController());
    const waits = controllers.map((c, i) => w.waitFor(1_000_000_000 + i, c.signal));
    assert.equal(w.size, 1000);
    for (const c of controllers) c.abort(new Error("gone"));
    const results = await Promise.allSettled(waits);
    assert.ok(results.every((r) => r.status === "rejected" && (r.reason as Error).message === "gone"));
    assert.equal(w.size, 0);
    // An already aborted signal never registers.
    const done = new AbortController();
    done.abort(new Error("before"));
    await assert.rejects(w.waitFor(99, done.signal), /before/);
    assert.equal(w.size, 0);
    // A waiter that resolved no longer listens to its signal.
    const later = new AbortController();
    const p = w.waitFor(3, later.signal);
    w.advance(3);
    await p;
    later.abort(new Error("after"));
    assert.equal(w.size, 0);
  });

  it("refuses waiters beyond its limit with 'too many requests', and takes them again once some settle", async () => {
    const w = new AppliedIndexWaiters(3);
    const c = new AbortController();
    const held = [w.waitFor(10, c.signal), w.waitFor(11, c.signal), w.waitFor(12, c.signal)];
    await assert.rejects(w.waitFor(13), tooMany);
    assert.equal(w.size, 3);
    c.abort(new Error("timeout"));
    await Promise.allSettled(held);
    const again = w.waitFor(13);
    w.advance(13);
    await again;
  });
});

describe("WaitRegistry", () => {
  it("refuses to register beyond its limit with 'too many requests'", async () => {
    const r = new WaitRegistry<string>(2);
    const a = r.register(1n);
    const b = r.register(2n);
    assert.throws(() => r.register(3n), tooMany);
    r.trigger(1n, "one");
    assert.equal(await a, "one");
    const c = r.register(3n);
    r.fail(2n, new Error("x"));
    await assert.rejects(b, /x/);
    r.trigger(3n, "three");
    assert.equal(await c, "three");
    assert.equal(r.size, 0);
  });

  it("fails a waiter with the timeout's error once its time is up, each at its own deadline", async () => {
    const r = new WaitRegistry<string, string>(10, { ms: 60, error: () => new Error("timed out") });
    const start = performance.now();
    const first = r.register(1n, "first");
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = r.register(2n);
    const third = r.register(3n);
    assert.equal(r.attachment(1n), "first");
    assert.equal(r.attachment(2n), undefined);
    r.trigger(3n, "three");
    assert.equal(await third, "three");
    await assert.rejects(first, /timed out/);
    assert.ok(performance.now() - start >= 59);
    assert.equal(r.attachment(1n), undefined);
    await assert.rejects(second, /timed out/);
    assert.ok(performance.now() - start >= 89);
    assert.equal(r.size, 0);
  });

  it("forgets a cancelled waiter without settling it", async () => {
    const r = new WaitRegistry<string>(10, { ms: 20, error: () => new Error("timed out") });
    let settled = false;
    void r.register(1n).finally(() => (settled = true));
    r.cancel(1n);
    assert.equal(r.size, 0);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(settled, false);
  });
});

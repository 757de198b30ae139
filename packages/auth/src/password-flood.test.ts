import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { monitorEventLoopDelay } from "node:perf_hooks";
import bcrypt from "bcryptjs";
import { AuthStore } from "./auth-store.js";
import { BcryptPool } from "./bcrypt-pool.js";
import { isAuthError } from "./errors.js";
import { ManualClock, authErrorOf, openStoreFixture } from "./testing/store-fixture.js";
import { FailedLoginLimiter, peerAddress } from "./login-limiter.js";
import { bcryptCostOf } from "./password.js";

/** A pool that counts the bcrypt comparisons it is asked for. */
class CountingPool extends BcryptPool {
  compares = 0;
  override compare(password: string, hash: string): Promise<boolean> {
    this.compares++;
    return super.compare(password, hash);
  }
}

describe("bcrypt off the event loop", () => {
  const pool = new BcryptPool({ threads: 1, queueLimit: 100 });
  after(() => pool.close());

  it("hashes in the format bcryptjs (and Go) read, at the asked cost", async () => {
    const hash = await pool.hash("pw", 5);
    assert.match(hash, /^\$2b\$05\$/);
    assert.equal(bcryptCostOf(hash), 5);
    assert.equal(bcrypt.compareSync("pw", hash), true);
    assert.equal(await pool.compare("pw", bcrypt.hashSync("pw", 4)), true);
    assert.equal(await pool.compare("nope", `$2a$${hash.slice(4)}`), false);
  });

  it("a flood of password checks leaves the event loop free", async () => {
    const f = await openStoreFixture({ bcryptCost: 9 });
    const store = new AuthStore({ tokenProvider: f.store.tokenProvider, bcryptCost: 9, bcryptPool: pool, failedLogins: false });
    await f.backend.update((txn) => store.initialize(txn));
    const hashedPassword = await pool.hash("right", 9);
    await f.backend.update((txn) => store.userAdd(txn, { name: "root", hashedPassword }));
    await f.backend.update((txn) => store.userGrantRole(txn, { user: "root", role: "root" }));
    await f.backend.update((txn) => store.authEnable(txn));

    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    // The histogram samples on its own timer: let it start before the flood.
    await new Promise((resolve) => setTimeout(resolve, 50));
    // ~60 ms of bcrypt each: on the event loop these 40 would hold it for seconds at a time.
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => store.checkPassword("root", "wrong")));
    await new Promise((resolve) => setTimeout(resolve, 30));
    delay.disable();
    assert.ok(results.every((r) => r.status === "rejected" && isAuthError(r.reason, "AuthFailed")));
    assert.ok(delay.count > 0, "the event loop delay was sampled");
    const maxMs = delay.max / 1e6;
    assert.ok(maxMs < 1000, `the event loop was blocked for ${maxMs.toFixed(0)} ms`);
    assert.equal(await store.checkPassword("root", "right"), store.revision);
  });

  it("refuses jobs beyond its queue limit at once with 'too many requests'", async () => {
    const small = new BcryptPool({ threads: 1, queueLimit: 2 });
    try {
      const hash = bcrypt.hashSync("pw", 8);
      const jobs = Array.from({ length: 5 }, () => small.compare("pw", hash));
      const results = await Promise.allSettled(jobs);
      assert.deepEqual(
        results.map((r) => (r.status === "fulfilled" ? r.value : isAuthError(r.reason, "TooManyRequests") ? "refused" : String(r.reason))),
        [true, true, true, "refused", "refused"],
      );
      assert.equal(small.queued, 0);
      assert.equal(await small.compare("pw", hash), true, "takes jobs again once the queue drains");
    } finally {
      await small.close();
    }
  });
});

describe("failed logins are limited per user and per address (not in etcd)", () => {
  it("past the burst, a user's attempts are refused with AuthFailed without running bcrypt; time earns them back", async () => {
    const clock = new ManualClock();
    const pool = new CountingPool({ threads: 1 });
    after(() => pool.close());
    const f = await openStoreFixture({ clock });
    const store = new AuthStore({
      tokenProvider: f.store.tokenProvider,
      bcryptCost: 4,
      bcryptPool: pool,
      clock,
      failedLogins: { userBurst: 3, userPerSecond: 0.5, peerBurst: 100, peerPerSecond: 100 },
    });
    await f.backend.update((txn) => store.initialize(txn));
    const hashedPassword = await pool.hash("right", 4);
    await f.backend.update((txn) => store.userAdd(txn, { name: "root", hashedPassword }));
    await f.backend.update((txn) => store.userGrantRole(txn, { user: "root", role: "root" }));
    await f.backend.update((txn) => store.authEnable(txn));

    // Right passwords never use up the allowance.
    for (let i = 0; i < 5; i++) await store.checkPassword("root", "right", "10.0.0.1");
    pool.compares = 0;
    // Concurrent guesses count at once: only the burst reaches bcrypt.
    const guesses = await Promise.allSettled(Array.from({ length: 20 }, () => store.checkPassword("root", "wrong", "10.0.0.1")));
    assert.ok(guesses.every((r) => r.status === "rejected" && isAuthError(r.reason, "AuthFailed")));
    assert.equal(pool.compares, 3);
    // Same answer as a wrong password (clients see nothing new), even for the right one, and no bcrypt.
    await assert.rejects(store.checkPassword("root", "right", "10.0.0.2"), authErrorOf("AuthFailed"));
    assert.equal(pool.compares, 3);
    // Another user is not affected.
    await assert.rejects(store.checkPassword("nobody", "x", "10.0.0.1"), authErrorOf("AuthFailed"));
    assert.equal(pool.compares, 4);
    clock.advance(2000);
    assert.equal(await store.checkPassword("root", "right", "10.0.0.2"), store.revision);
  });

  it("one address guessing across many user names is limited too", () => {
    const clock = new ManualClock();
    const limiter = new FailedLoginLimiter({ userBurst: 10, peerBurst: 4, peerPerSecond: 1 }, clock);
    const admitted = Array.from({ length: 10 }, (_, i) => limiter.admit(`user${i}`, "10.0.0.9"));
    assert.equal(admitted.filter((a) => a !== undefined).length, 4);
    admitted.forEach((a) => a?.release(false));
    assert.ok(limiter.admit("user0", "10.0.0.8"), "another address is not affected");
    clock.advance(1000);
    assert.ok(limiter.admit("user5", "10.0.0.9"), "one more per second");
    assert.equal(limiter.admit("user6", "10.0.0.9"), undefined);
  });

  it("remembers a bounded number of user names and addresses", () => {
    const limiter = new FailedLoginLimiter({ maxTracked: 100 });
    for (let i = 0; i < 10_000; i++) limiter.admit(`u${i}`, `10.0.${i >> 8}.${i & 255}`)?.release(false);
    assert.deepEqual(limiter.tracked, { users: 100, peers: 100 });
  });

  it("addresses are taken from grpc-js peer strings without the port", () => {
    assert.equal(peerAddress("ipv4:127.0.0.1:51234"), "127.0.0.1");
    assert.equal(peerAddress("ipv6:[::1]:51234"), "::1");
    assert.equal(peerAddress("10.1.2.3:80"), "10.1.2.3");
    assert.equal(peerAddress("unix:/tmp/s.sock"), "/tmp/s.sock");
    assert.equal(peerAddress(undefined), undefined);
    assert.equal(peerAddress("unknown"), undefined);
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LEASE_BUCKET } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import type { Backend, WriteTxn } from "@etcd-ts/storage";
import { ManualClock } from "./clock.js";
import { LeaseError, isLeaseError } from "./errors.js";
import type { LeaseErrorCode } from "./errors.js";
import { decodeLeaseRecord, leaseIdKey } from "./lease-record.js";
import { DEFAULT_MIN_LEASE_TTL, Lessor, MAX_LEASE_TTL, minLeaseTTLFor } from "./lessor.js";
import type { AttachedKeyDeleter, LeaseBucketTxn, LessorOptions } from "./lessor.js";

const START = 1_700_000_000_000;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function setup(options: LessorOptions = {}, backend: Backend = openMemoryBackend()) {
  const clock = new ManualClock(START);
  const lessor = new Lessor(backend, { clock, ...options });
  return { backend, clock, lessor };
}

/** Runs `fn` in one write transaction and returns its result (the server's apply does the same). */
async function write<T>(backend: Backend, fn: (txn: WriteTxn) => T): Promise<T> {
  let result: T | undefined;
  await backend.update((txn) => {
    result = fn(txn);
  });
  return result as T;
}

function storedRecord(backend: Backend, id: bigint) {
  const bytes = backend.view((txn) => (txn.buckets().includes(LEASE_BUCKET) ? txn.get(LEASE_BUCKET, leaseIdKey(id)) : undefined));
  return bytes === undefined ? undefined : decodeLeaseRecord(bytes);
}

const leaseError = (code: LeaseErrorCode) => (e: unknown) => isLeaseError(e, code);

/**
 * Stands in for the MVCC store: keeps keys in a `kv` bucket and, like etcd's delete path, detaches each
 * deleted key from its lease while deleting. Records each call (one call = one revision).
 */
class FakeKeyStore {
  readonly calls: string[][] = [];
  failNext = false;
  /** The backend transaction of the revision being applied (the MVCC write batch, for the real store). */
  txn: WriteTxn | undefined;
  constructor(private readonly lessor: Lessor) {}

  /** The deleter bound to `txn`, as the server binds the MVCC batch. */
  in(txn: WriteTxn): AttachedKeyDeleter {
    return {
      deleteKeys: (keys) => {
        this.txn = txn;
        this.deleteKeys(keys);
      },
    };
  }

  put(txn: WriteTxn, key: string, lease: bigint): void {
    txn.createBucket("kv");
    txn.put("kv", enc(key), enc(`v-${key}`));
    const previous = this.lessor.leaseOf(enc(key));
    if (previous !== 0n && previous !== lease) this.lessor.detach(previous, [enc(key)]);
    if (lease !== 0n) this.lessor.attach(lease, [enc(key)]);
  }

  deleteKeys(keys: readonly Uint8Array[]): void {
    const txn = this.txn!;
    this.calls.push(keys.map(dec));
    for (const [i, key] of keys.entries()) {
      if (this.failNext && i === 1) {
        this.failNext = false;
        throw new Error("disk full");
      }
      txn.delete("kv", key);
      const lease = this.lessor.leaseOf(key);
      if (lease !== 0n) this.lessor.detach(lease, [key]);
    }
  }

  keys(backend: Backend): string[] {
    return backend.view((txn) => (txn.buckets().includes("kv") ? [...txn.range("kv")].map((e) => dec(e.key)) : []));
  }
}

describe("Lessor.grant", () => {
  it("grants a lease and persists it as etcd does (leasepb.Lease keyed by 8-byte big-endian ID)", async () => {
    const { backend, lessor } = setup();
    const info = await write(backend, (txn) => lessor.grant(txn, 0x694d7b4f54b6d10an, 60));
    assert.equal(info.id, 0x694d7b4f54b6d10an);
    assert.equal(info.ttl, 60);
    assert.equal(info.checkpointedTTL, 0);
    assert.equal(info.keyCount, 0);
    assert.ok(lessor.has(0x694d7b4f54b6d10an));
    assert.equal(lessor.lookup(0x694d7b4f54b6d10an), info);
    const raw = backend.view((txn) => txn.get(LEASE_BUCKET, Uint8Array.from(Buffer.from("694d7b4f54b6d10a", "hex"))));
    assert.equal(Buffer.from(raw!).toString("hex"), "088aa2dba5f5e9dea669103c");
  });

  it("raises a TTL below the minimum to it (etcd: ceil(((3 × electionTicks) / 2) × heartbeat) = 2 s by default)", async () => {
    assert.equal(DEFAULT_MIN_LEASE_TTL, 2);
    assert.equal(minLeaseTTLFor(10, 100), 2);
    assert.equal(minLeaseTTLFor(5, 100), 1); // (15 / 2 = 7 ticks) × 100 ms = 0.7 s → 1
    assert.equal(minLeaseTTLFor(10, 300), 5); // 15 × 300 ms = 4.5 s → 5
    const { backend, lessor } = setup();
    assert.equal((await write(backend, (txn) => lessor.grant(txn, 1n, 1))).ttl, 2);
    assert.equal((await write(backend, (txn) => lessor.grant(txn, 2n, -10))).ttl, 2);
    assert.equal((await write(backend, (txn) => lessor.grant(txn, 3n, 0))).ttl, 2);
    assert.equal((await write(backend, (txn) => lessor.grant(txn, 4n, 3))).ttl, 3);
    assert.equal(storedRecord(backend, 1n)?.ttl, 2n, "the raised TTL is what is stored");

    const custom = setup({ minLeaseTTL: 5 });
    assert.equal((await write(custom.backend, (txn) => custom.lessor.grant(txn, 1n, 4))).ttl, 5);
  });

  it("refuses a TTL above MAX_LEASE_TTL with LeaseTTLTooLarge and writes nothing", async () => {
    const { backend, lessor } = setup();
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 1n, MAX_LEASE_TTL + 1)),
      leaseError("LeaseTTLTooLarge"),
    );
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 1n, 1n << 62n)),
      leaseError("LeaseTTLTooLarge"),
    );
    assert.equal(lessor.has(1n), false);
    assert.equal(storedRecord(backend, 1n), undefined);
    assert.equal((await write(backend, (txn) => lessor.grant(txn, 1n, MAX_LEASE_TTL))).ttl, MAX_LEASE_TTL);
  });

  it("refuses an existing ID with LeaseExist, leaving the lease as it was", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 7n, 10));
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 7n, 99)),
      leaseError("LeaseExist"),
    );
    assert.equal(lessor.lookup(7n)?.ttl, 10);
    assert.equal(storedRecord(backend, 7n)?.ttl, 10n);
  });

  it("refuses ID 0 (no lease) as etcd's Grant does, with LeaseNotFound", async () => {
    const { backend, lessor } = setup();
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 0n, 10)),
      leaseError("LeaseNotFound"),
    );
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 1n << 64n, 10)),
      RangeError,
    );
    await assert.rejects(
      write(backend, (txn) => lessor.grant(txn, 1n, 1.5)),
      RangeError,
    );
  });

  it("accepts negative IDs (any int64 but 0, as etcd)", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, -5n, 10));
    assert.equal(storedRecord(backend, -5n)?.id, -5n);
  });

  it("newLeaseId picks a positive ID that is not granted", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 3n, 10));
    let calls = 0;
    const id = lessor.newLeaseId({
      fill(bytes) {
        bytes.fill(0);
        bytes[7] = calls++ === 0 ? 3 : 4;
      },
    });
    assert.equal(id, 4n);
  });
});

describe("Lessor.revoke", () => {
  it("deletes every attached key in one call (one revision), sorted, then the lease record", async () => {
    const { backend, lessor } = setup();
    const store = new FakeKeyStore(lessor);
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    await write(backend, (txn) => lessor.grant(txn, 2n, 10));
    await write(backend, (txn) => {
      for (const key of ["foo", "bar", "baz", "a\u0000"]) store.put(txn, key, 1n);
      store.put(txn, "other", 2n);
      store.put(txn, "plain", 0n);
    });
    const keys = await write(backend, (txn) => lessor.revoke(txn, 1n, store.in(txn)));
    assert.deepEqual(keys.map(dec), ["a\u0000", "bar", "baz", "foo"]);
    assert.deepEqual(store.calls, [["a\u0000", "bar", "baz", "foo"]], "one call: one revision");
    assert.deepEqual(store.keys(backend), ["other", "plain"]);
    assert.equal(lessor.has(1n), false);
    assert.equal(storedRecord(backend, 1n), undefined);
    assert.equal(lessor.leaseOf(enc("foo")), 0n);
    assert.equal(lessor.leaseOf(enc("other")), 2n);
  });

  it("does not call the deleter for a lease without keys; returns the keys when given no deleter", async () => {
    const { backend, lessor } = setup();
    const store = new FakeKeyStore(lessor);
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    await write(backend, (txn) => lessor.grant(txn, 2n, 10));
    assert.deepEqual(await write(backend, (txn) => lessor.revoke(txn, 1n, store.in(txn))), []);
    assert.deepEqual(store.calls, []);
    lessor.attach(2n, [enc("k2"), enc("k1")]);
    assert.deepEqual((await write(backend, (txn) => lessor.revoke(txn, 2n))).map(dec), ["k1", "k2"]);
    assert.equal(lessor.leaseOf(enc("k1")), 0n);
  });

  it("answers LeaseNotFound for an unknown lease", async () => {
    const { backend, lessor } = setup();
    await assert.rejects(
      write(backend, (txn) => lessor.revoke(txn, 9n)),
      leaseError("LeaseNotFound"),
    );
  });

  it("keeps the lease and its keys (memory and disk) when deleting its keys fails halfway", async () => {
    const { backend, lessor } = setup();
    const store = new FakeKeyStore(lessor);
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    await write(backend, (txn) => {
      store.put(txn, "foo", 1n);
      store.put(txn, "bar", 1n);
    });
    store.failNext = true;
    await assert.rejects(
      write(backend, (txn) => lessor.revoke(txn, 1n, store.in(txn))),
      /disk full/,
    );
    assert.ok(lessor.has(1n));
    assert.ok(storedRecord(backend, 1n));
    assert.equal(lessor.leaseOf(enc("foo")), 1n);
    assert.equal(lessor.leaseOf(enc("bar")), 1n, "detached by the failed deleter, attached again");
    assert.deepEqual(lessor.lookup(1n)?.keys().map(dec), ["bar", "foo"]);
    assert.deepEqual(store.keys(backend), ["bar", "foo"]);
  });
});

describe("Lessor.attach / detach", () => {
  it("tracks keys per lease and the lease of each key", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    await write(backend, (txn) => lessor.grant(txn, 2n, 10));
    lessor.attach(1n, [enc("a"), enc("b")]);
    assert.equal(lessor.lookup(1n)?.keyCount, 2);
    assert.equal(lessor.leaseOf(enc("a")), 1n);
    assert.equal(lessor.leaseOf(enc("zzz")), 0n);

    lessor.attach(2n, [enc("a")]); // moves "a"
    assert.deepEqual(lessor.lookup(1n)?.keys().map(dec), ["b"]);
    assert.deepEqual(lessor.lookup(2n)?.keys().map(dec), ["a"]);
    assert.equal(lessor.leaseOf(enc("a")), 2n);

    assert.equal(lessor.detach(2n, [enc("a")]), true);
    assert.equal(lessor.leaseOf(enc("a")), 0n);
    assert.equal(lessor.lookup(2n)?.keyCount, 0);
    assert.equal(lessor.detach(1n, [enc("not-attached")]), true);
    assert.equal(lessor.lookup(1n)?.keyCount, 1);
  });

  it("attach to or detach from an unknown lease returns false and changes nothing", () => {
    const { lessor } = setup();
    assert.equal(lessor.attach(5n, [enc("a")]), false);
    assert.equal(lessor.leaseOf(enc("a")), 0n);
    assert.equal(lessor.detach(5n, [enc("a")]), false);
    assert.equal(lessor.attachOnRecovery(5n, enc("a")), false);
  });

  it("handles binary keys bytewise (sorted as memcmp, any byte value)", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    const keys = [Uint8Array.of(0xff), Uint8Array.of(0x00, 0x01), Uint8Array.of(0x00), Uint8Array.of(0x80, 0x00), new Uint8Array(0)];
    lessor.attach(1n, keys);
    assert.deepEqual(lessor.lookup(1n)?.keys(), [
      new Uint8Array(0),
      Uint8Array.of(0x00),
      Uint8Array.of(0x00, 0x01),
      Uint8Array.of(0x80, 0x00),
      Uint8Array.of(0xff),
    ]);
    const big = new Uint8Array(100_000).fill(0xe9);
    lessor.attach(1n, [big]);
    assert.equal(lessor.leaseOf(big), 1n);
    assert.ok(
      lessor
        .lookup(1n)
        ?.keys()
        .some((key) => Buffer.from(key).equals(big)),
    );
  });
});

describe("Lessor.renew and timeToLive", () => {
  it("renews only on the primary: NotLeader elsewhere", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    await assert.rejects(lessor.renew(1n), leaseError("NotLeader"));
  });

  it("resets expiry to now + TTL and returns the TTL; unknown → LeaseNotFound", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    assert.equal(lessor.lookup(1n)?.expiresAt, START + 10_000);
    clock.advance(7_000);
    assert.equal(await lessor.renew(1n), 10);
    assert.equal(lessor.lookup(1n)?.expiresAt, START + 17_000);
    clock.advance(9_999);
    assert.deepEqual(lessor.expiredLeases(), []);
    clock.advance(1);
    assert.deepEqual(lessor.expiredLeases(), [1n]);
    await assert.rejects(lessor.renew(2n), leaseError("LeaseNotFound"));
  });

  it("reports remaining seconds truncated as etcd 3.4 does, with keys when asked", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 60));
    lessor.attach(1n, [enc("b"), enc("a")]);
    assert.deepEqual(lessor.timeToLive(1n), { id: 1n, grantedTTL: 60, ttl: 60 });
    clock.advance(1);
    assert.equal(lessor.timeToLive(1n).ttl, 59);
    clock.advance(58_998); // 1001 ms left
    assert.equal(lessor.timeToLive(1n).ttl, 1);
    clock.advance(2); // 999 ms left
    assert.equal(lessor.timeToLive(1n).ttl, 0);
    clock.advance(1_500); // 501 ms past expiry
    assert.ok(Object.is(lessor.timeToLive(1n).ttl, 0), "expired but not revoked: 0, not -0");
    clock.advance(1_000);
    assert.equal(lessor.timeToLive(1n).ttl, -1);
    assert.deepEqual(lessor.timeToLive(1n, { keys: true }).keys?.map(dec), ["a", "b"]);
    assert.throws(() => lessor.timeToLive(2n), leaseError("LeaseNotFound"));
  });

  it("on a member that is not primary, TTL left is what a promote would give", async () => {
    const { backend, clock, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 1n, 30));
    clock.advance(100_000);
    assert.equal(lessor.timeToLive(1n).ttl, 30);
    assert.equal(lessor.lookup(1n)?.expiresAt, undefined);
    await write(backend, (txn) => lessor.checkpoint(txn, 1n, 12));
    assert.equal(lessor.timeToLive(1n).ttl, 12);
  });

  it("a renew of an expired lease waits for its revoke, then answers LeaseNotFound", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 5));
    clock.advance(5_000);
    let settled: unknown;
    const pending = lessor.renew(1n).then(
      (ttl) => (settled = ttl),
      (e: unknown) => (settled = e),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, undefined, "still waiting");
    assert.deepEqual(lessor.expiredLeases(), [1n]);
    await write(backend, (txn) => lessor.revoke(txn, 1n));
    await pending;
    assert.ok(isLeaseError(settled, "LeaseNotFound"));
  });

  it("a renew of an expired lease answers NotLeader when leadership moves first", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 5));
    await write(backend, (txn) => lessor.grant(txn, 2n, 5));
    clock.advance(6_000);
    const first = lessor.renew(1n);
    const second = lessor.renew(1n);
    lessor.demote();
    await assert.rejects(first, leaseError("NotLeader"));
    await assert.rejects(second, leaseError("NotLeader"));
    lessor.promote();
    const third = lessor.renew(2n); // not expired any more after the promote
    assert.equal(await third, 5);
  });

  it("leases() lists every ID, soonest expiry first", async () => {
    const { backend, lessor } = setup();
    await write(backend, (txn) => {
      lessor.grant(txn, 3n, 30);
      lessor.grant(txn, 1n, 10);
      lessor.grant(txn, 2n, 20);
    });
    assert.deepEqual(lessor.leases(), [1n, 2n, 3n]);
    lessor.promote();
    await lessor.renew(1n);
    assert.deepEqual(lessor.leases(), [1n, 2n, 3n]);
    await write(backend, (txn) => lessor.revoke(txn, 2n));
    assert.deepEqual(lessor.leases(), [1n, 3n]);
    assert.equal(lessor.size, 2);
  });
});

describe("Lessor expiry (promote, demote, expiredLeases)", () => {
  it("has no expiry until promoted; promote refreshes every lease to now + TTL + extend", async () => {
    const { backend, clock, lessor } = setup();
    await write(backend, (txn) => {
      lessor.grant(txn, 1n, 10);
      lessor.grant(txn, 2n, 20);
    });
    clock.advance(3_600_000);
    assert.equal(lessor.isPrimary, false);
    assert.deepEqual(lessor.expiredLeases(), []);
    lessor.promote(1_000);
    assert.equal(lessor.isPrimary, true);
    assert.equal(lessor.lookup(1n)?.expiresAt, clock.now() + 11_000);
    assert.equal(lessor.lookup(2n)?.expiresAt, clock.now() + 21_000);
    assert.equal(lessor.timeToLive(1n).ttl, 11, "an extended lease may report more than its TTL, as etcd's");
    clock.advance(10_999);
    assert.deepEqual(lessor.expiredLeases(), []);
    clock.advance(1);
    assert.deepEqual(lessor.expiredLeases(), [1n]);
  });

  it("a leader change never expires a lease early: the new leader restarts the clock", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    clock.advance(9_000);
    lessor.demote();
    clock.advance(60_000);
    lessor.promote(0);
    clock.advance(9_999);
    assert.deepEqual(lessor.expiredLeases(), []);
  });

  it("demote stops expiry: no expired leases, no expiry times, renew refused", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 5));
    lessor.demote();
    assert.equal(lessor.isPrimary, false);
    assert.equal(lessor.lookup(1n)?.expiresAt, undefined);
    clock.advance(60_000);
    assert.deepEqual(lessor.expiredLeases(), []);
    await assert.rejects(lessor.renew(1n), leaseError("NotLeader"));
    await write(backend, (txn) => lessor.grant(txn, 2n, 5));
    assert.equal(lessor.lookup(2n)?.expiresAt, undefined, "grants on a follower do not run");
  });

  it("hands out expired leases in expiry order, each again after the retry interval until revoked", async () => {
    const { backend, clock, lessor } = setup({ expiredLeaseRetryIntervalMs: 3_000 });
    lessor.promote();
    await write(backend, (txn) => {
      lessor.grant(txn, 10n, 7);
      lessor.grant(txn, 20n, 3);
      lessor.grant(txn, 30n, 5);
      lessor.grant(txn, 40n, 100);
      lessor.grant(txn, 5n, 5);
    });
    clock.advance(4_000);
    assert.deepEqual(lessor.expiredLeases(), [20n]);
    clock.advance(1_000);
    assert.deepEqual(lessor.expiredLeases(), [5n, 30n], "by expiry, ties by ID");
    assert.deepEqual(lessor.expiredLeases(), [], "handed out once per retry interval");
    clock.advance(2_000);
    assert.deepEqual(lessor.expiredLeases(), [10n, 20n], "10 expired at +7 s, 20 is due again at +7 s");
    await write(backend, (txn) => lessor.revoke(txn, 30n));
    clock.advance(999);
    assert.deepEqual(lessor.expiredLeases(), []);
    clock.advance(1);
    assert.deepEqual(lessor.expiredLeases(), [5n], "30 was revoked");
    assert.deepEqual(lessor.expiredLeases(2), []);
  });

  it("a renewal before revoke takes the lease out of the expired set", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 5));
    clock.advance(4_999);
    await lessor.renew(1n);
    clock.advance(4_999);
    assert.deepEqual(lessor.expiredLeases(), []);
  });

  it("rate limits as etcd: half the revoke rate per call, the rate per second overall, and `limit`", async () => {
    const { backend, clock, lessor } = setup({ leaseRevokeRate: 10 });
    lessor.promote();
    await write(backend, (txn) => {
      for (let id = 1n; id <= 40n; id++) lessor.grant(txn, id, 5);
    });
    clock.advance(5_000);
    assert.deepEqual(lessor.expiredLeases(), [1n, 2n, 3n, 4n, 5n]);
    assert.deepEqual(lessor.expiredLeases(), [], "no tokens left");
    clock.advance(300);
    assert.deepEqual(lessor.expiredLeases(), [6n, 7n, 8n]);
    clock.advance(10_000);
    assert.deepEqual(lessor.expiredLeases(2), [9n, 10n]);
    assert.deepEqual(lessor.expiredLeases(), [11n, 12n, 13n], "the burst is capped at half the rate");
  });

  it("hands out nothing on a follower, and a new promote restarts leases that were due", async () => {
    const { backend, clock, lessor } = setup();
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 5));
    clock.advance(10_000);
    lessor.demote();
    assert.deepEqual(lessor.expiredLeases(), []);
    lessor.promote();
    assert.deepEqual(lessor.expiredLeases(), []);
  });

  it("spreads a pile-up of expiries on promote (≥ leaseRevokeRate leases) as etcd does", async () => {
    const rate = 8; // target ¾ × 8 = 6 expiries per second
    const { backend, clock, lessor } = setup({ leaseRevokeRate: rate });
    await write(backend, (txn) => {
      for (let id = 1n; id <= 30n; id++) lessor.grant(txn, id, 10);
    });
    lessor.promote();
    const now = clock.now();
    const expiries = [...Array(30).keys()].map((i) => lessor.lookup(BigInt(i + 1))!.expiresAt! - now);
    assert.deepEqual(expiries.slice(0, 6), Array(6).fill(10_000), "the first ¾ × rate keep their expiry");
    for (let i = 6; i < 30; i++) {
      assert.ok(expiries[i]! > 10_000, `lease ${i + 1} delayed`);
      assert.ok(expiries[i]! >= expiries[i - 1]!, "delays grow with the pile");
    }
    // No one-second window holds more than the target.
    for (const start of expiries) {
      assert.ok(expiries.filter((e) => e >= start && e < start + 1000).length <= 6);
    }
    // Fewer leases than the revoke rate: untouched.
    const small = setup({ leaseRevokeRate: 100 });
    await write(small.backend, (txn) => {
      for (let id = 1n; id <= 30n; id++) small.lessor.grant(txn, id, 10);
    });
    small.lessor.promote();
    assert.ok([...Array(30).keys()].every((i) => small.lessor.lookup(BigInt(i + 1))!.expiresAt === small.clock.now() + 10_000));
  });
});

describe("Lessor persistence and recovery", () => {
  it("a new lessor on the same backend finds every lease, without keys and without expiry", async () => {
    const backend = openMemoryBackend();
    const first = setup({}, backend).lessor;
    first.promote();
    await write(backend, (txn) => {
      first.grant(txn, 1n, 10);
      first.grant(txn, 2n, 20);
      first.grant(txn, 3n, 30);
    });
    first.attach(1n, [enc("k")]);
    await write(backend, (txn) => first.revoke(txn, 2n));
    first.close();

    const { clock, lessor } = setup({}, backend);
    assert.deepEqual(lessor.leases(), [1n, 3n]);
    assert.equal(lessor.lookup(1n)?.ttl, 10);
    assert.equal(lessor.lookup(1n)?.expiresAt, undefined);
    assert.equal(lessor.lookup(1n)?.keyCount, 0, "keys come back from the KV store");
    assert.equal(lessor.attachOnRecovery(1n, enc("k")), true);
    assert.equal(lessor.attachOnRecovery(2n, enc("gone")), false);
    assert.equal(lessor.leaseOf(enc("k")), 1n);
    // A restart never expires a live lease early: the leader restarts each lease's full TTL.
    clock.advance(3_600_000);
    lessor.promote(1_000);
    clock.advance(10_999);
    assert.deepEqual(lessor.expiredLeases(), []);
    clock.advance(1);
    assert.deepEqual(lessor.expiredLeases(), [1n]);
  });

  it("raises recovered TTLs to today's minimum", async () => {
    const backend = openMemoryBackend();
    const first = setup({ minLeaseTTL: 1 }, backend).lessor;
    await write(backend, (txn) => first.grant(txn, 1n, 1));
    const { lessor } = setup({ minLeaseTTL: 4 }, backend);
    assert.equal(lessor.lookup(1n)?.ttl, 4);
  });

  it("recover() replaces all state from a backend (snapshot install)", async () => {
    const { backend, clock, lessor } = setup();
    await write(backend, (txn) => lessor.grant(txn, 1n, 10));
    lessor.attach(1n, [enc("k")]);
    const other = openMemoryBackend();
    const donor = setup({}, other).lessor;
    await write(other, (txn) => {
      donor.grant(txn, 7n, 70);
      donor.grant(txn, 8n, 80);
    });

    lessor.promote();
    clock.advance(10_000);
    const waiting = lessor.renew(1n);
    lessor.recover(other);
    await assert.rejects(waiting, leaseError("LeaseNotFound"));
    assert.deepEqual(lessor.leases(), [7n, 8n]);
    assert.equal(lessor.leaseOf(enc("k")), 0n);
    assert.equal(lessor.lookup(7n)?.expiresAt, clock.now() + 70_000, "a primary keeps running its leases");
    assert.deepEqual(lessor.expiredLeases(), []);
  });

  it("starts empty on a backend without a lease bucket, and fails loudly on a damaged record", async () => {
    const backend = openMemoryBackend();
    assert.equal(setup({}, backend).lessor.size, 0);
    await backend.update((txn) => {
      txn.createBucket(LEASE_BUCKET);
      txn.put(LEASE_BUCKET, leaseIdKey(1n), Uint8Array.of(0x08));
    });
    assert.throws(
      () => setup({}, backend),
      (e: unknown) => isLeaseError(e, "Corrupt"),
    );
    await backend.update((txn) => txn.put(LEASE_BUCKET, leaseIdKey(1n), Uint8Array.of(0x08, 0x02, 0x10, 0x05)));
    assert.throws(() => setup({}, backend), /holds the record of lease 2/);
  });
});

describe("Lessor checkpoints", () => {
  it("a checkpointed remaining TTL is honoured by promote and survives a restart", async () => {
    const backend = openMemoryBackend();
    const { clock, lessor } = setup({}, backend);
    await write(backend, (txn) => lessor.grant(txn, 1n, 600));
    await write(backend, (txn) => lessor.checkpoint(txn, 1n, 42));
    assert.equal(lessor.lookup(1n)?.checkpointedTTL, 42);
    assert.deepEqual(storedRecord(backend, 1n), { id: 1n, ttl: 600n, remainingTTL: 42n });
    lessor.promote(500);
    assert.equal(lessor.lookup(1n)?.expiresAt, clock.now() + 42_500);

    const restarted = setup({}, backend);
    assert.equal(restarted.lessor.lookup(1n)?.checkpointedTTL, 42);
    restarted.lessor.promote();
    assert.equal(restarted.lessor.lookup(1n)?.expiresAt, restarted.clock.now() + 42_000);
    assert.equal(await restarted.lessor.renew(1n), 600, "a renewal restarts the full TTL");
    assert.equal(restarted.lessor.lookup(1n)?.expiresAt, restarted.clock.now() + 600_000);
  });

  it("checkpoints are not written when persistence is off; unknown leases are ignored", async () => {
    const { backend, lessor } = setup({ persistCheckpoints: false });
    await write(backend, (txn) => lessor.grant(txn, 1n, 600));
    await write(backend, (txn) => {
      lessor.checkpoint(txn, 1n, 42);
      lessor.checkpoint(txn, 99n, 42);
    });
    assert.equal(lessor.lookup(1n)?.checkpointedTTL, 42);
    assert.deepEqual(storedRecord(backend, 1n), { id: 1n, ttl: 600n, remainingTTL: 0n });
  });

  it("the primary schedules checkpoints of long leases every interval, rounded up as etcd", async () => {
    const { backend, clock, lessor } = setup({ enableCheckpoints: true, checkpointIntervalMs: 60_000 });
    lessor.promote();
    await write(backend, (txn) => {
      lessor.grant(txn, 1n, 3600);
      lessor.grant(txn, 2n, 30); // shorter than the interval: never checkpointed
    });
    clock.advance(59_999);
    assert.deepEqual(lessor.dueCheckpoints(), []);
    clock.advance(1_500);
    assert.deepEqual(lessor.dueCheckpoints(), [{ id: 1n, remainingTTL: 3539 }]);
    assert.deepEqual(lessor.dueCheckpoints(), []);
    // Applying it (through the log) schedules the next one.
    await write(backend, (txn) => lessor.checkpoint(txn, 1n, 3539));
    clock.advance(60_000);
    assert.deepEqual(lessor.dueCheckpoints(), [{ id: 1n, remainingTTL: 3479 }]);
  });

  it("a renewal of a checkpointed lease owes a clearing checkpoint (remaining 0)", async () => {
    const { backend, lessor } = setup({ enableCheckpoints: true });
    lessor.promote();
    await write(backend, (txn) => lessor.grant(txn, 1n, 3600));
    await lessor.renew(1n);
    assert.deepEqual(lessor.dueCheckpoints(), [], "nothing to clear");
    await write(backend, (txn) => lessor.checkpoint(txn, 1n, 100));
    await lessor.renew(1n);
    await lessor.renew(1n);
    assert.deepEqual(lessor.dueCheckpoints(), [{ id: 1n, remainingTTL: 0 }]);
    assert.deepEqual(lessor.dueCheckpoints(), []);
    await write(backend, (txn) => lessor.checkpoint(txn, 1n, 0));
    assert.equal(lessor.lookup(1n)?.checkpointedTTL, 0);
  });

  it("nothing is due on a follower or with checkpoints disabled", async () => {
    const off = setup();
    off.lessor.promote();
    await write(off.backend, (txn) => off.lessor.grant(txn, 1n, 3600));
    off.clock.advance(600_000);
    assert.deepEqual(off.lessor.dueCheckpoints(), []);
    const follower = setup({ enableCheckpoints: true });
    await write(follower.backend, (txn) => follower.lessor.grant(txn, 1n, 3600));
    follower.clock.advance(600_000);
    assert.deepEqual(follower.lessor.dueCheckpoints(), []);
  });
});

describe("declared interfaces", () => {
  it("a storage WriteTxn is a LeaseBucketTxn, and the Lessor is the KV applier's LeaseLookup", async () => {
    const { backend, lessor } = setup();
    await backend.update((txn) => {
      const bucketTxn: LeaseBucketTxn = txn; // compile-time check
      lessor.grant(bucketTxn, 1n, 10);
    });
    // The shape @etcd-ts/server's applier declares (`LeaseLookup`), checked structurally.
    const lookup: { has(id: bigint): boolean } = lessor;
    assert.equal(lookup.has(1n), true);
    assert.equal(lookup.has(2n), false);
  });
});

describe("LeaseError", () => {
  it("has a stable name, a code and a cause", () => {
    const cause = new Error("inner");
    const e = new LeaseError("LeaseTTLTooLarge", "too large", { cause });
    assert.equal(e.name, "LeaseError");
    assert.equal(e.code, "LeaseTTLTooLarge");
    assert.equal(e.cause, cause);
    assert.ok(isLeaseError(e));
    assert.ok(isLeaseError(e, "LeaseTTLTooLarge"));
    assert.ok(!isLeaseError(e, "LeaseExist"));
    assert.ok(!isLeaseError(new Error("x")));
  });

  it("is recognised by name and code, as one thrown by another installed copy of the package would be", () => {
    const fromOtherCopy = Object.assign(new Error("lease 7 not found"), { name: "LeaseError", code: "LeaseNotFound" });
    assert.ok(isLeaseError(fromOtherCopy, "LeaseNotFound"));
    assert.ok(!isLeaseError(fromOtherCopy, "NotLeader"));
  });
});

describe("Lessor at scale", () => {
  it("grants, renews, expires and revokes 100k leases quickly", async () => {
    const n = 100_000;
    const { backend, clock, lessor } = setup({ leaseRevokeRate: 1_000_000 });
    const started = performance.now();
    await write(backend, (txn) => {
      for (let i = 1; i <= n; i++) lessor.grant(txn, BigInt(i), 10 + (i % 50));
    });
    const granted = performance.now();
    lessor.promote();
    for (let i = 1; i <= n; i += 2) await lessor.renew(BigInt(i));
    clock.advance(60_000);
    const expired: bigint[] = [];
    for (let batch = lessor.expiredLeases(); batch.length > 0; batch = lessor.expiredLeases()) {
      expired.push(...batch);
      clock.advance(1_000);
    }
    assert.equal(expired.length, n);
    // Earliest expiry first: TTL 10 + (i % 50) — every lease with i % 50 === 0 comes before any other.
    assert.ok(expired.slice(0, n / 50).every((id) => id % 50n === 0n));
    await write(backend, (txn) => {
      for (const id of expired) lessor.revoke(txn, id);
    });
    const elapsed = performance.now() - started;
    assert.equal(lessor.size, 0);
    assert.equal(setup({}, backend).lessor.size, 0);
    assert.ok(elapsed < 15_000, `took ${elapsed.toFixed(0)} ms (grant ${(granted - started).toFixed(0)} ms)`);

    // Recovery of 100k leases.
    const big = openMemoryBackend();
    const writer = setup({}, big).lessor;
    await write(big, (txn) => {
      for (let i = 1; i <= n; i++) writer.grant(txn, BigInt(i), 60);
    });
    const recoverStarted = performance.now();
    const reopened = setup({}, big).lessor;
    reopened.promote();
    assert.equal(reopened.size, n);
    assert.ok(performance.now() - recoverStarted < 5_000);
  });
});

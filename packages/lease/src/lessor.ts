import { LEASE_BUCKET } from "@etcd-ts/schema";
import type { Backend } from "@etcd-ts/storage";
import { systemClock } from "./clock.js";
import type { Clock } from "./clock.js";
import { LeaseError } from "./errors.js";
import type { LeaseErrorCode } from "./errors.js";
import { ExpiryQueue, TimeHeap } from "./expiry-queue.js";
import { randomLeaseId } from "./lease-id.js";
import type { RandomSource } from "./lease-id.js";
import { decodeLeaseRecord, encodeLeaseRecord, leaseIdFromKey, leaseIdKey } from "./lease-record.js";

/** The largest TTL (seconds) a grant may ask for; above it the grant fails with `LeaseTTLTooLarge`. */
export const MAX_LEASE_TTL = 9_000_000_000;

/**
 * etcd's minimum lease TTL for a raft configuration: `ceil(((3 × electionTicks) / 2) × heartbeatMs / 1000)`
 * seconds, the division an integer one (etcdserver/server.go). A lease must outlive a leader election, or a
 * leader change would expire it before a client could renew it at the new leader.
 */
export function minLeaseTTLFor(electionTicks: number, heartbeatMs: number): number {
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatMs) / 1000);
}

/** etcd's default, from `--election-timeout 1000 --heartbeat-interval 100` (10 ticks): 2 seconds. */
export const DEFAULT_MIN_LEASE_TTL = minLeaseTTLFor(10, 100);
/** Expired leases handed out per second at most (etcd's `leaseRevokeRate`). */
export const DEFAULT_LEASE_REVOKE_RATE = 1000;
/** How long after handing out an expired lease it is handed out again if still not revoked. */
export const DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS = 3000;
/** How often a long lease's remaining TTL is checkpointed (etcd's `--lease-checkpoint-interval`). */
export const DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS = 5 * 60 * 1000;
/** Checkpoints per `LeaseCheckpointRequest` at most (etcd's `maxLeaseCheckpointBatchSize`). */
export const MAX_LEASE_CHECKPOINT_BATCH = 1000;

export interface LessorOptions {
  /** Default `systemClock`. */
  readonly clock?: Clock;
  /** Seconds; shorter grants are raised to it. Default `DEFAULT_MIN_LEASE_TTL` (see `minLeaseTTLFor`). */
  readonly minLeaseTTL?: number;
  /** Expired leases per second `expiredLeases` hands out, in bursts of half of it. Default 1000. */
  readonly leaseRevokeRate?: number;
  /** Default `DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS` (etcd sets the request timeout here). */
  readonly expiredLeaseRetryIntervalMs?: number;
  /**
   * Whether this member, as leader, schedules checkpoints of remaining TTLs (`dueCheckpoints`) — etcd's
   * `--experimental-enable-lease-checkpoint`; default false, as etcd's. Applying a checkpoint that came
   * through the log (`checkpoint`) works either way.
   */
  readonly enableCheckpoints?: boolean;
  /** Default `DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS`. */
  readonly checkpointIntervalMs?: number;
  /**
   * Whether an applied checkpoint is written to the `lease` bucket, so that a restart resumes from the
   * checkpointed remaining TTL instead of the full TTL (etcd ≥ 3.6 always; 3.4 behind
   * `--experimental-enable-lease-checkpoint-persist`). Default true.
   */
  readonly persistCheckpoints?: boolean;
}

/**
 * The part of a backend write transaction the lessor writes through: rows of the `lease` bucket. A
 * `WriteTxn` of `@etcd-ts/storage` is one. The server passes the transaction that applies the log entry,
 * so a lease change commits (or not) together with the entry's KV changes and consistent index.
 */
export interface LeaseBucketTxn {
  /** Idempotent. */
  createBucket(bucket: string): void;
  put(bucket: string, key: Uint8Array, value: Uint8Array): void;
  /** No-op when missing. */
  delete(bucket: string, key: Uint8Array): void;
}

/**
 * Deletes a revoked lease's keys from the key-value store. The lessor declares this instead of importing
 * the MVCC store (which itself consults the lessor), so the dependency points one way; the server binds
 * it to the MVCC write batch of the transaction it passes to `revoke`.
 *
 * Contract: `deleteKeys` deletes every key of `keys` — distinct, sorted bytewise, each one key (not a
 * range) — in the same backend transaction as the revoke, all at ONE new revision, with a delete event
 * per key. It may call `lessor.detach` for the keys (the lessor expects that). If it throws, the revoke
 * fails and the lessor keeps the lease and its keys.
 */
export interface AttachedKeyDeleter {
  deleteKeys(keys: readonly Uint8Array[]): void;
}

/** A remaining TTL to record through the log (`LeaseCheckpointRequest.checkpoints[]`). */
export interface LeaseCheckpoint {
  readonly id: bigint;
  /** Seconds; 0 clears the checkpoint (the lease got renewed). */
  readonly remainingTTL: number;
}

/** What a caller may read of a lease. The object is live: it reflects later changes to the lease. */
export interface LeaseInfo {
  readonly id: bigint;
  /** Granted TTL in seconds (after raising to the minimum). */
  readonly ttl: number;
  /** The checkpointed remaining TTL in seconds; 0 when there is none. */
  readonly checkpointedTTL: number;
  /** When the lease expires (clock ms); undefined while this member is not the primary (no expiry). */
  readonly expiresAt: number | undefined;
  readonly keyCount: number;
  /** The attached keys, sorted bytewise; fresh arrays the caller owns. */
  keys(): Uint8Array[];
}

export interface TimeToLive {
  readonly id: bigint;
  readonly grantedTTL: number;
  /**
   * Seconds left, truncated toward zero as etcd 3.4 reports them (`int64(Remaining().Seconds())`): 59
   * just after a 60-second grant, 0 or negative once expired and not yet revoked. Can exceed
   * `grantedTTL` after a promote with an extension. On a member that is not the primary, whose leases do
   * not run down, it is the TTL the lease would get if promoted (its checkpoint, else its TTL).
   */
  readonly ttl: number;
  /** Only when asked for: the attached keys, sorted bytewise. */
  readonly keys?: Uint8Array[];
}

/** A key as a map key: one UTF-16 unit per byte, so that `<` on these strings is bytewise order. */
function keyString(key: Uint8Array): string {
  let out = "";
  for (let i = 0; i < key.length; i += 8192) {
    out += String.fromCharCode(...key.subarray(i, i + 8192));
  }
  return out;
}

function keyBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

class Lease implements LeaseInfo {
  ttl: number;
  checkpointedTTL: number;
  /** Clock ms; Infinity while not primary ("forever"). */
  expiry = Infinity;
  /** Attached keys as `keyString`s; created on first attach (most leases in a large set hold few keys). */
  keySet: Set<string> | undefined = undefined;

  constructor(
    readonly id: bigint,
    ttl: number,
    checkpointedTTL: number,
  ) {
    this.ttl = ttl;
    this.checkpointedTTL = checkpointedTTL;
  }

  get expiresAt(): number | undefined {
    return this.expiry === Infinity ? undefined : this.expiry;
  }

  get keyCount(): number {
    return this.keySet?.size ?? 0;
  }

  /** The TTL a refresh starts from: the checkpoint if there is one, else the full TTL. */
  get refreshTTL(): number {
    return this.checkpointedTTL > 0 ? this.checkpointedTTL : this.ttl;
  }

  sortedKeyStrings(): string[] {
    return this.keySet === undefined ? [] : [...this.keySet].sort(compareStrings);
  }

  keys(): Uint8Array[] {
    return this.sortedKeyStrings().map(keyBytes);
  }
}

/** A renewal of an expired lease: it can only end in an error (the lease gets revoked or leadership moves). */
type RenewWaiter = (error: LeaseError) => void;

function toSeconds(what: string, value: number | bigint): bigint {
  if (typeof value === "bigint") return value;
  if (!Number.isSafeInteger(value)) throw new RangeError(`${what} ${value} is not an integer number of seconds`);
  return BigInt(value);
}

function checkLeaseId(id: bigint): void {
  if (BigInt.asIntN(64, id) !== id) throw new RangeError(`lease ID ${id} is not an int64`);
}

/**
 * Owns the leases of one member, as etcd's `lessor` does: the granted leases and their TTLs (persisted in
 * the backend's `lease` bucket), the keys attached to each (in memory only; the KV store re-attaches them
 * on recovery), and, while this member is the leader ("primary"), when each lease expires.
 *
 * Division of labour with the server:
 * - Every change that must be the same on all members — `grant`, `revoke`, `checkpoint` — is made by the
 *   server when it applies a committed log entry, inside the write transaction that also holds that
 *   entry's KV changes and consistent index. The lessor updates its memory at once; the transaction's
 *   commit makes the change durable. A failed apply transaction is fatal for the member (as in etcd), or
 *   the server calls `recover` to reload the committed state.
 * - `attach`/`detach` are called by the KV applier as puts and deletes change a key's lease.
 * - Expiry runs only on the primary: `promote` on becoming leader, `demote` on losing it. The lessor has no
 *   timers and never revokes on its own: the server polls `expiredLeases()` (etcd: every 500 ms) and
 *   proposes a LeaseRevoke for each, so expiry goes through the write path; likewise `dueCheckpoints()`.
 * - `renew` (keepalive) and `timeToLive` are answered by the leader from memory, not through the log.
 *
 * Single-threaded: methods run to completion; the only asynchronous result is `renew` of an expired lease.
 */
export class Lessor {
  private readonly clock: Clock;
  private readonly minLeaseTTL: number;
  private readonly revokeRate: number;
  private readonly revokeBurst: number;
  private readonly expiredRetryIntervalMs: number;
  private readonly checkpointsEnabled: boolean;
  private readonly checkpointIntervalMs: number;
  private readonly persistCheckpoints: boolean;

  private readonly leaseMap = new Map<bigint, Lease>();
  /** Which lease each attached key belongs to (etcd's `itemMap`); a key belongs to at most one. */
  private readonly keyLeases = new Map<string, bigint>();
  /** Primary only: one entry per lease at its expiry (or its retry time once handed out). */
  private readonly expiryQueue = new ExpiryQueue();
  /** Primary only, with checkpoints enabled: when to checkpoint which lease next. */
  private readonly checkpointSchedule = new TimeHeap();
  /** Leases renewed while holding a checkpoint: their checkpoint is to be cleared through the log. */
  private readonly pendingCheckpointClears = new Set<bigint>();
  /** Renews of expired leases, waiting for the revoke (or for a change of leader). */
  private readonly renewWaiters = new Map<bigint, RenewWaiter[]>();
  private primary = false;
  private revokeTokens: number;
  private revokeTokensAt: number;

  /** Loads the leases persisted in `backend` (none if it has no `lease` bucket yet). */
  constructor(backend: Backend, options: LessorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.minLeaseTTL = options.minLeaseTTL ?? DEFAULT_MIN_LEASE_TTL;
    this.revokeRate = options.leaseRevokeRate ?? DEFAULT_LEASE_REVOKE_RATE;
    this.expiredRetryIntervalMs = options.expiredLeaseRetryIntervalMs ?? DEFAULT_EXPIRED_LEASE_RETRY_INTERVAL_MS;
    this.checkpointsEnabled = options.enableCheckpoints ?? false;
    this.checkpointIntervalMs = options.checkpointIntervalMs ?? DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS;
    this.persistCheckpoints = options.persistCheckpoints ?? true;
    if (!Number.isSafeInteger(this.minLeaseTTL) || this.minLeaseTTL < 0) {
      throw new RangeError(`minLeaseTTL ${this.minLeaseTTL} is not a non-negative integer`);
    }
    if (!(this.revokeRate >= 1)) throw new RangeError(`leaseRevokeRate ${this.revokeRate} is below 1`);
    this.revokeBurst = Math.max(1, Math.floor(this.revokeRate / 2));
    this.revokeTokens = this.revokeBurst;
    this.revokeTokensAt = this.clock.now();
    this.load(backend);
  }

  /** True between `promote` and `demote`: this member's leases run down and it answers renewals. */
  get isPrimary(): boolean {
    return this.primary;
  }

  /** How many leases are granted. */
  get size(): number {
    return this.leaseMap.size;
  }

  /**
   * Replaces all state by what `backend` holds (after installing a snapshot), as etcd's `Recover`.
   * Attached keys are forgotten: the KV store re-attaches them with `attachOnRecovery`, so recover the
   * lessor before the KV store. A primary keeps being primary, with every lease's expiry refreshed.
   * Pending renewals of expired leases end: `LeaseNotFound` if the lease is gone, else `NotLeader` (the
   * client retries).
   */
  recover(backend: Backend): void {
    this.leaseMap.clear();
    this.keyLeases.clear();
    this.expiryQueue.clear();
    this.checkpointSchedule.clear();
    this.pendingCheckpointClears.clear();
    this.load(backend);
    if (this.primary) {
      const now = this.clock.now();
      for (const lease of this.leaseMap.values()) {
        this.refresh(lease, now, 0);
        this.scheduleCheckpoint(lease, now);
      }
    }
    for (const id of [...this.renewWaiters.keys()]) {
      this.settleRenewWaiters(id, this.leaseMap.has(id) ? "NotLeader" : "LeaseNotFound");
    }
  }

  private load(backend: Backend): void {
    const records = backend.view((txn) => {
      if (!txn.buckets().includes(LEASE_BUCKET)) return [];
      const out = [];
      for (const { key, value } of txn.range(LEASE_BUCKET)) {
        const keyId = leaseIdFromKey(key);
        let record;
        try {
          record = decodeLeaseRecord(value);
        } catch (e) {
          throw new LeaseError("Corrupt", `lease ${keyId}: undecodable record`, { cause: e });
        }
        if (record.id !== keyId) {
          throw new LeaseError("Corrupt", `lease bucket key ${keyId} holds the record of lease ${record.id}`);
        }
        out.push(record);
      }
      return out;
    });
    for (const record of records) {
      // The minimum may have grown since the grant (a changed election timeout): apply today's, as etcd.
      const ttl = Math.max(Number(record.ttl), this.minLeaseTTL);
      this.leaseMap.set(record.id, new Lease(record.id, ttl, Number(record.remainingTTL)));
    }
  }

  /**
   * Applies a LeaseGrant: records lease `id` with `ttl` seconds in `txn`'s `lease` bucket and in memory.
   * A TTL below the minimum (negative included) is raised to it. On the primary the lease starts running
   * at once; elsewhere it has no expiry until a promote.
   *
   * Throws `LeaseError` — `LeaseNotFound` for ID 0 (the server picks an ID before proposing:
   * `newLeaseId`), `LeaseTTLTooLarge` above `MAX_LEASE_TTL`, `LeaseExist` for a granted ID — and then
   * changes nothing.
   */
  grant(txn: LeaseBucketTxn, id: bigint, ttl: number | bigint): LeaseInfo {
    checkLeaseId(id);
    if (id === 0n) throw new LeaseError("LeaseNotFound", "lease ID 0 means no lease: choose an ID before granting");
    const requested = toSeconds("lease TTL", ttl);
    if (requested > BigInt(MAX_LEASE_TTL)) {
      throw new LeaseError("LeaseTTLTooLarge", `lease TTL ${requested} is above the maximum ${MAX_LEASE_TTL}`);
    }
    if (this.leaseMap.has(id)) throw new LeaseError("LeaseExist", `lease ${id} already exists`);
    const granted = requested < BigInt(this.minLeaseTTL) ? this.minLeaseTTL : Number(requested);
    txn.createBucket(LEASE_BUCKET);
    txn.put(LEASE_BUCKET, leaseIdKey(id), encodeLeaseRecord({ id, ttl: BigInt(granted), remainingTTL: 0n }));

    const lease = new Lease(id, granted, 0);
    this.leaseMap.set(id, lease);
    if (this.primary) {
      const now = this.clock.now();
      this.refresh(lease, now, 0);
      this.scheduleCheckpoint(lease, now);
    }
    return lease;
  }

  /**
   * Applies a LeaseRevoke: deletes the attached keys through `keyDeleter` (all in one revision, in key
   * order so that every member writes the same) and the lease's record, both in `txn`, then forgets the
   * lease. Returns the keys that were attached, sorted bytewise. Without a `keyDeleter` the caller must
   * delete those keys in `txn` itself.
   *
   * Throws `LeaseError` `LeaseNotFound` for an unknown lease. If `keyDeleter` throws, the lease stays.
   * A renew waiting on this (expired) lease ends with `LeaseNotFound`.
   */
  revoke(txn: LeaseBucketTxn, id: bigint, keyDeleter?: AttachedKeyDeleter): Uint8Array[] {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError("LeaseNotFound", `lease ${id} not found`);
    const keyStrings = lease.sortedKeyStrings();
    const keys = keyStrings.map(keyBytes);
    if (keyDeleter !== undefined && keys.length > 0) {
      try {
        keyDeleter.deleteKeys(keys);
      } catch (e) {
        // The deleter may have detached some keys before failing; its transaction rolls back, so they
        // are still attached.
        for (const key of keyStrings) this.attachKey(lease, key);
        throw e;
      }
    }
    txn.delete(LEASE_BUCKET, leaseIdKey(id));

    for (const key of keyStrings) {
      if (this.keyLeases.get(key) === id) this.keyLeases.delete(key);
    }
    this.leaseMap.delete(id);
    this.expiryQueue.delete(id);
    this.pendingCheckpointClears.delete(id);
    this.settleRenewWaiters(id, "LeaseNotFound");
    return keys;
  }

  /**
   * Applies a LeaseCheckpoint: from now on a refresh of lease `id` (promote, restart) starts from
   * `remainingTTL` seconds instead of its full TTL; 0 clears the checkpoint. Written to `txn` when
   * checkpoints persist. An unknown lease is ignored (it was revoked after the checkpoint was proposed),
   * as etcd does.
   */
  checkpoint(txn: LeaseBucketTxn, id: bigint, remainingTTL: number | bigint): void {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) return;
    lease.checkpointedTTL = Number(toSeconds("remaining TTL", remainingTTL));
    if (this.persistCheckpoints) {
      txn.createBucket(LEASE_BUCKET);
      txn.put(LEASE_BUCKET, leaseIdKey(id), encodeLeaseRecord({ id, ttl: BigInt(lease.ttl), remainingTTL: BigInt(lease.checkpointedTTL) }));
    }
    if (this.primary) this.scheduleCheckpoint(lease, this.clock.now());
  }

  /**
   * Attaches `keys` to lease `id` (a put with this lease). A key attached to another lease moves to this
   * one. Returns false and changes nothing when the lease is unknown — never throws, so that it is safe in
   * a KV apply or a store observer. (The KV applier checks `has` before it writes, so that a put naming an
   * unknown lease fails with etcd's `LeaseNotFound` and changes nothing.)
   */
  attach(id: bigint, keys: Iterable<Uint8Array>): boolean {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) return false;
    for (const key of keys) this.attachKey(lease, keyString(key));
    return true;
  }

  /**
   * Re-attaches one key while the KV store rebuilds its index at startup or after a snapshot (every
   * current key whose `lease` is not 0). Returns false (and does nothing) when the lease is unknown: a
   * key can outlive its lease's record only through damage, and etcd logs it and goes on.
   */
  attachOnRecovery(id: bigint, key: Uint8Array): boolean {
    return this.attach(id, [key]);
  }

  private attachKey(lease: Lease, key: string): void {
    const previous = this.keyLeases.get(key);
    if (previous !== undefined && previous !== lease.id) this.leaseMap.get(previous)?.keySet?.delete(key);
    this.keyLeases.set(key, lease.id);
    (lease.keySet ??= new Set()).add(key);
  }

  /**
   * Detaches `keys` from lease `id` (a delete of the key, or a put that changes or drops its lease).
   * Returns false when the lease is unknown — never throws, so a KV apply cannot fail here.
   */
  detach(id: bigint, keys: Iterable<Uint8Array>): boolean {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) return false;
    for (const key of keys) {
      const s = keyString(key);
      lease.keySet?.delete(s);
      if (this.keyLeases.get(s) === id) this.keyLeases.delete(s);
    }
    return true;
  }

  /** The lease `key` is attached to; 0n when none. */
  leaseOf(key: Uint8Array): bigint {
    return this.keyLeases.get(keyString(key)) ?? 0n;
  }

  has(id: bigint): boolean {
    return this.leaseMap.has(id);
  }

  lookup(id: bigint): LeaseInfo | undefined {
    return this.leaseMap.get(id);
  }

  /** Every granted lease ID, soonest expiry first, ties by ID (all tie while not primary). */
  leases(): bigint[] {
    return [...this.leaseMap.values()]
      .sort((a, b) => a.expiry - b.expiry || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((lease) => lease.id);
  }

  /**
   * Renews lease `id` (one LeaseKeepAlive request): it now expires its full TTL from now. Resolves to the
   * TTL. The new expiry is in effect when `renew` returns, before the promise settles.
   *
   * Rejects with `LeaseError`: `NotLeader` when this member is not the primary (the server forwards to the
   * leader), `LeaseNotFound` for an unknown lease (a keepalive then answers TTL 0). A lease already past
   * its expiry is being revoked: as in etcd the answer waits for that — `LeaseNotFound` once the revoke is
   * applied, `NotLeader` if leadership changes first (the lease may live on at the next leader).
   */
  renew(id: bigint): Promise<number> {
    if (!this.primary) {
      return Promise.reject(new LeaseError("NotLeader", `cannot renew lease ${id}: this member is not the leader`));
    }
    const lease = this.leaseMap.get(id);
    if (lease === undefined) return Promise.reject(new LeaseError("LeaseNotFound", `lease ${id} not found`));
    const now = this.clock.now();
    if (now >= lease.expiry) {
      return new Promise<number>((_resolve, reject) => {
        const waiters = this.renewWaiters.get(id);
        if (waiters === undefined) this.renewWaiters.set(id, [reject]);
        else waiters.push(reject);
      });
    }
    // A checkpoint would make the next leader restart this lease from a remaining TTL that the renewal
    // just made stale: have it cleared through the log (etcd clears it only when one is set, so a lease
    // costs at most two log entries per checkpoint interval).
    if (this.checkpointsEnabled && lease.checkpointedTTL > 0) this.pendingCheckpointClears.add(id);
    lease.expiry = now + lease.ttl * 1000;
    this.expiryQueue.set(id, lease.expiry);
    return Promise.resolve(lease.ttl);
  }

  /** LeaseTimeToLive. Throws `LeaseError` `LeaseNotFound` for an unknown lease (etcd answers TTL −1). */
  timeToLive(id: bigint, options: { keys?: boolean } = {}): TimeToLive {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw new LeaseError("LeaseNotFound", `lease ${id} not found`);
    const ttl = lease.expiry === Infinity ? lease.refreshTTL : Math.trunc((lease.expiry - this.clock.now()) / 1000) + 0;
    const result = { id, grantedTTL: lease.ttl, ttl };
    return options.keys === true ? { ...result, keys: lease.keys() } : result;
  }

  /** The lease ID for a LeaseGrant that asked for ID 0: random, positive, not granted here. */
  newLeaseId(random: RandomSource): bigint {
    return randomLeaseId(random, (id) => this.leaseMap.has(id));
  }

  /**
   * Makes this member the primary (it became leader): every lease expires `extendMs` plus its checkpointed
   * or full TTL from now, so no lease expires early because leadership moved or the member restarted.
   * etcd passes the election timeout as `extendMs`. With at least `leaseRevokeRate` leases, expiries
   * that would bunch up beyond ¾ of the revoke rate per second are spread out (delayed a little), as
   * etcd does, so that a burst of expiries does not crowd out the revocations of other leases.
   */
  promote(extendMs = 0): void {
    // A renew waiting across a change of term retries (etcd closes its demote channel on every change).
    for (const id of [...this.renewWaiters.keys()]) this.settleRenewWaiters(id, "NotLeader");
    this.primary = true;
    const now = this.clock.now();
    for (const lease of this.leaseMap.values()) {
      this.refresh(lease, now, extendMs);
      this.scheduleCheckpoint(lease, now);
    }
    if (this.leaseMap.size < this.revokeRate) return;

    const leases = [...this.leaseMap.values()].sort((a, b) => a.expiry - b.expiry);
    const targetExpiresPerSecond = Math.floor((3 * this.revokeRate) / 4);
    let baseWindow = (leases[0] as Lease).expiry - now;
    let nextWindow = baseWindow + 1000;
    let expires = 0;
    for (const lease of leases) {
      const remaining = lease.expiry - now;
      if (remaining > nextWindow) {
        baseWindow = remaining;
        nextWindow = baseWindow + 1000;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= targetExpiresPerSecond) continue;
      // A lease already `remaining − baseWindow` into the window needs that much less delay.
      const delay = Math.floor(1000 * (expires / targetExpiresPerSecond) - (remaining - baseWindow));
      nextWindow = baseWindow + delay;
      this.refresh(lease, now, delay + extendMs);
    }
  }

  /**
   * This member stopped being leader: leases stop running down (no expiry), the schedules are dropped,
   * and renewals waiting on expired leases end with `NotLeader`.
   */
  demote(): void {
    this.primary = false;
    for (const lease of this.leaseMap.values()) lease.expiry = Infinity;
    this.expiryQueue.clear();
    this.checkpointSchedule.clear();
    this.pendingCheckpointClears.clear();
    for (const id of [...this.renewWaiters.keys()]) this.settleRenewWaiters(id, "NotLeader");
  }

  /** Ends the lessor's part in the member: as `demote`. */
  close(): void {
    this.demote();
  }

  /**
   * The leases past their expiry, earliest first, for the server to propose a LeaseRevoke for each.
   * Primary only (else empty). Found through the expiry heap in O(k log n), never by a scan.
   *
   * Rate limited as etcd: at most `leaseRevokeRate` per second overall, at most half of it per call
   * (etcd hands out up to 500 every 500 ms), and at most `limit`. A lease handed out is handed out again
   * after `expiredLeaseRetryIntervalMs` if it is still not revoked (the proposal was lost).
   */
  expiredLeases(limit = Infinity): bigint[] {
    if (!this.primary) return [];
    const now = this.clock.now();
    const refill = ((now - this.revokeTokensAt) * this.revokeRate) / 1000;
    if (refill > 0) this.revokeTokens = Math.min(this.revokeBurst, this.revokeTokens + refill);
    this.revokeTokensAt = now;
    const budget = Math.min(limit, Math.floor(this.revokeTokens));
    const expired: bigint[] = [];
    while (expired.length < budget) {
      const head = this.expiryQueue.peek();
      if (head === undefined || now < head.time) break;
      const lease = this.leaseMap.get(head.id);
      if (lease === undefined) {
        this.expiryQueue.delete(head.id);
        continue;
      }
      this.expiryQueue.set(head.id, now + this.expiredRetryIntervalMs);
      if (now >= lease.expiry) expired.push(head.id);
    }
    this.revokeTokens -= expired.length;
    return expired;
  }

  /**
   * Remaining TTLs to checkpoint through the log (one LeaseCheckpointRequest), at most `limit`: first the
   * clears owed by renewals, then leases whose checkpoint time has come and that have run down below
   * their TTL (remaining rounded up to whole seconds, as etcd). Empty unless this member is the primary
   * and checkpoints are enabled. The server polls it (etcd: every 500 ms).
   */
  dueCheckpoints(limit = MAX_LEASE_CHECKPOINT_BATCH): LeaseCheckpoint[] {
    if (!this.primary || !this.checkpointsEnabled) return [];
    const checkpoints: LeaseCheckpoint[] = [];
    for (const id of this.pendingCheckpointClears) {
      if (checkpoints.length >= limit) return checkpoints;
      this.pendingCheckpointClears.delete(id);
      if (this.leaseMap.has(id)) checkpoints.push({ id, remainingTTL: 0 });
    }
    const now = this.clock.now();
    while (checkpoints.length < limit) {
      const head = this.checkpointSchedule.peek();
      if (head === undefined || head.time > now) break;
      this.checkpointSchedule.pop();
      const lease = this.leaseMap.get(head.id);
      if (lease === undefined || now >= lease.expiry) continue;
      const remainingTTL = Math.ceil((lease.expiry - now) / 1000);
      if (remainingTTL >= lease.ttl) continue;
      checkpoints.push({ id: head.id, remainingTTL });
    }
    return checkpoints;
  }

  private refresh(lease: Lease, now: number, extendMs: number): void {
    lease.expiry = now + extendMs + lease.refreshTTL * 1000;
    this.expiryQueue.set(lease.id, lease.expiry);
  }

  private scheduleCheckpoint(lease: Lease, now: number): void {
    if (!this.checkpointsEnabled) return;
    if (lease.refreshTTL > Math.floor(this.checkpointIntervalMs / 1000)) {
      this.checkpointSchedule.push(lease.id, now + this.checkpointIntervalMs);
    }
  }

  private settleRenewWaiters(id: bigint, code: LeaseErrorCode): void {
    const waiters = this.renewWaiters.get(id);
    if (waiters === undefined) return;
    this.renewWaiters.delete(id);
    const message =
      code === "LeaseNotFound" ? `lease ${id} not found` : `lease ${id} expired while leadership changed; retry at the leader`;
    for (const reject of waiters) reject(new LeaseError(code, message));
  }
}

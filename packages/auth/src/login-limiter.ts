import { systemClock } from "./clock.js";
import type { Clock } from "./clock.js";

export interface FailedLoginLimits {
  /** Failed password checks a user name may have in a burst. */
  readonly userBurst: number;
  /** Failures per second a user name earns back. */
  readonly userPerSecond: number;
  /** Failed password checks one client address may have in a burst (across user names). */
  readonly peerBurst: number;
  /** Failures per second a client address earns back. */
  readonly peerPerSecond: number;
  /** User names and addresses remembered at most (the least recently seen are forgotten first). */
  readonly maxTracked: number;
}

/**
 * A user may mistype a password a few times; a client guessing passwords gets ~1 bcrypt check per second
 * per user name and a few per address. The gRPC JSON gateway calls the member over loopback, so all its
 * clients share one address.
 */
export const DEFAULT_FAILED_LOGIN_LIMITS: FailedLoginLimits = {
  userBurst: 10,
  userPerSecond: 1,
  peerBurst: 30,
  peerPerSecond: 3,
  maxTracked: 10_000,
};

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets by key, at most `maxTracked` of them (a full bucket is the same as none). */
class Buckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly maxTracked: number,
  ) {}

  /** Tokens of `key` now (a key never seen has a full bucket); the bucket becomes the most recent. */
  take(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, at: now };
    } else {
      this.buckets.delete(key);
      bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.perSecond);
      bucket.at = now;
    }
    this.buckets.set(key, bucket);
    while (this.buckets.size > this.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
    return bucket;
  }

  refund(key: string, bucket: Bucket): void {
    bucket.tokens = Math.min(this.burst, bucket.tokens + 1);
    if (bucket.tokens >= this.burst && this.buckets.get(key) === bucket) this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** An admitted password check; `release(true)` when the password was right (the attempt is refunded). */
export interface LoginAttempt {
  release(succeeded: boolean): void;
}

/**
 * Limits FAILED logins per user name and per client address, so a password-guessing flood is refused
 * before it costs a bcrypt check. Each attempt takes a token from both buckets before the check (so
 * concurrent guesses count at once) and gives it back when the password was right: a user who logs in
 * correctly is never slowed by their own successes. While either bucket is empty, `admit` refuses and
 * the caller answers as for a wrong password. Not in etcd.
 */
export class FailedLoginLimiter {
  private readonly users: Buckets;
  private readonly peers: Buckets;
  private readonly clock: Clock;

  constructor(limits: Partial<FailedLoginLimits> = {}, clock: Clock = systemClock) {
    const l = { ...DEFAULT_FAILED_LOGIN_LIMITS, ...limits };
    this.users = new Buckets(l.userBurst, l.userPerSecond, l.maxTracked);
    this.peers = new Buckets(l.peerBurst, l.peerPerSecond, l.maxTracked);
    this.clock = clock;
  }

  /** An attempt for `user` from `peer` (an address; undefined when unknown), or undefined when refused. */
  admit(user: string, peer: string | undefined): LoginAttempt | undefined {
    const now = this.clock.now();
    const userBucket = this.users.take(user, now);
    const peerBucket = peer === undefined ? undefined : this.peers.take(peer, now);
    if (userBucket.tokens < 1 || (peerBucket !== undefined && peerBucket.tokens < 1)) return undefined;
    userBucket.tokens -= 1;
    if (peerBucket !== undefined) peerBucket.tokens -= 1;
    let released = false;
    return {
      release: (succeeded) => {
        if (released) return;
        released = true;
        if (!succeeded) return;
        this.users.refund(user, userBucket);
        if (peerBucket !== undefined) this.peers.refund(peer!, peerBucket);
      },
    };
  }

  /** User names and addresses with failures remembered (for tests and metrics). */
  get tracked(): { users: number; peers: number } {
    return { users: this.users.size, peers: this.peers.size };
  }
}

/**
 * The address part of a grpc-js peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`, `127.0.0.1:5000`):
 * a client's port changes with every connection, its address does not.
 */
export function peerAddress(peer: string | undefined): string | undefined {
  if (peer === undefined || peer === "" || peer === "unknown") return undefined;
  const text = peer.replace(/^(ipv4|ipv6|unix):/, "");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return bracketed[1];
  const colons = text.split(":").length - 1;
  if (colons === 1) return text.slice(0, text.lastIndexOf(":"));
  return text;
}

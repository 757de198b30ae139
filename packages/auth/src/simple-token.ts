import { randomInt } from "node:crypto";
import { systemClock } from "./clock.js";
import type { Clock } from "./clock.js";
import type { AuthInfo, TokenAssignParams, TokenProvider } from "./token-provider.js";

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
export const SIMPLE_TOKEN_PREFIX_LENGTH = 16;
/** etcd's simple token TTL; each use extends it by this much again. */
export const DEFAULT_SIMPLE_TOKEN_TTL_MS = 5 * 60 * 1000;

export interface SimpleTokenOptions {
  readonly ttlMs?: number;
  readonly clock?: Clock;
  /** A uniform integer in [0, max): injected for deterministic tests; node:crypto by default. */
  readonly randomInt?: (max: number) => number;
}

/** `prefix.index` as etcd writes simple tokens, or undefined when `token` is not one. */
export function parseSimpleToken(token: string): { prefix: string; index: number } | undefined {
  const parts = token.split(".");
  if (parts.length !== 2) return undefined;
  const [prefix, indexText] = parts as [string, string];
  if (!/^\d+$/.test(indexText)) return undefined;
  const index = Number(indexText);
  if (!Number.isSafeInteger(index)) return undefined;
  return { prefix, index };
}

/**
 * etcd's default token: 16 random letters + "." + the raft index of the Authenticate entry, held in
 * memory on each member with a TTL that every use refreshes. Not signed: it is only as secret as the
 * connection it travels on.
 *
 * A member can see a token before it applied the entry that registered it (the client authenticated
 * through another member); the server should wait until its applied index reaches
 * `parseSimpleToken(token).index` before calling `info` (etcd's indexWaiter).
 *
 * Expiry needs no timer: an expired token is dropped when it is looked up, and `sweep()` (called on each
 * assign, and by the server whenever it likes) drops the ones nobody asks about.
 */
export class SimpleTokenProvider implements TokenProvider {
  readonly type = "simple";
  readonly ttlMs: number;
  private readonly clock: Clock;
  private readonly randomInt: (max: number) => number;
  private readonly tokens = new Map<string, { username: string; expiresAt: number }>();
  private enabled = false;

  constructor(options: SimpleTokenOptions = {}) {
    this.ttlMs = options.ttlMs !== undefined && options.ttlMs > 0 ? options.ttlMs : DEFAULT_SIMPLE_TOKEN_TTL_MS;
    this.clock = options.clock ?? systemClock;
    this.randomInt = options.randomInt ?? ((max) => randomInt(max));
  }

  enable(): void {
    this.enabled = true;
  }

  disable(): void {
    this.enabled = false;
    this.tokens.clear();
  }

  genTokenPrefix(): string {
    let prefix = "";
    for (let i = 0; i < SIMPLE_TOKEN_PREFIX_LENGTH; i++) prefix += LETTERS[this.randomInt(LETTERS.length)];
    return prefix;
  }

  assign(username: string, _revision: number, params: TokenAssignParams): string {
    const token = `${params.simpleTokenPrefix}.${params.index}`;
    // etcd hands the token back without registering it when auth is off; it is then never valid.
    if (!this.enabled) return token;
    this.sweep();
    if (this.tokens.has(token)) {
      // A raft index is applied once, so this means two entries shared an index: a server bug.
      throw new Error(`simple token ${params.simpleTokenPrefix.slice(0, 4)}….${params.index} is already assigned`);
    }
    this.tokens.set(token, { username, expiresAt: this.clock.now() + this.ttlMs });
    return token;
  }

  info(token: string, currentRevision: number): AuthInfo | undefined {
    if (parseSimpleToken(token) === undefined) return undefined;
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if (now > entry.expiresAt) {
      this.tokens.delete(token);
      return undefined;
    }
    entry.expiresAt = now + this.ttlMs;
    // A simple token carries no revision: it speaks for the store's current one, as in etcd.
    return { username: entry.username, revision: currentRevision };
  }

  invalidateUser(username: string): void {
    for (const [token, entry] of this.tokens) {
      if (entry.username === username) this.tokens.delete(token);
    }
  }

  /** Drops expired tokens; returns how many. */
  sweep(): number {
    const now = this.clock.now();
    let dropped = 0;
    for (const [token, entry] of this.tokens) {
      if (now > entry.expiresAt) {
        this.tokens.delete(token);
        dropped++;
      }
    }
    return dropped;
  }

  /** Live tokens (for metrics and tests). */
  get size(): number {
    return this.tokens.size;
  }
}

import { randomInt } from "node:crypto";
import { systemClock } from "./clock.js";
import type { Clock } from "./clock.js";
import type { AuthInfo, TokenAssignParams, TokenProvider } from "./token-provider.js";

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
export const SIMPLE_TOKEN_PREFIX_LENGTH = 16;
/** etcd's simple token TTL; each use extends it by this much again. */
export const DEFAULT_SIMPLE_TOKEN_TTL_MS = 5 * 60 * 1000;
/** Live simple tokens a member keeps at most (~200 bytes each). */
export const DEFAULT_MAX_SIMPLE_TOKENS = 65_536;
/** Live simple tokens one user may hold at most: one user's logins cannot push out everyone else's. */
export const DEFAULT_MAX_SIMPLE_TOKENS_PER_USER = 4096;

export interface SimpleTokenOptions {
  readonly ttlMs?: number;
  readonly clock?: Clock;
  /** A uniform integer in [0, max): injected for deterministic tests; node:crypto by default. */
  readonly randomInt?: (max: number) => number;
  /** Bound on live tokens; past it the least recently used token is dropped. */
  readonly maxTokens?: number;
  /** Bound on one user's live tokens; past it that user's least recently used token is dropped. */
  readonly maxTokensPerUser?: number;
}

/** `prefix.index` as etcd writes simple tokens, or undefined when `token` is not one. */
export function parseSimpleToken(token: string): { prefix: string; index: number } | undefined {
  const parts = token.split(".");
  if (parts.length !== 2) return undefined;
  const [prefix, indexText] = parts as [string, string];
  // Only `genTokenPrefix`'s shape can ever be valid: anything else is refused without a lookup or a wait.
  if (prefix.length !== SIMPLE_TOKEN_PREFIX_LENGTH || !/^[a-zA-Z]+$/.test(prefix)) return undefined;
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
 *
 * Memory is bounded, which etcd's is not: at most `maxTokens` live tokens and `maxTokensPerUser` per
 * user; past either, the least recently used one goes (its client re-authenticates on "invalid auth
 * token"). Tokens are kept in order of last use, which is also the order of expiry.
 */
export class SimpleTokenProvider implements TokenProvider {
  readonly type = "simple";
  readonly ttlMs: number;
  private readonly clock: Clock;
  private readonly randomInt: (max: number) => number;
  readonly maxTokens: number;
  readonly maxTokensPerUser: number;
  /** By token, least recently used first. */
  private readonly tokens = new Map<string, { username: string; expiresAt: number }>();
  /** Each user's tokens, least recently used first. */
  private readonly byUser = new Map<string, Set<string>>();
  private enabled = false;

  constructor(options: SimpleTokenOptions = {}) {
    this.ttlMs = options.ttlMs !== undefined && options.ttlMs > 0 ? options.ttlMs : DEFAULT_SIMPLE_TOKEN_TTL_MS;
    this.maxTokens = Math.max(1, options.maxTokens ?? DEFAULT_MAX_SIMPLE_TOKENS);
    this.maxTokensPerUser = Math.max(1, options.maxTokensPerUser ?? DEFAULT_MAX_SIMPLE_TOKENS_PER_USER);
    this.clock = options.clock ?? systemClock;
    this.randomInt = options.randomInt ?? ((max) => randomInt(max));
  }

  enable(): void {
    this.enabled = true;
  }

  disable(): void {
    this.enabled = false;
    this.tokens.clear();
    this.byUser.clear();
  }

  genTokenPrefix(): string {
    let prefix = "";
    for (let i = 0; i < SIMPLE_TOKEN_PREFIX_LENGTH; i++) prefix += LETTERS.charAt(this.randomInt(LETTERS.length));
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
    const own = this.byUser.get(username);
    if (own !== undefined && own.size >= this.maxTokensPerUser) this.drop(own.values().next().value!);
    if (this.tokens.size >= this.maxTokens) this.drop(this.tokens.keys().next().value!);
    this.tokens.set(token, { username, expiresAt: this.clock.now() + this.ttlMs });
    this.userTokens(username).add(token);
    return token;
  }

  info(token: string, currentRevision: number): AuthInfo | undefined {
    if (parseSimpleToken(token) === undefined) return undefined;
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if (now > entry.expiresAt) {
      this.drop(token);
      return undefined;
    }
    entry.expiresAt = now + this.ttlMs;
    // Most recently used goes last, in both orders.
    this.tokens.delete(token);
    this.tokens.set(token, entry);
    const own = this.userTokens(entry.username);
    own.delete(token);
    own.add(token);
    // A simple token carries no revision: it speaks for the store's current one, as in etcd.
    return { username: entry.username, revision: currentRevision };
  }

  invalidateUser(username: string): void {
    for (const token of this.byUser.get(username) ?? []) this.tokens.delete(token);
    this.byUser.delete(username);
  }

  /**
   * Drops expired tokens; returns how many. Tokens are in expiry order, so this stops at the first live
   * one (a wall clock stepped back may leave a few expired ones to their lookup or a later sweep).
   */
  sweep(): number {
    const now = this.clock.now();
    let dropped = 0;
    for (const [token, entry] of this.tokens) {
      if (now <= entry.expiresAt) break;
      this.drop(token);
      dropped++;
    }
    return dropped;
  }

  /** Live tokens of `username` (for tests). */
  tokensOf(username: string): number {
    return this.byUser.get(username)?.size ?? 0;
  }

  private userTokens(username: string): Set<string> {
    let own = this.byUser.get(username);
    if (own === undefined) {
      own = new Set();
      this.byUser.set(username, own);
    }
    return own;
  }

  private drop(token: string): void {
    const entry = this.tokens.get(token);
    if (entry === undefined) return;
    this.tokens.delete(token);
    const own = this.byUser.get(entry.username);
    own?.delete(token);
    if (own?.size === 0) this.byUser.delete(entry.username);
  }

  /** Live tokens (for metrics and tests). */
  get size(): number {
    return this.tokens.size;
  }
}

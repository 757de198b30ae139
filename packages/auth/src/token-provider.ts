/** Who a request comes from, as the server puts it in the raft request header. */
export interface AuthInfo {
  readonly username: string;
  /**
   * The auth revision the caller's credentials were checked at. A permission check in apply refuses a
   * revision older than the store's (`AuthOldRevision`), so any user/role change takes effect at once for
   * every open token; the client then re-authenticates.
   */
  readonly revision: number;
}

/** What `assign` needs to make a token on every member identically (the Authenticate raft entry). */
export interface TokenAssignParams {
  /** From `genTokenPrefix()` on the member that proposed (empty for JWT). */
  readonly simpleTokenPrefix: string;
  /** The raft index of the Authenticate entry: makes simple tokens unique cluster-wide. */
  readonly index: number;
}

/**
 * Issues and resolves tokens. Both implementations keep their state in memory only: simple tokens are
 * registered on each member when the Authenticate entry is applied there; JWTs are self-contained.
 */
export interface TokenProvider {
  readonly type: "simple" | "jwt";
  /** Auth was enabled (also on recovery of an enabled store). */
  enable(): void;
  /** Auth was disabled: every simple token stops working. */
  disable(): void;
  /** Run by the server before proposing Authenticate; the prefix travels in the raft entry. */
  genTokenPrefix(): string;
  /** Makes (and for simple tokens, registers) a token for `username` at auth `revision`. */
  assign(username: string, revision: number, params: TokenAssignParams): string;
  /** The token's owner, or undefined when unknown, expired, forged or malformed. */
  info(token: string, currentRevision: number): AuthInfo | undefined;
  /** The user was deleted or their password changed: their simple tokens stop working. */
  invalidateUser(username: string): void;
  /**
   * Drops expired tokens it holds; returns how many. The server calls it periodically (etcd's simple
   * token keeper checks every second), so tokens nobody uses again are freed when their TTL ends.
   */
  sweep?(): number;
}

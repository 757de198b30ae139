import { fromBinary } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema } from "@etcd-ts/api";
import { EntryType, type Storage } from "@etcd-ts/raft";
import type { AppliedIndexWaiters } from "../wait.js";

/** The side of a gRPC call a wait listens to, so the wait is given up with the call. */
export interface CancellableCall {
  readonly cancelled?: boolean;
  once(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/**
 * Simple tokens for entries this member has not applied: at most this many calls wait for theirs at
 * once (more are refused), a token whose entry is not in the log yet is given this grace, and one whose
 * index is further than this beyond the log is refused at once.
 */
const MAX_SIMPLE_TOKEN_WAITS = 1000;
const SIMPLE_TOKEN_GRACE_MS = 1000;
const SIMPLE_TOKEN_MAX_AHEAD = 1000;

export interface SimpleTokenWaitDeps {
  /** The member's applied index and its waiters. */
  readonly applied: AppliedIndexWaiters;
  /** The member's raft log, read to see which entry a token names. */
  readonly log: Pick<Storage, "firstIndex" | "lastIndex" | "entries">;
  /** The longest a call waits for its token's entry (the request timeout). */
  readonly timeoutMs: number;
}

/**
 * A simple token names the raft entry that registers it, which this member may not have applied yet
 * (the client authenticated through another member). `untilRegistered` waits for that entry only while
 * it can still come: the entry at `index` of this member's log is the Authenticate with the token's
 * random part (then up to the request timeout), or the log does not reach `index` yet but nearly does (a
 * short grace, then judged again). Any other token — a forged random part, an index far beyond the log —
 * or a wait that ends (timeout, the call cancelled, too many token waits already) returns at once, and
 * the lookup after it answers "invalid auth token". A waiter never outlives its wait.
 */
export class SimpleTokenWait {
  /** Calls waiting for a simple token's entry now (at most MAX_SIMPLE_TOKEN_WAITS). */
  private waiting = 0;

  constructor(private readonly deps: SimpleTokenWaitDeps) {}

  /** Resolves once the token's entry at `index` is applied here, or once waiting on is pointless. */
  async untilRegistered(prefix: string, index: number, call: CancellableCall | undefined): Promise<void> {
    const { applied, log } = this.deps;
    const deadline = Date.now() + this.deps.timeoutMs;
    let graceUsed = false;
    while (index > applied.appliedIndex && call?.cancelled !== true) {
      const entry = this.entryAt(prefix, index);
      if (entry === "other") return;
      let waitMs = deadline - Date.now();
      if (entry === "absent") {
        if (graceUsed || index > log.lastIndex() + SIMPLE_TOKEN_MAX_AHEAD) return;
        graceUsed = true;
        waitMs = Math.min(waitMs, SIMPLE_TOKEN_GRACE_MS);
      }
      if (waitMs <= 0 || this.waiting >= MAX_SIMPLE_TOKEN_WAITS) return;
      this.waiting++;
      try {
        await this.waitForApplied(index, waitMs, call);
      } finally {
        this.waiting--;
      }
    }
  }

  /** What this member's log holds at `index`: the Authenticate of `prefix`, another entry, or nothing yet. */
  private entryAt(prefix: string, index: number): "authenticate" | "other" | "absent" {
    const { log } = this.deps;
    if (index > log.lastIndex()) return "absent";
    if (index < log.firstIndex()) return "other";
    try {
      const entry = log.entries(index, index + 1, Number.MAX_SAFE_INTEGER)[0];
      if (entry === undefined || entry.type !== EntryType.Normal || entry.data.byteLength === 0) return "other";
      const request = fromBinary(InternalRaftRequestSchema, entry.data).request;
      return request.case === "authenticate" && request.value.simpleToken === prefix ? "authenticate" : "other";
    } catch {
      return "other";
    }
  }

  /**
   * Waits until this member applies `index`, at most `timeoutMs` and no longer than the call lives;
   * resolves either way (the waiter is removed when it gives up). Rejects only when the applied-index
   * waiters are full ("too many requests").
   */
  private async waitForApplied(index: number, timeoutMs: number, call: CancellableCall | undefined): Promise<void> {
    const abandon = new AbortController();
    const onCancelled = (): void => abandon.abort();
    call?.once("cancelled", onCancelled);
    const timer = setTimeout(() => abandon.abort(), timeoutMs);
    try {
      await this.deps.applied.waitFor(index, abandon.signal);
    } catch (error) {
      if (!abandon.signal.aborted) throw error;
    } finally {
      clearTimeout(timer);
      call?.removeListener("cancelled", onCancelled);
    }
  }
}

import type { ApplyCommitted, LogEntry, LogStatus, ReplicatedLog } from "./replicated-log.js";

/**
 * The log of a member that is alone and has no raft: a proposal is committed as soon as it is ordered.
 * Proposals arriving while a batch is being applied are gathered and delivered as the next batch, so
 * many client requests share one backend transaction (group commit). Durability comes from the apply
 * function (the backend commit that also records the consistent index): an entry lost in a crash was
 * never acknowledged.
 */
export class LocalLog implements ReplicatedLog {
  private readonly memberId: bigint;
  private readonly term: number;
  private pending: Uint8Array[] = [];
  private lastIndex = 0;
  private apply: ApplyCommitted | undefined;
  private flushing = false;
  private stopped = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: (() => void) | undefined;

  constructor(options: { memberId: bigint; term?: number }) {
    this.memberId = options.memberId;
    this.term = options.term ?? 1;
  }

  start(appliedIndex: number, apply: ApplyCommitted): void {
    this.lastIndex = appliedIndex;
    this.apply = apply;
    if (this.pending.length > 0) this.schedule();
  }

  propose(data: Uint8Array): void {
    if (this.stopped) throw new Error("log stopped");
    this.pending.push(data);
    this.schedule();
  }

  async readIndex(): Promise<number> {
    // Every acknowledged write was applied before it was acknowledged, and nothing is applied that is
    // not committed, so the last delivered index is a safe read index.
    return this.lastIndex;
  }

  status(): LogStatus {
    return { term: this.term, leaderId: this.memberId, commitIndex: this.lastIndex, isLeader: true };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle;
  }

  private schedule(): void {
    if (this.flushing || this.apply === undefined) return;
    this.flushing = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    // setImmediate lets every request already received on the sockets join the batch.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    const apply = this.apply!;
    const durable: Promise<void>[] = [];
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      const entries: LogEntry[] = batch.map((data) => ({ index: ++this.lastIndex, term: this.term, data }));
      durable.push(apply(entries));
      if (this.pending.length === 0) await new Promise((r) => setImmediate(r));
    }
    this.flushing = false;
    await Promise.allSettled(durable);
    this.markIdle?.();
    if (this.pending.length > 0) this.schedule();
  }
}

/**
 * Waiters keyed by request ID: the proposer registers one before proposing, the apply loop triggers it
 * with the result once the entry is applied and durable. IDs are unique within a process.
 */
export class WaitRegistry<T> {
  private readonly waiters = new Map<bigint, { resolve: (value: T) => void; reject: (error: unknown) => void }>();

  register(id: bigint): Promise<T> {
    return new Promise<T>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
  }

  trigger(id: bigint, value: T): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return; // proposed by another member, or the client gave up
    this.waiters.delete(id);
    waiter.resolve(value);
  }

  fail(id: bigint, error: unknown): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return;
    this.waiters.delete(id);
    waiter.reject(error);
  }

  failAll(error: unknown): void {
    for (const [id] of this.waiters) this.fail(id, error);
  }

  get size(): number {
    return this.waiters.size;
  }
}

/** Waiters for the applied index to reach a value (linearizable reads wait on their read index). */
export class AppliedIndexWaiters {
  private applied = 0;
  private waiters: { index: number; resolve: () => void }[] = [];

  get appliedIndex(): number {
    return this.applied;
  }

  waitFor(index: number): Promise<void> {
    if (index <= this.applied) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ index, resolve }));
  }

  advance(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.index <= index ? w.resolve() : still.push(w));
    this.waiters = still;
  }
}

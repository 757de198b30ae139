import { RpcError } from "@etcd-ts/api";

/**
 * How many proposals a member keeps waiting for their apply result at once. etcd refuses proposals with
 * "too many requests" when its applied index trails the committed one by 5000; a bound on the waiters
 * themselves keeps memory bounded whatever the reason they pile up.
 */
export const DEFAULT_MAX_PROPOSAL_WAITERS = 10_000;

/** How many callers may wait for the applied index at once (linearizable reads, simple tokens). */
export const DEFAULT_MAX_APPLIED_INDEX_WAITERS = 10_000;

/**
 * Waiters keyed by request ID: the proposer registers one before proposing, the apply loop triggers it
 * with the result once the entry is applied and durable. IDs are unique within a process. At most
 * `limit` wait at once; `register` beyond it throws "too many requests" (nothing is proposed then).
 */
export class WaitRegistry<T> {
  private readonly waiters = new Map<bigint, { resolve: (value: T) => void; reject: (error: unknown) => void }>();

  constructor(readonly limit: number = DEFAULT_MAX_PROPOSAL_WAITERS) {}

  register(id: bigint): Promise<T> {
    if (this.waiters.size >= this.limit) throw RpcError.of("tooManyRequests");
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

interface IndexWaiter {
  readonly index: number;
  readonly settle: (error?: unknown) => void;
}

/**
 * Waiters for the applied index to reach a value (linearizable reads wait on their read index, simple
 * tokens on their Authenticate entry). A waiter given an `AbortSignal` is removed when it fires (a
 * timeout, a cancelled call), so an abandoned wait leaves nothing behind. At most `limit` wait at once;
 * beyond it `waitFor` rejects with "too many requests".
 */
export class AppliedIndexWaiters {
  private applied = 0;
  private readonly waiters = new Set<IndexWaiter>();
  /** The smallest index anyone waits for (Infinity when none): `advance` below it touches nothing. */
  private lowest = Infinity;

  constructor(readonly limit: number = DEFAULT_MAX_APPLIED_INDEX_WAITERS) {}

  get appliedIndex(): number {
    return this.applied;
  }

  /** Waiters not yet settled. */
  get size(): number {
    return this.waiters.size;
  }

  /** Resolves once `advance` reaches `index`; rejects with the signal's reason when it aborts first. */
  waitFor(index: number, signal?: AbortSignal): Promise<void> {
    if (index <= this.applied) return Promise.resolve();
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (this.waiters.size >= this.limit) return Promise.reject(RpcError.of("tooManyRequests"));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => waiter.settle(signal!.reason);
      const waiter: IndexWaiter = {
        index,
        settle: (error?: unknown) => {
          this.waiters.delete(waiter);
          signal?.removeEventListener("abort", onAbort);
          if (error === undefined) resolve();
          // The reason the waiter was settled with (an abort signal's), passed on as it is.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          else reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
      if (index < this.lowest) this.lowest = index;
    });
  }

  advance(index: number): void {
    if (index <= this.applied) return;
    this.applied = index;
    if (index < this.lowest) return;
    let lowest = Infinity;
    for (const w of this.waiters) {
      if (w.index <= index) w.settle();
      else if (w.index < lowest) lowest = w.index;
    }
    this.lowest = lowest;
  }
}

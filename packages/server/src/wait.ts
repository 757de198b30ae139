import { RpcError } from "@etcd-ts/api";

/**
 * How many proposals a member keeps waiting for their apply result at once. etcd refuses proposals with
 * "too many requests" when its applied index trails the committed one by 5000; a bound on the waiters
 * themselves keeps memory bounded whatever the reason they pile up.
 */
export const DEFAULT_MAX_PROPOSAL_WAITERS = 10_000;

/** How many callers may wait for the applied index at once (linearizable reads, simple tokens). */
export const DEFAULT_MAX_APPLIED_INDEX_WAITERS = 10_000;

/** How long a `WaitRegistry` waiter may wait, and what it is failed with when that runs out. */
export interface WaitTimeout {
  readonly ms: number;
  readonly error: () => unknown;
}

interface Waiter<T, A> {
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
  /** `performance.now()` at which the waiter times out. */
  readonly deadline: number;
  readonly attachment: A | undefined;
}

/**
 * Waiters keyed by request ID: the proposer registers one before proposing, the apply loop triggers it
 * with the result once the entry is applied and durable. IDs are unique within a process. At most
 * `limit` wait at once; `register` beyond it throws "too many requests" (nothing is proposed then).
 *
 * With a `timeout`, a waiter not settled within `timeout.ms` is failed with `timeout.error()`. Every
 * waiter has the same timeout, so deadlines follow registration order, which is the map's iteration
 * order: one timer, armed for the oldest waiter's deadline, serves them all (rather than a timer and a
 * race of promises per waiter on the path of every write).
 *
 * A waiter may carry an `attachment` (what the proposer knows of its request), readable while it waits.
 */
export class WaitRegistry<T, A = never> {
  private readonly waiters = new Map<bigint, Waiter<T, A>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly limit: number = DEFAULT_MAX_PROPOSAL_WAITERS,
    private readonly timeout?: WaitTimeout,
  ) {}

  register(id: bigint, attachment?: A): Promise<T> {
    if (this.waiters.size >= this.limit) throw RpcError.of("tooManyRequests");
    const deadline = this.timeout === undefined ? Infinity : performance.now() + this.timeout.ms;
    const promise = new Promise<T>((resolve, reject) => this.waiters.set(id, { resolve, reject, deadline, attachment }));
    if (this.timeout !== undefined && this.timer === undefined) this.timer = setTimeout(this.expire, this.timeout.ms);
    return promise;
  }

  /** The attachment of the waiter for `id` while it waits. */
  attachment(id: bigint): A | undefined {
    return this.waiters.get(id)?.attachment;
  }

  trigger(id: bigint, value: T): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return; // proposed by another member, or the client gave up
    this.remove(id);
    waiter.resolve(value);
  }

  fail(id: bigint, error: unknown): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return;
    this.remove(id);
    waiter.reject(error);
  }

  /** Forgets the waiter for `id` without settling it (its request was never proposed). */
  cancel(id: bigint): void {
    this.remove(id);
  }

  failAll(error: unknown): void {
    for (const [id] of this.waiters) this.fail(id, error);
  }

  get size(): number {
    return this.waiters.size;
  }

  private remove(id: bigint): void {
    this.waiters.delete(id);
    // Nothing left to time out: the timer must not hold the process open.
    if (this.waiters.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Fails the waiters whose deadline has passed, oldest first, and arms the timer for the next one. */
  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (const [id, waiter] of this.waiters) {
      if (waiter.deadline > now) {
        // Node's timers may fire a fraction of a millisecond before `performance.now()` reaches the deadline.
        this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(waiter.deadline - now)));
        return;
      }
      this.fail(id, this.timeout!.error());
    }
  };
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

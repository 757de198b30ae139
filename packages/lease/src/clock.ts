/**
 * Wall time as the lessor sees it, in milliseconds. Only differences between readings matter (expiry is
 * "now + TTL"), so any monotonic millisecond source works; the lessor never sleeps or sets timers.
 */
export interface Clock {
  now(): number;
}

/** `performance.timeOrigin + performance.now()`: milliseconds that never go backwards. */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};

/** A clock that moves only when told to: tests advance it instead of sleeping. */
export class ManualClock implements Clock {
  private current: number;

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Moves the clock forward by `ms` (≥ 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ${ms} is not a non-negative number`);
    this.current += ms;
  }

  /** Sets the clock to `ms`; it may not go backwards. */
  set(ms: number): void {
    if (!(ms >= this.current)) throw new RangeError(`ManualClock.set: ${ms} is before ${this.current}`);
    this.current = ms;
  }
}

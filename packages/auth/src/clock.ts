/** Wall-clock time in milliseconds since the epoch; injected so token expiry tests do not sleep. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

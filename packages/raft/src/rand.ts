// Randomness is injected so that every run is reproducible from a seed; the core never calls Math.random.

/** A source of uniform integers. */
export interface Rand {
  /** An integer in [0, n). n >= 1. */
  intn(n: number): number;
}

/** mulberry32: a tiny, fast, seeded PRNG — plenty for election jitter and for driving simulations. */
export class SeededRand implements Rand {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  intn(n: number): number {
    return Math.floor(this.next() * n);
  }
}

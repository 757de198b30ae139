/**
 * A bounded FIFO of the last indexes of MsgApps sent to a follower in the Replicate state and not yet
 * acknowledged. When it is full, the leader stops sending (flow control) until acks free slots.
 */
export class Inflights {
  private start = 0;
  private count = 0;
  private readonly buffer: number[];
  readonly size: number;

  constructor(size: number) {
    this.size = size;
    this.buffer = new Array<number>(size).fill(0);
  }

  /** Records an in-flight message whose last entry is `index`. Indexes must increase. */
  add(index: number): void {
    if (this.full()) throw new Error("raft: cannot add into a full inflights");
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    this.buffer[next] = index;
    this.count++;
  }

  /** Frees every in-flight message with last index <= to. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]!) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]!) break;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0;
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.buffer[this.start]!);
  }

  full(): boolean {
    return this.count === this.size;
  }

  length(): number {
    return this.count;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

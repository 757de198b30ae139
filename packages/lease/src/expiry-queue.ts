/**
 * A min-heap of lease IDs keyed by a time (ms), with at most one entry per lease: `set` inserts or moves
 * a lease's entry in O(log n), `delete` removes it in O(log n), and the earliest entry is read in O(1).
 * Ties are broken by ID so that the order is the same on every run. (etcd's `LeaseExpiredNotifier`.)
 */
interface QueueEntry {
  readonly id: bigint;
  time: number;
  /** The entry's position in `heap`; kept current by every move. */
  index: number;
}

export class ExpiryQueue {
  private readonly heap: QueueEntry[] = [];
  private readonly entries = new Map<bigint, QueueEntry>();

  get size(): number {
    return this.heap.length;
  }

  has(id: bigint): boolean {
    return this.entries.has(id);
  }

  /** The time of `id`'s entry, if it has one. */
  timeOf(id: bigint): number | undefined {
    return this.entries.get(id)?.time;
  }

  /** Inserts `id` at `time`, or moves its entry there. */
  set(id: bigint, time: number): void {
    const entry = this.entries.get(id);
    if (entry === undefined) {
      const added: QueueEntry = { id, time, index: this.heap.length };
      this.heap.push(added);
      this.entries.set(id, added);
      this.up(added.index);
      return;
    }
    const earlier = time < entry.time;
    entry.time = time;
    if (earlier) this.up(entry.index);
    else this.down(entry.index);
  }

  /** Removes `id`'s entry; no-op when it has none. */
  delete(id: bigint): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    const last = this.heap.pop() as QueueEntry;
    if (last === entry) return;
    last.index = entry.index;
    this.heap[entry.index] = last;
    this.up(last.index);
    this.down(last.index);
  }

  /** The earliest entry without removing it. */
  peek(): { readonly id: bigint; readonly time: number } | undefined {
    return this.heap[0];
  }

  clear(): void {
    this.heap.length = 0;
    this.entries.clear();
  }

  private less(a: QueueEntry, b: QueueEntry): boolean {
    return a.time < b.time || (a.time === b.time && a.id < b.id);
  }

  private place(entry: QueueEntry, index: number): void {
    entry.index = index;
    this.heap[index] = entry;
  }

  private up(start: number): void {
    const heap = this.heap;
    const entry = heap[start] as QueueEntry;
    let index = start;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex] as QueueEntry;
      if (!this.less(entry, parent)) break;
      this.place(parent, index);
      index = parentIndex;
    }
    this.place(entry, index);
  }

  private down(start: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[start] as QueueEntry;
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.less(heap[right] as QueueEntry, heap[left] as QueueEntry)) child = right;
      const childEntry = heap[child] as QueueEntry;
      if (!this.less(childEntry, entry)) break;
      this.place(childEntry, index);
      index = child;
    }
    this.place(entry, index);
  }
}

/**
 * A min-heap of (time, lease ID) pairs that may hold several pairs per lease: the checkpoint schedule,
 * where stale pairs are skipped when popped (etcd's `LeaseQueue` used as `leaseCheckpointHeap`).
 */
export class TimeHeap {
  private readonly heap: { readonly id: bigint; readonly time: number }[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(id: bigint, time: number): void {
    const heap = this.heap;
    const item = { id, time };
    let index = heap.length;
    heap.push(item);
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex] as { id: bigint; time: number };
      if (!TimeHeap.less(item, parent)) break;
      heap[index] = parent;
      index = parentIndex;
    }
    heap[index] = item;
  }

  peek(): { readonly id: bigint; readonly time: number } | undefined {
    return this.heap[0];
  }

  pop(): { readonly id: bigint; readonly time: number } | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && TimeHeap.less(heap[right]!, heap[left]!)) child = right;
      if (!TimeHeap.less(heap[child]!, last)) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
    return top;
  }

  clear(): void {
    this.heap.length = 0;
  }

  private static less(a: { id: bigint; time: number }, b: { id: bigint; time: number }): boolean {
    return a.time < b.time || (a.time === b.time && a.id < b.id);
  }
}

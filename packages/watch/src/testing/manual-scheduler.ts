import type { Scheduler } from "../scheduler.js";

interface ScheduledTask {
  readonly at: number;
  readonly seq: number;
  readonly task: () => void;
  canceled: boolean;
}

/**
 * A `Scheduler` driven by hand: time moves only in `advance`, which runs every task due by then in time
 * order (ties in scheduling order), including tasks those tasks schedule. For tests: no sleeps.
 */
export class ManualScheduler implements Scheduler {
  private nowMs = 0;
  private seq = 0;
  private tasks: ScheduledTask[] = [];

  get now(): number {
    return this.nowMs;
  }

  /** Tasks scheduled and not yet run or canceled. */
  get pendingTasks(): number {
    return this.tasks.filter((t) => !t.canceled).length;
  }

  schedule(task: () => void, delayMs: number): () => void {
    const entry: ScheduledTask = { at: this.nowMs + Math.max(0, delayMs), seq: this.seq++, task, canceled: false };
    this.tasks.push(entry);
    return () => {
      entry.canceled = true;
    };
  }

  /** Moves time forward by `ms`, running what falls due. Returns how many tasks ran. */
  advance(ms: number): number {
    const target = this.nowMs + ms;
    let ran = 0;
    for (;;) {
      this.tasks = this.tasks.filter((t) => !t.canceled);
      let next: ScheduledTask | undefined;
      for (const t of this.tasks) {
        if (t.at > target) continue;
        if (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t;
      }
      if (next === undefined) break;
      next.canceled = true;
      this.nowMs = Math.max(this.nowMs, next.at);
      next.task();
      ran++;
    }
    this.nowMs = target;
    return ran;
  }

  /** Runs what is due now (tasks scheduled with delay 0). */
  runDue(): number {
    return this.advance(0);
  }
}

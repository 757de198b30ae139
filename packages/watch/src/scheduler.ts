/**
 * Time as the watch package sees it: one-shot tasks after a delay. Injected so that tests drive the sync
 * loops and progress notifications by hand (`testing/manual-scheduler.ts`) instead of sleeping.
 */
export interface Scheduler {
  /** Runs `task` once after `delayMs` (0: as soon as possible, never synchronously); returns a canceler. */
  schedule(task: () => void, delayMs: number): () => void;
}

/** The real scheduler: `setTimeout`, unref'd so that pending watch work never keeps the process alive. */
export const timerScheduler: Scheduler = {
  schedule(task, delayMs) {
    const timer = setTimeout(task, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

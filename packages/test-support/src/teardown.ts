/** What `teardown` needs of node:test's TestContext (or a suite's `after`). */
export interface AfterHookHost {
  after(fn: () => unknown): void;
}

/**
 * Cleanups for one test, run in one after-hook last-registered-first, every one of them even when one
 * throws (the first error is rethrown). node:test runs a test's own after-hooks first-registered-first
 * and skips the rest once one fails: a data dir registered for removal before the member using it would
 * be removed under the running member, and when that removal failed the member was never stopped and
 * kept the test process alive. Every call with the same test context returns the same stack.
 */
export function teardown(t: AfterHookHost): (cleanup: () => unknown) => void {
  const known = registered.get(t);
  if (known !== undefined) return known;
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    let firstError: unknown;
    let failed = false;
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
    if (failed) throw firstError;
  });
  const defer = (cleanup: () => unknown): void => {
    cleanups.push(cleanup);
  };
  registered.set(t, defer);
  return defer;
}

// One hook per test, so a fixture and the test body that share a test context share one stack.
const registered = new WeakMap<AfterHookHost, (cleanup: () => unknown) => void>();

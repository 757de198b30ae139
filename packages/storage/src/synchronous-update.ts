/**
 * Enforces that an `update` function is synchronous. An `async` function type-checks as
 * `(txn) => void`, but everything after its first `await` would run after the transaction committed
 * (and lmdb-js would even hold its write transaction open across the await). `UpdateGate` calls this on
 * the function's return value, inside the engine's transaction, so the throw aborts it.
 */
export function requireSynchronousUpdate(result: unknown): void {
  if (
    result !== null &&
    (typeof result === "object" || typeof result === "function") &&
    typeof (result as { then?: unknown }).then === "function"
  ) {
    // The caller will never see that promise settle: keep its rejection from going unhandled.
    (result as PromiseLike<unknown>).then(undefined, () => undefined);
    throw new TypeError("update(fn): fn returned a promise; it must run synchronously (no async/await inside a transaction)");
  }
}

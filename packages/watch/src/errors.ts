/**
 * The one error class of @etcd-ts/watch. `code` says what went wrong:
 * - `EmptyRange`: a watch of a range with `key >= rangeEnd` (etcd's ErrEmptyWatcherRange); a
 *   `WatchStream` answers it as etcd does, created and canceled.
 * - `Closed`: a watch on a store that was closed.
 *
 * `isWatchError(e, code)` compares the `name`, not the prototype, so it also recognises errors thrown by
 * another installed copy of the package.
 */
export type WatchErrorCode = "EmptyRange" | "Closed";

export class WatchError extends Error {
  override readonly name = "WatchError";
  constructor(
    readonly code: WatchErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isWatchError(e: unknown, code?: WatchErrorCode): e is WatchError {
  return e instanceof Error && e.name === "WatchError" && (code === undefined || (e as WatchError).code === code);
}

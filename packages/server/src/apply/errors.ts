/**
 * An entry's apply threw something that is not a client error (a bug, a limit an engine enforces): the
 * whole batch's backend transaction was rolled back. `position` is the entry's place in the batch given
 * to `applyBatch`, `index` its log index, `cause` what it threw.
 */
export class ApplyEntryError extends Error {
  override readonly name = "ApplyEntryError";
  constructor(
    readonly position: number,
    readonly index: number,
    cause: unknown,
  ) {
    super(`applying entry ${index} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export function isApplyEntryError(e: unknown): e is ApplyEntryError {
  return e instanceof Error && e.name === "ApplyEntryError";
}

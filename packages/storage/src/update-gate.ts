import { StorageError } from "./backend.js";
import type { WriteTxn } from "./backend.js";
import { requireSynchronousUpdate } from "./synchronous-update.js";

/** What an engine supplies to `UpdateGate.update`: its own transaction, commit and errors. */
export interface EngineUpdate<T extends WriteTxn> {
  /** A refusal of the engine's own, checked after the closed and nested-update checks. */
  admit?(): void;
  /** A write transaction; `checkOpen` throws once the backend is closed or the update has returned. */
  begin(checkOpen: () => void): T;
  /**
   * Runs `apply` (the caller's function over `txn`) inside the engine's transaction and commits it,
   * returning only once the commit is durable. When `apply` or the commit throws, the engine leaves
   * nothing of the transaction behind and rethrows.
   */
  commit(txn: T, apply: () => void): void;
  /** The error the caller's promise rejects with for `error` (default: `error` itself). */
  translateError?(error: unknown): unknown;
}

/**
 * The steps every engine's `update` shares, so that they behave alike: a closed backend and an update
 * started inside another are refused, the transaction refuses use once `update` has returned, the
 * caller's function must be synchronous (`requireSynchronousUpdate`), and every outcome — including a
 * throw before the transaction began — arrives as the returned promise, resolved only after the
 * engine's durable commit. One gate per backend.
 */
export class UpdateGate {
  private writing = false;

  constructor(private readonly checkBackendOpen: () => void) {}

  update<T extends WriteTxn>(fn: (txn: WriteTxn) => void, engine: EngineUpdate<T>): Promise<void> {
    try {
      this.checkBackendOpen();
      if (this.writing) throw new Error("update called inside another update: write transactions never overlap");
      engine.admit?.();
      this.writing = true;
      let active = true;
      const txn = engine.begin(() => {
        this.checkBackendOpen();
        if (!active) throw new StorageError("Closed", "write transaction used after update returned");
      });
      try {
        engine.commit(txn, () => {
          // fn is typed to return nothing, but an async one returns a promise: that is what this refuses.
          // eslint-disable-next-line @typescript-eslint/no-confusing-void-expression
          requireSynchronousUpdate(fn(txn));
        });
      } finally {
        active = false;
        this.writing = false;
      }
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(engine.translateError === undefined ? e : engine.translateError(e));
    }
  }
}

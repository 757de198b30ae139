/**
 * Shared setup for this package's tests (not exported from index.ts): an auth store over the in-memory
 * backend, bcrypt at its minimum cost so tests stay fast.
 */
import { openMemoryBackend } from "@etcd-ts/storage";
import type { Backend, WriteTxn } from "@etcd-ts/storage";
import { AuthStore } from "../auth-store.js";
import type { Clock } from "../clock.js";
import { isAuthError } from "../errors.js";
import type { AuthErrorCode } from "../errors.js";
import { SimpleTokenProvider } from "../simple-token.js";
import type { TokenProvider } from "../token-provider.js";

export const TEST_BCRYPT_COST = 4;

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(public ms = 1_700_000_000_000) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** For `assert.throws` / `assert.rejects`: the error is an AuthError of `code`. */
export function authErrorOf(code: AuthErrorCode): (e: unknown) => boolean {
  return (e) => {
    if (isAuthError(e, code)) return true;
    throw new Error(`expected AuthError ${code}, got ${String(e)}`);
  };
}

export interface StoreFixture {
  readonly backend: Backend;
  readonly store: AuthStore;
  readonly clock: ManualClock;
  /** Runs one apply step in its own write transaction, as the server does per raft entry. */
  mutate(fn: (txn: WriteTxn) => void): Promise<void>;
  /** UserAdd the way the server does it: hash first, then apply. */
  addUser(name: string, password: string, roles?: string[]): Promise<void>;
}

export async function openStoreFixture(
  options: {
    backend?: Backend;
    tokenProvider?: TokenProvider;
    clock?: ManualClock;
    bcryptCost?: number;
  } = {},
): Promise<StoreFixture> {
  const backend = options.backend ?? openMemoryBackend();
  const clock = options.clock ?? new ManualClock();
  const store = await AuthStore.open(backend, {
    tokenProvider: options.tokenProvider ?? new SimpleTokenProvider({ clock }),
    bcryptCost: options.bcryptCost ?? TEST_BCRYPT_COST,
  });
  const mutate = (fn: (txn: WriteTxn) => void) => backend.update(fn);
  return {
    backend,
    store,
    clock,
    mutate,
    async addUser(name, password, roles = []) {
      const hashedPassword = await store.preparePassword(password);
      await mutate((txn) => store.userAdd(txn, { name, hashedPassword }));
      for (const role of roles) await mutate((txn) => store.userGrantRole(txn, { user: name, role }));
    },
  };
}

/** root (with the root role) plus auth enabled: the usual state for permission tests. */
export async function enableWithRoot(f: StoreFixture, rootPassword = "rootpw"): Promise<void> {
  await f.addUser("root", rootPassword, ["root"]);
  await f.mutate((txn) => f.store.authEnable(txn));
}

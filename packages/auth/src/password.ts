import bcrypt from "bcryptjs";
import { sharedBcryptPool, type BcryptPool } from "./bcrypt-pool.js";

/** Go's bcrypt bounds and default, which `--bcrypt-cost` follows. */
export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 31;
export const DEFAULT_BCRYPT_COST = 10;

/**
 * The cost actually used for `--bcrypt-cost`: etcd falls back to the default (with a warning) when the
 * flag is outside bcrypt's bounds rather than refusing to start.
 */
export function normalizeBcryptCost(cost: number | undefined): number {
  if (cost === undefined || !Number.isInteger(cost) || cost < BCRYPT_MIN_COST || cost > BCRYPT_MAX_COST) {
    return DEFAULT_BCRYPT_COST;
  }
  return cost;
}

/**
 * A bcrypt hash in modular-crypt form (`$2a$`, `$2b$`, `$2y$`; Go's bcrypt writes `$2a$`, bcryptjs `$2b$`,
 * and each reads the other's).
 */
const BCRYPT_HASH = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

export function isBcryptHash(value: string): boolean {
  return BCRYPT_HASH.test(value);
}

/**
 * Hashes on a bcrypt thread (`BcryptPool`), never on the event loop. Rejects with
 * `AuthError("TooManyRequests")` when the pool's queue is full.
 */
export function hashPassword(password: string, cost: number, pool: BcryptPool = sharedBcryptPool()): Promise<string> {
  return pool.hash(password, normalizeBcryptCost(cost));
}

/**
 * Constant-time in the hash, on a bcrypt thread; false for anything that is not a bcrypt hash. Rejects
 * only when the pool refuses the job (`TooManyRequests`) or its thread dies.
 */
export async function comparePassword(password: string, hash: string, pool: BcryptPool = sharedBcryptPool()): Promise<boolean> {
  if (!isBcryptHash(hash)) return false;
  return pool.compare(password, hash);
}

/** The cost a stored hash was made with. */
export function bcryptCostOf(hash: string): number {
  return bcrypt.getRounds(hash);
}

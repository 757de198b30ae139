export { AuthStore, ADMIN_RPCS, ROOT_ROLE, ROOT_USER, requiresAdmin } from "./auth-store.js";
export type { AuthStoreOptions, KeyPermission, LeaseKeysLookup, PreparedPasswordChange, PreparedUserAdd } from "./auth-store.js";
export { AuthError, isAuthError } from "./errors.js";
export type { AuthErrorCode, AuthRefusalCode } from "./errors.js";
export type { AuthInfo, TokenAssignParams, TokenProvider } from "./token-provider.js";
export {
  DEFAULT_MAX_SIMPLE_TOKENS,
  DEFAULT_MAX_SIMPLE_TOKENS_PER_USER,
  DEFAULT_SIMPLE_TOKEN_TTL_MS,
  SimpleTokenProvider,
  parseSimpleToken,
} from "./simple-token.js";
export type { SimpleTokenOptions } from "./simple-token.js";
export { DEFAULT_JWT_TTL_MS, JWT_SIGN_METHODS, JwtTokenProvider } from "./jwt-token.js";
export type { JwtKeyInput, JwtSignMethod, JwtTokenOptions } from "./jwt-token.js";
export { newTokenProvider, parseAuthTokenFlag, parseGoDuration } from "./token-options.js";
export type { TokenProviderOptions } from "./token-options.js";
export {
  BCRYPT_MAX_COST,
  BCRYPT_MIN_COST,
  DEFAULT_BCRYPT_COST,
  bcryptCostOf,
  comparePassword,
  hashPassword,
  isBcryptHash,
  normalizeBcryptCost,
} from "./password.js";
export { BcryptPool, DEFAULT_BCRYPT_QUEUE_LIMIT, DEFAULT_BCRYPT_THREADS, sharedBcryptPool } from "./bcrypt-pool.js";
export type { BcryptPoolOptions } from "./bcrypt-pool.js";
export { DEFAULT_FAILED_LOGIN_LIMITS, FailedLoginLimiter, peerAddress } from "./login-limiter.js";
export type { FailedLoginLimits, LoginAttempt } from "./login-limiter.js";
export { FROM_KEY_RANGE_END, KeyIntervalSet, keyInterval } from "./range-permissions.js";
export type { KeyInterval } from "./range-permissions.js";
export type { AuthReadTxn, AuthWriteTxn } from "./schema.js";
export type { Clock } from "./clock.js";
export { systemClock } from "./clock.js";

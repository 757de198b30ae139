import { RpcError, rpcErrors } from "@etcd-ts/api";

/**
 * The failures the auth store reports, each one of etcd's client-visible errors. The server turns an
 * `AuthError` into the gRPC status with `RpcError.of(e.kind)` (or `e.toRpcError()`), so clients see
 * etcd's exact `etcdserver: …` message and code.
 */
export type AuthErrorKind =
  | "rootUserNotExist"
  | "rootRoleNotExist"
  | "userAlreadyExist"
  | "userEmpty"
  | "userNotFound"
  | "roleAlreadyExist"
  | "roleNotFound"
  | "roleEmpty"
  | "authFailed"
  | "permissionDenied"
  | "roleNotGranted"
  | "permissionNotGranted"
  | "authNotEnabled"
  | "invalidAuthToken"
  | "invalidAuthMgmt"
  | "authOldRevision"
  | "tooManyRequests";

export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly kind: AuthErrorKind;
  /**
   * The message is etcd's for the kind unless `detail` is given; `detail` is for logs only (the client
   * sees the message of `RpcError.of(kind)`), and never carries a password.
   */
  constructor(kind: AuthErrorKind, options?: { cause?: unknown; detail?: string }) {
    super(options?.detail ?? rpcErrors[kind][1], options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
  }

  /** The gRPC error a client sees for this failure. */
  toRpcError(): RpcError {
    return RpcError.of(this.kind, { cause: this });
  }
}

export function isAuthError(e: unknown, kind?: AuthErrorKind): e is AuthError {
  return e instanceof AuthError && (kind === undefined || e.kind === kind);
}

/** A bad `--auth-token` / JWT key configuration: a startup error, never sent to a client. */
export type AuthConfigErrorCode = "invalidOptions" | "invalidSignMethod" | "missingKey" | "keyMismatch" | "verifyOnly";

export class AuthConfigError extends Error {
  override readonly name = "AuthConfigError";
  readonly code: AuthConfigErrorCode;
  constructor(code: AuthConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isAuthConfigError(e: unknown, code?: AuthConfigErrorCode): e is AuthConfigError {
  return e instanceof AuthConfigError && (code === undefined || e.code === code);
}

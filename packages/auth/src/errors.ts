import { rpcErrors } from "@etcd-ts/api";

/**
 * The refusals of the auth store, each one of etcd's client-visible errors: the server's error mapper
 * answers them with etcd's status and exact `etcdserver: …` message.
 */
export type AuthRefusalCode =
  | "RootUserNotExist"
  | "RootRoleNotExist"
  | "UserAlreadyExist"
  | "UserEmpty"
  | "UserNotFound"
  | "RoleAlreadyExist"
  | "RoleNotFound"
  | "RoleEmpty"
  | "AuthFailed"
  | "PermissionDenied"
  | "RoleNotGranted"
  | "PermissionNotGranted"
  | "AuthNotEnabled"
  | "InvalidAuthToken"
  | "InvalidAuthMgmt"
  | "AuthOldRevision"
  | "TooManyRequests";

/**
 * A bad `--auth-token` / JWT key configuration: a startup error, never sent to a client.
 * - `InvalidTokenOptions`: the flag or a duration in it does not parse, or names an unknown option.
 * - `InvalidSignMethod`: an unknown signing method, or a key of the wrong type for it.
 * - `MissingKey`: no key, or one that does not parse.
 * - `KeyMismatch`: the public and private keys are not a pair.
 * - `VerifyOnly`: signing with a provider that has only the public key.
 */
export type AuthConfigCode = "InvalidTokenOptions" | "InvalidSignMethod" | "MissingKey" | "KeyMismatch" | "VerifyOnly";

export type AuthErrorCode = AuthRefusalCode | AuthConfigCode;

/** etcd's message for each refusal, as a client sees it. */
const etcdMessages: Partial<Record<AuthErrorCode, string>> = {
  RootUserNotExist: rpcErrors.rootUserNotExist[1],
  RootRoleNotExist: rpcErrors.rootRoleNotExist[1],
  UserAlreadyExist: rpcErrors.userAlreadyExist[1],
  UserEmpty: rpcErrors.userEmpty[1],
  UserNotFound: rpcErrors.userNotFound[1],
  RoleAlreadyExist: rpcErrors.roleAlreadyExist[1],
  RoleNotFound: rpcErrors.roleNotFound[1],
  RoleEmpty: rpcErrors.roleEmpty[1],
  AuthFailed: rpcErrors.authFailed[1],
  PermissionDenied: rpcErrors.permissionDenied[1],
  RoleNotGranted: rpcErrors.roleNotGranted[1],
  PermissionNotGranted: rpcErrors.permissionNotGranted[1],
  AuthNotEnabled: rpcErrors.authNotEnabled[1],
  InvalidAuthToken: rpcErrors.invalidAuthToken[1],
  InvalidAuthMgmt: rpcErrors.invalidAuthMgmt[1],
  AuthOldRevision: rpcErrors.authOldRevision[1],
  TooManyRequests: rpcErrors.tooManyRequests[1],
} satisfies Record<AuthRefusalCode, string>;

/**
 * The one error class of @etcd-ts/auth. `isAuthError(e, code)` compares the `name`, not the prototype,
 * so it also recognises errors thrown by another installed copy of the package.
 */
export class AuthError extends Error {
  override readonly name = "AuthError";
  /**
   * A refusal's message is etcd's unless `message` is given; a given one is for logs only (a client sees
   * etcd's message for the code) and never carries a password. A configuration error says what is wrong.
   */
  constructor(
    readonly code: AuthErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? etcdMessages[code] ?? code, options);
  }
}

export function isAuthError(e: unknown, code?: AuthErrorCode): e is AuthError {
  return e instanceof Error && e.name === "AuthError" && (code === undefined || (e as AuthError).code === code);
}

import { GrpcCode, RpcError, isRpcError, type RpcErrorKind } from "@etcd-ts/api";
import { isAuthError, type AuthErrorCode, type AuthRefusalCode } from "@etcd-ts/auth";
import { isLeaseError, type LeaseErrorCode } from "@etcd-ts/lease";
import { isMvccError } from "@etcd-ts/mvcc";
import { isStorageError } from "@etcd-ts/storage";
import { Metadata, type ServiceError } from "@grpc/grpc-js";
import type { Logger } from "./log.js";

/**
 * The one place errors become what a client sees, as etcd's togRPCError: `toRpcError` names the client
 * error an error stands for (the apply path answers an entry with it, services throw it), `toServiceError`
 * turns any error into the gRPC status a handler sends. Every check goes through the packages' guards
 * (`isMvccError`, …), which compare names and codes, so errors from another installed copy count too.
 */

/** The lessor's refusals, as etcd answers them. */
const leaseRefusals: Partial<Record<LeaseErrorCode, RpcErrorKind>> = {
  LeaseNotFound: "leaseNotFound",
  LeaseExist: "leaseExist",
  LeaseTTLTooLarge: "leaseTTLTooLarge",
  NotLeader: "notLeader",
};

/** The auth store's refusals, as etcd answers them. */
const authRefusals: Partial<Record<AuthErrorCode, RpcErrorKind>> = {
  RootUserNotExist: "rootUserNotExist",
  RootRoleNotExist: "rootRoleNotExist",
  UserAlreadyExist: "userAlreadyExist",
  UserEmpty: "userEmpty",
  UserNotFound: "userNotFound",
  RoleAlreadyExist: "roleAlreadyExist",
  RoleNotFound: "roleNotFound",
  RoleEmpty: "roleEmpty",
  AuthFailed: "authFailed",
  PermissionDenied: "permissionDenied",
  RoleNotGranted: "roleNotGranted",
  PermissionNotGranted: "permissionNotGranted",
  AuthNotEnabled: "authNotEnabled",
  InvalidAuthToken: "invalidAuthToken",
  InvalidAuthMgmt: "invalidAuthMgmt",
  AuthOldRevision: "authOldRevision",
  TooManyRequests: "tooManyRequests",
} satisfies Record<AuthRefusalCode, RpcErrorKind>;

/**
 * The client error `e` stands for: an `RpcError` as it is; the MVCC store's compacted and future-revision
 * errors, the lessor's and the auth store's refusals as etcd's statuses and messages. Anything else (a
 * store that cannot go on, a failed disk, a bug) is no client error: `undefined`, and the caller rethrows.
 */
export function toRpcError(e: unknown): RpcError | undefined {
  if (isRpcError(e)) return e;
  let kind: RpcErrorKind | undefined;
  if (isMvccError(e, "Compacted")) kind = "compacted";
  else if (isMvccError(e, "FutureRev")) kind = "futureRev";
  else if (isLeaseError(e)) kind = leaseRefusals[e.code];
  else if (isAuthError(e)) kind = authRefusals[e.code];
  return kind === undefined ? undefined : RpcError.of(kind, { cause: e });
}

/**
 * The gRPC status a handler answers `error` with: a client error's code and etcd's message; a storage
 * failure INTERNAL; anything else — a bug or an environment failure — UNKNOWN. Those two are logged here
 * and reported without internals leaking.
 */
export function toServiceError(error: unknown, logger: Logger): Partial<ServiceError> {
  const rpc = toRpcError(error);
  if (rpc !== undefined) return status(rpc.code, rpc.message);
  if (isStorageError(error)) {
    logger.error("storage failure while serving a request", { error: error.message, code: error.code });
    return status(GrpcCode.INTERNAL, `etcdserver: storage: ${error.message}`);
  }
  logger.error("unexpected error while serving a request", { error: error instanceof Error ? error.stack : String(error) });
  return status(GrpcCode.UNKNOWN, error instanceof Error ? error.message : String(error));
}

function status(code: GrpcCode, details: string): Partial<ServiceError> {
  // grpc-js types the code as its `status` enum, whose numbers are GrpcCode's (the gRPC protocol fixes them).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  return { code, details, metadata: new Metadata() };
}

/** gRPC code names as Go prints them (`codes.Code.String()`): in etcd's error strings and grpc-prometheus' labels. */
const GO_CODE_NAMES: Record<number, string> = {
  0: "OK",
  1: "Canceled",
  2: "Unknown",
  3: "InvalidArgument",
  4: "DeadlineExceeded",
  5: "NotFound",
  6: "AlreadyExists",
  7: "PermissionDenied",
  8: "ResourceExhausted",
  9: "FailedPrecondition",
  10: "Aborted",
  11: "OutOfRange",
  12: "Unimplemented",
  13: "Internal",
  14: "Unavailable",
  15: "DataLoss",
  16: "Unauthenticated",
};

/** Go's name of a gRPC status code; a code Go does not name prints as `Code(n)`, as Go prints it. */
export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? `Code(${code})`;
}

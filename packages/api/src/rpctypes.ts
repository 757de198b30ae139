/**
 * etcd's client-visible errors: the gRPC status code and the exact message etcd 3.4 sends, keyed by a
 * stable name. Clients (etcdctl, clientv3, the etcd3 npm package) match on these messages, so they are
 * part of the wire contract. Server code throws `RpcError`s built from this table; the gRPC layer turns
 * them into statuses as they are.
 */

/** gRPC status codes (the numbers are fixed by the gRPC protocol). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

const C = GrpcCode;

export const rpcErrors = {
  emptyKey: [C.INVALID_ARGUMENT, "etcdserver: key is not provided"],
  keyNotFound: [C.INVALID_ARGUMENT, "etcdserver: key not found"],
  valueProvided: [C.INVALID_ARGUMENT, "etcdserver: value is provided"],
  leaseProvided: [C.INVALID_ARGUMENT, "etcdserver: lease is provided"],
  tooManyOps: [C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"],
  duplicateKey: [C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"],
  compacted: [C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"],
  futureRev: [C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"],
  noSpace: [C.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"],

  leaseNotFound: [C.NOT_FOUND, "etcdserver: requested lease not found"],
  leaseExist: [C.FAILED_PRECONDITION, "etcdserver: lease already exists"],
  leaseTTLTooLarge: [C.OUT_OF_RANGE, "etcdserver: too large lease TTL"],

  watchCanceled: [C.CANCELLED, "etcdserver: watch canceled"],

  memberExist: [C.FAILED_PRECONDITION, "etcdserver: member ID already exist"],
  peerURLExist: [C.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists"],
  memberNotEnoughStarted: [C.FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members"],
  memberBadURLs: [C.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid"],
  memberNotFound: [C.NOT_FOUND, "etcdserver: member not found"],
  memberNotLearner: [C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member"],
  learnerNotReady: [C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader"],
  tooManyLearners: [C.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster"],

  requestTooLarge: [C.INVALID_ARGUMENT, "etcdserver: request is too large"],
  tooManyRequests: [C.RESOURCE_EXHAUSTED, "etcdserver: too many requests"],

  rootUserNotExist: [C.FAILED_PRECONDITION, "etcdserver: root user does not exist"],
  rootRoleNotExist: [C.FAILED_PRECONDITION, "etcdserver: root user does not have root role"],
  userAlreadyExist: [C.FAILED_PRECONDITION, "etcdserver: user name already exists"],
  userEmpty: [C.INVALID_ARGUMENT, "etcdserver: user name is empty"],
  userNotFound: [C.FAILED_PRECONDITION, "etcdserver: user name not found"],
  roleAlreadyExist: [C.FAILED_PRECONDITION, "etcdserver: role name already exists"],
  roleNotFound: [C.FAILED_PRECONDITION, "etcdserver: role name not found"],
  roleEmpty: [C.INVALID_ARGUMENT, "etcdserver: role name is empty"],
  authFailed: [C.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"],
  permissionDenied: [C.PERMISSION_DENIED, "etcdserver: permission denied"],
  roleNotGranted: [C.FAILED_PRECONDITION, "etcdserver: role is not granted to the user"],
  permissionNotGranted: [C.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role"],
  authNotEnabled: [C.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"],
  invalidAuthToken: [C.UNAUTHENTICATED, "etcdserver: invalid auth token"],
  invalidAuthMgmt: [C.INVALID_ARGUMENT, "etcdserver: invalid auth management"],
  authOldRevision: [C.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"],

  noLeader: [C.UNAVAILABLE, "etcdserver: no leader"],
  notLeader: [C.FAILED_PRECONDITION, "etcdserver: not leader"],
  leaderChanged: [C.UNAVAILABLE, "etcdserver: leader changed"],
  notCapable: [C.UNAVAILABLE, "etcdserver: not capable"],
  stopped: [C.UNAVAILABLE, "etcdserver: server stopped"],
  timeout: [C.UNAVAILABLE, "etcdserver: request timed out"],
  timeoutDueToLeaderFail: [C.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"],
  timeoutDueToConnectionLost: [C.UNAVAILABLE, "etcdserver: request timed out, possibly due to connection lost"],
  timeoutWaitAppliedIndex: [C.UNAVAILABLE, "etcdserver: request timed out, waiting for the applied index took too long"],
  unhealthy: [C.UNAVAILABLE, "etcdserver: unhealthy cluster"],
  corrupt: [C.DATA_LOSS, "etcdserver: corrupt cluster"],
  notSupportedForLearner: [C.UNAVAILABLE, "etcdserver: rpc not supported for learner"],
  badLeaderTransferee: [C.FAILED_PRECONDITION, "etcdserver: bad leader transferee"],
} as const satisfies Record<string, readonly [GrpcCode, string]>;

export type RpcErrorKind = keyof typeof rpcErrors;

/** An error a client sees as a gRPC status: code plus etcd's message. */
export class RpcError extends Error {
  override readonly name = "RpcError";
  readonly code: GrpcCode;
  /** The table entry this error was made from, when it was made from one. */
  readonly kind: RpcErrorKind | undefined;
  constructor(code: GrpcCode, message: string, options?: { cause?: unknown; kind?: RpcErrorKind }) {
    super(message, options);
    this.code = code;
    this.kind = options?.kind;
  }

  /** The error etcd sends for `kind`, e.g. `RpcError.of("emptyKey")`. */
  static of(kind: RpcErrorKind, options?: { cause?: unknown }): RpcError {
    const [code, message] = rpcErrors[kind];
    return new RpcError(code, message, { ...options, kind });
  }
}

/** Whether `e` is an `RpcError` (made from `kind`, when given). It compares the name, not the prototype, so
 * an error thrown by another installed copy of this package counts too. */
export function isRpcError(e: unknown, kind?: RpcErrorKind): e is RpcError {
  return e instanceof Error && e.name === "RpcError" && (kind === undefined || (e as RpcError).kind === kind);
}

/** The error a client library should raise for a status it received, matched on etcd's message. */
export function rpcErrorFromStatus(code: number, message: string): RpcError {
  for (const [kind, [c, m]] of Object.entries(rpcErrors) as [RpcErrorKind, readonly [GrpcCode, string]][]) {
    if (m === message && c === code) return new RpcError(c, m, { kind });
  }
  return new RpcError(code as GrpcCode, message);
}

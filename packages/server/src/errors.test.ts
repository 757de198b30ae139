import assert from "node:assert/strict";
import { test } from "node:test";
import { GrpcCode, RpcError } from "@etcd-ts/api";
import { AuthError, type AuthRefusalCode } from "@etcd-ts/auth";
import { LeaseError, type LeaseErrorCode } from "@etcd-ts/lease";
import { MvccError } from "@etcd-ts/mvcc";
import { StorageError } from "@etcd-ts/storage";
import { toRpcError, toServiceError } from "./errors.js";
import { silentLogger } from "./log.js";

const C = GrpcCode;

// The statuses etcd 3.4.23 answers, as its togRPCError and rpctypes have them.
const mvccStatuses = [
  [new MvccError("Compacted"), C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"],
  [new MvccError("FutureRev"), C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"],
] as const;

const leaseStatuses: Record<Exclude<LeaseErrorCode, "Corrupt">, readonly [GrpcCode, string]> = {
  LeaseNotFound: [C.NOT_FOUND, "etcdserver: requested lease not found"],
  LeaseExist: [C.FAILED_PRECONDITION, "etcdserver: lease already exists"],
  LeaseTTLTooLarge: [C.OUT_OF_RANGE, "etcdserver: too large lease TTL"],
  NotLeader: [C.FAILED_PRECONDITION, "etcdserver: not leader"],
};

const authStatuses: Record<AuthRefusalCode, readonly [GrpcCode, string]> = {
  RootUserNotExist: [C.FAILED_PRECONDITION, "etcdserver: root user does not exist"],
  RootRoleNotExist: [C.FAILED_PRECONDITION, "etcdserver: root user does not have root role"],
  UserAlreadyExist: [C.FAILED_PRECONDITION, "etcdserver: user name already exists"],
  UserEmpty: [C.INVALID_ARGUMENT, "etcdserver: user name is empty"],
  UserNotFound: [C.FAILED_PRECONDITION, "etcdserver: user name not found"],
  RoleAlreadyExist: [C.FAILED_PRECONDITION, "etcdserver: role name already exists"],
  RoleNotFound: [C.FAILED_PRECONDITION, "etcdserver: role name not found"],
  RoleEmpty: [C.INVALID_ARGUMENT, "etcdserver: role name is empty"],
  AuthFailed: [C.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"],
  PermissionDenied: [C.PERMISSION_DENIED, "etcdserver: permission denied"],
  RoleNotGranted: [C.FAILED_PRECONDITION, "etcdserver: role is not granted to the user"],
  PermissionNotGranted: [C.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role"],
  AuthNotEnabled: [C.FAILED_PRECONDITION, "etcdserver: authentication is not enabled"],
  InvalidAuthToken: [C.UNAUTHENTICATED, "etcdserver: invalid auth token"],
  InvalidAuthMgmt: [C.INVALID_ARGUMENT, "etcdserver: invalid auth management"],
  AuthOldRevision: [C.INVALID_ARGUMENT, "etcdserver: revision of auth store is old"],
  TooManyRequests: [C.RESOURCE_EXHAUSTED, "etcdserver: too many requests"],
};

function assertStatus(error: unknown, code: GrpcCode, message: string): void {
  const rpc = toRpcError(error);
  assert.ok(rpc !== undefined, `${String(error)} is a client error`);
  assert.equal(rpc.code, code);
  assert.equal(rpc.message, message);
  assert.equal(rpc.cause, error);
  const status = toServiceError(error, silentLogger);
  assert.equal(status.code, code);
  assert.equal(status.details, message);
}

test("an RpcError is the client error as it is", () => {
  const e = RpcError.of("emptyKey");
  assert.equal(toRpcError(e), e);
  assert.deepEqual(
    [toServiceError(e, silentLogger).code, toServiceError(e, silentLogger).details],
    [C.INVALID_ARGUMENT, "etcdserver: key is not provided"],
  );
});

test("the MVCC store's compacted and future-revision errors are etcd's OutOfRange statuses", () => {
  for (const [error, code, message] of mvccStatuses) assertStatus(error, code, message);
});

test("the lessor's refusals are etcd's statuses and messages", () => {
  for (const [code, [grpc, message]] of Object.entries(leaseStatuses)) {
    assertStatus(new LeaseError(code as LeaseErrorCode, `lease 7: ${code}`), grpc, message);
  }
});

test("the auth store's refusals are etcd's statuses and messages, whatever their message for logs", () => {
  for (const [code, [grpc, message]] of Object.entries(authStatuses)) {
    assertStatus(new AuthError(code as AuthRefusalCode), grpc, message);
    assertStatus(new AuthError(code as AuthRefusalCode, "auth: a detail for the log"), grpc, message);
  }
});

test("errors from another installed copy of a package are mapped by name and code", () => {
  const copy = (name: string, code: string, message: string) => Object.assign(new Error(message), { name, code });
  assertStatus(copy("MvccError", "Compacted", "mvcc: required revision has been compacted"), C.OUT_OF_RANGE, mvccStatuses[0][2]);
  assertStatus(copy("LeaseError", "LeaseNotFound", "lease 7 not found"), C.NOT_FOUND, leaseStatuses.LeaseNotFound[1]);
  assertStatus(copy("AuthError", "PermissionDenied", "denied"), C.PERMISSION_DENIED, authStatuses.PermissionDenied[1]);
  const rpc = Object.assign(new Error("etcdserver: no leader"), { name: "RpcError", code: C.UNAVAILABLE, kind: "noLeader" });
  assert.equal(toRpcError(rpc), rpc);
  assert.equal(toServiceError(rpc, silentLogger).code, C.UNAVAILABLE);
});

test("what is no client error is none: storage failures are INTERNAL, anything else UNKNOWN", () => {
  for (const e of [
    new MvccError("Failed"),
    new MvccError("Corrupt"),
    new LeaseError("Corrupt", "lease 7: undecodable record"),
    new AuthError("MissingKey", "auth: missing key data"),
    new StorageError("Full", "no space left"),
    new Error("bug"),
  ]) {
    assert.equal(toRpcError(e), undefined, String(e));
  }
  const storage = toServiceError(new StorageError("Io", "EIO writing data.db"), silentLogger);
  assert.deepEqual([storage.code, storage.details], [C.INTERNAL, "etcdserver: storage: EIO writing data.db"]);
  const bug = toServiceError(new TypeError("x is undefined"), silentLogger);
  assert.deepEqual([bug.code, bug.details], [C.UNKNOWN, "x is undefined"]);
  assert.equal(toServiceError(new MvccError("Failed"), silentLogger).code, C.UNKNOWN);
});

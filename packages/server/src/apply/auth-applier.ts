import { create } from "@bufbuild/protobuf";
import {
  AlarmRequest_AlarmAction,
  AuthDisableResponseSchema,
  AuthEnableResponseSchema,
  AuthRoleAddResponseSchema,
  AuthRoleDeleteResponseSchema,
  AuthRoleGetResponseSchema,
  AuthRoleGrantPermissionResponseSchema,
  AuthRoleListResponseSchema,
  AuthRoleRevokePermissionResponseSchema,
  AuthUserAddResponseSchema,
  AuthUserChangePasswordResponseSchema,
  AuthUserDeleteResponseSchema,
  AuthUserGetResponseSchema,
  AuthUserGrantRoleResponseSchema,
  AuthUserListResponseSchema,
  AuthUserRevokeRoleResponseSchema,
  AuthenticateResponseSchema,
  GrpcCode,
  RpcError,
  type InternalRaftRequest,
} from "@etcd-ts/api";
import { isAuthError, type AuthInfo, type AuthStore } from "@etcd-ts/auth";
import type { Lessor } from "@etcd-ts/lease";
import type { WriteBatch } from "@etcd-ts/mvcc";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, type WriteTxn } from "@etcd-ts/storage";
import { toRpcError } from "../errors.js";
import type { RequestApplier } from "./index.js";
import type { ApplyResult } from "./types.js";

type Request = InternalRaftRequest["request"];

const AUTH_CASES = new Set<Request["case"]>([
  "authEnable",
  "authDisable",
  "authenticate",
  "authUserAdd",
  "authUserDelete",
  "authUserGet",
  "authUserChangePassword",
  "authUserGrantRole",
  "authUserRevokeRole",
  "authUserList",
  "authRoleList",
  "authRoleAdd",
  "authRoleDelete",
  "authRoleGet",
  "authRoleGrantPermission",
  "authRoleRevokePermission",
]);

/** The caller as the entry's header names it (what the proposing member learned from the token). */
export function entryAuthInfo(request: InternalRaftRequest): AuthInfo | undefined {
  const header = request.header;
  if (header === undefined || header.username === "") return undefined;
  return { username: header.username, revision: Number(header.authRevision) };
}

/** The attached keys of a lease (for the permission checks of puts and revokes that involve it). */
export function leaseKeysOf(lessor: Lessor): (id: bigint) => Uint8Array[] | undefined {
  return (id) => {
    try {
      return lessor.timeToLive(id, { keys: true }).keys;
    } catch {
      return undefined;
    }
  };
}

/**
 * The permission check run in apply, before an entry touches anything: the same decision on every
 * member, against the auth state as of this point in the log. Requests the members make themselves
 * (attributes, lease checkpoints) are not the client's and are not checked.
 */
export function authorizeEntry(auth: AuthStore, lessor: Lessor): (request: InternalRaftRequest) => void {
  const leaseKeys = leaseKeysOf(lessor);
  return (request) => {
    if (!auth.enabled) return;
    const info = entryAuthInfo(request);
    const r = request.request;
    try {
      switch (r.case) {
        case "put":
          return auth.checkPut(info, r.value, leaseKeys);
        case "deleteRange":
          return auth.checkDeleteRange(info, r.value);
        case "txn":
          return auth.checkTxn(info, r.value, leaseKeys);
        case "range":
          return auth.checkRange(info, r.value);
        case "compaction":
          return auth.isAdminPermitted(info);
        case "alarm":
          // Listing is open to every caller, as in etcd 3.4 (its status is public through Status too);
          // raising or clearing an alarm is for root (etcd 3.4 lets anyone, even without a token).
          if (r.value.action === AlarmRequest_AlarmAction.GET) return;
          return auth.isAdminPermitted(info);
        case "leaseRevoke":
          return auth.checkLeaseRevoke(info, leaseKeys(r.value.ID) ?? []);
        case "authUserGet":
          return auth.checkUserGet(info, r.value.name);
        case "authRoleGet":
          return auth.checkRoleGet(info, r.value.role);
        case "authenticate":
        case "authEnable":
          return; // checked before proposing (password) / enabling needs the root user, checked by the store
        case "leaseGrant":
        case "leaseCheckpoint":
        case "clusterMemberAttrSet":
        case undefined:
          return;
        default:
          if (AUTH_CASES.has(r.case)) return auth.isAdminPermitted(info);
          return;
      }
    } catch (error) {
      throw toRpcError(error) ?? error;
    }
  };
}

/** Applies the auth requests of the log in the batch's backend transaction. */
export class AuthRequestApplier implements RequestApplier {
  constructor(private readonly auth: AuthStore) {}

  applies(request: Request): boolean {
    return AUTH_CASES.has(request.case);
  }

  apply(batch: WriteBatch, request: Request, index: number): ApplyResult {
    try {
      return { ok: true, response: this.applyOne(batch, request, index) };
    } catch (error) {
      const refusal = isAuthError(error) ? toRpcError(error) : undefined;
      if (refusal !== undefined) return { ok: false, error: refusal };
      throw error;
    }
  }

  private applyOne(batch: WriteBatch, r: Request, index: number) {
    const auth = this.auth;
    const txn = withinStorageLimits(batch.backend);
    const header = { revision: BigInt(batch.revision) };
    switch (r.case) {
      case "authEnable":
        auth.authEnable(txn);
        return create(AuthEnableResponseSchema, { header });
      case "authDisable":
        auth.authDisable(txn);
        return create(AuthDisableResponseSchema, { header });
      case "authenticate": {
        const token = auth.authenticate(r.value.name, { simpleTokenPrefix: r.value.simpleToken, index });
        return create(AuthenticateResponseSchema, { header, token });
      }
      case "authUserAdd":
        auth.userAdd(txn, { name: r.value.name, hashedPassword: r.value.password, noPassword: r.value.options?.noPassword ?? false });
        return create(AuthUserAddResponseSchema, { header });
      case "authUserDelete":
        auth.userDelete(txn, r.value.name);
        return create(AuthUserDeleteResponseSchema, { header });
      case "authUserGet":
        return create(AuthUserGetResponseSchema, { header, roles: auth.userGet(r.value.name) });
      case "authUserChangePassword":
        auth.userChangePassword(txn, { name: r.value.name, hashedPassword: r.value.password });
        return create(AuthUserChangePasswordResponseSchema, { header });
      case "authUserGrantRole":
        auth.userGrantRole(txn, r.value);
        return create(AuthUserGrantRoleResponseSchema, { header });
      case "authUserRevokeRole":
        auth.userRevokeRole(txn, r.value);
        return create(AuthUserRevokeRoleResponseSchema, { header });
      case "authUserList":
        return create(AuthUserListResponseSchema, { header, users: auth.userList() });
      case "authRoleList":
        return create(AuthRoleListResponseSchema, { header, roles: auth.roleList() });
      case "authRoleAdd":
        auth.roleAdd(txn, r.value.name);
        return create(AuthRoleAddResponseSchema, { header });
      case "authRoleDelete":
        auth.roleDelete(txn, r.value.role);
        return create(AuthRoleDeleteResponseSchema, { header });
      case "authRoleGet":
        return create(AuthRoleGetResponseSchema, { header, perm: auth.roleGet(r.value.role) });
      case "authRoleGrantPermission":
        auth.roleGrantPermission(txn, r.value);
        return create(AuthRoleGrantPermissionResponseSchema, { header });
      case "authRoleRevokePermission":
        auth.roleRevokePermission(txn, r.value);
        return create(AuthRoleRevokePermissionResponseSchema, { header });
      default:
        throw new Error(`not an auth request: ${r.case}`);
    }
  }
}

/**
 * The batch's transaction, refusing (INVALID_ARGUMENT, before writing) a key or value larger than every
 * engine and the snapshot format hold. Names are checked before proposing; this catches what grows
 * entry by entry — a role's permissions, a user's roles — in the value the auth store writes. The store
 * writes the backend before its memory, so a refusal leaves both as they were.
 */
function withinStorageLimits(txn: WriteTxn): WriteTxn {
  return {
    get: (bucket, key) => txn.get(bucket, key),
    range: (bucket, options) => txn.range(bucket, options),
    buckets: () => txn.buckets(),
    createBucket: (bucket) => txn.createBucket(bucket),
    deleteBucket: (bucket) => txn.deleteBucket(bucket),
    delete: (bucket, key) => txn.delete(bucket, key),
    put: (bucket, key, value) => {
      if (key.byteLength > MAX_KEY_BYTES) {
        throw new RpcError(
          GrpcCode.INVALID_ARGUMENT,
          `etcdserver: a ${bucket} key of ${key.byteLength} bytes is too large (at most ${MAX_KEY_BYTES})`,
        );
      }
      if (value.byteLength > MAX_VALUE_BYTES) {
        throw new RpcError(
          GrpcCode.INVALID_ARGUMENT,
          `etcdserver: a ${bucket} record of ${value.byteLength} bytes is too large (at most ${MAX_VALUE_BYTES})`,
        );
      }
      txn.put(bucket, key, value);
    },
  };
}

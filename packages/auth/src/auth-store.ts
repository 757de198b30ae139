import { create } from "@bufbuild/protobuf";
import { PermissionSchema, Permission_Type, RoleSchema, UserSchema } from "@etcd-ts/api";
import type { Permission, RequestOp, Role, TxnRequest, User } from "@etcd-ts/api";
import type { Backend } from "@etcd-ts/storage";
import { compareBytes } from "@etcd-ts/storage";
import { AuthError, isAuthError } from "./errors.js";
import { sharedBcryptPool, type BcryptPool } from "./bcrypt-pool.js";
import type { Clock } from "./clock.js";
import { FailedLoginLimiter, type FailedLoginLimits } from "./login-limiter.js";
import { comparePassword, hashPassword, isBcryptHash, normalizeBcryptCost } from "./password.js";
import { KeyIntervalSet, keyInterval } from "./range-permissions.js";
import type { KeyInterval } from "./range-permissions.js";
import {
  cloneUser,
  createAuthBuckets,
  deleteRole,
  deleteUser,
  encodeName,
  hasAuthBuckets,
  nameOf,
  readAllRoles,
  readAllUsers,
  readEnabled,
  readRevision,
  readRole,
  readUser,
  writeEnabled,
  writeRevision,
  writeRole,
  writeUser,
} from "./schema.js";
import type { AuthReadTxn, AuthWriteTxn } from "./schema.js";
import type { AuthInfo, TokenAssignParams, TokenProvider } from "./token-provider.js";

export const ROOT_USER = "root";
export const ROOT_ROLE = "root";

const decoder = new TextDecoder();

/**
 * The RPCs only a user with the root role may call while auth is enabled (etcd's needAdminPermission and
 * authMaintenanceServer), by gRPC method name. Unlike etcd 3.4, `Compact` and `MemberList` are here too:
 * etcd let any authenticated user compact away history or read the member list. `UserGet` and `RoleGet`
 * are not: a user may read themselves and their own roles (`checkUserGet`, `checkRoleGet`).
 */
export const ADMIN_RPCS: ReadonlySet<string> = new Set([
  "Compact",
  "Alarm",
  "MemberAdd",
  "MemberRemove",
  "MemberUpdate",
  "MemberList",
  "MemberPromote",
  "Defragment",
  "Snapshot",
  "Hash",
  "HashKV",
  "MoveLeader",
  "AuthEnable",
  "AuthDisable",
  "UserAdd",
  "UserDelete",
  "UserChangePassword",
  "UserGrantRole",
  "UserRevokeRole",
  "UserList",
  "RoleAdd",
  "RoleDelete",
  "RoleGrantPermission",
  "RoleRevokePermission",
  "RoleList",
]);

/** True when `rpc` (a gRPC method name such as `"Compact"`) needs `isAdminPermitted`. */
export function requiresAdmin(rpc: string): boolean {
  return ADMIN_RPCS.has(rpc);
}

/** UserAdd as it is applied: the password already bcrypt-hashed by `preparePassword` before proposing. */
export interface PreparedUserAdd {
  readonly name: string;
  /** A bcrypt hash; ignored (and may be absent) for a no-password user. */
  readonly hashedPassword?: string;
  readonly noPassword?: boolean;
}

/** UserChangePassword as it is applied (hash from `preparePassword`). */
export interface PreparedPasswordChange {
  readonly name: string;
  readonly hashedPassword: string;
}

/** The key permission of RoleGrantPermission, shaped like `authpb.Permission`. */
export interface KeyPermission {
  readonly permType: Permission_Type;
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
}

/** Looks up the keys attached to a lease (the lessor's narrow side); undefined when there is no such lease. */
export type LeaseKeysLookup = (leaseId: bigint) => Iterable<Uint8Array> | undefined;

export interface AuthStoreOptions {
  readonly tokenProvider: TokenProvider;
  /** `--bcrypt-cost`; outside 4..31 it falls back to 10, as etcd does. */
  readonly bcryptCost?: number;
  /** Where bcrypt runs; the process-wide pool by default. */
  readonly bcryptPool?: BcryptPool;
  /** Limits on failed logins (`false`: none); `DEFAULT_FAILED_LOGIN_LIMITS` by default. */
  readonly failedLogins?: Partial<FailedLoginLimits> | false;
  /** Time for the failed-login limits. */
  readonly clock?: Clock;
}

interface UserPermissions {
  readonly read: KeyIntervalSet;
  readonly write: KeyIntervalSet;
}

type Access = "read" | "write";

function compareNames(a: string, b: string): number {
  return compareBytes(encodeName(a), encodeName(b));
}

function hasRootRole(user: User): boolean {
  return user.roles.includes(ROOT_ROLE);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/**
 * etcd's auth store over the `auth`, `authUsers` and `authRoles` buckets.
 *
 * Ownership and ordering:
 * - Mutations (`authEnable` … `roleRevokePermission`) are the apply side of a raft entry: they take the
 *   caller's write transaction (the server writes the entry's effects and its consistent index in one
 *   transaction), validate against what that transaction sees, write, and bump the auth revision. They
 *   throw `AuthError` before writing anything, so a refused request leaves the transaction untouched.
 *   They are synchronous and deterministic; every member applies them identically.
 * - Work that must not be in the raft log runs before proposing, on the member that got the request:
 *   `preparePassword` (bcrypt; the entry carries only the hash), `checkPassword` and `genTokenPrefix`
 *   (Authenticate).
 * - Reads (`userGet`, `userList`, `roleGet`, `roleList`, permission checks) answer from an in-memory copy
 *   of the buckets, loaded by `recover` and kept current by the mutations. If the backend transaction
 *   that carried a mutation fails and is rolled back, the server must call `recover` again.
 * - Every check throws `AuthError` when refused and returns normally when permitted; with auth disabled
 *   everything is permitted.
 */
export class AuthStore {
  readonly tokenProvider: TokenProvider;
  /** The bcrypt cost new hashes are made with. */
  readonly bcryptCost: number;

  private authEnabled = false;
  private authRevision = 0;
  private users = new Map<string, User>();
  private roles = new Map<string, Role>();
  /** Merged key permissions per user, valid for `permCacheRevision` only (etcd's rangePermCache). */
  private readonly permCache = new Map<string, UserPermissions>();
  private permCacheRevision = -1;
  /** Compared against for unknown users, so a failed login takes as long either way. */
  private dummyHash: Promise<string> | undefined;
  private readonly bcryptPool: BcryptPool;
  private readonly failedLogins: FailedLoginLimiter | undefined;

  constructor(options: AuthStoreOptions) {
    this.tokenProvider = options.tokenProvider;
    this.bcryptCost = normalizeBcryptCost(options.bcryptCost);
    this.bcryptPool = options.bcryptPool ?? sharedBcryptPool();
    this.failedLogins = options.failedLogins === false ? undefined : new FailedLoginLimiter(options.failedLogins, options.clock);
  }

  /** Creates the buckets and the store's first revision in one write transaction, then loads the store. */
  static async open(backend: Pick<Backend, "update">, options: AuthStoreOptions): Promise<AuthStore> {
    const store = new AuthStore(options);
    await backend.update((txn) => store.initialize(txn));
    return store;
  }

  /**
   * Startup (etcd's NewAuthStore): creates the buckets if missing, sets the auth revision to 1 on a fresh
   * store, and loads everything. Idempotent.
   */
  initialize(txn: AuthWriteTxn): void {
    createAuthBuckets(txn);
    if (readRevision(txn) === 0) writeRevision(txn, 1);
    this.recover(txn);
  }

  /** Reloads everything from the buckets (after a snapshot restore, or a rolled-back transaction). */
  recover(txn: AuthReadTxn): void {
    const present = hasAuthBuckets(txn);
    this.users = new Map(present ? readAllUsers(txn).map((u) => [nameOf(u), u] as const) : []);
    this.roles = new Map(present ? readAllRoles(txn).map((r) => [nameOf(r), r] as const) : []);
    this.authRevision = present ? readRevision(txn) : 0;
    const enabled = present && readEnabled(txn);
    if (enabled) this.tokenProvider.enable();
    else if (this.authEnabled) this.tokenProvider.disable();
    this.authEnabled = enabled;
    this.invalidatePermCache();
  }

  get enabled(): boolean {
    return this.authEnabled;
  }

  /** The auth revision: bumped and persisted by every change of users, roles, or by disabling auth. */
  get revision(): number {
    return this.authRevision;
  }

  authStatus(): { enabled: boolean; revision: number } {
    return { enabled: this.authEnabled, revision: this.authRevision };
  }

  // ---- enable / disable ------------------------------------------------------------------------------

  /**
   * Turns auth on. Refused without a `root` user (`RootUserNotExist`) or when root lacks the root role
   * (`RootRoleNotExist`: etcdctl then adds the role, grants it to root and retries). Already enabled:
   * no-op. As in etcd 3.4 this does not bump the auth revision: no token can exist while auth is off.
   */
  authEnable(txn: AuthWriteTxn): void {
    if (this.authEnabled) return;
    const root = readUser(txn, ROOT_USER);
    if (root === undefined) throw new AuthError("RootUserNotExist");
    if (!hasRootRole(root)) throw new AuthError("RootRoleNotExist");
    writeEnabled(txn, true);
    this.authEnabled = true;
    this.tokenProvider.enable();
    this.authRevision = readRevision(txn);
    this.invalidatePermCache();
  }

  /** Turns auth off: every simple token is dropped and the revision bumps (every JWT becomes old). */
  authDisable(txn: AuthWriteTxn): void {
    if (!this.authEnabled) return;
    writeEnabled(txn, false);
    this.commitRevision(txn);
    this.authEnabled = false;
    this.tokenProvider.disable();
  }

  // ---- passwords and tokens (before proposing) --------------------------------------------------------

  /**
   * Hashes a clear password for UserAdd / UserChangePassword. The server runs it before proposing and puts
   * only the hash in the raft entry; nothing here logs or keeps the clear text.
   */
  preparePassword(password: string): Promise<string> {
    return hashPassword(password, this.bcryptCost, this.bcryptPool);
  }

  /**
   * Authenticate, step 1 (before proposing): the password check. Resolves with the auth revision it was
   * checked at; after the Authenticate entry is applied the server compares it with `revision` and
   * starts over when they differ (the password or user may have changed meanwhile), as etcd does.
   * Rejects with `AuthNotEnabled`, or `AuthFailed` for an unknown user, a no-password user or a wrong
   * password (one error for all, so the reply does not tell which), or `TooManyRequests` when the bcrypt
   * pool's queue is full.
   *
   * Unlike etcd, failed checks are limited per user name and per client address (`peer`, without port):
   * past the limit, attempts are refused with the same `AuthFailed` at once, without running bcrypt.
   */
  async checkPassword(name: string, password: string, peer?: string): Promise<number> {
    if (!this.authEnabled) throw new AuthError("AuthNotEnabled");
    const attempt = this.failedLogins?.admit(name, peer);
    if (this.failedLogins !== undefined && attempt === undefined) {
      throw new AuthError("AuthFailed", "auth: too many failed logins for this user or address");
    }
    let ok = false;
    let checked = false;
    try {
      const revision = this.authRevision;
      const user = this.users.get(name);
      if (user === undefined || user.options?.noPassword === true) {
        this.dummyHash ??= hashPassword("etcd-ts: no such user", this.bcryptCost, this.bcryptPool);
        await comparePassword(password, await this.dummyHash, this.bcryptPool);
        checked = true;
        throw new AuthError("AuthFailed");
      }
      ok = await comparePassword(password, decoder.decode(user.password), this.bcryptPool);
      checked = true;
      if (!ok) throw new AuthError("AuthFailed");
      return revision;
    } finally {
      // Only a wrong password counts; a check the pool refused (or a thread lost) is given back.
      attempt?.release(ok || !checked);
    }
  }

  /** Authenticate, step 2 (before proposing): the random part of a simple token ("" for JWT). */
  genTokenPrefix(): string {
    return this.tokenProvider.genTokenPrefix();
  }

  /**
   * Authenticate, step 3 (apply, on every member): issues the token. Simple tokens are registered in each
   * member's memory here, which is why Authenticate goes through raft at all.
   */
  authenticate(name: string, params: TokenAssignParams): string {
    if (!this.authEnabled) throw new AuthError("AuthNotEnabled");
    const user = this.users.get(name);
    if (user === undefined || user.options?.noPassword === true) throw new AuthError("AuthFailed");
    return this.tokenProvider.assign(name, this.authRevision, params);
  }

  /**
   * Who a request's `token` metadata speaks for (`InvalidAuthToken` when unknown, expired or forged). The
   * revision is the token's (JWT) or the store's current one (simple); the server copies both into the raft
   * request header, and the permission checks in apply refuse an old revision.
   */
  authInfoFromToken(token: string): AuthInfo {
    const info = this.tokenProvider.info(token, this.authRevision);
    if (info === undefined) throw new AuthError("InvalidAuthToken");
    return info;
  }

  /** Credentials for the server's own requests (e.g. revoking an expired lease while auth is on). */
  rootAuthInfo(): AuthInfo {
    return { username: ROOT_USER, revision: this.authRevision };
  }

  // ---- users ------------------------------------------------------------------------------------------

  userAdd(txn: AuthWriteTxn, request: PreparedUserAdd): void {
    if (request.name.length === 0) throw new AuthError("UserEmpty");
    const noPassword = request.noPassword === true;
    const hashed = noPassword ? "" : this.requirePrepared(request.hashedPassword);
    if (readUser(txn, request.name) !== undefined) throw new AuthError("UserAlreadyExist");
    const user = create(UserSchema, {
      name: encodeName(request.name),
      password: encodeName(hashed),
      roles: [],
      options: { noPassword },
    });
    writeUser(txn, user);
    this.users.set(request.name, user);
    this.commitRevision(txn);
  }

  /** Refused for root while auth is enabled (`InvalidAuthMgmt`); the user's simple tokens die with it. */
  userDelete(txn: AuthWriteTxn, name: string): void {
    if (this.authEnabled && name === ROOT_USER) throw new AuthError("InvalidAuthMgmt");
    if (readUser(txn, name) === undefined) throw new AuthError("UserNotFound");
    deleteUser(txn, name);
    this.users.delete(name);
    this.commitRevision(txn);
    this.tokenProvider.invalidateUser(name);
  }

  /** Keeps roles and options (a no-password user stays one, as in etcd); the user's simple tokens die. */
  userChangePassword(txn: AuthWriteTxn, request: PreparedPasswordChange): void {
    const hashed = this.requirePrepared(request.hashedPassword);
    const user = readUser(txn, request.name);
    if (user === undefined) throw new AuthError("UserNotFound");
    user.password = encodeName(hashed);
    writeUser(txn, user);
    this.users.set(request.name, user);
    this.commitRevision(txn);
    this.tokenProvider.invalidateUser(request.name);
  }

  /**
   * The role must exist, except `root`, which etcd lets be granted before the role is created (etcdctl's
   * `auth enable` relies on it). Granting a role the user has is a no-op (no revision bump).
   */
  userGrantRole(txn: AuthWriteTxn, request: { readonly user: string; readonly role: string }): void {
    const user = readUser(txn, request.user);
    if (user === undefined) throw new AuthError("UserNotFound");
    if (request.role !== ROOT_ROLE && readRole(txn, request.role) === undefined) throw new AuthError("RoleNotFound");
    if (user.roles.includes(request.role)) return;
    user.roles = [...user.roles, request.role].sort(compareNames);
    writeUser(txn, user);
    this.users.set(request.user, user);
    this.commitRevision(txn);
  }

  /** Refused for root's root role while auth is enabled (`InvalidAuthMgmt`), as in etcd. */
  userRevokeRole(txn: AuthWriteTxn, request: { readonly name: string; readonly role: string }): void {
    if (this.authEnabled && request.name === ROOT_USER && request.role === ROOT_ROLE) {
      throw new AuthError("InvalidAuthMgmt");
    }
    const user = readUser(txn, request.name);
    if (user === undefined) throw new AuthError("UserNotFound");
    if (!user.roles.includes(request.role)) throw new AuthError("RoleNotGranted");
    user.roles = user.roles.filter((r) => r !== request.role);
    writeUser(txn, user);
    this.users.set(request.name, user);
    this.commitRevision(txn);
  }

  /** The user's roles, sorted. */
  userGet(name: string): string[] {
    const user = this.users.get(name);
    if (user === undefined) throw new AuthError("UserNotFound");
    return [...user.roles];
  }

  /** All user names in byte order (the bucket's order, as etcd lists them). */
  userList(): string[] {
    return [...this.users.keys()].sort(compareNames);
  }

  /** A copy of the stored user (password = bcrypt hash bytes), or undefined. */
  getUser(name: string): User | undefined {
    const user = this.users.get(name);
    return user === undefined ? undefined : cloneUser(user);
  }

  hasRole(userName: string, role: string): boolean {
    return this.users.get(userName)?.roles.includes(role) ?? false;
  }

  // ---- roles ------------------------------------------------------------------------------------------

  roleAdd(txn: AuthWriteTxn, name: string): void {
    if (name.length === 0) throw new AuthError("RoleEmpty");
    if (readRole(txn, name) !== undefined) throw new AuthError("RoleAlreadyExist");
    const role = create(RoleSchema, { name: encodeName(name), keyPermission: [] });
    writeRole(txn, role);
    this.roles.set(name, role);
    this.commitRevision(txn);
  }

  /** Also revokes the role from every user. Refused for root while auth is enabled (`InvalidAuthMgmt`). */
  roleDelete(txn: AuthWriteTxn, name: string): void {
    if (this.authEnabled && name === ROOT_ROLE) throw new AuthError("InvalidAuthMgmt");
    if (readRole(txn, name) === undefined) throw new AuthError("RoleNotFound");
    deleteRole(txn, name);
    this.roles.delete(name);
    for (const user of readAllUsers(txn)) {
      if (!user.roles.includes(name)) continue;
      user.roles = user.roles.filter((r) => r !== name);
      writeUser(txn, user);
      this.users.set(nameOf(user), user);
    }
    this.commitRevision(txn);
  }

  /**
   * Adds a key permission, or changes the type of the one with the same key and range end. Permissions
   * stay sorted by key (ties in insertion order), as etcd keeps them. etcd compares only the first
   * permission with an equal key and can store a duplicate; here any equal (key, range end) is updated.
   */
  roleGrantPermission(txn: AuthWriteTxn, request: { readonly name: string; readonly perm?: KeyPermission | undefined }): void {
    const role = readRole(txn, request.name);
    if (role === undefined) throw new AuthError("RoleNotFound");
    const perm = request.perm ?? create(PermissionSchema);
    const existing = role.keyPermission.find((p) => sameBytes(p.key, perm.key) && sameBytes(p.rangeEnd, perm.rangeEnd));
    if (existing !== undefined) {
      existing.permType = perm.permType;
    } else {
      const added = create(PermissionSchema, { permType: perm.permType, key: perm.key.slice(), rangeEnd: perm.rangeEnd.slice() });
      let at = role.keyPermission.length;
      while (at > 0 && compareBytes(role.keyPermission[at - 1]!.key, added.key) > 0) at--;
      role.keyPermission.splice(at, 0, added);
    }
    writeRole(txn, role);
    this.roles.set(request.name, role);
    this.commitRevision(txn);
  }

  /** Removes the permission with exactly this key and range end (`PermissionNotGranted` when none). */
  roleRevokePermission(
    txn: AuthWriteTxn,
    request: { readonly role: string; readonly key: Uint8Array; readonly rangeEnd: Uint8Array },
  ): void {
    const role = readRole(txn, request.role);
    if (role === undefined) throw new AuthError("RoleNotFound");
    const kept = role.keyPermission.filter((p) => !(sameBytes(p.key, request.key) && sameBytes(p.rangeEnd, request.rangeEnd)));
    if (kept.length === role.keyPermission.length) throw new AuthError("PermissionNotGranted");
    role.keyPermission = kept;
    writeRole(txn, role);
    this.roles.set(request.role, role);
    this.commitRevision(txn);
  }

  /** The role's key permissions (copies), sorted by key. */
  roleGet(name: string): Permission[] {
    const role = this.roles.get(name);
    if (role === undefined) throw new AuthError("RoleNotFound");
    return role.keyPermission.map((p) =>
      create(PermissionSchema, { permType: p.permType, key: p.key.slice(), rangeEnd: p.rangeEnd.slice() }),
    );
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort(compareNames);
  }

  // ---- permission checks (apply path) -----------------------------------------------------------------

  /** Read access to every key of `[key, rangeEnd)` (etcd's range conventions: empty = one key, "\0" = from key). */
  isRangePermitted(authInfo: AuthInfo | undefined, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkKeys(authInfo, keyInterval(key, rangeEnd), "read");
  }

  isPutPermitted(authInfo: AuthInfo | undefined, key: Uint8Array): void {
    this.checkKeys(authInfo, keyInterval(key, undefined), "write");
  }

  isDeleteRangePermitted(authInfo: AuthInfo | undefined, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkKeys(authInfo, keyInterval(key, rangeEnd), "write");
  }

  /**
   * The caller holds the root role. Errors as etcd's IsAdminPermitted: `UserEmpty` without credentials,
   * `UserNotFound` for a user that no longer exists, `PermissionDenied` otherwise.
   */
  isAdminPermitted(authInfo: AuthInfo | undefined): void {
    if (!this.authEnabled) return;
    if (authInfo === undefined || authInfo.username === "") throw new AuthError("UserEmpty");
    const user = this.users.get(authInfo.username);
    if (user === undefined) throw new AuthError("UserNotFound");
    if (!hasRootRole(user)) throw new AuthError("PermissionDenied");
  }

  /** `isAdminPermitted` as a boolean. */
  isAdmin(authInfo: AuthInfo | undefined): boolean {
    try {
      this.isAdminPermitted(authInfo);
      return true;
    } catch (e) {
      if (isAuthError(e)) return false;
      throw e;
    }
  }

  /** A Range request (`RangeRequest`'s key and range end). */
  checkRange(authInfo: AuthInfo | undefined, request: { readonly key: Uint8Array; readonly rangeEnd: Uint8Array }): void {
    this.isRangePermitted(authInfo, request.key, request.rangeEnd);
  }

  /**
   * A Put: write on the key, read on it too when the previous value is asked for, and write on every key
   * already attached to the lease it names (otherwise the caller could revoke that lease and so delete
   * keys it may not write).
   */
  checkPut(
    authInfo: AuthInfo | undefined,
    request: { readonly key: Uint8Array; readonly prevKv: boolean; readonly lease: bigint },
    leaseKeys?: LeaseKeysLookup,
  ): void {
    this.isPutPermitted(authInfo, request.key);
    if (request.prevKv) this.isRangePermitted(authInfo, request.key);
    if (request.lease !== 0n && leaseKeys !== undefined) {
      for (const key of leaseKeys(request.lease) ?? []) this.isPutPermitted(authInfo, key);
    }
  }

  /** A DeleteRange: write on the whole range, read too when previous values are asked for. */
  checkDeleteRange(
    authInfo: AuthInfo | undefined,
    request: { readonly key: Uint8Array; readonly rangeEnd: Uint8Array; readonly prevKv: boolean },
  ): void {
    this.isDeleteRangePermitted(authInfo, request.key, request.rangeEnd);
    if (request.prevKv) this.isRangePermitted(authInfo, request.key, request.rangeEnd);
  }

  /**
   * A Txn: read on every compare, then every op of both branches — whichever branch runs — and, unlike
   * etcd 3.4, every op of every nested txn at any depth (etcd did not look inside `requestTxn`, so a
   * write outside one's permissions went through when wrapped in a nested txn).
   */
  checkTxn(authInfo: AuthInfo | undefined, txn: TxnRequest, leaseKeys?: LeaseKeysLookup): void {
    if (!this.authEnabled) return;
    for (const compare of txn.compare) this.isRangePermitted(authInfo, compare.key, compare.rangeEnd);
    this.checkOps(authInfo, txn.success, leaseKeys);
    this.checkOps(authInfo, txn.failure, leaseKeys);
  }

  /**
   * A watch on exactly the requested range, from-key (`rangeEnd` = "\0") meaning every key from `key` to
   * the end of the keyspace. etcd 3.4 checked `[key, "\0")` as if only `key`'s neighbourhood were asked
   * for, so a user allowed `[a, b)` could watch `[a, "\0")` and see every key after `a`.
   */
  checkWatch(authInfo: AuthInfo | undefined, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.isRangePermitted(authInfo, key, rangeEnd);
  }

  /** LeaseRevoke deletes every attached key: write on each is required. */
  checkLeaseRevoke(authInfo: AuthInfo | undefined, attachedKeys: Iterable<Uint8Array>): void {
    if (!this.authEnabled) return;
    for (const key of attachedKeys) this.isPutPermitted(authInfo, key);
  }

  /**
   * LeaseTimeToLive with `keys: true` lists the attached keys: write on each is required (the permission
   * needed to attach them in the first place; etcd 3.5 asks for read).
   */
  checkLeaseTimeToLive(authInfo: AuthInfo | undefined, attachedKeys: Iterable<Uint8Array>): void {
    if (!this.authEnabled) return;
    for (const key of attachedKeys) this.isPutPermitted(authInfo, key);
  }

  /** UserGet: root, or the user asking about themselves (etcd's rule). */
  checkUserGet(authInfo: AuthInfo | undefined, name: string): void {
    try {
      this.isAdminPermitted(authInfo);
    } catch (e) {
      if (authInfo === undefined || authInfo.username === "" || authInfo.username !== name) throw e;
    }
  }

  /** RoleGet: root, or a user holding the role (etcd's rule). */
  checkRoleGet(authInfo: AuthInfo | undefined, role: string): void {
    try {
      this.isAdminPermitted(authInfo);
    } catch (e) {
      if (authInfo === undefined || authInfo.username === "" || !this.hasRole(authInfo.username, role)) throw e;
    }
  }

  // ---- internals --------------------------------------------------------------------------------------

  private checkOps(authInfo: AuthInfo | undefined, ops: readonly RequestOp[], leaseKeys: LeaseKeysLookup | undefined): void {
    for (const op of ops) {
      const request = op.request;
      switch (request.case) {
        case "requestRange":
          this.checkRange(authInfo, request.value);
          break;
        case "requestPut":
          this.checkPut(authInfo, request.value, leaseKeys);
          break;
        case "requestDeleteRange":
          this.checkDeleteRange(authInfo, request.value);
          break;
        case "requestTxn":
          this.checkTxn(authInfo, request.value, leaseKeys);
          break;
        case undefined:
          break;
      }
    }
  }

  /** etcd's isOpPermitted, with the range semantics of `range-permissions.ts`. */
  private checkKeys(authInfo: AuthInfo | undefined, keys: KeyInterval, access: Access): void {
    if (!this.authEnabled) return;
    // Revision 0 is what a request without credentials carries.
    if (authInfo === undefined || authInfo.revision === 0 || authInfo.username === "") throw new AuthError("UserEmpty");
    if (authInfo.revision < this.authRevision) throw new AuthError("AuthOldRevision");
    const user = this.users.get(authInfo.username);
    if (user === undefined) throw new AuthError("PermissionDenied");
    if (hasRootRole(user)) return;
    if (!this.permissionsOf(user)[access].contains(keys)) throw new AuthError("PermissionDenied");
  }

  private permissionsOf(user: User): UserPermissions {
    if (this.permCacheRevision !== this.authRevision) this.invalidatePermCache();
    const name = nameOf(user);
    let perms = this.permCache.get(name);
    if (perms === undefined) {
      const read: KeyInterval[] = [];
      const write: KeyInterval[] = [];
      for (const roleName of user.roles) {
        for (const p of this.roles.get(roleName)?.keyPermission ?? []) {
          const ivl = keyInterval(p.key, p.rangeEnd);
          if (p.permType === Permission_Type.READ || p.permType === Permission_Type.READWRITE) read.push(ivl);
          if (p.permType === Permission_Type.WRITE || p.permType === Permission_Type.READWRITE) write.push(ivl);
        }
      }
      perms = { read: new KeyIntervalSet(read), write: new KeyIntervalSet(write) };
      this.permCache.set(name, perms);
    }
    return perms;
  }

  private invalidatePermCache(): void {
    this.permCache.clear();
    this.permCacheRevision = this.authRevision;
  }

  private commitRevision(txn: AuthWriteTxn): void {
    this.authRevision += 1;
    writeRevision(txn, this.authRevision);
    this.invalidatePermCache();
  }

  /** Refuses anything but a bcrypt hash, so a clear password can never reach the store. */
  private requirePrepared(hashedPassword: string | undefined): string {
    if (hashedPassword === undefined || !isBcryptHash(hashedPassword)) {
      throw new AuthError("InvalidAuthMgmt", "auth: the password must be hashed with preparePassword before proposing");
    }
    return hashedPassword;
  }
}

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RoleSchema, UserSchema } from "@etcd-ts/api";
import type { Role, User } from "@etcd-ts/api";
import { AUTH_BUCKET, AUTH_ENABLED_KEY, AUTH_REVISION_KEY, AUTH_ROLES_BUCKET, AUTH_USERS_BUCKET } from "@etcd-ts/schema";
import type { ReadTxn, WriteTxn } from "@etcd-ts/storage";

/**
 * etcd's on-disk auth layout, kept byte for byte so an etcd snapshot restores here with its users, roles
 * and auth state, and a snapshot of ours restores in etcd:
 * - bucket `auth`: `authEnabled` = one byte (1 enabled, 0 disabled), `authRevision` = 8-byte big-endian;
 * - bucket `authUsers`: user name → marshaled `authpb.User` (password = bcrypt hash, roles sorted);
 * - bucket `authRoles`: role name → marshaled `authpb.Role` (permissions sorted by key).
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the auth store reads: a narrow view of a storage read transaction. */
export type AuthReadTxn = Pick<ReadTxn, "get" | "range" | "buckets">;
/** What the auth store writes: a narrow view of a storage write transaction. */
export type AuthWriteTxn = AuthReadTxn & Pick<WriteTxn, "createBucket" | "put" | "delete">;

export function createAuthBuckets(txn: AuthWriteTxn): void {
  txn.createBucket(AUTH_BUCKET);
  txn.createBucket(AUTH_USERS_BUCKET);
  txn.createBucket(AUTH_ROLES_BUCKET);
}

/** True when the buckets exist (a store never initialised, or a foreign snapshot without auth, has none). */
export function hasAuthBuckets(txn: AuthReadTxn): boolean {
  const names = txn.buckets();
  return names.includes(AUTH_BUCKET) && names.includes(AUTH_USERS_BUCKET) && names.includes(AUTH_ROLES_BUCKET);
}

export function readEnabled(txn: AuthReadTxn): boolean {
  const v = txn.get(AUTH_BUCKET, AUTH_ENABLED_KEY);
  return v !== undefined && v.length === 1 && v[0] === 1;
}

export function writeEnabled(txn: AuthWriteTxn, enabled: boolean): void {
  txn.put(AUTH_BUCKET, AUTH_ENABLED_KEY, new Uint8Array([enabled ? 1 : 0]));
}

/** 0 when never written (etcd's initialization phase). */
export function readRevision(txn: AuthReadTxn): number {
  const v = txn.get(AUTH_BUCKET, AUTH_REVISION_KEY);
  if (v === undefined || v.length !== 8) return 0;
  return Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, false));
}

export function writeRevision(txn: AuthWriteTxn, revision: number): void {
  const v = new Uint8Array(8);
  new DataView(v.buffer).setBigUint64(0, BigInt(revision), false);
  txn.put(AUTH_BUCKET, AUTH_REVISION_KEY, v);
}

export function readUser(txn: AuthReadTxn, name: string): User | undefined {
  const v = txn.get(AUTH_USERS_BUCKET, encoder.encode(name));
  return v === undefined ? undefined : fromBinary(UserSchema, v);
}

export function readAllUsers(txn: AuthReadTxn): User[] {
  return [...txn.range(AUTH_USERS_BUCKET)].map((e) => fromBinary(UserSchema, e.value));
}

export function writeUser(txn: AuthWriteTxn, user: User): void {
  txn.put(AUTH_USERS_BUCKET, user.name, toBinary(UserSchema, user));
}

export function deleteUser(txn: AuthWriteTxn, name: string): void {
  txn.delete(AUTH_USERS_BUCKET, encoder.encode(name));
}

export function readRole(txn: AuthReadTxn, name: string): Role | undefined {
  const v = txn.get(AUTH_ROLES_BUCKET, encoder.encode(name));
  return v === undefined ? undefined : fromBinary(RoleSchema, v);
}

export function readAllRoles(txn: AuthReadTxn): Role[] {
  return [...txn.range(AUTH_ROLES_BUCKET)].map((e) => fromBinary(RoleSchema, e.value));
}

export function writeRole(txn: AuthWriteTxn, role: Role): void {
  txn.put(AUTH_ROLES_BUCKET, role.name, toBinary(RoleSchema, role));
}

export function deleteRole(txn: AuthWriteTxn, name: string): void {
  txn.delete(AUTH_ROLES_BUCKET, encoder.encode(name));
}

export function nameOf(entity: User | Role): string {
  return decoder.decode(entity.name);
}

export function encodeName(name: string): Uint8Array {
  return encoder.encode(name);
}

/** A deep copy, so callers never hold the cache's own objects. */
export function cloneUser(user: User): User {
  return create(UserSchema, {
    name: user.name.slice(),
    password: user.password.slice(),
    roles: [...user.roles],
    options: user.options === undefined ? undefined : { noPassword: user.options.noPassword },
  });
}

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Permission_Type, TxnRequestSchema } from "@etcd-ts/api";
import type { RequestOp, TxnRequest } from "@etcd-ts/api";
import { ADMIN_RPCS, requiresAdmin } from "./auth-store.js";
import { authErrorOf, bytes, enableWithRoot, openStoreFixture } from "./testing/store-fixture.js";
import type { StoreFixture } from "./testing/store-fixture.js";
import type { AuthInfo } from "./token-provider.js";

const perm = (permType: Permission_Type, key: string, rangeEnd = "") => ({ permType, key: bytes(key), rangeEnd: bytes(rangeEnd) });

/** root, alice (role `app`) and auth enabled; `app` gets the permissions given. */
async function withAlice(...perms: ReturnType<typeof perm>[]): Promise<{ f: StoreFixture; alice: () => AuthInfo; root: () => AuthInfo }> {
  const f = await openStoreFixture();
  await f.mutate((t) => f.store.roleAdd(t, "app"));
  for (const p of perms) await f.mutate((t) => f.store.roleGrantPermission(t, { name: "app", perm: p }));
  await f.addUser("alice", "pw", ["app"]);
  await enableWithRoot(f);
  return {
    f,
    alice: () => ({ username: "alice", revision: f.store.revision }),
    root: () => ({ username: "root", revision: f.store.revision }),
  };
}

const op = {
  range: (key: string, rangeEnd = ""): RequestOp =>
    ({ request: { case: "requestRange", value: { key: bytes(key), rangeEnd: bytes(rangeEnd) } } }) as RequestOp,
  put: (key: string, extra: { prevKv?: boolean; lease?: bigint } = {}): RequestOp =>
    ({ request: { case: "requestPut", value: { key: bytes(key), prevKv: extra.prevKv ?? false, lease: extra.lease ?? 0n } } }) as RequestOp,
  del: (key: string, rangeEnd = "", prevKv = false): RequestOp =>
    ({ request: { case: "requestDeleteRange", value: { key: bytes(key), rangeEnd: bytes(rangeEnd), prevKv } } }) as RequestOp,
  txn: (t: TxnRequest): RequestOp => ({ request: { case: "requestTxn", value: t } }) as RequestOp,
};

function txn(parts: { compare?: string[]; success?: RequestOp[]; failure?: RequestOp[] }): TxnRequest {
  return create(TxnRequestSchema, {
    compare: (parts.compare ?? []).map((k) => ({ key: bytes(k) })),
    success: parts.success ?? [],
    failure: parts.failure ?? [],
  });
}

describe("permissions: each permission type", () => {
  it("READ allows Range on the key, refuses Put and DeleteRange", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READ, "k"));
    f.store.isRangePermitted(alice(), bytes("k"));
    assert.throws(() => f.store.isPutPermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.isDeleteRangePermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("other")), authErrorOf("PermissionDenied"));
  });

  it("WRITE allows Put and DeleteRange, refuses Range", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.WRITE, "k"));
    f.store.isPutPermitted(alice(), bytes("k"));
    f.store.isDeleteRangePermitted(alice(), bytes("k"));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
  });

  it("READWRITE allows both", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "k"));
    f.store.isPutPermitted(alice(), bytes("k"));
    f.store.isRangePermitted(alice(), bytes("k"));
  });

  it("a range permission [a, c) covers keys and sub-ranges inside it only", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "a", "c"));
    f.store.isRangePermitted(alice(), bytes("b"));
    f.store.isRangePermitted(alice(), bytes("a"), bytes("c"));
    f.store.isDeleteRangePermitted(alice(), bytes("a"), bytes("b"));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("a"), bytes("d")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.isPutPermitted(alice(), bytes("c")), authErrorOf("PermissionDenied"));
  });

  it("a prefix permission (etcdctl --prefix: [p, p+1)) covers the prefix's keys and a prefix request", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READ, "app/", "app0"));
    f.store.isRangePermitted(alice(), bytes("app/x/y"));
    f.store.isRangePermitted(alice(), bytes("app/"), bytes("app0"));
    f.store.isRangePermitted(alice(), bytes("app/x/"), bytes("app/x0"));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("app"), bytes("app0")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("apq")), authErrorOf("PermissionDenied"));
  });

  it("a from-key permission (etcdctl --from-key: range end \\0) covers everything from its key", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.WRITE, "m", "\0"));
    f.store.isPutPermitted(alice(), bytes("m"));
    f.store.isPutPermitted(alice(), bytes("zzzz"));
    f.store.isDeleteRangePermitted(alice(), bytes("n"), bytes("\0"));
    assert.throws(() => f.store.isPutPermitted(alice(), bytes("l")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.isDeleteRangePermitted(alice(), bytes("a"), bytes("\0")), authErrorOf("PermissionDenied"));
  });

  it("permissions of several roles merge into one set", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READ, "a", "c"));
    await f.mutate((t) => f.store.roleAdd(t, "more"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "more", perm: perm(Permission_Type.READ, "c", "e") }));
    await f.mutate((t) => f.store.userGrantRole(t, { user: "alice", role: "more" }));
    f.store.isRangePermitted(alice(), bytes("a"), bytes("e"));
  });

  it("the root role passes every check; auth disabled permits everything, even without credentials", async () => {
    const { f, root } = await withAlice();
    f.store.isPutPermitted(root(), bytes("anything"));
    f.store.isRangePermitted(root(), bytes(""), bytes("\0"));
    f.store.isAdminPermitted(root());
    await f.mutate((t) => f.store.authDisable(t));
    f.store.isPutPermitted(undefined, bytes("x"));
    f.store.isAdminPermitted(undefined);
    f.store.checkTxn(undefined, txn({ success: [op.put("x")] }));
  });
});

describe("permissions: credentials and revisions", () => {
  it("no credentials → UserEmpty; unknown user → PermissionDenied", async () => {
    const { f } = await withAlice(perm(Permission_Type.READ, "k"));
    assert.throws(() => f.store.isRangePermitted(undefined, bytes("k")), authErrorOf("UserEmpty"));
    assert.throws(() => f.store.isRangePermitted({ username: "", revision: 0 }, bytes("k")), authErrorOf("UserEmpty"));
    assert.throws(
      () => f.store.isRangePermitted({ username: "ghost", revision: f.store.revision }, bytes("k")),
      authErrorOf("PermissionDenied"),
    );
  });

  it("an old auth revision → AuthOldRevision, so a change applies at once to every open token", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "k"));
    const before = alice();
    f.store.isPutPermitted(before, bytes("k"));
    await f.mutate((t) => f.store.roleRevokePermission(t, { role: "app", key: bytes("k"), rangeEnd: bytes("") }));
    assert.throws(() => f.store.isPutPermitted(before, bytes("k")), authErrorOf("AuthOldRevision"));
    assert.throws(() => f.store.isPutPermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
  });

  it("the per-user cache follows grants and revokes", async () => {
    const { f, alice } = await withAlice();
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "app", perm: perm(Permission_Type.READ, "k") }));
    f.store.isRangePermitted(alice(), bytes("k"));
    await f.mutate((t) => f.store.userRevokeRole(t, { name: "alice", role: "app" }));
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("k")), authErrorOf("PermissionDenied"));
  });
});

describe("permissions: requests", () => {
  it("Put with prev_kv also needs read; Put with a lease needs write on the lease's keys", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.WRITE, "w"), perm(Permission_Type.READWRITE, "rw"));
    f.store.checkPut(alice(), { key: bytes("w"), prevKv: false, lease: 0n });
    assert.throws(() => f.store.checkPut(alice(), { key: bytes("w"), prevKv: true, lease: 0n }), authErrorOf("PermissionDenied"));
    f.store.checkPut(alice(), { key: bytes("rw"), prevKv: true, lease: 0n });
    const leaseKeys = (id: bigint) => (id === 7n ? [bytes("w"), bytes("secret")] : id === 8n ? [bytes("w")] : undefined);
    assert.throws(
      () => f.store.checkPut(alice(), { key: bytes("w"), prevKv: false, lease: 7n }, leaseKeys),
      authErrorOf("PermissionDenied"),
    );
    f.store.checkPut(alice(), { key: bytes("w"), prevKv: false, lease: 8n }, leaseKeys);
    f.store.checkPut(alice(), { key: bytes("w"), prevKv: false, lease: 9n }, leaseKeys);
  });

  it("DeleteRange with prev_kv also needs read on the range", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.WRITE, "a", "c"));
    f.store.checkDeleteRange(alice(), { key: bytes("a"), rangeEnd: bytes("c"), prevKv: false });
    assert.throws(
      () => f.store.checkDeleteRange(alice(), { key: bytes("a"), rangeEnd: bytes("c"), prevKv: true }),
      authErrorOf("PermissionDenied"),
    );
  });

  it("Txn: compares need read, both branches are checked whichever runs", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "mine/", "mine0"));
    f.store.checkTxn(alice(), txn({ compare: ["mine/a"], success: [op.put("mine/b")], failure: [op.range("mine/c")] }));
    assert.throws(() => f.store.checkTxn(alice(), txn({ compare: ["other"] })), authErrorOf("PermissionDenied"));
    assert.throws(
      () => f.store.checkTxn(alice(), txn({ success: [op.range("mine/a")], failure: [op.del("other")] })),
      authErrorOf("PermissionDenied"),
    );
    assert.throws(
      () => f.store.checkTxn(alice(), txn({ success: [op.del("mine/", "mine0", false), op.range("x")] })),
      authErrorOf("PermissionDenied"),
    );
  });

  it("LeaseRevoke and LeaseTimeToLive need write on every attached key", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "mine/", "mine0"), perm(Permission_Type.READ, "ro"));
    f.store.checkLeaseRevoke(alice(), [bytes("mine/a"), bytes("mine/b")]);
    f.store.checkLeaseRevoke(alice(), []);
    assert.throws(() => f.store.checkLeaseRevoke(alice(), [bytes("mine/a"), bytes("theirs")]), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.checkLeaseRevoke(alice(), [bytes("ro")]), authErrorOf("PermissionDenied"));
    f.store.checkLeaseTimeToLive(alice(), [bytes("mine/a")]);
    assert.throws(() => f.store.checkLeaseTimeToLive(alice(), [bytes("theirs")]), authErrorOf("PermissionDenied"));
  });

  it("admin: root only — UserEmpty without credentials, UserNotFound for a vanished user, PermissionDenied otherwise", async () => {
    const { f, alice, root } = await withAlice();
    f.store.isAdminPermitted(root());
    assert.equal(f.store.isAdmin(root()), true);
    assert.throws(() => f.store.isAdminPermitted(alice()), authErrorOf("PermissionDenied"));
    assert.equal(f.store.isAdmin(alice()), false);
    assert.throws(() => f.store.isAdminPermitted(undefined), authErrorOf("UserEmpty"));
    assert.throws(() => f.store.isAdminPermitted({ username: "ghost", revision: 9 }), authErrorOf("UserNotFound"));
  });

  it("UserGet: root or the user themselves; RoleGet: root or a holder of the role", async () => {
    const { f, alice, root } = await withAlice();
    await f.mutate((t) => f.store.roleAdd(t, "other"));
    f.store.checkUserGet(alice(), "alice");
    f.store.checkUserGet(root(), "alice");
    assert.throws(() => f.store.checkUserGet(alice(), "root"), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.checkUserGet(undefined, ""), authErrorOf("UserEmpty"));
    f.store.checkRoleGet(alice(), "app");
    f.store.checkRoleGet(root(), "other");
    assert.throws(() => f.store.checkRoleGet(alice(), "other"), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.checkRoleGet(alice(), "root"), authErrorOf("PermissionDenied"));
  });
});

describe("etcd 3.4 bypasses that must not exist", () => {
  it("bypass 1: a write outside one's permissions inside a nested txn is refused", async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READWRITE, "mine/", "mine0"));
    // etcd 3.4's checkTxnReqsPermission ignored RequestOp_RequestTxn: this passed and wrote /secret.
    const nested = txn({ success: [op.range("mine/a"), op.txn(txn({ success: [op.put("secret")] }))] });
    assert.throws(() => f.store.checkTxn(alice(), nested), authErrorOf("PermissionDenied"));
    // Deeper nesting, in the failure branch, and through a nested delete and a nested compare.
    const deep = txn({ failure: [op.txn(txn({ failure: [op.txn(txn({ success: [op.del("secret", "\0")] }))] }))] });
    assert.throws(() => f.store.checkTxn(alice(), deep), authErrorOf("PermissionDenied"));
    const nestedCompare = txn({ success: [op.txn(txn({ compare: ["secret"] }))] });
    assert.throws(() => f.store.checkTxn(alice(), nestedCompare), authErrorOf("PermissionDenied"));
    // A nested txn inside one's own keys is fine.
    f.store.checkTxn(alice(), txn({ success: [op.txn(txn({ compare: ["mine/x"], success: [op.put("mine/y")] }))] }));
  });

  it("bypass 2: compact and member list are root-only", async () => {
    const { f, alice, root } = await withAlice(perm(Permission_Type.READWRITE, "", "\0"));
    // etcd 3.4 let any authenticated user Compact (destroying history) and list members.
    for (const rpc of ["Compact", "MemberList"]) {
      assert.equal(requiresAdmin(rpc), true, rpc);
    }
    for (const rpc of [
      "MemberAdd",
      "MemberRemove",
      "MemberUpdate",
      "MemberPromote",
      "Alarm",
      "Defragment",
      "Snapshot",
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
    ]) {
      assert.ok(ADMIN_RPCS.has(rpc), rpc);
    }
    for (const rpc of ["Range", "Put", "DeleteRange", "Txn", "Watch", "LeaseGrant", "Status", "Authenticate", "UserGet", "RoleGet"]) {
      assert.equal(requiresAdmin(rpc), false, rpc);
    }
    // Even a user allowed every key is not an admin.
    assert.throws(() => f.store.isAdminPermitted(alice()), authErrorOf("PermissionDenied"));
    f.store.isAdminPermitted(root());
  });

  it('bypass 3: a watch on [k, "\\0") needs permission to the end of the keyspace', async () => {
    const { f, alice } = await withAlice(perm(Permission_Type.READ, "a", "b"));
    f.store.checkWatch(alice(), bytes("a"), bytes("b"));
    f.store.checkWatch(alice(), bytes("a"));
    // etcd 3.4 turned "\0" into an open end that compared below every key, so this passed and the
    // watcher saw every key after "a".
    assert.throws(() => f.store.checkWatch(alice(), bytes("a"), bytes("\0")), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.checkWatch(alice(), bytes("a"), new Uint8Array([0])), authErrorOf("PermissionDenied"));
    assert.throws(() => f.store.checkWatch(alice(), bytes(""), bytes("\0")), authErrorOf("PermissionDenied"));
    // The same holds for Range.
    assert.throws(() => f.store.isRangePermitted(alice(), bytes("a"), bytes("\0")), authErrorOf("PermissionDenied"));
    // With a from-key permission, a from-key watch at or after its key is fine.
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "app", perm: perm(Permission_Type.READ, "m", "\0") }));
    f.store.checkWatch(alice(), bytes("m"), bytes("\0"));
    f.store.checkWatch(alice(), bytes("x"), bytes("\0"));
    assert.throws(() => f.store.checkWatch(alice(), bytes("l"), bytes("\0")), authErrorOf("PermissionDenied"));
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  AuthRoleGrantPermissionRequestSchema,
  AuthRoleRevokePermissionRequestSchema,
  AuthUserGrantRoleRequestSchema,
  AuthUserRevokeRoleRequestSchema,
  Permission_Type,
  RoleSchema,
  UserSchema,
} from "@etcd-ts/api";
import { AUTH_BUCKET, AUTH_ENABLED_KEY, AUTH_REVISION_KEY, AUTH_ROLES_BUCKET, AUTH_USERS_BUCKET } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import { AuthStore } from "./auth-store.js";
import { AuthError, isAuthError } from "./errors.js";
import type { AuthRefusalCode } from "./errors.js";
import { authErrorOf, bytes, enableWithRoot, openStoreFixture } from "./testing/store-fixture.js";
import { SimpleTokenProvider } from "./simple-token.js";

const perm = (permType: Permission_Type, key: string, rangeEnd = "") => ({ permType, key: bytes(key), rangeEnd: bytes(rangeEnd) });

describe("AuthStore: refusals carry etcd's messages", () => {
  // The messages etcd 3.4.23 sends, as etcdctl printed them against a real etcd.
  const etcdMessages: Record<AuthRefusalCode, string> = {
    RootUserNotExist: "etcdserver: root user does not exist",
    RootRoleNotExist: "etcdserver: root user does not have root role",
    UserAlreadyExist: "etcdserver: user name already exists",
    UserEmpty: "etcdserver: user name is empty",
    UserNotFound: "etcdserver: user name not found",
    RoleAlreadyExist: "etcdserver: role name already exists",
    RoleNotFound: "etcdserver: role name not found",
    RoleEmpty: "etcdserver: role name is empty",
    AuthFailed: "etcdserver: authentication failed, invalid user ID or password",
    PermissionDenied: "etcdserver: permission denied",
    RoleNotGranted: "etcdserver: role is not granted to the user",
    PermissionNotGranted: "etcdserver: permission is not granted to the role",
    AuthNotEnabled: "etcdserver: authentication is not enabled",
    InvalidAuthToken: "etcdserver: invalid auth token",
    InvalidAuthMgmt: "etcdserver: invalid auth management",
    AuthOldRevision: "etcdserver: revision of auth store is old",
    TooManyRequests: "etcdserver: too many requests",
  };
  for (const [code, message] of Object.entries(etcdMessages) as [AuthRefusalCode, string][]) {
    it(`${code} → "${message}"`, () => {
      const e = new AuthError(code);
      assert.equal(e.name, "AuthError");
      assert.equal(e.code, code);
      assert.equal(e.message, message);
      assert.ok(isAuthError(e, code));
    });
  }

  it("a refusal from another installed copy of the package is recognised by name and code", () => {
    const fromOtherCopy = Object.assign(new Error(etcdMessages.UserNotFound), { name: "AuthError", code: "UserNotFound" });
    assert.ok(isAuthError(fromOtherCopy, "UserNotFound"));
    assert.ok(!isAuthError(fromOtherCopy, "RoleNotFound"));
  });
});

describe("AuthStore: initial state", () => {
  it("a fresh store has the buckets, auth disabled and revision 1 (as etcd's NewAuthStore)", async () => {
    const f = await openStoreFixture();
    assert.deepEqual(f.store.authStatus(), { enabled: false, revision: 1 });
    const buckets = f.backend.view((t) => t.buckets());
    for (const b of [AUTH_BUCKET, AUTH_USERS_BUCKET, AUTH_ROLES_BUCKET]) assert.ok(buckets.includes(b));
    const rev = f.backend.view((t) => t.get(AUTH_BUCKET, AUTH_REVISION_KEY));
    assert.deepEqual(rev, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1]));
    assert.deepEqual(f.store.userList(), []);
    assert.deepEqual(f.store.roleList(), []);
  });

  it("initialize is idempotent and keeps the revision", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.initialize(t));
    assert.equal(f.store.revision, 2);
    assert.deepEqual(f.store.roleList(), ["r"]);
  });
});

describe("AuthStore: AuthEnable / AuthDisable", () => {
  it("refuses to enable without a root user: RootUserNotExist", async () => {
    const f = await openStoreFixture();
    await assert.rejects(
      f.mutate((t) => f.store.authEnable(t)),
      authErrorOf("RootUserNotExist"),
    );
    assert.equal(f.store.enabled, false);
  });

  it("refuses to enable when root lacks the root role: RootRoleNotExist (etcdctl then adds it and retries)", async () => {
    const f = await openStoreFixture();
    await f.addUser("root", "pw");
    await assert.rejects(
      f.mutate((t) => f.store.authEnable(t)),
      authErrorOf("RootRoleNotExist"),
    );
    // etcdctl's recovery: RoleAdd root, UserGrantRole root root, AuthEnable again.
    await f.mutate((t) => f.store.roleAdd(t, "root"));
    await f.mutate((t) => f.store.userGrantRole(t, { user: "root", role: "root" }));
    await f.mutate((t) => f.store.authEnable(t));
    assert.equal(f.store.enabled, true);
  });

  it("enables (flag persisted as one byte 1) without bumping the revision, as etcd 3.4; again is a no-op", async () => {
    const f = await openStoreFixture();
    await f.addUser("root", "pw", ["root"]);
    const before = f.store.revision;
    await f.mutate((t) => f.store.authEnable(t));
    assert.deepEqual(f.store.authStatus(), { enabled: true, revision: before });
    assert.deepEqual(
      f.backend.view((t) => t.get(AUTH_BUCKET, AUTH_ENABLED_KEY)),
      new Uint8Array([1]),
    );
    await f.mutate((t) => f.store.authEnable(t));
    assert.equal(f.store.revision, before);
  });

  it("disables (flag 0), bumps the revision; disabling again is a no-op", async () => {
    const f = await openStoreFixture();
    await enableWithRoot(f);
    const before = f.store.revision;
    await f.mutate((t) => f.store.authDisable(t));
    assert.deepEqual(f.store.authStatus(), { enabled: false, revision: before + 1 });
    assert.deepEqual(
      f.backend.view((t) => t.get(AUTH_BUCKET, AUTH_ENABLED_KEY)),
      new Uint8Array([0]),
    );
    await f.mutate((t) => f.store.authDisable(t));
    assert.equal(f.store.revision, before + 1);
  });

  it("root can be granted the root role before the role exists (etcd allows it), and enable then works", async () => {
    const f = await openStoreFixture();
    await f.addUser("root", "pw", ["root"]);
    assert.deepEqual(f.store.roleList(), []);
    await f.mutate((t) => f.store.authEnable(t));
    assert.equal(f.store.enabled, true);
  });
});

describe("AuthStore: users", () => {
  it("UserAdd stores authpb.User with a bcrypt hash, empty roles and options; bumps the revision", async () => {
    const f = await openStoreFixture();
    await f.addUser("alice", "secret");
    assert.equal(f.store.revision, 2);
    const raw = f.backend.view((t) => t.get(AUTH_USERS_BUCKET, bytes("alice")));
    assert.ok(raw);
    const user = fromBinary(UserSchema, raw);
    assert.equal(new TextDecoder().decode(user.name), "alice");
    assert.match(new TextDecoder().decode(user.password), /^\$2[aby]\$04\$/);
    assert.deepEqual(user.roles, []);
    assert.equal(user.options?.noPassword, false);
  });

  it("UserAdd of a no-password user stores no password", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.userAdd(t, { name: "svc", noPassword: true }));
    const user = f.store.getUser("svc");
    assert.ok(user);
    assert.equal(user.password.length, 0);
    assert.equal(user.options?.noPassword, true);
  });

  it("UserAdd errors: UserEmpty, UserAlreadyExist; refused requests change nothing", async () => {
    const f = await openStoreFixture();
    const hashedPassword = await f.store.preparePassword("x");
    await assert.rejects(
      f.mutate((t) => f.store.userAdd(t, { name: "", hashedPassword })),
      authErrorOf("UserEmpty"),
    );
    await f.mutate((t) => f.store.userAdd(t, { name: "bob", hashedPassword }));
    const rev = f.store.revision;
    await assert.rejects(
      f.mutate((t) => f.store.userAdd(t, { name: "bob", hashedPassword })),
      authErrorOf("UserAlreadyExist"),
    );
    assert.equal(f.store.revision, rev);
  });

  it("UserAdd refuses a password that was not prepared (a clear password never reaches the store)", async () => {
    const f = await openStoreFixture();
    await assert.rejects(
      f.mutate((t) => f.store.userAdd(t, { name: "bob", hashedPassword: "hunter2" })),
      authErrorOf("InvalidAuthMgmt"),
    );
    await assert.rejects(
      f.mutate((t) => f.store.userAdd(t, { name: "bob" })),
      authErrorOf("InvalidAuthMgmt"),
    );
    assert.deepEqual(f.store.userList(), []);
  });

  it("UserGet returns the sorted roles; UserNotFound for an unknown user", async () => {
    const f = await openStoreFixture();
    for (const r of ["zeta", "alpha", "mid"]) await f.mutate((t) => f.store.roleAdd(t, r));
    await f.addUser("u", "p", ["zeta", "alpha", "mid"]);
    assert.deepEqual(f.store.userGet("u"), ["alpha", "mid", "zeta"]);
    assert.throws(() => f.store.userGet("nobody"), authErrorOf("UserNotFound"));
  });

  it("UserList is sorted bytewise", async () => {
    const f = await openStoreFixture();
    for (const n of ["carol", "Bob", "alice", "root", "éric"]) await f.addUser(n, "p");
    assert.deepEqual(f.store.userList(), ["Bob", "alice", "carol", "root", "éric"]);
  });

  it("UserDelete removes the user; UserNotFound; root refused while enabled (InvalidAuthMgmt), allowed when disabled", async () => {
    const f = await openStoreFixture();
    await f.addUser("alice", "p");
    await f.mutate((t) => f.store.userDelete(t, "alice"));
    assert.deepEqual(f.store.userList(), []);
    assert.equal(
      f.backend.view((t) => t.get(AUTH_USERS_BUCKET, bytes("alice"))),
      undefined,
    );
    await assert.rejects(
      f.mutate((t) => f.store.userDelete(t, "alice")),
      authErrorOf("UserNotFound"),
    );
    await enableWithRoot(f);
    await assert.rejects(
      f.mutate((t) => f.store.userDelete(t, "root")),
      authErrorOf("InvalidAuthMgmt"),
    );
    await f.mutate((t) => f.store.authDisable(t));
    await f.mutate((t) => f.store.userDelete(t, "root"));
    assert.deepEqual(f.store.userList(), []);
  });

  it("UserChangePassword replaces the hash, keeps roles and options; UserNotFound", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.addUser("alice", "old", ["r"]);
    const oldHash = f.store.getUser("alice")!.password;
    const hashedPassword = await f.store.preparePassword("new");
    await f.mutate((t) => f.store.userChangePassword(t, { name: "alice", hashedPassword }));
    const user = f.store.getUser("alice")!;
    assert.notDeepEqual(user.password, oldHash);
    assert.deepEqual(user.roles, ["r"]);
    await assert.rejects(
      f.mutate((t) => f.store.userChangePassword(t, { name: "nobody", hashedPassword })),
      authErrorOf("UserNotFound"),
    );
    await assert.rejects(
      f.mutate((t) => f.store.userChangePassword(t, { name: "alice", hashedPassword: "clear" })),
      authErrorOf("InvalidAuthMgmt"),
    );
  });

  it("UserGrantRole: UserNotFound, RoleNotFound; granting twice is a no-op without a revision bump", async () => {
    const f = await openStoreFixture();
    await f.addUser("alice", "p");
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await assert.rejects(
      f.mutate((t) => f.store.userGrantRole(t, { user: "x", role: "r" })),
      authErrorOf("UserNotFound"),
    );
    await assert.rejects(
      f.mutate((t) => f.store.userGrantRole(t, { user: "alice", role: "nope" })),
      authErrorOf("RoleNotFound"),
    );
    await f.mutate((t) => f.store.userGrantRole(t, { user: "alice", role: "r" }));
    const rev = f.store.revision;
    await f.mutate((t) => f.store.userGrantRole(t, { user: "alice", role: "r" }));
    assert.equal(f.store.revision, rev);
    assert.deepEqual(f.store.userGet("alice"), ["r"]);
    assert.equal(f.store.hasRole("alice", "r"), true);
    assert.equal(f.store.hasRole("alice", "q"), false);
  });

  it("UserRevokeRole: UserNotFound, RoleNotGranted; root's root role refused while enabled (InvalidAuthMgmt)", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.addUser("alice", "p", ["r"]);
    await assert.rejects(
      f.mutate((t) => f.store.userRevokeRole(t, { name: "x", role: "r" })),
      authErrorOf("UserNotFound"),
    );
    await f.mutate((t) => f.store.userRevokeRole(t, { name: "alice", role: "r" }));
    assert.deepEqual(f.store.userGet("alice"), []);
    await assert.rejects(
      f.mutate((t) => f.store.userRevokeRole(t, { name: "alice", role: "r" })),
      authErrorOf("RoleNotGranted"),
    );
    await enableWithRoot(f);
    await assert.rejects(
      f.mutate((t) => f.store.userRevokeRole(t, { name: "root", role: "root" })),
      authErrorOf("InvalidAuthMgmt"),
    );
    await f.mutate((t) => f.store.authDisable(t));
    await f.mutate((t) => f.store.userRevokeRole(t, { name: "root", role: "root" }));
    assert.deepEqual(f.store.userGet("root"), []);
  });
});

describe("AuthStore: roles", () => {
  it("RoleAdd: RoleEmpty, RoleAlreadyExist; RoleList sorted; RoleGet RoleNotFound", async () => {
    const f = await openStoreFixture();
    await assert.rejects(
      f.mutate((t) => f.store.roleAdd(t, "")),
      authErrorOf("RoleEmpty"),
    );
    await f.mutate((t) => f.store.roleAdd(t, "b"));
    await f.mutate((t) => f.store.roleAdd(t, "a"));
    await assert.rejects(
      f.mutate((t) => f.store.roleAdd(t, "a")),
      authErrorOf("RoleAlreadyExist"),
    );
    assert.deepEqual(f.store.roleList(), ["a", "b"]);
    assert.deepEqual(f.store.roleGet("a"), []);
    assert.throws(() => f.store.roleGet("zz"), authErrorOf("RoleNotFound"));
    const raw = f.backend.view((t) => t.get(AUTH_ROLES_BUCKET, bytes("a")));
    assert.equal(new TextDecoder().decode(fromBinary(RoleSchema, raw!).name), "a");
  });

  it("RoleDelete revokes the role from every user; RoleNotFound; root refused while enabled", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.roleAdd(t, "keep"));
    await f.addUser("u1", "p", ["r", "keep"]);
    await f.addUser("u2", "p", ["r"]);
    await f.mutate((t) => f.store.roleDelete(t, "r"));
    assert.deepEqual(f.store.roleList(), ["keep"]);
    assert.deepEqual(f.store.userGet("u1"), ["keep"]);
    assert.deepEqual(f.store.userGet("u2"), []);
    assert.deepEqual(
      fromBinary(
        UserSchema,
        f.backend.view((t) => t.get(AUTH_USERS_BUCKET, bytes("u2")))!,
      ).roles,
      [],
    );
    await assert.rejects(
      f.mutate((t) => f.store.roleDelete(t, "r")),
      authErrorOf("RoleNotFound"),
    );
    await f.mutate((t) => f.store.roleAdd(t, "root"));
    await enableWithRoot(f);
    await assert.rejects(
      f.mutate((t) => f.store.roleDelete(t, "root")),
      authErrorOf("InvalidAuthMgmt"),
    );
  });

  it("RoleGrantPermission keeps permissions sorted by key and updates the type of an equal (key, range end)", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READWRITE, "m", "n") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "a") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.WRITE, "z", "\0") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "m", "n") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.WRITE, "m", "p") }));
    const perms = f.store.roleGet("r").map((p) => [p.permType, new TextDecoder().decode(p.key), new TextDecoder().decode(p.rangeEnd)]);
    assert.deepEqual(perms, [
      [Permission_Type.READ, "a", ""],
      [Permission_Type.READ, "m", "n"],
      [Permission_Type.WRITE, "m", "p"],
      [Permission_Type.WRITE, "z", "\0"],
    ]);
    await assert.rejects(
      f.mutate((t) => f.store.roleGrantPermission(t, { name: "nope", perm: perm(Permission_Type.READ, "a") })),
      authErrorOf("RoleNotFound"),
    );
    // The persisted role matches what RoleGet reports.
    const stored = fromBinary(
      RoleSchema,
      f.backend.view((t) => t.get(AUTH_ROLES_BUCKET, bytes("r")))!,
    );
    assert.equal(stored.keyPermission.length, 4);
  });

  it("RoleRevokePermission removes the exact (key, range end); PermissionNotGranted, RoleNotFound", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "a", "b") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "a") }));
    await assert.rejects(
      f.mutate((t) => f.store.roleRevokePermission(t, { role: "r", key: bytes("a"), rangeEnd: bytes("c") })),
      authErrorOf("PermissionNotGranted"),
    );
    await f.mutate((t) => f.store.roleRevokePermission(t, { role: "r", key: bytes("a"), rangeEnd: bytes("b") }));
    assert.equal(f.store.roleGet("r").length, 1);
    await assert.rejects(
      f.mutate((t) => f.store.roleRevokePermission(t, { role: "x", key: bytes("a"), rangeEnd: bytes("") })),
      authErrorOf("RoleNotFound"),
    );
  });
});

describe("AuthStore: revision and persistence", () => {
  it("every change bumps the auth revision by one and persists it (8-byte big-endian)", async () => {
    const f = await openStoreFixture();
    const hashed = await f.store.preparePassword("p");
    const steps: [string, (t: Parameters<Parameters<typeof f.mutate>[0]>[0]) => void][] = [
      ["UserAdd", (t) => f.store.userAdd(t, { name: "root", hashedPassword: hashed })],
      ["RoleAdd", (t) => f.store.roleAdd(t, "r")],
      ["UserGrantRole", (t) => f.store.userGrantRole(t, { user: "root", role: "root" })],
      ["UserGrantRole r", (t) => f.store.userGrantRole(t, { user: "root", role: "r" })],
      ["RoleGrantPermission", (t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "k") })],
      ["RoleRevokePermission", (t) => f.store.roleRevokePermission(t, { role: "r", key: bytes("k"), rangeEnd: bytes("") })],
      ["UserRevokeRole", (t) => f.store.userRevokeRole(t, { name: "root", role: "r" })],
      ["UserChangePassword", (t) => f.store.userChangePassword(t, { name: "root", hashedPassword: hashed })],
      ["RoleDelete", (t) => f.store.roleDelete(t, "r")],
      ["UserAdd x", (t) => f.store.userAdd(t, { name: "x", noPassword: true })],
      ["UserDelete", (t) => f.store.userDelete(t, "x")],
    ];
    for (const [name, step] of steps) {
      const before = f.store.revision;
      await f.mutate(step);
      assert.equal(f.store.revision, before + 1, name);
      const raw = f.backend.view((t) => t.get(AUTH_BUCKET, AUTH_REVISION_KEY))!;
      assert.equal(Number(new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0)), before + 1, name);
    }
  });

  it("a new store over the same backend sees users, roles, permissions, enabled flag and revision", async () => {
    const backend = openMemoryBackend();
    const f = await openStoreFixture({ backend });
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READWRITE, "a", "b") }));
    await f.addUser("alice", "pw", ["r"]);
    await enableWithRoot(f);
    const status = f.store.authStatus();

    const reopened = await openStoreFixture({ backend });
    assert.deepEqual(reopened.store.authStatus(), status);
    assert.deepEqual(reopened.store.userList(), ["alice", "root"]);
    assert.deepEqual(reopened.store.userGet("alice"), ["r"]);
    assert.equal(reopened.store.roleGet("r").length, 1);
    const alice = { username: "alice", revision: reopened.store.revision };
    reopened.store.isPutPermitted(alice, bytes("a1"));
    assert.throws(() => reopened.store.isPutPermitted(alice, bytes("b")), authErrorOf("PermissionDenied"));
    assert.equal(await reopened.store.checkPassword("alice", "pw"), status.revision);
  });

  it("recover reloads after a rolled-back transaction or a restored snapshot", async () => {
    const f = await openStoreFixture();
    await f.addUser("alice", "pw");
    // A transaction that fails after the auth change: the backend rolls it back, the server recovers.
    await assert.rejects(
      f.mutate((t) => {
        f.store.userDelete(t, "alice");
        throw new Error("later step of the same entry failed");
      }),
    );
    f.backend.view((t) => f.store.recover(t));
    assert.deepEqual(f.store.userList(), ["alice"]);
    assert.equal(f.store.revision, 2);
  });

  it("recover of an enabled store enables the token provider; of a disabled one drops tokens", async () => {
    const backend = openMemoryBackend();
    const tokens = new SimpleTokenProvider();
    const f = await openStoreFixture({ backend, tokenProvider: tokens });
    await enableWithRoot(f);
    const other = new AuthStore({ tokenProvider: new SimpleTokenProvider() });
    backend.view((t) => other.recover(t));
    assert.equal(other.enabled, true);
    const token = other.authenticate("root", { simpleTokenPrefix: other.genTokenPrefix(), index: 7 });
    assert.equal(other.authInfoFromToken(token).username, "root");
    await f.mutate((t) => f.store.authDisable(t));
    backend.view((t) => other.recover(t));
    assert.equal(other.enabled, false);
    assert.throws(() => other.authInfoFromToken(token), authErrorOf("InvalidAuthToken"));
  });

  it("a backend without auth buckets recovers as an empty, disabled store", () => {
    const backend = openMemoryBackend();
    const store = new AuthStore({ tokenProvider: new SimpleTokenProvider() });
    backend.view((t) => store.recover(t));
    assert.deepEqual(store.authStatus(), { enabled: false, revision: 0 });
  });
});

describe("AuthStore: etcd's on-disk encoding", () => {
  const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("hex");

  it("users and roles are the bytes etcd's gogoproto writes (so snapshots move both ways)", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READ, "a", "b") }));
    await f.mutate((t) => f.store.roleGrantPermission(t, { name: "r", perm: perm(Permission_Type.READWRITE, "k") }));
    await f.mutate((t) => f.store.userAdd(t, { name: "svc", noPassword: true }));
    await f.mutate((t) => f.store.userGrantRole(t, { user: "svc", role: "r" }));
    // authpb.Role{name:"r", keyPermission:[{READ,"a","b"},{READWRITE,"k"}]}: READ (0) is omitted, as Go does.
    assert.equal(
      hex(f.backend.view((t) => t.get(AUTH_ROLES_BUCKET, bytes("r")))),
      "0a0172" + "1206" + "1201611a0162" + "1205" + "0802" + "12016b",
    );
    // authpb.User{name:"svc", roles:["r"], options:{noPassword:true}}; an empty password is omitted.
    assert.equal(hex(f.backend.view((t) => t.get(AUTH_USERS_BUCKET, bytes("svc")))), "0a03737663" + "1a0172" + "22020801");
  });

  it("reads a user as etcd 3.4 writes it (password bytes = Go bcrypt $2a$ hash)", async () => {
    const f = await openStoreFixture();
    const goHash = "$2a$" + (await f.store.preparePassword("pw")).slice(4);
    const name = bytes("root");
    const pass = bytes(goHash);
    // Hand-marshaled authpb.User{name:"root", password:<hash>, roles:["root"], options:{}}.
    const raw = Buffer.concat([
      Buffer.from([0x0a, name.length]),
      name,
      Buffer.from([0x12, pass.length]),
      pass,
      Buffer.from([0x1a, 4]),
      bytes("root"),
      Buffer.from([0x22, 0]),
    ]);
    await f.mutate((t) => t.put(AUTH_USERS_BUCKET, name, raw));
    await f.mutate((t) => t.put(AUTH_BUCKET, AUTH_ENABLED_KEY, new Uint8Array([1])));
    f.backend.view((t) => f.store.recover(t));
    assert.equal(f.store.enabled, true);
    assert.deepEqual(f.store.userGet("root"), ["root"]);
    assert.equal(await f.store.checkPassword("root", "pw"), f.store.revision);
  });
});

describe("AuthStore: takes the raft entry's request messages as they are", () => {
  it("UserGrantRole, UserRevokeRole, RoleGrantPermission, RoleRevokePermission accept the protobuf requests", async () => {
    const f = await openStoreFixture();
    await f.mutate((t) => f.store.roleAdd(t, "r"));
    await f.addUser("u", "p");
    await f.mutate((t) => f.store.userGrantRole(t, create(AuthUserGrantRoleRequestSchema, { user: "u", role: "r" })));
    await f.mutate((t) =>
      f.store.roleGrantPermission(
        t,
        create(AuthRoleGrantPermissionRequestSchema, { name: "r", perm: { permType: Permission_Type.WRITE, key: bytes("k") } }),
      ),
    );
    assert.equal(f.store.roleGet("r").length, 1);
    await f.mutate((t) => f.store.roleRevokePermission(t, create(AuthRoleRevokePermissionRequestSchema, { role: "r", key: bytes("k") })));
    await f.mutate((t) => f.store.userRevokeRole(t, create(AuthUserRevokeRoleRequestSchema, { name: "u", role: "r" })));
    assert.deepEqual(f.store.userGet("u"), []);
    assert.deepEqual(f.store.roleGet("r"), []);
  });
});

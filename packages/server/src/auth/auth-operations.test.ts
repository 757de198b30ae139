import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescService } from "@bufbuild/protobuf";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  AlarmType,
  Auth,
  AuthEnableRequestSchema,
  AuthRoleAddRequestSchema,
  AuthRoleGrantPermissionRequestSchema,
  AuthUserAddRequestSchema,
  AuthUserGrantRoleRequestSchema,
  AuthenticateRequestSchema,
  GrpcCode,
  KV,
  Maintenance,
  Permission_Type,
  PutRequestSchema,
  StatusRequestSchema,
  grpcServiceDefinition,
  type AlarmResponse,
  type AuthenticateResponse,
  type StatusResponse,
} from "@etcd-ts/api";
import { openMemoryBackend } from "@etcd-ts/storage";
import { Metadata, credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { defaultConfig } from "../config.js";
import { silentLogger } from "../log.js";
import { startMember, type RunningMember } from "../member.js";
import { freePort, teardown } from "@etcd-ts/test-support";

type Unary = (request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response: unknown) => void) => void;

function client(service: DescService, endpoint: string): Client & Record<string, Unary> {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Ctor(endpoint, credentials.createInsecure()) as unknown as Client & Record<string, Unary>;
}

function call<T>(c: Client & Record<string, Unary>, method: string, request: unknown, token?: string): Promise<T> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("token", token);
  return new Promise((resolve, reject) =>
    c[method]!.call(c, request, metadata, (error, response) => (error ? reject(error) : resolve(response as T))),
  );
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * A member with auth on: root (password rootpw) and bob (bobpw, read-write on "a"), as etcdctl sets them
 * up. Proposed directly while auth is still off.
 */
async function authMember(t: TestContext, quotaBackendBytes = 0): Promise<{ member: RunningMember; endpoint: string; port: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-auth-ops-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const peer = `http://127.0.0.1:${await freePort()}`;
  const client = `http://127.0.0.1:${port}`;
  const config = {
    ...defaultConfig("n1"),
    dataDir,
    listenClientUrls: [client],
    advertiseClientUrls: [client],
    listenPeerUrls: [peer],
    initialAdvertisePeerUrls: [peer],
    initialCluster: new Map([["n1", [peer]]]),
    bcryptCost: 4,
    quotaBackendBytes,
  };
  const member = await startMember({ config, backend: openMemoryBackend(), logger: silentLogger });
  teardown(t)(() => member.stop());
  const server = member.server;
  const propose = (request: Parameters<typeof server.proposeRequest>[0]) => server.proposeRequest(request);
  await propose({
    case: "authUserAdd",
    value: create(AuthUserAddRequestSchema, { name: "root", password: await server.auth.preparePassword("rootpw") }),
  });
  await propose({ case: "authUserGrantRole", value: create(AuthUserGrantRoleRequestSchema, { user: "root", role: "root" }) });
  await propose({
    case: "authUserAdd",
    value: create(AuthUserAddRequestSchema, { name: "bob", password: await server.auth.preparePassword("bobpw") }),
  });
  await propose({ case: "authRoleAdd", value: create(AuthRoleAddRequestSchema, { name: "r1" }) });
  await propose({
    case: "authRoleGrantPermission",
    value: create(AuthRoleGrantPermissionRequestSchema, { name: "r1", perm: { permType: Permission_Type.READWRITE, key: utf8("a") } }),
  });
  await propose({ case: "authUserGrantRole", value: create(AuthUserGrantRoleRequestSchema, { user: "bob", role: "r1" }) });
  await propose({ case: "authEnable", value: create(AuthEnableRequestSchema) });
  return { member, endpoint: `127.0.0.1:${port}`, port };
}

async function token(endpoint: string, name: string, password: string): Promise<string> {
  const auth = client(Auth, endpoint);
  try {
    return (await call<AuthenticateResponse>(auth, "Authenticate", create(AuthenticateRequestSchema, { name, password }))).token;
  } finally {
    auth.close();
  }
}

const alarmRequest = (action: AlarmRequest_AlarmAction, memberID = 0n, alarm = AlarmType.NONE) =>
  create(AlarmRequestSchema, { action, memberID, alarm });

test(
  "with auth on, /health is true and /livez and /readyz pass: the probes read as the member, not as a client",
  { timeout: 60_000 },
  async (t) => {
    const { port } = await authMember(t);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { health: "true" });
    for (const probe of ["livez", "readyz"]) {
      const response = await fetch(`http://127.0.0.1:${port}/${probe}?verbose`);
      const body = await response.text();
      assert.equal(response.status, 200, `${probe}: ${body}`);
      assert.match(body, new RegExp(`${probe} check passed`));
    }
  },
);

test(
  "with auth on, a write over the quota raises NOSPACE (the member's own proposal), which Status and Alarm show; only root clears it",
  { timeout: 60_000 },
  async (t) => {
    const { member, endpoint, port } = await authMember(t, 64 * 1024);
    const root = await token(endpoint, "root", "rootpw");
    const bob = await token(endpoint, "bob", "bobpw");
    const kv = client(KV, endpoint);
    const maintenance = client(Maintenance, endpoint);
    teardown(t)(() => {
      kv.close();
      maintenance.close();
    });
    const memberID = member.server.memberId;

    await assert.rejects(
      call(kv, "Put", create(PutRequestSchema, { key: utf8("a"), value: new Uint8Array(100 * 1024) }), bob),
      (e: ServiceError) => {
        assert.equal(e.code, GrpcCode.RESOURCE_EXHAUSTED);
        assert.equal(e.details, "etcdserver: mvcc: database space exceeded");
        return true;
      },
    );
    // Raised through the log; wait (bounded) until it is applied.
    for (let i = 0; i < 100 && !member.server.alarms.isActive(AlarmType.NOSPACE); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(member.server.alarms.isActive(AlarmType.NOSPACE), "NOSPACE is raised");

    const status = await call<StatusResponse>(maintenance, "Status", create(StatusRequestSchema), bob);
    assert.deepEqual(status.errors, [`memberID:${memberID} alarm:NOSPACE `]);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.deepEqual(await health.json(), { health: "false" }, "etcd: unhealthy while an alarm is raised");

    // Listing: anyone, as etcd 3.4 (root, another user, no token at all).
    for (const who of [root, bob, undefined]) {
      const listed = await call<AlarmResponse>(maintenance, "Alarm", alarmRequest(AlarmRequest_AlarmAction.GET), who);
      assert.deepEqual(
        listed.alarms.map((a) => [a.memberID, a.alarm]),
        [[memberID, AlarmType.NOSPACE]],
      );
    }
    // Clearing and raising: root only.
    for (const who of [bob, undefined]) {
      await assert.rejects(
        call(maintenance, "Alarm", alarmRequest(AlarmRequest_AlarmAction.DEACTIVATE, memberID, AlarmType.NOSPACE), who),
        (e: ServiceError) => {
          assert.equal(e.code, who === undefined ? GrpcCode.INVALID_ARGUMENT : GrpcCode.PERMISSION_DENIED);
          assert.equal(e.details, who === undefined ? "etcdserver: user name is empty" : "etcdserver: permission denied");
          return true;
        },
      );
      await assert.rejects(call(maintenance, "Alarm", alarmRequest(AlarmRequest_AlarmAction.ACTIVATE, memberID, AlarmType.CORRUPT), who));
    }
    assert.equal(member.server.alarms.isActive(AlarmType.CORRUPT), false);
    const cleared = await call<AlarmResponse>(
      maintenance,
      "Alarm",
      alarmRequest(AlarmRequest_AlarmAction.DEACTIVATE, memberID, AlarmType.NOSPACE),
      root,
    );
    assert.deepEqual(
      cleared.alarms.map((a) => a.alarm),
      [AlarmType.NOSPACE],
    );
    const none = await call<AlarmResponse>(maintenance, "Alarm", alarmRequest(AlarmRequest_AlarmAction.GET), root);
    assert.deepEqual(none.alarms, []);
    assert.deepEqual((await call<StatusResponse>(maintenance, "Status", create(StatusRequestSchema), root)).errors, []);
  },
);

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Auth,
  AuthEnableRequestSchema,
  AuthUserAddRequestSchema,
  AuthUserChangePasswordRequestSchema,
  AuthUserGrantRoleRequestSchema,
  AuthenticateRequestSchema,
  KV,
  PutRequestSchema,
  RangeRequestSchema,
  grpcServiceDefinition,
} from "@etcd-ts/api";
import { sharedBcryptPool } from "@etcd-ts/auth";
import { openMemoryBackend } from "@etcd-ts/storage";
import { Metadata, credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { defaultConfig } from "../config.js";
import { startMember, type RunningMember } from "../member.js";
import { freePort } from "@etcd-ts/test-support";

type UnaryClient = Client &
  Record<string, (request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response: unknown) => void) => void>;

function call<Res>(client: UnaryClient, method: string, request: unknown, token?: string): Promise<Res> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("token", token);
  return new Promise((resolve, reject) => {
    client[method]!.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response as Res)));
  });
}

const bytes = (s: string) => new TextEncoder().encode(s);
const put = (key: string) => create(PutRequestSchema, { key: bytes(key), value: bytes("v") });
const login = (name: string, password: string) => create(AuthenticateRequestSchema, { name, password });

/**
 * A member with auth on, driven over gRPC the way a hostile client would: forged simple tokens and a
 * flood of wrong passwords must neither hold memory nor stall the member.
 */
describe("auth under abuse (one member, simple tokens)", () => {
  let member: RunningMember;
  let dataDir: string;
  let kv: UnaryClient;
  let auth: UnaryClient;
  let rootToken: string;
  let clientPort: number;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "etcd-ts-auth-abuse-"));
    clientPort = await freePort();
    const peerPort = await freePort();
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    member = await startMember({
      config: {
        ...defaultConfig("abuse"),
        dataDir,
        listenClientUrls: [clientUrl],
        advertiseClientUrls: [clientUrl],
        listenPeerUrls: [peerUrl],
        initialAdvertisePeerUrls: [peerUrl],
        initialCluster: new Map([["abuse", [peerUrl]]]),
        logLevel: "error",
        bcryptCost: 10,
      },
      backend: openMemoryBackend(),
    });
    const client = (service: typeof KV | typeof Auth) =>
      new (makeGenericClientConstructor(grpcServiceDefinition(service), service.name))(
        `127.0.0.1:${clientPort}`,
        credentials.createInsecure(),
      ) as unknown as UnaryClient;
    kv = client(KV);
    auth = client(Auth);
    await call(auth, "UserAdd", create(AuthUserAddRequestSchema, { name: "root", password: "rootpw" }));
    await call(auth, "UserGrantRole", create(AuthUserGrantRoleRequestSchema, { user: "root", role: "root" }));
    await call(auth, "AuthEnable", create(AuthEnableRequestSchema));
    rootToken = (await call<{ token: string }>(auth, "Authenticate", login("root", "rootpw"))).token;
  });

  after(async () => {
    kv?.close();
    auth?.close();
    await member?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("forged simple tokens are refused with 'invalid auth token' and leave no waiter behind", async () => {
    const applied = Number(member.server.status().raftAppliedIndex);
    const [realPrefix] = rootToken.split(".");
    const range = (token: string) => call(kv, "Range", create(RangeRequestSchema, { key: bytes("k") }), token);
    const expectInvalid = (answers: PromiseSettledResult<unknown>[]) => {
      for (const answer of answers) {
        assert.equal(answer.status, "rejected");
        const error = answer.reason as ServiceError;
        assert.equal(error.code, 16, error.message);
        assert.equal(error.details, "etcdserver: invalid auth token");
      }
    };
    let maxWaiters = 0;
    const sampler = setInterval(() => (maxWaiters = Math.max(maxWaiters, member.server.pendingWaiters().appliedIndex)), 1);
    try {
      // Far beyond the log, or naming an applied entry: refused without a wait.
      const far = [
        `xxxxxxxxxxxxxxxx.${applied + 1_000_000_000}`,
        `${realPrefix}.${Number.MAX_SAFE_INTEGER}`,
        `xxxxxxxxxxxxxxxx.${applied}`,
        `short.${applied + 5}`,
      ];
      expectInvalid(await Promise.allSettled(Array.from({ length: 400 }, (_, i) => range(far[i % far.length]!))));
      assert.equal(maxWaiters, 0, "no call waited");
      // Just past the log: a short grace (the entry could be on its way), with a bound on such waits.
      expectInvalid(await Promise.allSettled(Array.from({ length: 1500 }, (_, i) => range(`${realPrefix}.${applied + 1 + (i % 5)}`))));
      assert.ok(maxWaiters > 0 && maxWaiters <= 1000, `${maxWaiters} waiters at most`);
    } finally {
      clearInterval(sampler);
    }
    assert.deepEqual(member.server.pendingWaiters(), { proposals: 0, appliedIndex: 0 });
    const metrics = await (await fetch(`http://127.0.0.1:${clientPort}/metrics`)).text();
    assert.match(metrics, /^etcd_ts_server_applied_index_waiters 0$/m);
    assert.match(metrics, /^etcd_ts_server_proposal_waiters 0$/m);
    // The real token still works.
    await call(kv, "Put", put("k"), rootToken);
  });

  it("UserAdd and UserChangePassword from a non-root caller are refused before any bcrypt work", async (t) => {
    const pool = sharedBcryptPool();
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be put back as it was
    const hash = pool.hash;
    let hashes = 0;
    pool.hash = (password, cost) => {
      hashes++;
      return hash.call(pool, password, cost);
    };
    t.after(() => (pool.hash = hash));
    for (const [method, request] of [
      ["UserAdd", create(AuthUserAddRequestSchema, { name: "eve", password: "x".repeat(70) })],
      ["UserChangePassword", create(AuthUserChangePasswordRequestSchema, { name: "root", password: "x" })],
    ] as const) {
      const error = (await call(auth, method, request).then(
        () => undefined,
        (e: unknown) => e,
      )) as ServiceError | undefined;
      // etcd 3.4's answer without a token (etcdctl without --user).
      assert.equal(error?.code, 3, method);
      assert.equal(error?.details, "etcdserver: user name is empty", method);
    }
    assert.equal(hashes, 0);
    await call(auth, "UserAdd", create(AuthUserAddRequestSchema, { name: "eve", password: "pw" }), rootToken);
    assert.equal(hashes, 1);
  });

  it("a flood of wrong passwords neither blocks the event loop nor keeps root's writes waiting", async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await new Promise((resolve) => setTimeout(resolve, 50));
    let stop = false;
    const flood = (async () => {
      const failures: string[] = [];
      // 200 wrong-password Authenticate calls, 50 at a time.
      for (let round = 0; round < 4 && !stop; round++) {
        const answers = await Promise.allSettled(Array.from({ length: 50 }, () => call(auth, "Authenticate", login("root", "guess"))));
        for (const a of answers) {
          const error = a.status === "rejected" ? (a.reason as ServiceError) : undefined;
          failures.push(error === undefined ? "accepted" : `${error.code} ${error.details}`);
        }
      }
      return failures;
    })();
    try {
      for (let i = 0; i < 5; i++) await call(kv, "Put", put(`during-${i}`), rootToken);
    } finally {
      stop = true;
    }
    const failures = await flood;
    await new Promise((resolve) => setTimeout(resolve, 30));
    delay.disable();
    // Every guess gets etcd's answer to a wrong password, whether bcrypt ran or the limit refused it.
    assert.ok(failures.length > 0);
    assert.deepEqual([...new Set(failures)], ["3 etcdserver: authentication failed, invalid user ID or password"]);
    assert.ok(delay.count > 0);
    const maxMs = delay.max / 1e6;
    assert.ok(maxMs < 1000, `the event loop was blocked for ${maxMs.toFixed(0)} ms`);
  });
});

describe("simple tokens across members", () => {
  it(
    "a token issued through one member is accepted at once by the others (waiting for its entry when their log holds it)",
    { timeout: 120_000 },
    async (t) => {
      const names = ["a", "b", "c"];
      const ports = await Promise.all(names.flatMap(() => [freePort(), freePort()]));
      const peerUrl = (i: number) => `http://127.0.0.1:${ports[2 * i + 1]}`;
      const clientUrl = (i: number) => `http://127.0.0.1:${ports[2 * i]}`;
      const initialCluster = new Map(names.map((n, i) => [n, [peerUrl(i)]]));
      const dirs = await Promise.all(names.map((n) => mkdtemp(join(tmpdir(), `etcd-ts-auth-${n}-`))));
      const members = await Promise.all(
        names.map((name, i) =>
          startMember({
            config: {
              ...defaultConfig(name),
              dataDir: dirs[i]!,
              listenClientUrls: [clientUrl(i)],
              advertiseClientUrls: [clientUrl(i)],
              listenPeerUrls: [peerUrl(i)],
              initialAdvertisePeerUrls: [peerUrl(i)],
              initialCluster,
              logLevel: "error",
              bcryptCost: 4,
            },
            backend: openMemoryBackend(),
          }),
        ),
      );
      const clients = names.map((_, i) => ({
        kv: new (makeGenericClientConstructor(grpcServiceDefinition(KV), KV.name))(
          clientUrl(i).slice(7),
          credentials.createInsecure(),
        ) as unknown as UnaryClient,
        auth: new (makeGenericClientConstructor(grpcServiceDefinition(Auth), Auth.name))(
          clientUrl(i).slice(7),
          credentials.createInsecure(),
        ) as unknown as UnaryClient,
      }));
      t.after(async () => {
        for (const c of clients) {
          c.kv.close();
          c.auth.close();
        }
        await Promise.all(members.map((m) => m.stop()));
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
      });
      const leader = members.findIndex((m) => m.server.isLeader());
      const at = leader >= 0 ? leader : 0;
      await call(clients[at]!.auth, "UserAdd", create(AuthUserAddRequestSchema, { name: "root", password: "rootpw" }));
      await call(clients[at]!.auth, "UserGrantRole", create(AuthUserGrantRoleRequestSchema, { user: "root", role: "root" }));
      await call(clients[at]!.auth, "AuthEnable", create(AuthEnableRequestSchema));
      for (let round = 0; round < 15; round++) {
        const via = round % 3;
        const { token } = await call<{ token: string }>(clients[via]!.auth, "Authenticate", login("root", "rootpw"));
        // Straight away on every other member: it may not have applied the entry yet.
        await Promise.all(
          clients.map((c, i) => (i === via ? Promise.resolve(undefined) : call(c.kv, "Put", put(`from-${via}-on-${i}`), token))),
        );
      }
      for (const m of members) assert.equal(m.server.pendingWaiters().appliedIndex, 0);
    },
  );
});

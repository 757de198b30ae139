import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Auth,
  AuthEnableRequestSchema,
  AuthUserAddRequestSchema,
  AuthUserGrantRoleRequestSchema,
  AuthenticateRequestSchema,
  grpcServiceDefinition,
} from "@etcd-ts/api";
import { SimpleTokenProvider } from "@etcd-ts/auth";
import { openMemoryBackend } from "@etcd-ts/storage";
import { Metadata, credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { defaultConfig } from "../config.js";
import { startMember, type RunningMember } from "../member.js";
import { freePort } from "@etcd-ts/test-support";

type UnaryClient = Client &
  Record<string, (request: unknown, metadata: Metadata, callback: (error: ServiceError | null, response: unknown) => void) => void>;

function call<Res>(client: UnaryClient, method: string, request: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    client[method]!.call(client, request, new Metadata(), (error, response) => (error ? reject(error) : resolve(response as Res)));
  });
}

/**
 * Simple tokens live in each member's memory for `--auth-token-ttl`; one that nobody uses again must be
 * freed when its TTL ends, as etcd's token keeper frees it, not kept until some later Authenticate.
 */
describe("simple tokens expire in memory (one member, --auth-token-ttl 1)", () => {
  let member: RunningMember;
  let dataDir: string;
  let auth: UnaryClient;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "etcd-ts-token-expiry-"));
    const clientPort = await freePort();
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    member = await startMember({
      config: {
        ...defaultConfig("expiry"),
        dataDir,
        listenClientUrls: [clientUrl],
        advertiseClientUrls: [clientUrl],
        listenPeerUrls: [peerUrl],
        initialAdvertisePeerUrls: [peerUrl],
        initialCluster: new Map([["expiry", [peerUrl]]]),
        logLevel: "error",
        bcryptCost: 4,
        authTokenTtl: 1,
      },
      backend: openMemoryBackend(),
    });
    auth = new (makeGenericClientConstructor(grpcServiceDefinition(Auth), "Auth"))(
      clientUrl.slice("http://".length),
      credentials.createInsecure(),
    ) as unknown as UnaryClient;
    await call(auth, "UserAdd", create(AuthUserAddRequestSchema, { name: "root", password: "rootpw" }));
    await call(auth, "UserGrantRole", create(AuthUserGrantRoleRequestSchema, { user: "root", role: "root" }));
    await call(auth, "AuthEnable", create(AuthEnableRequestSchema));
  });

  after(async () => {
    auth?.close();
    await member?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("tokens nobody uses again are dropped after the TTL without another Authenticate", async () => {
    const provider = member.server.auth.tokenProvider;
    assert.ok(provider instanceof SimpleTokenProvider);
    for (let i = 0; i < 3; i++) await call(auth, "Authenticate", create(AuthenticateRequestSchema, { name: "root", password: "rootpw" }));
    assert.equal(provider.size, 3);
    // TTL 1 s: allow a shared, slow machine plenty of time; only the outcome is asserted.
    const deadline = Date.now() + 15_000;
    while (provider.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(provider.size, 0, "expired tokens still held");
  });
});

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  Auth,
  Watch,
  AuthenticateRequestSchema,
  WatchRequestSchema,
  WatchCreateRequestSchema,
  grpcServiceDefinition,
  type AuthenticateResponse,
  type WatchResponse,
} from "@etcd-ts/api";
import { Metadata, credentials, makeGenericClientConstructor, type ClientDuplexStream } from "@grpc/grpc-js";
import { call, makeClient } from "./grpc-client.js";
import { etcdctl, removeDir } from "@etcd-ts/test-support";
import { startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * A watch create refused for auth reasons is answered created+canceled with the gRPC status error's Go
 * text in `cancel_reason` (etcd 3.4.23's serverWatchStream: rpctypes.ErrGRPC….Error()), the same on
 * etcd-ts as on etcd.
 */
describe("watch creates refused by auth: cancel reasons as etcd 3.4 gives them", () => {
  const servers: { name: string; server: ServerProcess }[] = [];

  before(async () => {
    const [ours, ref] = await Promise.all([startEtcdTs(), startRealEtcd()]);
    servers.push({ name: "etcd-ts", server: ours }, { name: "etcd", server: ref });
    for (const { name, server } of servers) {
      const run = (args: string[], input?: string) => {
        const r = etcdctl(server.endpoint, args, input);
        assert.equal(r.code, 0, `${name}: etcdctl ${args.join(" ")}: ${r.stderr}`);
      };
      run(["user", "add", "root", "--new-user-password=rootpw"]);
      run(["user", "add", "alice", "--new-user-password=alicepw"]);
      run(["role", "add", "reader"]);
      run(["role", "grant-permission", "reader", "read", "a/", "--prefix=true"]);
      run(["user", "grant-role", "alice", "reader"]);
      run(["auth", "enable"]);
    }
  });
  after(async () => {
    for (const { server } of servers) {
      await server.stop();
      removeDir(server.dataDir);
    }
  });

  async function token(server: ServerProcess, name: string, password: string): Promise<string> {
    const client = makeClient(Auth, server.endpoint);
    try {
      const r = await call<AuthenticateResponse>(client, "Authenticate", create(AuthenticateRequestSchema, { name, password }));
      return r.token;
    } finally {
      client.close();
    }
  }

  /** The first response to one watch create sent with `token` (none: no token metadata). */
  async function firstResponse(server: ServerProcess, key: string, tokenValue: string | undefined): Promise<WatchResponse> {
    const Ctor = makeGenericClientConstructor(grpcServiceDefinition(Watch), "Watch");
    const client = new Ctor(server.endpoint, credentials.createInsecure()) as unknown as {
      Watch: (metadata: Metadata) => ClientDuplexStream<unknown, WatchResponse>;
      close(): void;
    };
    const metadata = new Metadata();
    if (tokenValue !== undefined) metadata.set("token", tokenValue);
    const stream = client.Watch(metadata);
    try {
      return await new Promise<WatchResponse>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no watch response within 10 s")), 10_000);
        stream.on("data", (r: WatchResponse) => {
          clearTimeout(timer);
          resolve(r);
        });
        stream.on("error", (e: Error) => {
          clearTimeout(timer);
          reject(e);
        });
        stream.write(
          create(WatchRequestSchema, {
            requestUnion: { case: "createRequest", value: create(WatchCreateRequestSchema, { key: Buffer.from(key) }) },
          }),
        );
      });
    } finally {
      stream.cancel();
      client.close();
    }
  }

  async function outcome(server: ServerProcess, key: string, tokenValue: string | undefined): Promise<string> {
    const r = await firstResponse(server, key, tokenValue);
    return JSON.stringify({ created: r.created, canceled: r.canceled, cancelReason: r.cancelReason });
  }

  const cases: { what: string; key: string; token: (server: ServerProcess) => Promise<string | undefined>; expected: string }[] = [
    {
      what: "an invalid token",
      key: "a/1",
      // An index already applied: etcd waits for a simple token's index to be applied before it looks it up.
      token: () => Promise.resolve("not-a-token.1"),
      expected: "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token",
    },
    {
      what: "no token",
      key: "a/1",
      token: () => Promise.resolve(undefined),
      expected: "rpc error: code = InvalidArgument desc = etcdserver: user name is empty",
    },
    {
      what: "a user without read permission on the key",
      key: "b/1",
      token: (server) => token(server, "alice", "alicepw"),
      expected: "rpc error: code = PermissionDenied desc = etcdserver: permission denied",
    },
    {
      what: "a user with read permission on the key",
      key: "a/1",
      token: (server) => token(server, "alice", "alicepw"),
      expected: "",
    },
  ];

  for (const c of cases) {
    test(`${c.what}: ${c.expected || "created"}`, async () => {
      const seen: Record<string, string> = {};
      for (const { name, server } of servers) {
        seen[name] = await outcome(server, c.key, await c.token(server)).catch((e: unknown) => (e as Error).message);
      }
      const want = JSON.stringify({ created: true, canceled: c.expected !== "", cancelReason: c.expected });
      assert.deepEqual(seen, { "etcd-ts": want, etcd: want });
    });
  }
});

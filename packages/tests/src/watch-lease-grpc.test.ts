import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  Lease,
  Watch,
  KV,
  PutRequestSchema,
  DeleteRangeRequestSchema,
  WatchRequestSchema,
  WatchCreateRequestSchema,
  WatchCancelRequestSchema,
  WatchProgressRequestSchema,
  LeaseGrantRequestSchema,
  LeaseKeepAliveRequestSchema,
  LeaseTimeToLiveRequestSchema,
  grpcServiceDefinition,
  type PutResponse,
  type WatchResponse,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseTimeToLiveResponse,
} from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type ClientDuplexStream } from "@grpc/grpc-js";
import { call, makeClient, type UnaryClient } from "./grpc-client.js";
import { startEtcdTs, type ServerProcess } from "./processes.js";

/** What etcdctl does not expose of Watch and Lease, spoken directly with grpc-js. */
describe("Watch and Lease over grpc-js", () => {
  let server: ServerProcess;
  let kv: UnaryClient;
  before(async () => {
    server = await startEtcdTs({ extraArgs: ["--max-request-bytes", "4096"] });
    kv = makeClient(KV, server.endpoint);
  });
  after(async () => {
    kv?.close();
    await server?.stop();
  });

  const put = (k: string, v: string) =>
    call<PutResponse>(kv, "Put", create(PutRequestSchema, { key: Buffer.from(k), value: Buffer.from(v) }));

  function openWatch(): { stream: ClientDuplexStream<unknown, WatchResponse>; next: () => Promise<WatchResponse>; close: () => void } {
    const Ctor = makeGenericClientConstructor(grpcServiceDefinition(Watch), "Watch");
    const client = new Ctor(server.endpoint, credentials.createInsecure()) as unknown as {
      Watch: () => ClientDuplexStream<unknown, WatchResponse>;
      close(): void;
    };
    const stream = client.Watch();
    const queue: WatchResponse[] = [];
    const waiters: ((r: WatchResponse) => void)[] = [];
    stream.on("data", (r: WatchResponse) => {
      const w = waiters.shift();
      if (w) w(r);
      else queue.push(r);
    });
    stream.on("error", () => undefined);
    const next = () =>
      new Promise<WatchResponse>((resolve, reject) => {
        const r = queue.shift();
        if (r) {
          resolve(r);
          return;
        }
        const timer = setTimeout(() => reject(new Error("no watch response within 5 s")), 5000);
        waiters.push((x) => {
          clearTimeout(timer);
          resolve(x);
        });
      });
    return {
      stream,
      next,
      close: () => {
        stream.cancel();
        client.close();
      },
    };
  }

  const createReq = (init: Record<string, unknown>) =>
    create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: create(WatchCreateRequestSchema, init) } });

  test("several watchers on one stream, server-assigned and client-chosen IDs, a duplicate refused", async () => {
    const w = openWatch();
    try {
      w.stream.write(createReq({ key: Buffer.from("multi/a") }));
      const a = await w.next();
      assert.equal(a.created, true);
      assert.equal(a.watchId, 0n);
      w.stream.write(createReq({ key: Buffer.from("multi/"), rangeEnd: Buffer.from("multi0"), watchId: 42n }));
      const b = await w.next();
      assert.equal(b.created, true);
      assert.equal(b.watchId, 42n);
      w.stream.write(createReq({ key: Buffer.from("multi/x"), watchId: 42n }));
      const dup = await w.next();
      assert.equal(dup.created, true);
      assert.equal(dup.canceled, true);
      assert.equal(dup.watchId, -1n);
      assert.equal(dup.cancelReason, "mvcc: duplicate watch ID provided on the WatchStream");
      const p = await put("multi/a", "1");
      const got = [await w.next(), await w.next()].sort((x, y) => Number(x.watchId - y.watchId));
      assert.deepEqual(
        got.map((r) => r.watchId),
        [0n, 42n],
      );
      for (const r of got) {
        assert.equal(r.header!.revision, p.header!.revision);
        assert.equal(Buffer.from(r.events[0]!.kv!.value).toString(), "1");
      }
      w.stream.write(
        create(WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: create(WatchCancelRequestSchema, { watchId: 0n }) } }),
      );
      const canceled = await w.next();
      assert.equal(canceled.canceled, true);
      assert.equal(canceled.watchId, 0n);
      await put("multi/a", "2");
      const only = await w.next();
      assert.equal(only.watchId, 42n, "the canceled watcher gets nothing more");
    } finally {
      w.close();
    }
  });

  test("a progress request is answered with watch ID -1 at the current revision", async () => {
    const w = openWatch();
    try {
      w.stream.write(createReq({ key: Buffer.from("progress/k") }));
      await w.next();
      const p = await put("other", "x");
      w.stream.write(
        create(WatchRequestSchema, { requestUnion: { case: "progressRequest", value: create(WatchProgressRequestSchema, {}) } }),
      );
      const r = await w.next();
      assert.equal(r.watchId, -1n);
      assert.equal(r.events.length, 0);
      assert.equal(r.header!.revision, p.header!.revision);
    } finally {
      w.close();
    }
  });

  test("fragment: a revision larger than the response limit arrives in parts, all but the last marked", async () => {
    // --max-request-bytes 4096 above: one watch response may hold that plus gRPC's 512 KiB overhead. A
    // delete of 200 keys of 3000 bytes, watched with prev_kv, makes one revision of ~600 KB.
    const value = "v".repeat(3000);
    for (let i = 0; i < 200; i++) await put(`frag/${String(i).padStart(3, "0")}`, value);
    const w = openWatch();
    try {
      w.stream.write(createReq({ key: Buffer.from("frag/"), rangeEnd: Buffer.from("frag0"), fragment: true, prevKv: true }));
      await w.next();
      const del = await call<PutResponse>(
        kv,
        "DeleteRange",
        create(DeleteRangeRequestSchema, { key: Buffer.from("frag/"), rangeEnd: Buffer.from("frag0") }),
      );
      const parts: WatchResponse[] = [];
      let events = 0;
      while (events < 200) {
        const r = await w.next();
        parts.push(r);
        events += r.events.length;
      }
      assert.equal(events, 200);
      assert.ok(parts.length >= 2, `expected fragments, got ${parts.length} response(s)`);
      assert.deepEqual(
        parts.map((r) => r.fragment),
        [...parts.slice(1).map(() => true), false],
      );
      for (const r of parts) assert.equal(r.header!.revision, del.header!.revision);
    } finally {
      w.close();
    }
  });

  test("lease grant with a chosen ID, keep-alive stream, time-to-live with keys", async () => {
    const lease = makeClient(Lease, server.endpoint);
    try {
      const g = await call<LeaseGrantResponse>(lease, "LeaseGrant", create(LeaseGrantRequestSchema, { ID: 0x1234n, TTL: 30n }));
      assert.equal(g.ID, 0x1234n);
      assert.equal(g.TTL, 30n);
      await call(kv, "Put", create(PutRequestSchema, { key: Buffer.from("leased"), value: Buffer.from("v"), lease: 0x1234n }));
      const ttl = await call<LeaseTimeToLiveResponse>(
        lease,
        "LeaseTimeToLive",
        create(LeaseTimeToLiveRequestSchema, { ID: 0x1234n, keys: true }),
      );
      assert.equal(ttl.grantedTTL, 30n);
      assert.deepEqual(
        ttl.keys.map((k) => Buffer.from(k).toString()),
        ["leased"],
      );
      const Ctor = makeGenericClientConstructor(grpcServiceDefinition(Lease), "Lease");
      const raw = new Ctor(server.endpoint, credentials.createInsecure()) as unknown as {
        LeaseKeepAlive: () => ClientDuplexStream<unknown, LeaseKeepAliveResponse>;
        close(): void;
      };
      const ka = raw.LeaseKeepAlive();
      const answers: LeaseKeepAliveResponse[] = [];
      const done = new Promise<void>((resolve) => ka.on("data", (r: LeaseKeepAliveResponse) => answers.push(r) === 2 && resolve()));
      ka.write(create(LeaseKeepAliveRequestSchema, { ID: 0x1234n }));
      ka.write(create(LeaseKeepAliveRequestSchema, { ID: 0x9999n }));
      await done;
      ka.end();
      raw.close();
      assert.equal(answers[0]!.ID, 0x1234n);
      assert.equal(answers[0]!.TTL, 30n);
      assert.equal(answers[1]!.ID, 0x9999n);
      assert.equal(answers[1]!.TTL, 0n, "an unknown lease answers TTL 0");
      const unknown = await call<LeaseTimeToLiveResponse>(lease, "LeaseTimeToLive", create(LeaseTimeToLiveRequestSchema, { ID: 0x9999n }));
      assert.equal(unknown.TTL, -1n);
    } finally {
      lease.close();
    }
  });
});

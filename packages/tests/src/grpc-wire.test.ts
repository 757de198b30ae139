import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  PutRequestSchema,
  RangeRequestSchema,
  CompactionRequestSchema,
  TxnRequestSchema,
  RequestOpSchema,
  type PutResponse,
  type RangeResponse,
  type StatusResponse,
  type MemberListResponse,
} from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, status, type ServiceError } from "@grpc/grpc-js";
import { call, makeClient, services, type UnaryClient } from "./grpc-client.js";
import { startEtcdTs, type ServerProcess } from "./processes.js";

/** The wire API spoken directly with grpc-js: what etcdctl does not expose, and bad input. */
describe("gRPC wire API", () => {
  let server: ServerProcess;
  let kv: UnaryClient;
  before(async () => {
    server = await startEtcdTs();
    kv = makeClient(services.KV, server.endpoint);
  });
  after(async () => {
    kv?.close();
    await server?.stop();
  });

  const bytes = (s: string) => Buffer.from(s);
  const rejects = async (p: Promise<unknown>, code: number, message: string) => {
    const error = (await p.then(
      () => assert.fail("expected an error"),
      (e: unknown) => e,
    )) as ServiceError;
    assert.equal(error.code, code, `code of: ${error.details}`);
    assert.equal(error.details, message);
  };

  test("every response carries the header: cluster, member, revision, term", async () => {
    const put = await call<PutResponse>(kv, "Put", create(PutRequestSchema, { key: bytes("h"), value: bytes("1") }));
    const h = put.header!;
    assert.ok(h.clusterId > 0n && h.memberId > 0n && h.raftTerm > 0n);
    const maintenance = makeClient(services.Maintenance, server.endpoint);
    const st = await call<StatusResponse>(maintenance, "Status", {});
    maintenance.close();
    assert.equal(st.header!.memberId, h.memberId);
    assert.equal(st.leader, h.memberId);
    assert.equal(st.header!.revision, h.revision);
    const cluster = makeClient(services.Cluster, server.endpoint);
    const ml = await call<MemberListResponse>(cluster, "MemberList", {});
    cluster.close();
    assert.equal(ml.members.length, 1);
    assert.equal(ml.members[0]!.ID, h.memberId);
    assert.deepEqual(ml.members[0]!.clientURLs, [`http://${server.endpoint}`]);
  });

  test("etcd's errors: empty key, too many ops, duplicate key, oversize request", async () => {
    await rejects(
      call(kv, "Put", create(PutRequestSchema, { value: bytes("v") })),
      status.INVALID_ARGUMENT,
      "etcdserver: key is not provided",
    );
    await rejects(call(kv, "Range", create(RangeRequestSchema, {})), status.INVALID_ARGUMENT, "etcdserver: key is not provided");
    const put = (k: string) =>
      create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key: bytes(k), value: bytes("v") }) } });
    const many = Array.from({ length: 129 }, (_, i) => put(`op${i}`));
    await rejects(
      call(kv, "Txn", create(TxnRequestSchema, { success: many })),
      status.INVALID_ARGUMENT,
      "etcdserver: too many operations in txn request",
    );
    await rejects(
      call(kv, "Txn", create(TxnRequestSchema, { success: [put("d"), put("d")] })),
      status.INVALID_ARGUMENT,
      "etcdserver: duplicate key given in txn request",
    );
    const big = Buffer.alloc(1.6 * 1024 * 1024, 0x61);
    await rejects(
      call(kv, "Put", create(PutRequestSchema, { key: bytes("big"), value: big })),
      status.INVALID_ARGUMENT,
      "etcdserver: request is too large",
    );
    // nothing of the rejected requests was written
    const r = await call<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: bytes("big") }));
    assert.equal(r.kvs.length, 0);
  });

  test("compacted and future revisions", async () => {
    await call(kv, "Put", create(PutRequestSchema, { key: bytes("c"), value: bytes("1") }));
    const p2 = await call<PutResponse>(kv, "Put", create(PutRequestSchema, { key: bytes("c"), value: bytes("2") }));
    const rev = p2.header!.revision;
    await rejects(
      call(kv, "Range", create(RangeRequestSchema, { key: bytes("c"), revision: rev + 100n })),
      status.OUT_OF_RANGE,
      "etcdserver: mvcc: required revision is a future revision",
    );
    await call(kv, "Compact", create(CompactionRequestSchema, { revision: rev, physical: true }));
    await rejects(
      call(kv, "Range", create(RangeRequestSchema, { key: bytes("c"), revision: rev - 1n })),
      status.OUT_OF_RANGE,
      "etcdserver: mvcc: required revision has been compacted",
    );
    const at = await call<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: bytes("c"), revision: rev }));
    assert.equal(Buffer.from(at.kvs[0]!.value).toString(), "2");
  });

  test("malformed protobuf gets an error status and the server keeps serving", async () => {
    const Raw = makeGenericClientConstructor(
      {
        Put: {
          path: "/etcdserverpb.KV/Put",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "RawKV",
    );
    const raw = new Raw(server.endpoint, credentials.createInsecure()) as unknown as {
      Put: (b: Buffer, cb: (e: ServiceError | null) => void) => void;
      close(): void;
    };
    // field 1 (key) claims 100 bytes but the message ends after 2
    const garbage = Buffer.from([0x0a, 100, 1, 2]);
    const error = await new Promise<ServiceError | null>((resolve) => raw.Put(garbage, resolve));
    raw.close();
    assert.ok(error !== null, "a malformed request must fail");
    assert.equal(error.code, status.INTERNAL);
    const ok = await call<PutResponse>(kv, "Put", create(PutRequestSchema, { key: bytes("still"), value: bytes("alive") }));
    assert.ok(ok.header!.revision > 0n);
  });

  test("HTTP/1.1 on the client port: /version and /health", async () => {
    const version = await fetch(`http://${server.endpoint}/version`).then((r) => r.json());
    assert.deepEqual(version, { etcdserver: "3.4.23", etcdcluster: "3.4.0" });
    const health = await fetch(`http://${server.endpoint}/health`).then((r) => r.json());
    assert.deepEqual(health, { health: "true" });
  });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  KV,
  Watch,
  PutRequestSchema,
  RangeRequestSchema,
  RangeRequest_SortOrder,
  InternalRaftRequestSchema,
  RpcError,
  GrpcCode,
  grpcServiceDefinition,
  rpcErrorFromStatus,
  isRpcError,
} from "./index.js";

test("PutRequest encodes with etcd's field numbers", () => {
  const req = create(PutRequestSchema, { key: new Uint8Array([0x61]), value: new Uint8Array([0x62]), lease: 5n, prevKv: true });
  // key=1 (tag 0x0a), value=2 (0x12), lease=3 (0x18), prev_kv=4 (0x20): the bytes etcd's Go code produces.
  assert.deepEqual([...toBinary(PutRequestSchema, req)], [0x0a, 1, 0x61, 0x12, 1, 0x62, 0x18, 5, 0x20, 1]);
});

test("RangeRequest round-trips every option", () => {
  const req = create(RangeRequestSchema, {
    key: new Uint8Array([1]),
    rangeEnd: new Uint8Array([2]),
    limit: 10n,
    revision: 7n,
    sortOrder: RangeRequest_SortOrder.DESCEND,
    serializable: true,
    keysOnly: true,
    countOnly: false,
    minModRevision: 1n,
    maxCreateRevision: 99n,
  });
  const back = fromBinary(RangeRequestSchema, toBinary(RangeRequestSchema, req));
  assert.equal(back.limit, 10n);
  assert.equal(back.sortOrder, RangeRequest_SortOrder.DESCEND);
  assert.equal(back.maxCreateRevision, 99n);
});

test("InternalRaftRequest carries one request in its oneof at etcd's field number", () => {
  const put = create(PutRequestSchema, { key: new Uint8Array([0x61]) });
  const req = create(InternalRaftRequestSchema, { ID: 9n, request: { case: "put", value: put } });
  const bytes = toBinary(InternalRaftRequestSchema, req);
  assert.equal(bytes[2], (4 << 3) | 2, "put is field 4, length-delimited");
  const back = fromBinary(InternalRaftRequestSchema, bytes);
  assert.equal(back.request.case, "put");
});

test("grpc service definitions have etcd's paths and stream flags", () => {
  const kv = grpcServiceDefinition(KV);
  assert.equal(kv.Range.path, "/etcdserverpb.KV/Range");
  assert.equal(kv.Range.requestStream, false);
  const watch = grpcServiceDefinition(Watch);
  assert.equal(watch.Watch.path, "/etcdserverpb.Watch/Watch");
  assert.equal(watch.Watch.requestStream, true);
  assert.equal(watch.Watch.responseStream, true);
  const buf = kv.Put.requestSerialize(create(PutRequestSchema, { key: new Uint8Array([1]) }));
  assert.ok(Buffer.isBuffer(buf));
  const decoded = kv.Put.requestDeserialize(buf) as { key: Uint8Array };
  assert.deepEqual([...decoded.key], [1]);
});

test("etcd errors carry etcd's code and message", () => {
  const e = RpcError.of("compacted");
  assert.equal(e.code, GrpcCode.OUT_OF_RANGE);
  assert.equal(e.message, "etcdserver: mvcc: required revision has been compacted");
  assert.ok(isRpcError(e, "compacted"));
  assert.ok(!isRpcError(e, "futureRev"));
  const parsed = rpcErrorFromStatus(3, "etcdserver: key is not provided");
  assert.equal(parsed.kind, "emptyKey");
});

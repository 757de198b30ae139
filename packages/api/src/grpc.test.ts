import { test } from "node:test";
import assert from "node:assert/strict";
import { create, type DescService } from "@bufbuild/protobuf";
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import {
  Auth,
  Cluster,
  KV,
  Lease,
  Maintenance,
  PutResponseSchema,
  RangeResponseSchema,
  Watch,
  decorateGrpcHandlers,
  file_etcd_api_etcdserverpb_rpc,
  grpcServiceDefinition,
  type GrpcHandlerDecorator,
  type GrpcServiceHandlers,
  type GrpcServiceRegistrar,
  type PutRequest,
  type RangeRequest,
  type RangeResponse,
  type WatchRequest,
  type WatchResponse,
} from "./index.js";

const unanswered = () => undefined;

/** A KV implementation that answers nothing: only its shape matters to the type checks below. */
const kvHandlers: GrpcServiceHandlers<typeof KV> = {
  Range: unanswered,
  Put: unanswered,
  DeleteRange: unanswered,
  Txn: unanswered,
  Compact: unanswered,
};

test("handler types require every RPC of the service, with the descriptor's messages and call kinds", () => {
  // @ts-expect-error an implementation without Compact is not a KV implementation
  const missing: GrpcServiceHandlers<typeof KV> = { Range: unanswered, Put: unanswered, DeleteRange: unanswered, Txn: unanswered };
  const withRequestTypes: GrpcServiceHandlers<typeof KV> = {
    ...kvHandlers,
    Range: (call: ServerUnaryCall<RangeRequest, RangeResponse>, callback: sendUnaryData<RangeResponse>) =>
      callback(null, create(RangeResponseSchema, { count: call.request.limit })),
  };
  const wrongRequest: GrpcServiceHandlers<typeof KV> = {
    ...kvHandlers,
    // @ts-expect-error Range is called with a RangeRequest, not a PutRequest
    Range: (call: ServerUnaryCall<PutRequest, RangeResponse>) => assert.ok(call.request.prevKv),
  };
  const wrongResponse: GrpcServiceHandlers<typeof KV> = {
    ...kvHandlers,
    // @ts-expect-error Range answers a RangeResponse
    Range: (_call, callback) => callback(null, create(PutResponseSchema)),
  };
  const watchHandlers: GrpcServiceHandlers<typeof Watch> = {
    Watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) =>
      void call.on("data", (request: WatchRequest) => request.requestUnion.case),
  };
  const unaryWatch: GrpcServiceHandlers<typeof Watch> = {
    // @ts-expect-error Watch is a bidirectional stream: its handler gets the stream, not a request and callback
    Watch: (_call: ServerUnaryCall<WatchRequest, WatchResponse>, _callback: sendUnaryData<WatchResponse>) => undefined,
  };
  const registrar: GrpcServiceRegistrar = { addService: () => undefined };
  registrar.addService(grpcServiceDefinition(KV), kvHandlers);
  // @ts-expect-error the handlers must be those of the definition's service
  registrar.addService(grpcServiceDefinition(Watch), kvHandlers);
  assert.deepEqual(Object.keys(withRequestTypes).sort(), ["Compact", "DeleteRange", "Put", "Range", "Txn"]);
  for (const value of [missing, wrongRequest, wrongResponse, watchHandlers, unaryWatch]) assert.equal(typeof value, "object");
});

test("definitions key every RPC by its .proto name, as grpc-js looks handlers up", () => {
  const services: DescService[] = [KV, Watch, Lease, Cluster, Maintenance, Auth];
  assert.deepEqual(file_etcd_api_etcdserverpb_rpc.services.map((s) => s.typeName).sort(), services.map((s) => s.typeName).sort());
  for (const service of services) {
    const definition = grpcServiceDefinition(service);
    assert.deepEqual(
      Object.keys(definition),
      service.methods.map((m) => m.name),
    );
    for (const method of service.methods) {
      assert.equal(method.name, method.localName.charAt(0).toUpperCase() + method.localName.slice(1));
      assert.equal(definition[method.name]!.path, `/${service.typeName}/${method.name}`);
    }
  }
});

test("a definition refuses a service whose RPC names do not capitalize from their local names", () => {
  const escaped = { ...KV, typeName: "test.Escaped", methods: [{ ...KV.method.range, name: "Range", localName: "range$" }] } as DescService;
  assert.throws(() => grpcServiceDefinition(escaped), /local name range\$ does not capitalize/);
});

test("decorated handlers are wrapped by call kind, read from the definition", () => {
  const seen: string[] = [];
  const decorator: GrpcHandlerDecorator = {
    answered: (handler, method) => {
      seen.push(`answered ${method.path}`);
      return (call, callback) => handler(call, callback);
    },
    streamed: (handler, method) => {
      seen.push(`streamed ${method.path}`);
      return (call) => handler(call);
    },
  };
  const kv = decorateGrpcHandlers(grpcServiceDefinition(KV), kvHandlers, decorator);
  const watch = decorateGrpcHandlers(grpcServiceDefinition(Watch), { Watch: unanswered }, decorator);
  assert.deepEqual(Object.keys(kv), ["Range", "Put", "DeleteRange", "Txn", "Compact"]);
  assert.equal(typeof watch.Watch, "function");
  assert.deepEqual(seen, [
    "answered /etcdserverpb.KV/Range",
    "answered /etcdserverpb.KV/Put",
    "answered /etcdserverpb.KV/DeleteRange",
    "answered /etcdserverpb.KV/Txn",
    "answered /etcdserverpb.KV/Compact",
    "streamed /etcdserverpb.Watch/Watch",
  ]);
});

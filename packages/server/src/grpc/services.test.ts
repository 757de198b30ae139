import { test } from "node:test";
import assert from "node:assert/strict";
import { create, type DescService } from "@bufbuild/protobuf";
import { EventEmitter } from "node:events";
import { Metadata, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from "@grpc/grpc-js";
import {
  Auth,
  Cluster,
  GrpcCode,
  KV,
  Lease,
  Maintenance,
  RangeResponseSchema,
  Watch,
  file_etcd_api_etcdserverpb_rpc,
  type GrpcServiceHandlers,
  type GrpcServiceRegistrar,
} from "@etcd-ts/api";
import type { EtcdServer } from "../etcd-server.js";
import { createLogger } from "../log.js";
import { ServerMetrics } from "../metrics/metrics.js";
import { withLearnerGate } from "./learner-gate.js";
import { addEtcdServices, etcdServiceHandlers } from "./services.js";

const logger = createLogger("error", () => undefined);

/**
 * Stands in for the member: registering services only keeps a reference to it (and the Cluster service
 * adds its peer handler), so every method is a no-op that answers nothing — except a Range, whose
 * response the KV service encodes itself: an empty one.
 */
function idleMember(): EtcdServer {
  const noop = () => undefined;
  const emptyRange = () => Promise.resolve(create(RangeResponseSchema));
  return new Proxy({}, { get: (_target, name) => (name === "range" ? emptyRange : noop) }) as EtcdServer;
}

interface Registration {
  paths: string[];
  handlers: Record<string, unknown>;
  streams: Record<string, boolean>;
}

/** Keeps each registered service's definition paths and handlers, by service name. */
function recordingRegistrar(): { services: GrpcServiceRegistrar; registered: Map<string, Registration> } {
  const registered = new Map<string, Registration>();
  const services: GrpcServiceRegistrar = {
    addService(definition, handlers) {
      const methods = Object.entries(definition as Record<string, { path: string; responseStream: boolean }>);
      const service = methods[0]![1].path.split("/")[1]!;
      registered.set(service, {
        paths: methods.map(([, method]) => method.path),
        handlers,
        streams: Object.fromEntries(methods.map(([name, method]) => [name, method.responseStream])),
      });
    },
  };
  return { services, registered };
}

test("every RPC of every etcd service has a handler of its kind, through the learner gate and the call metrics", () => {
  const { services, registered } = recordingRegistrar();
  const metrics = new ServerMetrics();
  addEtcdServices(
    withLearnerGate(metrics.instrumentGrpcServices(services), () => false, logger),
    idleMember(),
    logger,
  );
  const etcdServices = file_etcd_api_etcdserverpb_rpc.services;
  assert.deepEqual([...registered.keys()].sort(), etcdServices.map((s) => s.typeName).sort(), "every service of rpc.proto is served");
  for (const service of etcdServices) {
    const registration = registered.get(service.typeName)!;
    assert.deepEqual(
      registration.paths,
      service.methods.map((m) => `/${service.typeName}/${m.name}`),
    );
    for (const method of service.methods) {
      const handler = registration.handlers[method.name];
      assert.equal(typeof handler, "function", `${service.typeName}/${method.name} has a handler`);
      // grpc-js calls a unary handler with (call, callback) and a server or bidi stream's with (call).
      const streamed = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
      assert.equal(registration.streams[method.name], streamed);
      assert.equal((handler as (...args: unknown[]) => void).length, streamed ? 1 : 2, `${method.name} is a ${method.methodKind} handler`);
    }
  }
});

test("the handlers of each etcd service are exactly its RPCs", () => {
  const handlers = etcdServiceHandlers(idleMember(), logger);
  const byService: [DescService, object][] = [
    [KV, handlers.kv],
    [Watch, handlers.watch],
    [Lease, handlers.lease],
    [Cluster, handlers.cluster],
    [Maintenance, handlers.maintenance],
    [Auth, handlers.auth],
  ];
  for (const [service, implementation] of byService) {
    assert.deepEqual(Object.keys(implementation).sort(), service.methods.map((m) => m.name).sort(), service.typeName);
  }
  // @ts-expect-error a KV implementation without Compact does not type-check
  const incomplete: GrpcServiceHandlers<typeof KV> = {
    Range: handlers.kv.Range,
    Put: handlers.kv.Put,
    DeleteRange: handlers.kv.DeleteRange,
    Txn: handlers.kv.Txn,
  };
  assert.equal(Object.keys(incomplete).length, 4);
});

test("on a learner the gate answers Status and serializable Range, and refuses other calls and every stream", async () => {
  const { services, registered } = recordingRegistrar();
  addEtcdServices(
    withLearnerGate(services, () => true, logger),
    idleMember(),
    logger,
  );
  const answer = (service: string, method: string, request: object) =>
    new Promise<number | null | undefined>((resolve) => {
      const handler = registered.get(service)!.handlers[method] as (
        call: ServerUnaryCall<object, unknown>,
        callback: sendUnaryData<unknown>,
      ) => void;
      const call = { request, metadata: new Metadata() } as ServerUnaryCall<object, unknown>;
      handler(call, (error) => resolve(error === null ? null : error.code));
    });
  const refused = GrpcCode.UNAVAILABLE;
  assert.equal(await answer("etcdserverpb.KV", "Put", { $typeName: "etcdserverpb.PutRequest" }), refused);
  assert.equal(await answer("etcdserverpb.KV", "Range", { $typeName: "etcdserverpb.RangeRequest", serializable: false }), refused);
  assert.equal(await answer("etcdserverpb.KV", "Range", { $typeName: "etcdserverpb.RangeRequest", serializable: true }), null, "served");
  assert.equal(await answer("etcdserverpb.Maintenance", "Status", { $typeName: "etcdserverpb.StatusRequest" }), null, "served");
  const errors: { code?: number }[] = [];
  const snapshot = registered.get("etcdserverpb.Maintenance")!.handlers.Snapshot as (call: ServerWritableStream<object, unknown>) => void;
  const stream = Object.assign(new EventEmitter(), { metadata: new Metadata() });
  stream.on("error", (error: { code?: number }) => errors.push(error));
  snapshot(stream as unknown as ServerWritableStream<object, unknown>);
  assert.equal(errors[0]?.code, refused);
});

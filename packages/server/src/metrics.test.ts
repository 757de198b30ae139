import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { status, type Server as GrpcServer, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { openMemoryBackend } from "@etcd-ts/storage";
import { instrumentBackend, ServerMetrics } from "./metrics.js";

/** A stand-in for grpc-js' server that keeps what was registered, so handlers can be called directly. */
function fakeGrpcServer(): { server: GrpcServer; registered: Map<string, UntypedServiceImplementation> } {
  const registered = new Map<string, UntypedServiceImplementation>();
  const server = {
    addService(definition: ServiceDefinition, implementation: UntypedServiceImplementation) {
      registered.set(Object.values(definition)[0]!.path.split("/")[1]!, implementation);
    },
  } as unknown as GrpcServer;
  return { server, registered };
}

const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: (v: unknown) => v as Buffer,
  requestDeserialize: (v: Buffer) => v,
  responseSerialize: (v: unknown) => v as Buffer,
  responseDeserialize: (v: Buffer) => v,
});

const definition = {
  Range: method("/etcdserverpb.KV/Range", false, false),
  Watch: method("/etcdserverpb.Watch/Watch", true, true),
} as unknown as ServiceDefinition;

test("gRPC calls are counted as grpc-prometheus counts them: started, then handled by code", () => {
  const metrics = new ServerMetrics();
  const { server, registered } = fakeGrpcServer();
  metrics.instrumentGrpcServer(server);
  let fail = false;
  server.addService(definition, {
    Range: (_call: unknown, callback: (error: unknown, value?: unknown) => void) => callback(fail ? { code: status.OUT_OF_RANGE } : null, {}),
    Watch: () => undefined,
  } as unknown as UntypedServiceImplementation);
  const range = registered.get("etcdserverpb.KV")!.Range as (call: unknown, cb: (e: unknown) => void) => void;
  const labels = { grpc_method: "Range", grpc_service: "etcdserverpb.KV", grpc_type: "unary" };
  assert.equal(metrics.grpcStarted.get(labels), 0, "pre-initialised at registration");
  range({}, () => undefined);
  fail = true;
  range({}, () => undefined);
  assert.equal(metrics.grpcStarted.get(labels), 2);
  assert.equal(metrics.grpcHandled.get({ ...labels, grpc_code: "OK" }), 1);
  assert.equal(metrics.grpcHandled.get({ ...labels, grpc_code: "OutOfRange" }), 1);

  const watch = registered.get("etcdserverpb.KV")!.Watch as (call: unknown) => void;
  const streamLabels = { grpc_method: "Watch", grpc_service: "etcdserverpb.Watch", grpc_type: "bidi_stream" };
  const cancelled = new EventEmitter();
  watch(cancelled);
  cancelled.emit("cancelled");
  cancelled.emit("close");
  const ended = Object.assign(new EventEmitter(), { pendingStatus: { code: status.OK } });
  watch(ended);
  ended.emit("finish");
  assert.equal(metrics.grpcStarted.get(streamLabels), 2);
  assert.equal(metrics.grpcHandled.get({ ...streamLabels, grpc_code: "Canceled" }), 1);
  assert.equal(metrics.grpcHandled.get({ ...streamLabels, grpc_code: "OK" }), 1);
  assert.match(metrics.render(), /grpc_server_handled_total\{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"\} 1/);
});

test("backend write transactions are timed; everything else passes through", async () => {
  const metrics = new ServerMetrics();
  const backend = openMemoryBackend();
  const timed = instrumentBackend(backend, metrics.backendCommit);
  await timed.update((txn) => {
    txn.createBucket("b");
    txn.put("b", new Uint8Array([1]), new Uint8Array([2]));
  });
  assert.equal(metrics.backendCommit.snapshot().count, 1);
  assert.deepEqual(timed.view((txn) => txn.get("b", new Uint8Array([1]))), new Uint8Array([2]));
  assert.equal(timed.engine, backend.engine);
  assert.equal(timed.size(), backend.size());
  await timed.close();
});

test("without a server the gauges read zero and the text still parses", () => {
  const text = new ServerMetrics().render();
  assert.match(text, /^etcd_server_has_leader 0$/m);
  assert.match(text, /^etcd_server_version\{server_version="3\.4\.23"\} 1$/m);
  assert.match(text, /^etcd_disk_wal_fsync_duration_seconds_bucket\{le="8\.192"\} 0$/m);
  for (const line of text.trim().split("\n")) assert.match(line, /^(# (HELP|TYPE) \S+ .+|\S+(\{[^}]*\})? \S+)$/, line);
});

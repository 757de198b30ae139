import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { create } from "@bufbuild/protobuf";
import { status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import {
  KV,
  RangeResponseSchema,
  Watch,
  grpcServiceDefinition,
  type GrpcServiceHandlers,
  type GrpcServiceRegistrar,
  type RangeRequest,
  type RangeResponse,
  type WatchRequest,
  type WatchResponse,
} from "@etcd-ts/api";
import { openMemoryBackend } from "@etcd-ts/storage";
import { instrumentBackend, ServerMetrics } from "./metrics.js";

/** A registrar that keeps what was registered, by service path prefix, so handlers can be called directly. */
function recordingRegistrar(): { services: GrpcServiceRegistrar; registered: Map<string, unknown> } {
  const registered = new Map<string, unknown>();
  const services: GrpcServiceRegistrar = {
    addService(definition, handlers) {
      const [first] = Object.values(definition as Record<string, { path: string }>);
      registered.set(String(first?.path.split("/")[1]), handlers);
    },
  };
  return { services, registered };
}

test("gRPC calls are counted as grpc-prometheus counts them: started, then handled by code", () => {
  const metrics = new ServerMetrics();
  const { services, registered } = recordingRegistrar();
  const instrumented = metrics.instrumentGrpcServices(services);
  let fail = false;
  const unanswered = () => undefined;
  const kv: GrpcServiceHandlers<typeof KV> = {
    Range: (_call, callback) => callback(fail ? { code: status.OUT_OF_RANGE } : null, create(RangeResponseSchema)),
    Put: unanswered,
    DeleteRange: unanswered,
    Txn: unanswered,
    Compact: unanswered,
  };
  instrumented.addService(grpcServiceDefinition(KV), kv);
  instrumented.addService(grpcServiceDefinition(Watch), { Watch: unanswered });
  const range = (registered.get("etcdserverpb.KV") as GrpcServiceHandlers<typeof KV>).Range;
  const labels = { grpc_method: "Range", grpc_service: "etcdserverpb.KV", grpc_type: "unary" };
  assert.equal(metrics.grpcStarted.get(labels), 0, "pre-initialised at registration");
  assert.equal(metrics.grpcStarted.get({ ...labels, grpc_method: "Compact" }), 0, "every method of the service");
  const call = {} as ServerUnaryCall<RangeRequest, RangeResponse>;
  const ignore: sendUnaryData<RangeResponse> = () => undefined;
  range(call, ignore);
  fail = true;
  range(call, ignore);
  assert.equal(metrics.grpcStarted.get(labels), 2);
  assert.equal(metrics.grpcHandled.get({ ...labels, grpc_code: "OK" }), 1);
  assert.equal(metrics.grpcHandled.get({ ...labels, grpc_code: "OutOfRange" }), 1);

  const watch = (registered.get("etcdserverpb.Watch") as GrpcServiceHandlers<typeof Watch>).Watch;
  const streamLabels = { grpc_method: "Watch", grpc_service: "etcdserverpb.Watch", grpc_type: "bidi_stream" };
  const stream = (emitter: EventEmitter) => emitter as ServerDuplexStream<WatchRequest, WatchResponse>;
  const cancelled = new EventEmitter();
  watch(stream(cancelled));
  cancelled.emit("cancelled");
  cancelled.emit("close");
  const ended = Object.assign(new EventEmitter(), { pendingStatus: { code: status.OK } });
  watch(stream(ended));
  ended.emit("finish");
  assert.equal(metrics.grpcStarted.get(streamLabels), 2);
  assert.equal(metrics.grpcHandled.get({ ...streamLabels, grpc_code: "Canceled" }), 1);
  assert.equal(metrics.grpcHandled.get({ ...streamLabels, grpc_code: "OK" }), 1);
  assert.match(
    metrics.render(),
    /grpc_server_handled_total\{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"\} 1/,
  );
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
  assert.deepEqual(
    timed.view((txn) => txn.get("b", new Uint8Array([1]))),
    new Uint8Array([2]),
  );
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

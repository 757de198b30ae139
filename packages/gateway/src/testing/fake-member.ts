/**
 * Test support (not exported): a stand-in member on 127.0.0.1 that serves every service the gateway routes
 * to with grpc-js, so the gateway's HTTP side can be driven hard without a real etcd. Unary calls answer an
 * empty response; server streams send one empty message and end; bidi streams answer one empty message per
 * request, or, with `floodWatch`, answer a Watch's first request with a flood of events that respects the
 * call's flow control. Every call is recorded.
 */
import { create, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { WatchResponseSchema, grpcServiceDefinition } from "@etcd-ts/api";
import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerWritableStream,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
  type sendUnaryData,
  type ServerUnaryCall,
} from "@grpc/grpc-js";
import { ROUTES } from "../routes.js";

export interface FloodOptions {
  /** Bytes of the value of each event. */
  readonly valueBytes: number;
  /** Stop after this many bytes of values. */
  readonly totalBytes: number;
}

export interface RecordedCall {
  readonly method: string;
  readonly requests: Message[];
  /** Value bytes written by a flooding Watch. */
  floodedBytes: number;
  cancelled: boolean;
  ended: boolean;
}

export interface FakeMember {
  /** host:port of the gRPC endpoint. */
  readonly target: string;
  readonly calls: RecordedCall[];
  stop(): Promise<void>;
}

export async function startFakeMember(options: { floodWatch?: FloodOptions; maxReceiveBytes?: number } = {}): Promise<FakeMember> {
  const server = new Server({
    "grpc.max_receive_message_length": options.maxReceiveBytes ?? 2 ** 31 - 1,
    "grpc.max_send_message_length": 2 ** 31 - 1,
  });
  const calls: RecordedCall[] = [];
  const services = new Map<string, DescService>();
  for (const route of ROUTES) services.set(route.service.typeName, route.service);
  for (const service of services.values()) {
    const implementation: UntypedServiceImplementation = {};
    for (const method of service.methods) implementation[method.name] = handlerFor(method, calls, options.floodWatch);
    server.addService(grpcServiceDefinition(service), implementation);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    target: `127.0.0.1:${port}`,
    calls,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

function handlerFor(method: DescMethod, calls: RecordedCall[], flood: FloodOptions | undefined): UntypedHandleCall {
  const record = (): RecordedCall => {
    const call: RecordedCall = { method: method.name, requests: [], floodedBytes: 0, cancelled: false, ended: false };
    calls.push(call);
    return call;
  };
  switch (method.methodKind) {
    case "unary":
      return ((call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
        record().requests.push(call.request);
        callback(null, create(method.output));
      }) as UntypedHandleCall;
    case "server_streaming":
      return ((call: ServerWritableStream<Message, Message>) => {
        record().requests.push(call.request);
        call.write(create(method.output));
        call.end();
      }) as UntypedHandleCall;
    default:
      return ((call: ServerDuplexStream<Message, Message>) => {
        const recorded = record();
        call.on("cancelled", () => {
          recorded.cancelled = true;
        });
        call.on("error", () => undefined);
        call.on("end", () => {
          recorded.ended = true;
          if (!(flood !== undefined && method.name === "Watch")) call.end();
        });
        call.on("data", (request: Message) => {
          recorded.requests.push(request);
          if (flood !== undefined && method.name === "Watch") {
            if (recorded.requests.length === 1) floodWatch(call, recorded, flood);
            return;
          }
          call.write(create(method.output));
        });
      }) as UntypedHandleCall;
  }
}

/** Writes events as fast as the call takes them: a write that fills the call's buffer waits for 'drain'. */
function floodWatch(call: ServerDuplexStream<Message, Message>, recorded: RecordedCall, flood: FloodOptions): void {
  const value = new Uint8Array(flood.valueBytes).fill(0x78);
  let revision = 1n;
  const next = (): void => {
    while (!recorded.cancelled && recorded.floodedBytes < flood.totalBytes) {
      const response = create(WatchResponseSchema, {
        watchId: 0n,
        events: [{ kv: { key: new TextEncoder().encode("a"), value, modRevision: ++revision, createRevision: 2n, version: revision } }],
      });
      recorded.floodedBytes += value.length;
      if (!call.write(response)) {
        call.once("drain", next);
        return;
      }
    }
  };
  next();
}

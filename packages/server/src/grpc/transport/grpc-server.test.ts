// The gRPC server on the project's own HTTP/2 connection, driven by grpc-js' client (a different HTTP/2
// implementation, nghttp2 under Node) and, for what a client library never sends, by raw frames.

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { credentials, makeGenericClientConstructor, Metadata, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { GrpcServer, type ServerCall } from "./grpc-server.js";
import { CLIENT_PREFACE, FrameType, frame, settingsFrame } from "./frames.js";

const identity = (value: Buffer) => value;
function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}
const definition = {
  Unary: method("Unary", false, false),
  Fail: method("Fail", false, false),
  Hang: method("Hang", false, false),
  Download: method("Download", false, true),
  Chat: method("Chat", true, true),
};

type Callback = (error: { code: number; details: string } | null, value?: Buffer) => void;
interface Seen {
  cancelled: string[];
  metadata: (string | undefined)[];
}
const seen: Seen = { cancelled: [], metadata: [] };

const handlers = {
  Unary(call: ServerCall, callback: Callback) {
    seen.metadata.push(call.metadata.get("x-test")[0]);
    callback(null, Buffer.concat([Buffer.from("echo:"), call.request as Buffer]));
  },
  Fail(_call: ServerCall, callback: Callback) {
    callback({ code: status.FAILED_PRECONDITION, details: "etcdserver: ünïcode % and\nnewline" });
  },
  Hang(call: ServerCall) {
    call.on("cancelled", () => seen.cancelled.push("Hang"));
  },
  Download(call: ServerCall) {
    // `count` chunks of `size` bytes, each filled with its index, written with backpressure.
    const request = call.request as Buffer;
    const count = request.readUInt32BE(0);
    const size = request.readUInt32BE(4);
    let sent = 0;
    call.on("cancelled", () => seen.cancelled.push("Download"));
    const pump = () => {
      while (sent < count && !call.cancelled) {
        const ok = call.write(Buffer.alloc(size, sent % 256));
        sent++;
        if (!ok) {
          call.once("drain", pump);
          return;
        }
      }
      if (sent === count) call.end();
    };
    pump();
  },
  Chat(call: ServerCall) {
    call.on("data", (message: Buffer) => call.write(Buffer.concat([Buffer.from(">"), message])));
    call.on("end", () => call.end());
  },
};

let listener: Server;
let grpc: GrpcServer;
let client: Client & Record<string, (...args: unknown[]) => unknown>;
let port = 0;

before(async () => {
  grpc = new GrpcServer({ maxReceiveMessageLength: 1 << 20, maxConcurrentStreams: 16 });
  grpc.addService(definition, handlers as never);
  listener = createServer((socket) => {
    socket.once("data", (head: Buffer) => grpc.serveConnection(socket, head));
  });
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  port = (listener.address() as { port: number }).port;
  const Echo = makeGenericClientConstructor(definition, "Echo");
  client = new Echo(`127.0.0.1:${port}`, credentials.createInsecure(), {
    "grpc.max_receive_message_length": 8 << 20,
  }) as never;
});

after(async () => {
  client.close();
  grpc.close();
  await new Promise((resolve) => listener.close(resolve));
});

function unary(name: string, request: Buffer, metadata = new Metadata(), deadlineMs?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
    client[name]!(request, metadata, options, (error: ServiceError | null, value: Buffer) => (error ? reject(error) : resolve(value)));
  });
}

describe("gRPC over the own HTTP/2 transport", () => {
  test("unary calls, many at once on one connection, with metadata", async () => {
    const metadata = new Metadata();
    metadata.set("x-test", "hello");
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => unary("Unary", Buffer.from(String(i)), metadata)));
    answers.forEach((answer, i) => assert.equal(answer.toString(), `echo:${i}`));
    assert.ok(seen.metadata.includes("hello"));
  });

  test("an empty request and a large one (past a frame and a window) arrive whole", async () => {
    assert.equal((await unary("Unary", Buffer.alloc(0))).toString(), "echo:");
    const big = Buffer.alloc(900_000, 7);
    const answer = await unary("Unary", big);
    assert.equal(answer.length, 5 + big.length);
    assert.ok(answer.subarray(5).equals(big));
  });

  test("a status with a non-ASCII message reaches the client as sent", async () => {
    await assert.rejects(unary("Fail", Buffer.from("x")), (error: ServiceError) => {
      assert.equal(error.code, status.FAILED_PRECONDITION);
      assert.equal(error.details, "etcdserver: ünïcode % and\nnewline");
      return true;
    });
  });

  test("unknown methods and services are UNIMPLEMENTED with grpc-go's words", async () => {
    const Other = makeGenericClientConstructor({ Nope: { ...definition.Unary, path: "/test.Echo/Nope" } }, "X");
    const other = new Other(`127.0.0.1:${port}`, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
    const Missing = makeGenericClientConstructor({ Nope: { ...definition.Unary, path: "/test.Missing/Nope" } }, "Y");
    const missing = new Missing(`127.0.0.1:${port}`, credentials.createInsecure()) as Client &
      Record<string, (...args: unknown[]) => unknown>;
    const call = (c: typeof other) =>
      new Promise<ServiceError>((resolve) => c.Nope!(Buffer.from("x"), (error: ServiceError) => resolve(error)));
    const [a, b] = await Promise.all([call(other), call(missing)]);
    other.close();
    missing.close();
    assert.equal(a.code, status.UNIMPLEMENTED);
    assert.equal(a.details, "unknown method Nope for service test.Echo");
    assert.equal(b.code, status.UNIMPLEMENTED);
    assert.equal(b.details, "unknown service test.Missing");
  });

  test("a request over the receive limit is RESOURCE_EXHAUSTED", async () => {
    await assert.rejects(unary("Unary", Buffer.alloc((1 << 20) + 1)), (error: ServiceError) => {
      assert.equal(error.code, status.RESOURCE_EXHAUSTED);
      assert.match(error.details, /^grpc: received message larger than max \(1048577 vs\. 1048576\)$/);
      return true;
    });
  });

  test("a deadline ends the call with DEADLINE_EXCEEDED and cancels it on the server", async () => {
    await assert.rejects(
      unary("Hang", Buffer.from("x"), new Metadata(), 200),
      (error: ServiceError) => error.code === status.DEADLINE_EXCEEDED,
    );
    const until = Date.now() + 2000;
    while (!seen.cancelled.includes("Hang") && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(seen.cancelled.includes("Hang"));
  });

  test("a server stream of 24 MiB follows the client's flow control and arrives in order", async () => {
    const request = Buffer.alloc(8);
    request.writeUInt32BE(96, 0);
    request.writeUInt32BE(256 << 10, 4);
    const stream = client.Download!(request) as NodeJS.ReadableStream;
    let index = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      assert.equal(chunk.length, 256 << 10);
      assert.equal(chunk[0], index % 256);
      assert.equal(chunk[chunk.length - 1], index % 256);
      index++;
    }
    assert.equal(index, 96);
  });

  test("a client that cancels a server stream cancels it on the server", async () => {
    const request = Buffer.alloc(8);
    request.writeUInt32BE(1_000_000, 0);
    request.writeUInt32BE(64 << 10, 4);
    const stream = client.Download!(request) as NodeJS.ReadableStream & { cancel(): void };
    stream.on("error", () => undefined);
    await once(stream, "data");
    stream.cancel();
    const until = Date.now() + 2000;
    while (!seen.cancelled.includes("Download") && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(seen.cancelled.includes("Download"));
  });

  test("a bidirectional stream echoes every message, then ends with the client", async () => {
    const stream = client.Chat!() as NodeJS.ReadWriteStream;
    const got: string[] = [];
    stream.on("data", (message: Buffer) => got.push(message.toString()));
    for (let i = 0; i < 200; i++) stream.write(Buffer.from(`m${i}`));
    stream.end();
    await once(stream, "end");
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => `>m${i}`),
    );
  });
});

/** Reads frames from a raw socket: [type, flags, streamId, payload]. */
function frameReader(socket: Socket) {
  let input = Buffer.alloc(0);
  const frames: [number, number, number, Buffer][] = [];
  socket.on("data", (chunk: Buffer) => {
    input = Buffer.concat([input, chunk]);
    while (input.length >= 9) {
      const length = input.readUIntBE(0, 3);
      if (input.length < 9 + length) break;
      frames.push([input[3]!, input[4]!, input.readUInt32BE(5) & 0x7fffffff, input.subarray(9, 9 + length)]);
      input = input.subarray(9 + length);
    }
  });
  return async (type: number, timeoutMs = 2000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const index = frames.findIndex((f) => f[0] === type);
      if (index >= 0) return frames.splice(index, 1)[0]!;
      if (Date.now() > until) throw new Error(`no frame of type ${type}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
}

/** A HEADERS block of literal fields without indexing (no Huffman), which every HPACK decoder takes. */
function literalBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value));
  }
  return Buffer.concat(parts);
}

describe("the HTTP/2 connection, frame by frame", () => {
  async function raw(): Promise<Socket> {
    const socket = connect(port, "127.0.0.1");
    await once(socket, "connect");
    return socket;
  }

  test("a preface and frames split into single bytes are read whole; PING is answered", async () => {
    const socket = await raw();
    const next = frameReader(socket);
    const bytes = Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.Ping, 0, 0, Buffer.from("12345678"))]);
    for (const byte of bytes) {
      socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const [, flags, , payload] = await next(FrameType.Ping);
    assert.equal(flags & 1, 1);
    assert.equal(payload.toString(), "12345678");
    socket.destroy();
  });

  test("streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused (RST_STREAM REFUSED_STREAM)", async () => {
    const socket = await raw();
    const next = frameReader(socket);
    socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
    const headers = literalBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/test.Echo/Hang"],
      [":authority", "x"],
      ["content-type", "application/grpc"],
    ]);
    // Seventeen open streams (no END_STREAM) against a limit of sixteen.
    for (let id = 1; id <= 33; id += 2) socket.write(frame(FrameType.Headers, 0x4, id, headers));
    const [, , streamId, payload] = await next(FrameType.RstStream);
    assert.equal(streamId, 33);
    assert.equal(payload.readUInt32BE(0), 7);
    socket.destroy();
  });

  test("a bad preface gets GOAWAY PROTOCOL_ERROR and the connection is closed", async () => {
    const socket = await raw();
    const next = frameReader(socket);
    const closed = once(socket, "close");
    socket.write("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    const [, , , payload] = await next(FrameType.Goaway);
    assert.equal(payload.readUInt32BE(4), 1);
    await closed;
  });

  test("a non-gRPC content type is answered HTTP 415", async () => {
    const socket = await raw();
    const next = frameReader(socket);
    const headers = literalBlock([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/test.Echo/Unary"],
      [":authority", "x"],
      ["content-type", "text/plain"],
    ]);
    socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.Headers, 0x5, 1, headers)]));
    const [, flags, streamId, block] = await next(FrameType.Headers);
    assert.equal(streamId, 1);
    assert.equal(flags & 1, 1);
    assert.ok(block.includes(Buffer.from("415")));
    socket.destroy();
  });
});

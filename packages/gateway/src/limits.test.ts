/**
 * The gateway's bounds, against a stand-in member (testing/fake-member.ts): request values over the size limit
 * are refused while they are read, deep JSON answers as etcd instead of killing the process, and a client
 * that does not read its watch holds back the stream instead of growing the gateway's memory; its leaving
 * cancels the gRPC call.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { WatchResponseSchema, type PutRequest } from "@etcd-ts/api";
import { waitFor } from "@etcd-ts/test-support";
import { createGateway, type Gateway } from "./gateway.js";
import { jsonLimitFor } from "./gateway-runtime.js";
import { encodeMessage } from "./jsonpb.js";
import { startFakeMember, type FakeMember } from "./testing/fake-member.js";
import { encodeFrame } from "./websocket.js";

interface Harness {
  readonly member: FakeMember;
  readonly gateway: Gateway;
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

async function startHarness(
  options: { maxRequestBytes?: number; floodWatch?: { valueBytes: number; totalBytes: number } } = {},
): Promise<Harness> {
  const member = await startFakeMember({ floodWatch: options.floodWatch });
  const gateway = createGateway({ target: member.target, maxRequestBytes: options.maxRequestBytes });
  const server = createServer(gateway.handle);
  server.on("upgrade", gateway.handleUpgrade);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    member,
    gateway,
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      gateway.close();
      await member.stop();
    },
  };
}

async function post(
  port: number,
  path: string,
  body: string | Uint8Array,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body, signal: AbortSignal.timeout(30_000) });
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
}

/** A raw HTTP/1.1 client: everything the server sends, and whether it closed the connection. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("latin1");
  });
  socket.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, received: () => text, closed };
}

describe("request size limit", () => {
  const messageLimit = 64 * 1024;
  const jsonLimit = jsonLimitFor(messageLimit);
  let h: Harness;
  before(async () => {
    h = await startHarness({ maxRequestBytes: messageLimit });
  });
  after(() => h.close());

  test("a value that fits the limit as JSON is forwarded", async () => {
    // Bytes near the message limit are 4/3 as long in base64: still forwarded.
    const value = randomBytes(messageLimit - 100).toString("base64");
    const answer = await post(h.port, "/v3/kv/put", `{"key":"YQ==","value":"${value}"}`);
    assert.equal(answer.status, 200, answer.body);
    const put = h.member.calls.at(-1)?.requests[0] as PutRequest | undefined;
    assert.equal(put?.value.length, messageLimit - 100);
  });

  test("an endless body is answered 429 before it ends, without being held, and the connection is closed", async () => {
    const calls = h.member.calls.length;
    const client = rawClient(h.port);
    client.socket.write("POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    const chunk = Buffer.alloc(256 * 1024, 0x41);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
    let sent = 0;
    client.socket.write(`${(10).toString(16)}\r\n{"value":"\r\n`);
    // Keep sending (as fast as the connection takes it) until an answer comes, at most 256 MiB.
    while (!client.received().includes("\r\n\r\n") && sent < 256 * 1024 * 1024 && !client.socket.destroyed) {
      sent += chunk.length;
      if (!client.socket.write(framed)) {
        await new Promise((resolve) => {
          client.socket.once("drain", resolve);
          client.socket.once("close", resolve);
          setTimeout(resolve, 50);
        });
      }
    }
    await waitFor(() => client.received().includes('"code":8}'), 20_000, "the answer", 20);
    await client.closed;
    const text = client.received();
    assert.match(text, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(text, /\r\nConnection: close\r\n/i);
    const message = `gateway: received message larger than max (over ${jsonLimit} bytes of JSON vs. ${messageLimit})`;
    assert.ok(text.endsWith(`{"error":"${message}","message":"${message}","code":8}`), text.slice(-300));
    // Answered long before the body could end; nothing reached the member.
    assert.ok(sent < 256 * 1024 * 1024, `sent ${sent}`);
    assert.equal(h.member.calls.length, calls);
  });

  test("leading whitespace counts towards the limit", async () => {
    const answer = await post(h.port, "/v3/kv/range", `${" ".repeat(jsonLimit + 1)}{}`);
    assert.equal(answer.status, 429);
    assert.equal(answer.headers.connection, "close");
  });

  test("in a watch body each request is bounded: one over the limit fails the stream with ResourceExhausted", async () => {
    const message = `gateway: received message larger than max (over ${jsonLimit} bytes of JSON vs. ${messageLimit})`;
    const failure = `{"error":{"grpc_code":8,"http_code":429,"message":"${message}","http_status":"Too Many Requests"}}`;
    // The first request too large: nothing was answered yet, so the status is the failure's.
    const first = await post(h.port, "/v3/watch", `{"create_request":{"key":"${"QUFB".repeat(jsonLimit / 4)}"}}`);
    assert.equal(first.status, 429);
    assert.equal(first.body, failure);
    // A later one: the stream, answered so far, ends with the failure.
    const client = rawClient(h.port);
    client.socket.write("POST /v3/watch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    client.socket.write(chunk('{"create_request":{"key":"YQ=="}}\n'));
    await waitFor(() => client.received().includes('{"result":'), 20_000, "the first answer", 20);
    client.socket.write(chunk('{"create_request":{"key":"'));
    for (let sent = 0; sent <= jsonLimit; sent += 16 * 1024) client.socket.write(chunk("QUFB".repeat(4096)));
    await waitFor(() => client.received().includes(failure), 20_000, "the stream's failure", 20);
    assert.match(client.received(), /^HTTP\/1\.1 200 OK\r\n/);
    client.socket.destroy();
    await waitFor(() => h.gateway.stats().calls === 0, 20_000, "the calls to end", 20);
  });

  test("a websocket message over the limit closes the websocket with 1009", async () => {
    const client = rawClient(h.port);
    client.socket.write(
      "GET /v3/watch HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    await waitFor(() => client.received().includes("\r\n\r\n"), 20_000, "the handshake", 20);
    assert.match(client.received(), /^HTTP\/1\.1 101 /);
    // Only the header of a frame claiming more than the limit: refused before its payload arrives.
    const header = Buffer.alloc(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(jsonLimit + 1), 2);
    client.socket.write(header);
    await client.closed;
    const closeFrame = Buffer.from(client.received().slice(client.received().indexOf("\r\n\r\n") + 4), "latin1");
    assert.deepEqual([...closeFrame.subarray(0, 4)], [0x88, 2, 0x03, 0xf1]);
  });
});

describe("deep JSON", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test("a field nested 6000 deep is ignored as etcd ignores it; 10000 deep is Go's depth error; a txn 2000 deep is too many ops; the gateway lives on", async () => {
    const deep = (n: number): string => `{"key":"YQ==","zz":${"[".repeat(n)}${"]".repeat(n)}}`;
    const ok = await post(h.port, "/v3/kv/range", deep(6000));
    assert.equal(ok.status, 200, ok.body);
    const refused = await post(h.port, "/v3/kv/range", deep(10000));
    assert.equal(refused.status, 400);
    assert.equal(
      refused.body,
      `{"error":"invalid character '[' exceeded max depth","message":"invalid character '[' exceeded max depth","code":3}`,
    );
    const watch = await post(h.port, "/v3/watch", deep(6000));
    assert.equal(watch.status, 200);
    const txn = `${'{"success":[{"request_txn":'.repeat(2000)}{}${"}]}".repeat(2000)}`;
    // Decoded, but too deep for protobuf-es to encode (500 "Request message serialization failure" if
    // sent): answered as every member answers it, too many operations.
    const nested = await post(h.port, "/v3/kv/txn", txn);
    assert.equal(nested.status, 400);
    assert.equal(
      nested.body,
      `{"error":"etcdserver: too many operations in txn request","message":"etcdserver: too many operations in txn request","code":3}`,
    );
    assert.equal((await post(h.port, "/v3/kv/range", '{"key":"YQ=="}')).status, 200);
  });
});

describe("clients that leave", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test("a call that begins after its client left (a body cut short, decoded at its end) is not left in flight", async () => {
    const calls = h.member.calls.length;
    const client = rawClient(h.port);
    // `null` is a complete value only once the body ends; the connection goes first.
    client.socket.write("POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nnull");
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.socket.destroy();
    await client.closed;
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The call is cancelled as it begins (the member may or may not have seen it) and is not tracked.
    await waitFor(() => h.gateway.stats().calls === 0, 5000, "no call in flight", 20);
    assert.ok(h.member.calls.length >= calls);
  });
});

describe("headers", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test("a Grpc-Timeout longer than the header can carry is clamped (grpc-js would reject it where nobody awaits)", async () => {
    const rejections: unknown[] = [];
    const record = (reason: unknown): void => {
      rejections.push(reason);
    };
    process.on("unhandledRejection", record);
    try {
      const response = await fetch(`http://127.0.0.1:${h.port}/v3/kv/range`, {
        method: "POST",
        body: '{"key":"YQ=="}',
        headers: { "Grpc-Timeout": "99999999999H" },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 200, await response.text());
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.off("unhandledRejection", record);
    }
    assert.deepEqual(rejections.map(String), []);
  });
});

describe("a watcher that does not read", () => {
  const valueBytes = 64 * 1024;
  const totalBytes = 256 * 1024 * 1024;
  let h: Harness;
  before(async () => {
    h = await startHarness({ floodWatch: { valueBytes, totalBytes } });
  });
  after(() => h.close());

  // One answer line of the flood, as the gateway writes it: the most a paused stream holds beyond the
  // response's high-water mark.
  const line = `{"result":${encodeMessage(
    WatchResponseSchema,
    create(WatchResponseSchema, {
      events: [
        {
          kv: {
            key: new TextEncoder().encode("a"),
            value: new Uint8Array(valueBytes),
            modRevision: 10n ** 12n,
            createRevision: 2n,
            version: 10n ** 12n,
          },
        },
      ],
    }),
  )}}\n`;
  const cap = 16 * 1024 + line.length + 64;

  async function stallAndLeave(t: TestContext, open: (client: ReturnType<typeof rawClient>) => void): Promise<void> {
    const calls = h.member.calls.length;
    const client = rawClient(h.port);
    open(client);
    await waitFor(() => h.member.calls.length > calls && h.member.calls.at(-1)!.floodedBytes > 0, 20_000, "the flood to start", 20);
    client.socket.pause();
    const watch = h.member.calls.at(-1)!;
    // Let the flood run until it stops moving: held back by flow control, far short of its total.
    let peak = 0;
    let last = -1;
    let still = 0;
    const deadline = Date.now() + 30_000;
    while (still < 25 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 40));
      peak = Math.max(peak, h.gateway.stats().bufferedBytes);
      still = watch.floodedBytes === last ? still + 1 : 0;
      last = watch.floodedBytes;
    }
    t.diagnostic(
      `member wrote ${watch.floodedBytes} value bytes before flow control held it; gateway buffered at most ${peak} bytes (cap ${cap})`,
    );
    assert.ok(watch.floodedBytes < 64 * 1024 * 1024, `the member wrote ${watch.floodedBytes} bytes to a client that reads nothing`);
    assert.ok(peak <= cap, `the gateway buffered ${peak} bytes (cap ${cap})`);
    assert.equal(h.gateway.stats().streams, 1);
    // A stalled stream does not hold up other calls on the gateway's connection.
    assert.equal((await post(h.port, "/v3/kv/range", '{"key":"YQ=="}')).status, 200);
    // The client leaving cancels the call and releases everything.
    client.socket.destroy();
    await waitFor(() => watch.cancelled, 20_000, "the member to see the watch cancelled", 20);
    await waitFor(() => h.gateway.stats().calls === 0, 20_000, "no calls in flight", 20);
    assert.deepEqual(h.gateway.stats(), { calls: 0, streams: 0, bufferedBytes: 0, decodedOffLoop: 0 });
  }

  test("over HTTP: the stream pauses at the buffer's bound and is cancelled when the client leaves", async (t) => {
    await stallAndLeave(t, (client) => {
      client.socket.write("POST /v3/watch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
      const body = '{"create_request":{"key":"YQ=="}}\n';
      client.socket.write(`${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`);
    });
  });

  test("over a websocket: the same bound, the same release", async (t) => {
    await stallAndLeave(t, (client) => {
      client.socket.write(
        "GET /v3/watch HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
      const payload = Buffer.from('{"create_request":{"key":"YQ=="}}');
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
      const frame = encodeFrame(1, masked);
      frame[1] = frame[1]! | 0x80;
      client.socket.write(Buffer.concat([frame.subarray(0, 2), mask, frame.subarray(2)]));
    });
  });
});

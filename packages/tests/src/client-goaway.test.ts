import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { connect, constants, type ClientHttp2Session } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "@etcd-ts/api";
import { startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * A client that closes its connection gracefully sends GOAWAY(NO_ERROR) and lets its open streams finish.
 * grpc-js does so when a channel is closed; its HTTP/2 stack (nghttp2) sends queued GOAWAY frames before
 * the HEADERS of streams it opened in the same turn, so the server can see the GOAWAY *before* the last
 * requests. etcd (grpc-go) ignores a client's GOAWAY and answers them. Node's HTTP/2 server by default
 * answers with its own GOAWAY naming the last stream it had processed, which refuses those requests; the
 * client then retries them on its closed channel and fails with UNAVAILABLE (what etcd3's election tests
 * hit: a watch cancelled by the client resets the client's channels while a request is starting).
 */

function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

interface UnaryAnswer {
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
  readonly body: Buffer;
  /** The stream's error, when it was refused or reset instead of answered. */
  readonly error: string | undefined;
}

/** Starts a unary call on `session`; its HEADERS are queued, not yet sent, when this returns. */
function unary(session: ClientHttp2Session, path: string, message: Uint8Array, authority?: string): Promise<UnaryAnswer> {
  const headers: Record<string, string> = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  };
  if (authority !== undefined) headers[":authority"] = authority;
  const stream = session.request(headers);
  const chunks: Buffer[] = [];
  let trailers: Record<string, unknown> = {};
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("trailers", (t: Record<string, unknown>) => {
    trailers = t;
  });
  stream.end(frame(message));
  return new Promise((resolve) => {
    let error: string | undefined;
    stream.on("error", (e: Error & { code?: string }) => (error = `${e.code ?? ""} ${e.message}`));
    stream.on("close", () => {
      const body = Buffer.concat(chunks);
      resolve({
        grpcStatus: trailers["grpc-status"] as string | undefined,
        grpcMessage: trailers["grpc-message"] as string | undefined,
        body: body.length >= 5 ? body.subarray(5) : body,
        error: error ?? (stream.rstCode !== constants.NGHTTP2_NO_ERROR ? `reset with code ${stream.rstCode}` : undefined),
      });
    });
  });
}

async function connected(t: TestContext, endpoint: string): Promise<ClientHttp2Session> {
  const session = connect(`http://${endpoint}`);
  t.after(() => session.destroy());
  session.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("error", reject);
  });
  return session;
}

async function requestsAfterGoawayAreAnswered(t: TestContext, server: ServerProcess, authority: string | undefined): Promise<void> {
  // A first request decides the connection's path in the client listener (native, or the authority rewriter).
  const warmup = await connected(t, server.endpoint);
  const first = await unary(
    warmup,
    "/etcdserverpb.KV/Put",
    toBinary(PutRequestSchema, create(PutRequestSchema, { key: Buffer.from("goaway/k"), value: Buffer.from("0") })),
    authority,
  );
  assert.equal(first.grpcStatus, "0", `first put: ${first.error ?? first.grpcMessage}`);

  // Opened in the same turn as close(): nghttp2 puts the GOAWAY on the wire first.
  const put = unary(
    warmup,
    "/etcdserverpb.KV/Put",
    toBinary(PutRequestSchema, create(PutRequestSchema, { key: Buffer.from("goaway/k"), value: Buffer.from("1") })),
    authority,
  );
  const range = unary(
    warmup,
    "/etcdserverpb.KV/Range",
    toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: Buffer.from("goaway/k") })),
    authority,
  );
  warmup.close();
  const [putAnswer, rangeAnswer] = await Promise.all([put, range]);
  assert.equal(putAnswer.error, undefined, "the put sent after the client's GOAWAY is not refused");
  assert.equal(putAnswer.grpcStatus, "0", putAnswer.grpcMessage);
  assert.ok(fromBinary(PutResponseSchema, putAnswer.body).header!.revision > 0n);
  assert.equal(rangeAnswer.error, undefined, "the range sent after the client's GOAWAY is not refused");
  assert.equal(rangeAnswer.grpcStatus, "0", rangeAnswer.grpcMessage);

  // The put really was applied once, and the member still serves new connections.
  const again = await connected(t, server.endpoint);
  const check = await unary(
    again,
    "/etcdserverpb.KV/Range",
    toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: Buffer.from("goaway/k") })),
  );
  assert.equal(check.grpcStatus, "0", check.error ?? check.grpcMessage);
  const kv = fromBinary(RangeResponseSchema, check.body).kvs[0]!;
  assert.equal(Buffer.from(kv.value).toString(), "1");
  assert.equal(kv.version, 2n);
  again.close();
}

for (const path of ["native", "rewriter"] as const) {
  test(
    `requests a client opens as it closes the connection (GOAWAY first) are answered, not refused (${path} path)`,
    { timeout: 60_000 },
    async (t) => {
      const server = await startEtcdTs();
      t.after(() => server.stop());
      // etcdctl's `http://host:port` authority sends the connection through the listener's rewriter.
      await requestsAfterGoawayAreAnswered(t, server, path === "rewriter" ? `http://${server.endpoint}` : undefined);
    },
  );
}

test("etcd 3.4 answers requests a client opens as it closes the connection (reference)", { timeout: 60_000 }, async (t) => {
  const server = await startRealEtcd();
  t.after(() => server.stop());
  await requestsAfterGoawayAreAnswered(t, server, undefined);
});

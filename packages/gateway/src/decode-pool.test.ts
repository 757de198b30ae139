/**
 * Large request values decoded by a decode thread (decode-pool.ts) are answered exactly as the event loop's
 * own decode answers them — the same status and body, the same message forwarded — for valid and refused
 * bodies alike; the pool is bounded and stops with the gateway.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { Election } from "./lock-election.js";
import { PutRequestSchema, TxnRequestSchema } from "@etcd-ts/api";
import { createGateway, type Gateway } from "./gateway.js";
import { DecodePool, OFFLOAD_FROM_BYTES } from "./decode-pool.js";
import { startFakeMember, type FakeMember } from "./testing/fake-member.js";

interface Served {
  readonly gateway: Gateway;
  readonly server: Server;
  readonly port: number;
}

async function serve(target: string, decodeThreads: number | undefined): Promise<Served> {
  const gateway = createGateway({ target, decodeThreads });
  const server = createServer(gateway.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { gateway, server, port: (server.address() as AddressInfo).port };
}

async function post(port: number, path: string, body: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body, signal: AbortSignal.timeout(60_000) });
  return { status: response.status, body: await response.text() };
}

const byteArray = (n: number, last = ""): string => `[${Array.from({ length: n }, (_, i) => i % 256).join(",")}${last}]`;
const ops = (n: number, last = ""): string => `[${Array.from({ length: n }, () => `{"requestRange":{"key":"YQ=="}}`).join(",")}${last}]`;
const nestedTxn = (levels: number, padding: string): string =>
  `${`{"success":[{"requestTxn":`.repeat(levels - 1)}{"success":[${padding}]}${"}]}".repeat(levels - 1)}`;

/** Bodies over the threshold: each is decoded by a thread in one gateway, on the event loop in the other. */
const CASES: ReadonlyArray<{
  readonly name: string;
  readonly status: number;
  readonly path: string;
  readonly schema: DescMessage;
  readonly body: string;
}> = [
  {
    name: "put with a byte-array value",
    status: 200,
    path: "/v3/kv/put",
    schema: PutRequestSchema,
    body: `{"key":"Zm9v","value":${byteArray(40_000)}}`,
  },
  {
    name: "txn of many ops",
    status: 200,
    path: "/v3/kv/txn",
    schema: TxnRequestSchema,
    body: `{"success":${ops(5_000)},"failure":${ops(10)}}`,
  },
  {
    name: "server stream (observe)",
    status: 200,
    path: "/v3/election/observe",
    schema: Election.method.observe!.input,
    body: `{"name":"${"QUJD".repeat(30_000)}"}`,
  },
  {
    name: "byte out of range",
    status: 400,
    path: "/v3/kv/put",
    schema: PutRequestSchema,
    body: `{"key":"Zm9v","value":${byteArray(40_000, ",300")}}`,
  },
  { name: "bad base64", status: 400, path: "/v3/kv/put", schema: PutRequestSchema, body: `{"key":"${"QUJD".repeat(30_000)}!"}` },
  {
    name: "bad enum after many ops",
    status: 400,
    path: "/v3/kv/txn",
    schema: TxnRequestSchema,
    body: `{"success":${ops(5_000, `,{"requestRange":{"key":"YQ==","sort_order":"NOPE"}}`)}}`,
  },
  {
    name: "wrong type",
    status: 400,
    path: "/v3/kv/txn",
    schema: TxnRequestSchema,
    body: `{"success":${ops(5_000, `,{"requestRange":{"key":"YQ==","limit":1.5}}`)}}`,
  },
  {
    name: "txn nested too deep",
    status: 400,
    path: "/v3/kv/txn",
    schema: TxnRequestSchema,
    body: nestedTxn(600, " ".repeat(OFFLOAD_FROM_BYTES)),
  },
  {
    name: "txn nested deep but forwarded",
    status: 200,
    path: "/v3/kv/txn",
    schema: TxnRequestSchema,
    body: nestedTxn(40, " ".repeat(OFFLOAD_FROM_BYTES)),
  },
];

describe("large values decoded by a decode thread", () => {
  let member: FakeMember;
  let onLoop: Served;
  let offLoop: Served;
  before(async () => {
    member = await startFakeMember();
    onLoop = await serve(member.target, 0);
    offLoop = await serve(member.target, undefined);
  });
  after(async () => {
    for (const s of [onLoop, offLoop]) {
      s.server.closeAllConnections();
      await new Promise<void>((resolve) => s.server.close(() => resolve()));
      s.gateway.close();
    }
    await member.stop();
  });

  for (const c of CASES) {
    test(`${c.name}: same answer, same message forwarded`, async () => {
      assert.ok(Buffer.byteLength(c.body) >= OFFLOAD_FROM_BYTES);
      const calls = member.calls.length;
      const before = offLoop.gateway.stats().decodedOffLoop;
      const expected = await post(onLoop.port, c.path, c.body);
      assert.equal(expected.status, c.status, expected.body);
      assert.equal(onLoop.gateway.stats().decodedOffLoop, 0);
      const forwardedOnLoop = member.calls.slice(calls).flatMap((call) => call.requests);
      const middle = member.calls.length;
      const actual = await post(offLoop.port, c.path, c.body);
      assert.deepEqual(actual, expected);
      assert.equal(offLoop.gateway.stats().decodedOffLoop, before + 1, "decoded by the thread");
      const forwardedOffLoop = member.calls.slice(middle).flatMap((call) => call.requests);
      assert.equal(forwardedOffLoop.length, forwardedOnLoop.length);
      const binary = (m: Message): Uint8Array => toBinary(c.schema, m);
      assert.deepEqual(forwardedOffLoop.map(binary), forwardedOnLoop.map(binary));
    });
  }

  test("small values stay on the event loop", async () => {
    const before = offLoop.gateway.stats().decodedOffLoop;
    const answer = await post(offLoop.port, "/v3/kv/put", `{"key":"Zm9v","value":${byteArray(100)}}`);
    assert.equal(answer.status, 200);
    assert.equal(offLoop.gateway.stats().decodedOffLoop, before);
  });
});

describe("DecodePool", () => {
  const json = new TextEncoder().encode(`{"key":"Zm9v","value":[1,2,3]}`);

  test("beyond its queue a value is refused at once", async (t) => {
    const pool = new DecodePool({ threads: 1, queueLimit: 1 });
    t.after(() => pool.close());
    const outcomes = await Promise.all([1, 2, 3].map(() => pool.decode(PutRequestSchema, json)));
    assert.deepEqual(
      outcomes.map((o) => ("encoded" in o ? "encoded" : "busy" in o ? "busy" : "other")),
      ["encoded", "encoded", "busy"],
    );
    assert.equal(pool.decoded, 2);
  });

  test("close ends waiting and running values as failed, and later ones too", async () => {
    const pool = new DecodePool({ threads: 1, queueLimit: 4 });
    const pending = [pool.decode(PutRequestSchema, json), pool.decode(PutRequestSchema, json)];
    pool.close();
    for (const outcome of await Promise.all(pending)) assert.ok("failed" in outcome);
    assert.ok("failed" in (await pool.decode(PutRequestSchema, json)));
  });
});

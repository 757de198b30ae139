/**
 * Fuzzing the gateway's HTTP side with fast-check, against a stand-in member (testing/fake-member.ts): arbitrary
 * and near-valid JSON (etcd's field names with wrong types, huge numbers, bad base64, odd escapes), nesting
 * up to past Go's depth limit, truncated values, random bytes, several values per body, form posts with a
 * method override, odd grpc-timeout and binary metadata headers, bodies cut into chunks at random points,
 * and websocket sessions with random frames — on every route of routes.ts and a few that are not.
 *
 * Properties: every request gets an HTTP answer within a timeout; no answer is the gateway's own 500 for
 * an unexpected error (`Internal Server Error` in plain text); nothing is thrown or rejected at process
 * level (an uncaught exception or unhandled rejection ends a real server); and once every client is gone
 * no call is left in flight.
 *
 * Short by default (CI); `FUZZ_RUNS=<n>` runs n cases per property, `FUZZ_SEED=<s>` replays a seed.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import fc from "fast-check";
import type { DescMessage } from "@bufbuild/protobuf";
import { createGateway, type Gateway } from "./gateway.js";
import { startFakeMember, type FakeMember } from "./testing/fake-member.js";
import { ROUTES } from "./routes.js";
import { Opcode, encodeFrame } from "./websocket.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const ANSWER_TIMEOUT_MS = 15_000;

let member: FakeMember;
let gateway: Gateway;
let server: Server;
let port: number;
const uncaught: unknown[] = [];
const upgraded = new Set<Duplex>();
const onUncaught = (error: unknown): void => {
  uncaught.push(error);
};

before(async () => {
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  member = await startFakeMember();
  // A small limit, so that bodies over it are among the cases.
  gateway = createGateway({ target: member.target, maxRequestBytes: 48 * 1024 });
  server = createServer(gateway.handle);
  server.on("upgrade", gateway.handleUpgrade);
  server.on("upgrade", (_request, socket: Duplex) => upgraded.add(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  // Every client has gone: the gateway must have closed its side of each connection, upgraded ones too
  // (a socket nobody reads never sees its client leave).
  const closed = await Promise.race([
    new Promise<boolean>((resolve) => server.close(() => resolve(true))),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
  ]);
  const leftOpen = [...upgraded].filter((socket) => !socket.destroyed).length;
  for (const socket of upgraded) socket.destroy();
  gateway.close();
  await member.stop();
  // Whatever the last cases left behind has had time to fail by now.
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.off("uncaughtException", onUncaught);
  process.off("unhandledRejection", onUncaught);
  assert.deepEqual(uncaught.map(String), []);
  assert.ok(closed, `the gateway left ${leftOpen} upgraded connections open after their clients left`);
});

/** Every field name (proto and JSON spelling) of the routes' request messages, nested ones included. */
function fieldNames(): string[] {
  const names = new Set<string>();
  const seen = new Set<DescMessage>();
  const visit = (message: DescMessage): void => {
    if (seen.has(message)) return;
    seen.add(message);
    for (const field of message.fields) {
      names.add(field.name);
      names.add(field.jsonName);
      if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) visit(field.message);
    }
  };
  for (const route of ROUTES) visit(route.method.input);
  return [...names];
}

const enumNames = [
  "NONE",
  "ASCEND",
  "DESCEND",
  "KEY",
  "VERSION",
  "CREATE",
  "MOD",
  "VALUE",
  "EQUAL",
  "GREATER",
  "LESS",
  "NOT_EQUAL",
  "NOPUT",
  "NODELETE",
  "READ",
  "WRITE",
  "READWRITE",
  "NOSPACE",
  "GET",
  "ACTIVATE",
  "DEACTIVATE",
  "LEASE",
];

const hugeNumber = fc.oneof(
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.stringMatching(/^-?(0|[1-9][0-9]{0,300})(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,6})?$/),
  fc.constantFrom(
    "1e999999",
    "-0",
    "0.0",
    "1E-400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "255",
    "256",
    "-1",
  ),
);

const base64Like = fc.oneof(
  fc.base64String({ maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(..."ABCDxyz0189+/=-_ !".split(""), "\\r", "\\n", "\\u0041", "\\/"), maxLength: 40 }),
);

/** A JSON string literal, valid or with escapes Go treats specially (lone surrogates, bad UTF-8 bytes). */
const stringLiteral = fc.oneof(
  base64Like.map((s) => `"${s}"`),
  fc.string({ maxLength: 30 }).map((s) => JSON.stringify(s)),
  fc.constantFrom(
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\u00e9"',
    '"\\uD83D\\uDE00"',
    '"\u00ff\u0000"',
    '""',
    ...enumNames.map((n) => `"${n}"`),
  ),
  hugeNumber.map((n) => `"${n}"`),
);

const fieldName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...fieldNames()) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

const leaf = fc.oneof(hugeNumber, stringLiteral, fc.constantFrom("true", "false", "null"));

const { value: jsonValue } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 5 }).map((items) => `[${items.join(",")}]`),
  object: fc
    .array(fc.tuple(fieldName, tie("value"), fc.constantFrom("", " ", "\n\t")), { maxLength: 6 })
    .map((entries) => `{${entries.map(([k, v, space]) => `${space}${JSON.stringify(k)}${space}:${v}`).join(",")}}`),
}));

/** Nesting from shallow to past Go's limit of 10000, closed or cut short. */
const deepNesting = fc
  .record({
    depth: fc.integer({ min: 1, max: 12_000 }),
    kind: fc.constantFrom("[", '{"a":', '{"success":[{"request_txn":', "mixed"),
    closed: fc.boolean(),
  })
  .map(({ depth, kind, closed }) => {
    const opens: string[] = [];
    const closes: string[] = [];
    for (let i = 0; i < depth; i++) {
      const k = kind === "mixed" ? (i % 2 === 0 ? "[" : '{"a":') : kind;
      opens.push(k);
      closes.push(k === "[" ? "]" : k === '{"a":' ? "}" : "}]}");
    }
    return `{"key":"YQ==","x":${opens.join("")}1${closed ? closes.reverse().join("") : ""}}`;
  });

const textBody = fc.oneof(
  { weight: 6, arbitrary: jsonValue },
  { weight: 2, arbitrary: deepNesting },
  { weight: 2, arbitrary: fc.array(jsonValue, { minLength: 2, maxLength: 4 }).map((values) => values.join("\n")) },
  { weight: 2, arbitrary: fc.tuple(jsonValue, fc.nat()).map(([v, cut]) => v.slice(0, cut % (v.length + 1))) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", " ", "null", "{}", "[]", '{"key":"YQ=="}', '{"create_request":{"key":"YQ=="}}', '{"ID":"1"}'),
  },
  // Over the 48 KiB limit: a long string or long leading whitespace.
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 120_000 }).map((n) => `{"key":"${"QUFB".repeat(n / 4)}"}`) },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 100_000 }).map((n) => `${" ".repeat(n)}{}`) },
);

const body = fc.oneof(
  { weight: 8, arbitrary: textBody.map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    arbitrary: fc.tuple(textBody, fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([t, junk]) => Buffer.concat([Buffer.from(t), junk])),
  },
);

const path = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...ROUTES.map((r) => r.path)) },
  { weight: 2, arbitrary: fc.constantFrom(...ROUTES.map((r) => r.path.replace("/v3/", "/v3beta/"))) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "/v3",
      "/v3/",
      "/v3/kv/range:verb",
      "/v3/kv/../kv/range",
      "/v3//kv/range",
      "/v3/kv/range?x=1",
      "/v3alpha/kv/range",
      "/health",
      "/%zz",
      "/v3/nope",
    ),
  },
);

const headerSets = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Record<string, string>>({}) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Record<string, string>>(
      { "content-type": "application/x-www-form-urlencoded", "x-http-method-override": "GET" },
      { "content-type": "application/x-www-form-urlencoded", "x-http-method-override": "POST" },
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((t) => ({ "grpc-timeout": t.replace(/[^\x21-\x7e]/g, "") })) },
  { weight: 1, arbitrary: fc.constantFrom("1S", "100m", "2H", "5u", "-1S", "99999999999H", "0n").map((t) => ({ "grpc-timeout": t })) },
  { weight: 1, arbitrary: base64Like.map((v) => ({ "grpc-metadata-x-bin": v.replace(/[^\x21-\x7e]/g, ""), authorization: "Bearer x" })) },
);

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** One request on its own connection, its body written in pieces; resolves with the whole answer. */
function send(method: string, target: string, headers: Record<string, string>, payload: Buffer, cuts: number[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer in ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    const req = httpRequest({ host: "127.0.0.1", port, method, path: target, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      const done = (): void => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "", body: Buffer.concat(chunks).toString() });
      };
      res.on("end", done);
      // A connection the gateway closes mid-answer (an oversized body) still answered: its status came.
      res.on("error", done);
      res.on("aborted", done);
    });
    req.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    const points = [...new Set(cuts.map((c) => c % (payload.length + 1)))].sort((a, b) => a - b);
    let at = 0;
    const writeNext = (): void => {
      const next = points.shift();
      if (next === undefined) {
        req.end(payload.subarray(at));
        return;
      }
      req.write(payload.subarray(at, next));
      at = next;
      setImmediate(writeNext);
    };
    writeNext();
  });
}

/** The gateway's answer to an unexpected error of its own: the one thing that must never come back. */
function isInternalFailure(answer: Answer): boolean {
  return answer.status === 500 && answer.contentType.startsWith("text/plain") && answer.body === "Internal Server Error\n";
}

test("every request on every route gets an HTTP answer, never an internal failure", { timeout: 3_600_000 }, async (t) => {
  let runs = 0;
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(
      path,
      fc.oneof(
        { weight: 12, arbitrary: fc.constant("POST") },
        { weight: 1, arbitrary: fc.constantFrom("GET", "PUT", "OPTIONS", "DELETE") },
      ),
      headerSets,
      body,
      fc.array(fc.nat(), { maxLength: 4 }),
      async (target, method, headers, payload, cuts) => {
        runs++;
        let answer: Answer;
        try {
          answer = await send(method, target, headers, payload, cuts);
        } catch (error) {
          // The gateway may close the connection of an oversized body while it is still being written;
          // anything else is no answer.
          if (payload.length > 48 * 1024 && /EPIPE|ECONNRESET/.test(String(error))) return;
          throw error;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(answer.status >= 200 && answer.status < 600, `status ${answer.status}`);
        assert.ok(!isInternalFailure(answer), `internal failure for ${method} ${target}: ${payload.subarray(0, 200).toString()}`);
        assert.deepEqual(uncaught, []);
      },
    ),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  t.diagnostic(`${runs} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  await waitForNoCalls();
});

/** A masked client frame (RFC 6455), optionally with a wrong length, unmasked or unfinished. */
const frame = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(textBody, fc.integer({ min: 0, max: 0xffffffff }))
      .map(([text, mask]) => clientFrame(Opcode.text, Buffer.from(text), mask)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.uint8Array({ maxLength: 512 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffffffff }))
      .map(([p, op, mask]) => clientFrame(op, Buffer.from(p), mask)),
  },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((mask) => clientFrame(Opcode.close, Buffer.from([3, 0xe8]), mask)) },
);

function clientFrame(opcode: number, payload: Buffer, mask: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32BE(mask >>> 0);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  const plain = encodeFrame(opcode & 0x0f, masked);
  const headerLength = plain.length - masked.length;
  plain[1] = plain[1]! | 0x80;
  return Buffer.concat([plain.subarray(0, headerLength), key, plain.subarray(headerLength)]);
}

test("websocket sessions with arbitrary frames on every route leave the gateway serving", { timeout: 3_600_000 }, async (t) => {
  let sessions = 0;
  await fc.assert(
    fc.asyncProperty(path, fc.array(frame, { maxLength: 6 }), fc.boolean(), async (target, frames, bearer) => {
      sessions++;
      const socket = connect(port, "127.0.0.1");
      let received = "";
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
      });
      socket.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      const protocol = bearer ? "Sec-WebSocket-Protocol: Bearer, token\r\n" : "";
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${protocol}\r\n`,
      );
      const deadline = Date.now() + ANSWER_TIMEOUT_MS;
      while (!received.includes("\r\n\r\n") && !socket.destroyed && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 2));
      assert.match(received, /^HTTP\/1\.1 \d{3} /, `no answer to the handshake on ${target}`);
      for (const f of frames) {
        if (socket.destroyed) break;
        socket.write(f);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
      socket.destroy();
      await closed;
      assert.deepEqual(uncaught, []);
    }),
    { numRuns: Math.max(10, Math.floor(RUNS / 2)), seed: SEED, endOnFailure: true },
  );
  t.diagnostic(`${sessions} websocket sessions`);
  await waitForNoCalls();
  // Still serving.
  const answer = await send("POST", "/v3/kv/range", {}, Buffer.from('{"key":"YQ=="}'), []);
  assert.equal(answer.status, 200);
});

async function waitForNoCalls(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (gateway.stats().calls > 0 || gateway.stats().streams > 0) {
    if (Date.now() > deadline) assert.fail(`calls left in flight: ${JSON.stringify(gateway.stats())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

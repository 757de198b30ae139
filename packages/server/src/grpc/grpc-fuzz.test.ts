// Fuzzing the gRPC surface of a member: every method of every etcd service, taken from the service
// descriptors (a new method is fuzzed without touching this file), called over a real grpc-js client
// with arbitrary bytes, with structurally valid messages whose fields are arbitrary, and with such
// messages' bytes damaged. Properties:
// - every call ends with a status before the client's deadline (the member never leaves a call hanging);
// - no handler fails with an unexpected error (a TypeError/RangeError surfacing as UNKNOWN);
// - every response the member sends decodes as the method's response type;
// - the member keeps running, its heap does not grow with the number of calls, and afterwards it
//   serves a put and a get.
//
// Short by default; FUZZ_RUNS=<n> runs n batches (FUZZ_SEED=<n> replays a seed).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary, type DescField, type DescMessage, type DescService } from "@bufbuild/protobuf";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  Auth,
  Cluster,
  KV,
  Lease,
  Maintenance,
  MemberAddRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  StatusRequestSchema,
  StatusResponseSchema,
  AlarmResponseSchema,
  Watch,
} from "@etcd-ts/api";
import {
  Client,
  Metadata,
  credentials,
  status as grpcStatus,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { fuzzParameters, heapAfterGc, recordingLogger, startFuzzMember, type FuzzMember } from "../testing/fuzz-member.js";

/** A call that has no status after this long is a hang. */
const CALL_DEADLINE_MS = 20_000;
/** How long a stream is kept open (reading what the member sends) before the client cancels it. */
const STREAM_OPEN_MS = 150;

/** Every service of etcd's v3 API: the fuzzer covers each of their methods. */
const SERVICES: readonly DescService[] = [KV, Watch, Lease, Cluster, Maintenance, Auth];

interface Target {
  readonly service: DescService;
  readonly method: DescService["methods"][number];
  readonly path: string;
}

const TARGETS: readonly Target[] = SERVICES.flatMap((service) =>
  service.methods.map((method) => ({ service, method, path: `/${service.typeName}/${method.name}` })),
);

// ---- arbitrary messages from descriptors ---------------------------------------------------------

/** Values that mean something to the member: its own ID, small revisions, leases it may hold. */
const interesting = { memberId: 0n, leaseIds: [] as bigint[] };

const smallKeys = fc.constantFrom(..."a b c foo foo1 fop \0 \xff".split(" ").map((s) => new TextEncoder().encode(s)), new Uint8Array(0));
const bytesArb = fc.oneof(
  { weight: 3, arbitrary: smallKeys },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: 5000 }) },
);
const int64Arb = fc.oneof(
  fc.bigInt({ min: -3n, max: 40n }),
  fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, 2n ** 31n, 9_000_000_000n),
  fc.constant(null).map(() => interesting.memberId),
  fc.constant(null).map(() => interesting.leaseIds[0] ?? 7n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const uint64Arb = int64Arb.map((n) => (n < 0n ? -n : n) & (2n ** 64n - 1n));

/** ScalarType numbers of protobuf (descriptor.proto). */
function scalarArb(scalar: number): fc.Arbitrary<unknown> {
  switch (scalar) {
    case 1: // double
    case 2: // float
      return fc.double({ noNaN: false });
    case 3: // int64
    case 16: // sfixed64
    case 18: // sint64
      return int64Arb;
    case 4: // uint64
    case 6: // fixed64
      return uint64Arb;
    case 5: // int32
    case 15: // sfixed32
    case 17: // sint32
      return fc.oneof(fc.integer({ min: -3, max: 40 }), fc.integer());
    case 7: // fixed32
    case 13: // uint32
      return fc.oneof(fc.nat(40), fc.nat());
    case 8:
      return fc.boolean();
    case 9: // string
      return fc.oneof(fc.constantFrom("", "a", "n1", "http://127.0.0.1:1", "http://x", "foo"), fc.string({ maxLength: 30 }));
    case 12:
      return bytesArb;
    default:
      return fc.constant(undefined);
  }
}

function enumArb(values: readonly { number: number }[]): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...values.map((v) => v.number)) },
    { weight: 1, arbitrary: fc.integer({ min: -2, max: 100 }) },
  );
}

function fieldArb(field: DescField, depth: number): fc.Arbitrary<unknown> | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return scalarArb(field.scalar);
    case "enum":
      return enumArb(field.enum.values);
    case "message":
      return depth <= 0 ? undefined : messageInitArb(field.message, depth - 1);
    case "list": {
      const item =
        field.listKind === "scalar"
          ? scalarArb(field.scalar)
          : field.listKind === "enum"
            ? enumArb(field.enum.values)
            : depth <= 0
              ? undefined
              : messageInitArb(field.message, depth - 1);
      return item === undefined ? undefined : fc.array(item, { maxLength: 4 });
    }
    case "map":
      return undefined;
  }
}

const messageArbs = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** An init object for `create(desc, …)`: each field present or not, with arbitrary values; one case of each oneof. */
function messageInitArb(desc: DescMessage, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const key = `${desc.typeName}@${depth}`;
  const cached = messageArbs.get(key);
  if (cached !== undefined) return cached;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const cases = member.fields.flatMap((f) => {
        const arb = fieldArb(f, depth);
        return arb === undefined ? [] : [arb.map((value) => ({ case: f.localName, value }))];
      });
      if (cases.length > 0) parts[member.localName] = fc.oneof(...cases);
    } else {
      const arb = fieldArb(member, depth);
      if (arb !== undefined) parts[member.localName] = arb;
    }
  }
  const arb = fc.record(parts, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
  messageArbs.set(key, arb);
  return arb;
}

/** The request bytes of one call: a valid message, a damaged one, or arbitrary bytes. */
function requestBytesArb(target: Target): fc.Arbitrary<Uint8Array> {
  const valid = messageInitArb(target.method.input, 3).map((init) => {
    try {
      return toBinary(target.method.input, create(target.method.input, init as never));
    } catch {
      // A field value the encoder refuses (an int32 out of range, say): send the empty message.
      return toBinary(target.method.input, create(target.method.input));
    }
  });
  const damaged = fc
    .tuple(valid, fc.array(fc.record({ at: fc.nat(), op: fc.nat(3), byte: fc.nat(255) }), { minLength: 1, maxLength: 4 }))
    .map(([bytes, edits]) => {
      let out = Buffer.from(bytes);
      for (const e of edits) {
        const at = out.length === 0 ? 0 : e.at % out.length;
        if (e.op === 0 && out.length > 0) out[at] = e.byte;
        else if (e.op === 1) out = Buffer.concat([out.subarray(0, at), Buffer.from([e.byte]), out.subarray(at)]);
        else if (e.op === 2) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
        else out = out.subarray(0, at);
      }
      return new Uint8Array(out);
    });
  return fc.oneof(
    { weight: 5, arbitrary: valid },
    { weight: 3, arbitrary: damaged },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/**
 * A MemberAdd that decodes as a voter is sent as a learner: etcd's strict reconfiguration check lets a
 * voter join a one-member cluster (its restore case), after which the cluster waits for the new member
 * to start and serves no write, correctly, which would hide everything the fuzzer tries after it.
 */
function keepQuorum(call: Call): Call {
  if (call.target.path !== "/etcdserverpb.Cluster/MemberAdd") return call;
  try {
    const request = fromBinary(MemberAddRequestSchema, call.messages[0]!);
    if (request.isLearner) return call;
    request.isLearner = true;
    return { ...call, messages: [toBinary(MemberAddRequestSchema, request)] };
  } catch {
    return call;
  }
}

interface Call {
  readonly target: Target;
  readonly messages: readonly Uint8Array[];
}

const callArb: fc.Arbitrary<Call> = fc.constantFrom(...TARGETS).chain((target) =>
  fc.record({
    target: fc.constant(target),
    messages: fc.array(requestBytesArb(target), { minLength: 1, maxLength: target.method.methodKind === "bidi_streaming" ? 4 : 1 }),
  }),
);

// ---- the member and a raw client ----------------------------------------------------------------

const logger = recordingLogger();
const unexpected = logger.unexpected;

const identity = (b: Buffer): Buffer => b;
const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

interface Outcome {
  readonly code: grpcStatus;
  readonly details: string;
  readonly responses: readonly Buffer[];
}

/** Makes one call with raw bytes; resolves with its status. Never rejects. */
function rawCall(client: Client, call: Call): Promise<Outcome> {
  const { method } = call.target;
  const deadline = Date.now() + CALL_DEADLINE_MS;
  const responses: Buffer[] = [];
  return new Promise((resolve) => {
    const finish = (error: Partial<ServiceError> | null, details?: string) =>
      resolve({ code: error?.code ?? grpcStatus.OK, details: error?.details ?? details ?? "", responses });
    if (method.methodKind === "unary") {
      client.makeUnaryRequest(
        call.target.path,
        identity,
        identity,
        toBuffer(call.messages[0]!),
        new Metadata(),
        { deadline },
        (error, response) => {
          if (response !== undefined) responses.push(response);
          finish(error);
        },
      );
      return;
    }
    let stream: ClientReadableStream<Buffer> | ClientDuplexStream<Buffer, Buffer>;
    if (method.methodKind === "server_streaming") {
      stream = client.makeServerStreamRequest(call.target.path, identity, identity, toBuffer(call.messages[0]!), new Metadata(), {
        deadline,
      });
    } else {
      const duplex = client.makeBidiStreamRequest(call.target.path, identity, identity, new Metadata(), { deadline });
      for (const message of call.messages) duplex.write(toBuffer(message));
      stream = duplex;
    }
    let settled = false;
    stream.on("data", (chunk: Buffer) => {
      if (responses.length < 64) responses.push(chunk);
    });
    stream.on("error", (error: ServiceError) => {
      if (!settled) finish(error);
      settled = true;
    });
    stream.on("status", (s: { code: grpcStatus; details: string }) => {
      if (!settled) finish({ code: s.code, details: s.details });
      settled = true;
    });
    // Streams stay open (a watch outlives its requests): read for a while, then cancel.
    setTimeout(() => stream.cancel(), STREAM_OPEN_MS);
  });
}

let fuzz: FuzzMember | undefined;
let client: Client;

/**
 * FUZZ_ENDPOINT=host:port (and FUZZ_PID=<pid>) aims the fuzzer at a member running elsewhere, e.g. the
 * built binary: its resident memory (from /proc) is sampled instead of this process' heap, and it must
 * still be running at the end.
 */
const EXTERNAL = process.env.FUZZ_ENDPOINT;
const EXTERNAL_PID = process.env.FUZZ_PID !== undefined ? Number(process.env.FUZZ_PID) : undefined;

function memoryInUse(): number {
  if (EXTERNAL_PID === undefined) return heapAfterGc();
  const status = readFileSync(`/proc/${EXTERNAL_PID}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

before(async () => {
  if (EXTERNAL === undefined) fuzz = await startFuzzMember(logger);
  client = new Client(EXTERNAL ?? fuzz!.clientAddress, credentials.createInsecure());
  const status = await typedUnary("/etcdserverpb.Maintenance/Status", StatusRequestSchema, StatusResponseSchema, {});
  interesting.memberId = status.header!.memberId;
});

after(async () => {
  client?.close();
  await fuzz?.stop();
});

function typedUnary<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
  init: Parameters<typeof create<I>>[1],
) {
  return new Promise<ReturnType<typeof fromBinary<O>>>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      toBuffer(toBinary(input, create(input, init))),
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (error, response) => (error ? reject(error) : resolve(fromBinary(output, response!))),
    );
  });
}

test(
  "fuzz: every gRPC method answers arbitrary and damaged requests with a status; the member lives on",
  { timeout: 3_600_000 },
  async (t) => {
    assert.ok(TARGETS.length >= 39, `${TARGETS.length} methods`);
    const codes = new Map<string, number>();
    const perMethod = new Map<string, number>();
    const details = new Map<string, number>();
    let calls = 0;
    // Warm up (first-call allocations, JIT) before the heap baseline.
    await rawCall(client, { target: TARGETS[0]!, messages: [new Uint8Array()] });
    const heapBefore = memoryInUse();
    const heapSamples: number[] = [];
    await fc.assert(
      fc.asyncProperty(fc.array(callArb, { minLength: 1, maxLength: 8 }), async (batch) => {
        const outcomes = await Promise.all(batch.map((c) => rawCall(client, keepQuorum(c))));
        outcomes.forEach((outcome, i) => {
          const { target } = batch[i]!;
          calls++;
          perMethod.set(target.path, (perMethod.get(target.path) ?? 0) + 1);
          const name = grpcStatus[outcome.code] ?? String(outcome.code);
          codes.set(name, (codes.get(name) ?? 0) + 1);
          // Timeouts name their method: on a healthy single member they need explaining.
          const where = outcome.code === grpcStatus.UNAVAILABLE ? ` (${target.method.name})` : "";
          const detail = `${name} ${outcome.details.replace(/\d+/g, "N").slice(0, 70)}${where}`;
          if (outcome.code !== grpcStatus.OK) details.set(detail, (details.get(detail) ?? 0) + 1);
          assert.notEqual(outcome.code, grpcStatus.DEADLINE_EXCEEDED, `${target.path} had no status after ${CALL_DEADLINE_MS} ms`);
          for (const response of outcome.responses) fromBinary(target.method.output, response);
          if (target.path === "/etcdserverpb.Lease/LeaseGrant" && outcome.code === grpcStatus.OK && outcome.responses[0] !== undefined) {
            const granted = fromBinary(target.method.output, outcome.responses[0]) as unknown as { ID: bigint };
            interesting.leaseIds.unshift(granted.ID);
            interesting.leaseIds.length = Math.min(interesting.leaseIds.length, 4);
          }
        });
        assert.deepEqual(unexpected, [], "handlers failed with unexpected errors");
        if (calls % 200 < batch.length) {
          heapSamples.push(memoryInUse());
          // Long runs report as they go (the test runner prints diagnostics only at the end).
          if (process.env.FUZZ_RUNS !== undefined)
            process.stderr.write(`grpc fuzz: ${calls} calls, memory ${(heapSamples.at(-1)! / 1024 / 1024).toFixed(1)} MB\n`);
        }
      }),
      fuzzParameters(120, 6000),
    );

    // A client may have raised an alarm (Maintenance.Alarm ACTIVATE is allowed, as in etcd): clear them.
    const alarms = await typedUnary("/etcdserverpb.Maintenance/Alarm", AlarmRequestSchema, AlarmResponseSchema, {
      action: AlarmRequest_AlarmAction.GET,
    });
    for (const alarm of alarms.alarms) {
      await typedUnary("/etcdserverpb.Maintenance/Alarm", AlarmRequestSchema, AlarmResponseSchema, {
        action: AlarmRequest_AlarmAction.DEACTIVATE,
        memberID: alarm.memberID,
        alarm: alarm.alarm,
      });
    }
    const key = new TextEncoder().encode("after-fuzz");
    await typedUnary("/etcdserverpb.KV/Put", PutRequestSchema, RangeResponseSchema, { key, value: key });
    const got = await typedUnary("/etcdserverpb.KV/Range", RangeRequestSchema, RangeResponseSchema, { key });
    assert.equal(Buffer.from(got.kvs[0]?.value ?? []).toString(), "after-fuzz");

    const heapAfter = memoryInUse();
    if (EXTERNAL_PID !== undefined) process.kill(EXTERNAL_PID, 0); // throws if the member exited
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    t.diagnostic(
      `${calls} calls over ${perMethod.size}/${TARGETS.length} methods; codes: ${[...codes].map(([k, v]) => `${k} ${v}`).join(", ")}`,
    );
    t.diagnostic(
      `unavailable: ${
        [...details]
          .filter(([k]) => k.startsWith("UNAVAILABLE"))
          .map(([k, v]) => `${v} ${k}`)
          .join("; ") || "none"
      }`,
    );
    t.diagnostic(
      `most frequent errors: ${[...details]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 25)
        .map(([k, v]) => `${v} ${k}`)
        .join("; ")}`,
    );
    t.diagnostic(
      `${EXTERNAL_PID === undefined ? "heap after GC" : "member RSS"}: ${mb(heapBefore)} MB before, ${mb(heapAfter)} MB after; samples every 200 calls: ${heapSamples.map(mb).join(" ")}`,
    );
    // Bounded: the member's state (keys, leases, members added as learners) grows a little with the
    // calls, but a leak per call would show as tens of MB over a long run.
    assert.ok(heapAfter - heapBefore < 96 * 1024 * 1024, `heap grew by ${mb(heapAfter - heapBefore)} MB`);
  },
);

// Fuzzing the raft stream on the peer port: length-prefixed frames of raft messages with arbitrary
// fields, damaged frames, arbitrary bytes and absurd length prefixes, POSTed to /raft/stream of a live
// member. Properties: every stream ends (answered, or dropped by the member) within a deadline; a length
// prefix is never a reason to buffer; the member keeps running and, once it has re-elected itself after
// whatever terms the frames claimed, serves a put and a get.
//
// Short by default; FUZZ_RUNS=<n> runs n streams (FUZZ_SEED=<n> replays a seed).

import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "@etcd-ts/api";
import { EntryType, MessageType, encodeMessage, type Message } from "@etcd-ts/raft";
import fc from "fast-check";
import { Cluster, MemberAddRequestSchema, grpcServiceDefinition, type MemberAddResponse } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import { fuzzParameters, heapAfterGc, recordingLogger, startFuzzMember, type FuzzMember } from "../testing/fuzz-member.js";
import { CLUSTER_ID_HEADER, FROM_HEADER, FrameReader, RAFT_STREAM_PATH } from "./transport.js";

const frame = (body: Uint8Array): Buffer => {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
};

describe("FrameReader", () => {
  test("splits frames however the chunks fall", () => {
    const bytes = Buffer.concat([frame(Buffer.from("one")), frame(Buffer.alloc(0)), frame(Buffer.alloc(5000, 7))]);
    for (const size of [1, 3, 4, 5, 7, 4096, bytes.length]) {
      const reader = new FrameReader(1 << 20);
      const frames: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) frames.push(...reader.push(bytes.subarray(at, at + size)));
      assert.deepEqual(
        frames.map((f) => f.length),
        [3, 0, 5000],
        `chunks of ${size}`,
      );
      assert.equal(frames[0]!.toString(), "one");
      assert.equal(reader.pendingBytes, 0);
    }
  });

  test("a length above the limit fails as soon as the prefix is read, before its bytes arrive", () => {
    const reader = new FrameReader(1024);
    assert.deepEqual(reader.push(frame(Buffer.alloc(1024))).length, 1);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(0xffffffff, 0);
    assert.deepEqual(reader.push(prefix.subarray(0, 3)), []);
    assert.throws(() => reader.push(prefix.subarray(3)), /raft frame of 4294967295 bytes exceeds the limit of 1024/);
  });
});

describe("fuzzing the raft stream of a live member", () => {
  const logger = recordingLogger();
  let fuzz: FuzzMember;
  let peer: URL;
  let clusterId: string;
  let localId: bigint;
  /** A learner added to the cluster (never started): the fuzzer speaks as it, a member the stream accepts. */
  let learnerId: bigint;

  before(async () => {
    fuzz = await startFuzzMember(logger);
    peer = new URL(RAFT_STREAM_PATH, fuzz.peerUrl);
    clusterId = fuzz.member.server.clusterId.toString(16);
    localId = fuzz.member.server.memberId;
    const Ctor = makeGenericClientConstructor(grpcServiceDefinition(Cluster), "Cluster");
    const cluster = new Ctor(fuzz.clientAddress, credentials.createInsecure()) as unknown as Record<
      string,
      (r: unknown, cb: (e: Error | null, r: MemberAddResponse) => void) => void
    > & { close(): void };
    const added = await new Promise<MemberAddResponse>((resolve, reject) =>
      cluster.MemberAdd!(create(MemberAddRequestSchema, { peerURLs: ["http://127.0.0.1:9"], isLearner: true }), (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
    cluster.close();
    learnerId = added.member!.ID;
  });
  after(async () => fuzz?.stop());

  /**
   * POSTs `chunks` as one raft stream. Resolves with "answered" (the member sent a status after the
   * body ended) or "dropped" (it closed the connection), or rejects after `deadlineMs`.
   */
  function stream(
    chunks: readonly Buffer[],
    options: { from?: string; deadlineMs?: number; keepWriting?: boolean } = {},
  ): Promise<{ outcome: "answered" | "dropped"; written: number }> {
    return new Promise((resolve, reject) => {
      let written = 0;
      let settled = false;
      const settle = (outcome: "answered" | "dropped") => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ outcome, written });
        req.destroy();
      };
      const req = request(peer, {
        method: "POST",
        headers: {
          "content-type": "application/octet-stream",
          [CLUSTER_ID_HEADER]: clusterId,
          [FROM_HEADER]: options.from ?? learnerId.toString(16),
        },
        agent: false,
      });
      const timer = setTimeout(() => {
        settled = true;
        req.destroy();
        reject(new Error(`the raft stream neither ended nor was dropped in ${options.deadlineMs ?? 5000} ms`));
      }, options.deadlineMs ?? 5000);
      req.on("response", (res) => {
        res.resume();
        settle("answered");
      });
      req.on("error", () => settle("dropped"));
      req.on("close", () => settle("dropped"));
      const writeAll = async () => {
        for (const chunk of chunks) {
          if (settled) return;
          written += chunk.length;
          if (!req.write(chunk)) await new Promise((r) => req.once("drain", r).once("close", r));
        }
        if (!options.keepWriting) req.end();
      };
      void writeAll();
    });
  }

  test("a huge length prefix drops the stream at once; nothing is buffered for it", async () => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(0xfffffff0, 0);
    const heapBefore = heapAfterGc();
    // 256 MiB would follow if the member kept reading; it must hang up long before.
    const chunks = [prefix, ...Array.from({ length: 256 }, () => Buffer.alloc(1024 * 1024, 1))];
    const { outcome, written } = await stream(chunks, { keepWriting: true, deadlineMs: 20_000 });
    assert.equal(outcome, "dropped");
    assert.ok(written < 128 * 1024 * 1024, `the member read ${written} bytes before dropping the stream`);
    assert.ok(heapAfterGc() - heapBefore < 32 * 1024 * 1024);
  });

  /** Puts until one succeeds (the member may first have to elect itself again). */
  async function putEventually(key: string): Promise<void> {
    const bytes = new TextEncoder().encode(key);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await fuzz.member.server.put(create(PutRequestSchema, { key: bytes, value: bytes }));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`no put: ${String(error)}; errors logged: ${logger.errors.join("; ")}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  test("a committed conf change entry that does not decode is applied as a no-op; the member goes on", async () => {
    // Speak as a leader of a later term (a member may, as in etcd) whose append matches the log's end.
    const status = fuzz.member.server.status();
    const term = Number(status.raftTerm);
    const last = Number(status.raftIndex);
    const forged: Message = {
      type: MessageType.App,
      to: localId,
      from: learnerId,
      term: term + 1,
      logTerm: term,
      index: last,
      entries: [{ term: term + 1, index: last + 1, type: EntryType.ConfChange, data: new Uint8Array([0x12, 0x05, 0x01]) }],
      commit: last + 1,
      reject: false,
      rejectHint: 0,
      context: new Uint8Array(0),
    };
    const { outcome } = await stream([frame(encodeMessage(forged))]);
    assert.equal(outcome, "answered");
    await putEventually("after-bad-conf-change");
    assert.ok(
      logger.errors.some((e) => /conf change does not decode/.test(e)),
      logger.errors.join("\n"),
    );
    assert.ok(fuzz.member.server.status().raftAppliedIndex > BigInt(last + 1));
  });

  const nodeId = fc.oneof(
    fc.constant(null).map(() => localId),
    fc.bigInt({ min: 0n, max: 5n }),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  );
  const self = fc.constant(null).map(() => localId);
  const learner = fc.constant(null).map(() => learnerId);
  const index = fc.oneof(fc.nat(20), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER));
  const entry = fc.record({
    term: fc.nat(20),
    index,
    type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange, 2, 7), // types outside the enum too, on purpose
    data: fc.uint8Array({ maxLength: 64 }),
  });
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- its entries' types lie outside the enum too
  const message: fc.Arbitrary<Message> = fc
    .record({
      type: fc.oneof(fc.constantFrom(...(Object.values(MessageType).filter((v) => typeof v === "number") as MessageType[]))),
      to: fc.oneof({ weight: 4, arbitrary: self }, { weight: 1, arbitrary: nodeId }),
      from: fc.oneof({ weight: 4, arbitrary: learner }, { weight: 1, arbitrary: nodeId }),
      term: fc.oneof(fc.nat(10), fc.nat()),
      logTerm: fc.nat(10),
      index,
      entries: fc.array(entry, { maxLength: 3 }),
      commit: index,
      reject: fc.boolean(),
      rejectHint: fc.nat(20),
      context: fc.uint8Array({ maxLength: 16 }),
      snapshot: fc.constant(undefined),
      // Most appends are well formed (contiguous entries after the index, terms in order), so they get
      // past the transport's checks into raft, the WAL and the appliers.
      wellFormed: fc.boolean(),
    })
    .map(({ wellFormed, ...m }) =>
      wellFormed && m.type === MessageType.App
        ? {
            ...m,
            entries: m.entries.map((e, i) => ({
              ...e,
              index: m.index + 1 + i,
              term: Math.min(m.term, Math.max(m.logTerm, m.entries[i - 1]?.term ?? 0, e.term)),
            })),
            logTerm: Math.min(m.logTerm, m.term),
          }
        : m,
    );
  const chunk = fc.oneof(
    { weight: 4, arbitrary: message.map((m) => frame(encodeMessage(m))) },
    {
      weight: 3,
      arbitrary: fc.tuple(message, fc.nat(), fc.nat(255)).map(([m, at, byte]) => {
        const bytes = frame(encodeMessage(m));
        bytes[4 + (at % Math.max(1, bytes.length - 4))] = byte;
        return bytes;
      }),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(0xffffffff, 0x7fffffff, 64 * 1024 * 1024 + 1, 100)
        .map((n) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])),
    },
  );

  test("fuzz: mutated frames end the stream cleanly and the member survives", { timeout: 3_600_000 }, async (t) => {
    const outcomes = { answered: 0, dropped: 0 };
    const heapBefore = heapAfterGc();
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { minLength: 1, maxLength: 6 }), async (chunks) => {
        const { outcome } = await stream(chunks);
        outcomes[outcome]++;
        assert.deepEqual(logger.unexpected, []);
      }),
      fuzzParameters(150, 5000),
    );
    // Frames may have claimed higher terms and other leaders: the member elects itself again.
    const server = fuzz.member.server;
    const key = new TextEncoder().encode("after-peer-fuzz");
    await putEventually("after-peer-fuzz");
    const got = await server.range(create(RangeRequestSchema, { key }));
    assert.equal(Buffer.from(got.kvs[0]!.value).toString(), "after-peer-fuzz");
    const grown = heapAfterGc() - heapBefore;
    t.diagnostic(
      `${outcomes.answered + outcomes.dropped} streams: ${outcomes.answered} answered after their end, ${outcomes.dropped} dropped by the member; heap +${(grown / 1024 / 1024).toFixed(1)} MB`,
    );
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${grown} bytes`);
  });
});

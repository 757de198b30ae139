// The bounds on what gRPC clients can make a member hold, each seen through its metric: streams per
// connection (--max-concurrent-streams), watchers per watch stream, the watch stream's send queue, and
// the keep-alive requests a LeaseKeepAlive stream has waiting.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Lease,
  LeaseGrantRequestSchema,
  LeaseKeepAliveRequestSchema,
  PutRequestSchema,
  ResponseHeaderSchema,
  Watch,
  WatchRequestSchema,
  grpcServiceDefinition,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type WatchResponse,
} from "@etcd-ts/api";
import {
  CANCEL_REASONS,
  DEFAULT_MAX_PENDING_RESPONSES,
  DEFAULT_MAX_WATCHERS_PER_STREAM,
  WatchableStore,
  watchableKVFromMvcc,
} from "@etcd-ts/watch";
import { openMvccStore } from "@etcd-ts/mvcc";
import { openMemoryBackend } from "@etcd-ts/storage";
import { credentials, makeGenericClientConstructor, type Client, type ClientDuplexStream } from "@grpc/grpc-js";
import { waitFor } from "@etcd-ts/test-support";
import { recordingLogger, startFuzzMember, type FuzzMember } from "../testing/fuzz-member.js";
import { LeaseService, MAX_PENDING_KEEPALIVES } from "./lease-service.js";
import { GrpcStreamStats } from "./stream-stats.js";
import { serveWatch } from "./watch-service.js";

type DuplexClient = Client &
  Record<string, (...args: unknown[]) => ClientDuplexStream<unknown, unknown>> &
  Record<string, (...args: unknown[]) => void>;

function client(service: typeof Watch | typeof Lease, address: string, ownConnection = false): DuplexClient {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  // A local subchannel pool gives the client a connection of its own.
  return new Ctor(
    address,
    credentials.createInsecure(),
    ownConnection ? { "grpc.use_local_subchannel_pool": 1 } : {},
  ) as unknown as DuplexClient;
}

const enc = (s: string) => new TextEncoder().encode(s);
const createWatch = (key: string) => create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc(key) } } });

async function metric(fuzz: FuzzMember, name: string): Promise<number> {
  const text = await (await fetch(`http://${fuzz.clientAddress}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is served`);
  return Number(line.split(" ")[1]);
}

/** Opens a watch stream, creates a watcher on `key` and resolves once the member answered `created`. */
function openWatch(
  c: DuplexClient,
  key: string,
): { stream: ClientDuplexStream<unknown, unknown>; created: Promise<WatchResponse>; responses: WatchResponse[] } {
  const stream = c.Watch!();
  const responses: WatchResponse[] = [];
  const created = new Promise<WatchResponse>((resolve, reject) => {
    stream.on("data", (r: WatchResponse) => {
      responses.push(r);
      if (r.created) resolve(r);
    });
    stream.on("error", reject);
  });
  stream.write(createWatch(key));
  return { stream, created, responses };
}

describe("gRPC stream bounds", () => {
  const logger = recordingLogger();
  let fuzz: FuzzMember;
  before(async () => {
    fuzz = await startFuzzMember(logger, { maxConcurrentStreams: 3 });
  });
  after(async () => fuzz?.stop());

  test("--max-concurrent-streams bounds the streams of one connection, not of the member", async () => {
    const first = client(Watch, fuzz.clientAddress, true);
    const open = [openWatch(first, "a"), openWatch(first, "b"), openWatch(first, "c")];
    await Promise.all(open.map((w) => w.created));
    await waitFor(async () => (await metric(fuzz, "etcd_ts_grpc_server_open_streams")) === 3, 15_000, "3 open streams", 50);
    assert.equal(await metric(fuzz, "etcd_debugging_mvcc_watch_stream_total"), 3);

    // A fourth stream on the same connection is not served while three are open...
    const fourth = openWatch(first, "d");
    fourth.created.catch(() => undefined);
    const early = await Promise.race([
      fourth.created.then(
        () => "served",
        () => "failed",
      ),
      new Promise((r) => setTimeout(() => r("waiting"), 1000)),
    ]);
    assert.notEqual(early, "served");
    assert.equal(await metric(fuzz, "etcd_ts_grpc_server_open_streams"), 3);

    // ...while another connection gets its own three.
    const second = client(Watch, fuzz.clientAddress, true);
    const other = openWatch(second, "e");
    await other.created;
    other.stream.cancel();

    for (const w of open) w.stream.cancel();
    fourth.stream.cancel();
    await waitFor(async () => (await metric(fuzz, "etcd_ts_grpc_server_open_streams")) === 0, 15_000, "streams closed", 50);
    assert.equal(await metric(fuzz, "etcd_debugging_mvcc_watch_stream_total"), 0);
    first.close();
    second.close();
  });

  test(
    "a watch stream holds at most DEFAULT_MAX_WATCHERS_PER_STREAM watchers; more creates are refused as etcd refuses a create",
    { timeout: 120_000 },
    async () => {
      const c = client(Watch, fuzz.clientAddress, true);
      const stream = c.Watch!();
      const refusals: WatchResponse[] = [];
      let created = 0;
      stream.on("data", (r: WatchResponse) => {
        if (r.canceled) refusals.push(r);
        else if (r.created) created++;
      });
      stream.on("error", () => undefined);
      for (let i = 0; i < DEFAULT_MAX_WATCHERS_PER_STREAM + 2; i++) stream.write(createWatch(`k${i}`));
      await waitFor(() => created + refusals.length === DEFAULT_MAX_WATCHERS_PER_STREAM + 2, 100_000, "every create answered", 50);
      assert.equal(created, DEFAULT_MAX_WATCHERS_PER_STREAM);
      assert.equal(refusals.length, 2);
      assert.deepEqual(
        { id: refusals[0]!.watchId, created: refusals[0]!.created, reason: refusals[0]!.cancelReason },
        { id: -1n, created: true, reason: CANCEL_REASONS.tooManyWatchers },
      );
      assert.equal(await metric(fuzz, "etcd_debugging_mvcc_watcher_total"), DEFAULT_MAX_WATCHERS_PER_STREAM);
      assert.equal(await metric(fuzz, "etcd_ts_watch_creates_refused_total"), 2);
      stream.cancel();
      await waitFor(async () => (await metric(fuzz, "etcd_debugging_mvcc_watcher_total")) === 0, 15_000, "watchers freed", 50);
      c.close();
    },
  );

  test("a watch client that stops reading costs a bounded send queue; it catches up afterwards", { timeout: 120_000 }, async () => {
    const c = client(Watch, fuzz.clientAddress, true);
    const { stream, created, responses } = openWatch(c, "q");
    // Watch the prefix "q" instead: a range create.
    await created;
    stream.pause();
    const events = 3000;
    const value = new Uint8Array(2048).fill(120);
    for (let i = 0; i < events; i++) await fuzz.member.server.put(create(PutRequestSchema, { key: enc("q"), value }));
    const queued = await metric(fuzz, "etcd_ts_watch_stream_queued_responses");
    assert.ok(queued <= DEFAULT_MAX_PENDING_RESPONSES + 1, `${queued} responses queued for a client that does not read`);
    stream.resume();
    let seen = 0;
    await waitFor(
      () => {
        seen = responses.reduce((n, r) => n + r.events.length, 0);
        return seen === events;
      },
      100_000,
      "every event delivered",
      50,
    );
    stream.cancel();
    c.close();
  });

  test("keep-alive streams are counted and every request is answered in order", { timeout: 120_000 }, async () => {
    const c = client(Lease, fuzz.clientAddress, true);
    const grant = await new Promise<LeaseGrantResponse>((resolve, reject) =>
      c.LeaseGrant!(create(LeaseGrantRequestSchema, { TTL: 60n }), (e: Error | null, r: LeaseGrantResponse) =>
        e ? reject(e) : resolve(r),
      ),
    );
    const stream = c.LeaseKeepAlive!();
    stream.on("error", () => undefined);
    const answers: LeaseKeepAliveResponse[] = [];
    stream.on("data", (r: LeaseKeepAliveResponse) => answers.push(r));
    const sent = 2000;
    for (let i = 0; i < sent; i++) stream.write(create(LeaseKeepAliveRequestSchema, { ID: grant.ID }));
    await waitFor(async () => (await metric(fuzz, "etcd_ts_lease_keepalive_streams")) === 1, 15_000, "one keep-alive stream", 50);
    await waitFor(() => answers.length === sent, 100_000, "every keep-alive answered", 50);
    assert.ok(answers.every((a) => a.ID === grant.ID && a.TTL > 0n));
    stream.end();
    await waitFor(async () => (await metric(fuzz, "etcd_ts_lease_keepalive_streams")) === 0, 15_000, "the stream closed", 50);
    assert.equal(await metric(fuzz, "etcd_ts_lease_keepalive_pending"), 0);
    c.close();
    assert.deepEqual(logger.unexpected, []);
  });
});

/** A stand-in for grpc-js' server duplex call: records pauses, writes; 'drain' and 'data' are emitted by the test. */
class FakeCall extends EventEmitter {
  paused = false;
  pauses = 0;
  written: unknown[] = [];
  writable = true;
  ended = false;
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  write(message: unknown): boolean {
    this.written.push(message);
    return this.writable;
  }
  end(): void {
    this.ended = true;
  }
}

test("a keep-alive stream stops reading once MAX_PENDING_KEEPALIVES requests wait, and waits for 'drain' to write on", async () => {
  const renewals: Array<() => void> = [];
  const etcd = {
    leaseRenew: () => new Promise<number>((resolve) => renewals.push(() => resolve(30))),
    header: () => undefined,
  };
  const stats = new GrpcStreamStats();
  const service = new LeaseService(etcd as never, recordingLogger(), stats);
  const call = new FakeCall();
  service.keepAlive(call as never);
  const tick = () => new Promise((r) => setImmediate(r));
  for (let i = 1; i <= 1000; i++) {
    call.emit("data", create(LeaseKeepAliveRequestSchema, { ID: 7n }));
    assert.equal(call.paused, i >= MAX_PENDING_KEEPALIVES, `after ${i} requests`);
  }
  assert.equal(stats.keepAliveStreams, 1);
  assert.equal(stats.keepAlivesPending, 1000);
  assert.equal(call.paused, true, "the stream stopped reading");
  assert.equal(call.pauses, 1);
  // grpc-js delivers nothing more while paused; answer the waiting ones.
  call.writable = false;
  await tick();
  renewals.shift()!();
  await tick();
  assert.equal(call.written.length, 1);
  // The write said "wait": no renewal runs until the call drains.
  await tick();
  assert.equal(renewals.length, 0);
  call.writable = true;
  call.emit("drain");
  for (let answered = 1; answered < 1000; answered++) {
    await tick();
    renewals.shift()!();
  }
  await tick();
  assert.equal(call.written.length, 1000);
  assert.equal(stats.keepAlivesPending, 0);
  assert.equal(call.paused, false, "reading again once half the bound is answered");
  call.emit("end");
  await tick();
  assert.equal(call.ended, true);
  call.emit("close");
  assert.equal(stats.keepAliveStreams, 0);
});

test("a watch stream stops reading while requests wait for the caller's credentials, not only while responses wait", async () => {
  let release!: () => void;
  const credentials = new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
  const etcd = {
    callerAuth: () => credentials,
    checkAuth: () => undefined,
    auth: { checkWatch: () => true },
    header: () => create(ResponseHeaderSchema, {}),
    config: { maxRequestBytes: 1024 },
  };
  const watchable = new WatchableStore(watchableKVFromMvcc(openMvccStore(openMemoryBackend())));
  const stats = new GrpcStreamStats();
  const call = new FakeCall();
  serveWatch(call as never, etcd as never, watchable, { stats });
  const requests = 3000;
  let pausedAt = 0;
  for (let i = 1; i <= requests; i++) {
    call.emit("data", createWatch(`k${i}`));
    if (call.paused && pausedAt === 0) pausedAt = i;
  }
  assert.ok(pausedAt > 0 && pausedAt <= 1100, `paused after ${pausedAt} unhandled requests`);
  release();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(call.written.length, requests, "every create answered once the credentials came");
  assert.equal(call.paused, false, "reading again");
  assert.equal(stats.watchers(), requests);
  call.emit("close");
  assert.equal(stats.watchStreamCount, 0);
});

/**
 * Watch event latency (put → event on a watcher, measured by the client that put) and lease grant and
 * keep-alive throughput, etcd-ts against the real etcd 3.4 on the same machine, one server at a time,
 * the same grpc-js client for both. Writes the results into docs/performance.md (watch-lease-bench).
 *
 *   npm run build && npx tsx --conditions=source bench/watch-lease.ts [--seconds 5] [--engines sqlite,lmdb]
 */
import { create } from "@bufbuild/protobuf";
import {
  KV,
  Lease,
  Watch,
  LeaseGrantRequestSchema,
  LeaseKeepAliveRequestSchema,
  PutRequestSchema,
  WatchCreateRequestSchema,
  WatchRequestSchema,
  grpcServiceDefinition,
  type WatchResponse,
} from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { cpus } from "node:os";
import { startEtcdTs, startRealEtcd, writePerformanceSection, type BenchServer } from "./servers.js";

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1] ?? "");
const SECONDS = Number(args.get("seconds") ?? 5);
const ENGINES = (args.get("engines") ?? "sqlite,lmdb").split(",");
const CLIENTS = 100;

type Unary = (req: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void;
function client<T>(service: Parameters<typeof grpcServiceDefinition>[0], endpoint: string, i = 0): T {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Ctor(endpoint, credentials.createInsecure(), { "bench.conn": i }) as unknown as T;
}
const unary = (fn: Unary, req: unknown) => new Promise<unknown>((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r))));

/** Median and p99 of put → event latency over `SECONDS`, one put at a time. */
async function watchLatency(endpoint: string): Promise<{ p50: number; p99: number }> {
  const kv = client<{ Put: Unary; close(): void }>(KV, endpoint);
  const w = client<{ Watch: () => ClientDuplexStream<unknown, WatchResponse>; close(): void }>(Watch, endpoint);
  const stream = w.Watch();
  stream.on("error", () => undefined); // cancelled at the end
  let onEvent: (() => void) | undefined;
  stream.on("data", (r: WatchResponse) => {
    if (r.events.length > 0) onEvent?.();
  });
  stream.write(
    create(WatchRequestSchema, {
      requestUnion: { case: "createRequest", value: create(WatchCreateRequestSchema, { key: Buffer.from("lat") }) },
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  const samples: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    const seen = new Promise<void>((r) => (onEvent = r));
    const t0 = process.hrtime.bigint();
    kv.Put.call(kv, create(PutRequestSchema, { key: Buffer.from("lat"), value: Buffer.alloc(256, 0x61) }), () => undefined);
    await seen;
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  stream.cancel();
  w.close();
  kv.close();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length / 2)] ?? 0, p99: samples[Math.floor(samples.length * 0.99)] ?? 0 };
}

async function leaseGrants(endpoint: string): Promise<number> {
  const conns = Array.from({ length: 8 }, (_, i) => client<{ LeaseGrant: Unary; close(): void }>(Lease, endpoint, i));
  let done = 0;
  let running = true;
  const worker = async (i: number) => {
    const c = conns[i % conns.length]!;
    while (running) {
      await unary(c.LeaseGrant.bind(c), create(LeaseGrantRequestSchema, { TTL: 60n })).then(
        () => done++,
        () => undefined,
      );
    }
  };
  const workers = Array.from({ length: CLIENTS }, (_, i) => worker(i));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  running = false;
  await Promise.all(workers);
  conns.forEach((c) => c.close());
  return done / SECONDS;
}

async function keepAlives(endpoint: string): Promise<number> {
  const lease = client<{ LeaseGrant: Unary; LeaseKeepAlive: () => ClientDuplexStream<unknown, unknown>; close(): void }>(Lease, endpoint);
  const granted = (await unary(lease.LeaseGrant.bind(lease), create(LeaseGrantRequestSchema, { TTL: 60n }))) as { ID: bigint };
  const streams = Array.from({ length: 8 }, () => lease.LeaseKeepAlive());
  let done = 0;
  let running = true;
  const pumps = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        let inFlight = 0;
        const send = () => {
          while (running && inFlight < CLIENTS / streams.length) {
            inFlight++;
            s.write(create(LeaseKeepAliveRequestSchema, { ID: granted.ID }));
          }
          if (!running && inFlight === 0) resolve();
        };
        s.on("data", () => {
          inFlight--;
          done++;
          send();
        });
        s.on("error", () => resolve());
        send();
      }),
  );
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rate = done / SECONDS;
  running = false;
  streams.forEach((s) => s.cancel());
  await Promise.race([Promise.all(pumps), new Promise((r) => setTimeout(r, 1000))]);
  lease.close();
  return rate;
}

interface Results {
  p50: number;
  p99: number;
  grants: number;
  keepAlives: number;
}

async function measure(server: BenchServer): Promise<Results> {
  const latency = await watchLatency(server.endpoint);
  const grants = await leaseGrants(server.endpoint);
  const keepAliveRate = await keepAlives(server.endpoint);
  const r = { p50: latency.p50, p99: latency.p99, grants, keepAlives: keepAliveRate };
  console.log(
    `${server.label.padEnd(18)} watch p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms, grants ${r.grants.toFixed(0)}/s, keep-alives ${r.keepAlives.toFixed(0)}/s`,
  );
  return r;
}

async function main(): Promise<void> {
  const ref = await startRealEtcd();
  const base = await measure(ref).finally(() => ref.stop());
  const ours = new Map<string, Results>();
  for (const engine of ENGINES) {
    const s = await startEtcdTs(engine);
    ours.set(engine, await measure(s).finally(() => s.stop()));
  }
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "-");
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores, Node ${process.version}, ${SECONDS} s per cell, one server at a time, the same grpc-js client. Latency: one put at a time, time until the watcher sees its event (lower is better; the ratio is etcd's latency over ours). Throughput: ${CLIENTS} concurrent grants; keep-alives pipelined on 8 streams.`,
    "",
    `| metric | etcd 3.4 | ${ENGINES.map((e) => `etcd-ts ${e} | ratio`).join(" | ")} |`,
    `| --- | ---: | ${ENGINES.map(() => "---: | ---:").join(" | ")} |`,
    `| watch latency p50 (ms) | ${base.p50.toFixed(2)} | ${ENGINES.map((e) => `${ours.get(e)!.p50.toFixed(2)} | ${ratio(base.p50, ours.get(e)!.p50)}×`).join(" | ")} |`,
    `| watch latency p99 (ms) | ${base.p99.toFixed(2)} | ${ENGINES.map((e) => `${ours.get(e)!.p99.toFixed(2)} | ${ratio(base.p99, ours.get(e)!.p99)}×`).join(" | ")} |`,
    `| lease grants/s | ${base.grants.toFixed(0)} | ${ENGINES.map((e) => `${ours.get(e)!.grants.toFixed(0)} | ${ratio(ours.get(e)!.grants, base.grants)}×`).join(" | ")} |`,
    `| lease keep-alives/s | ${base.keepAlives.toFixed(0)} | ${ENGINES.map((e) => `${ours.get(e)!.keepAlives.toFixed(0)} | ${ratio(ours.get(e)!.keepAlives, base.keepAlives)}×`).join(" | ")} |`,
    "",
    "Reproduce: `npm run build && npx tsx --conditions=source bench/watch-lease.ts` (options: `--seconds N --engines sqlite,lmdb`).",
  ];
  const table = lines.join("\n");
  console.log("\n" + table);
  writePerformanceSection("watch-lease-bench", "Watch latency and lease throughput against etcd 3.4", table);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

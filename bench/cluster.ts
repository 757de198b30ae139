/**
 * A 3-member etcd-ts cluster against a 3-member real etcd 3.4 cluster on the same machine, one cluster at
 * a time, every member on 127.0.0.1: puts and linearizable ranges of 256-byte values at 1, 100 and 1000
 * concurrent clients (the clients' gRPC connections spread over the three members, as etcd's benchmark
 * tool does with several endpoints, so followers forward), then the time to a new leader after kill -9
 * of the leader: from the kill until a put through another member succeeds (median of a few trials; the
 * killed member is restarted and the cluster healthy again between trials). Writes the table into
 * docs/performance.md between the cluster-bench markers.
 *
 *   npm run build && npx tsx --conditions=source bench/cluster.ts [--seconds 3] [--clients 1,100,1000] [--trials 5] [--engine sqlite]
 */
import { create } from "@bufbuild/protobuf";
import { KV, PutRequestSchema, grpcServiceDefinition } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { runKvLoad } from "./load.js";
import { startEtcdTsCluster, startRealEtcdCluster, waitClusterHealthy, writePerformanceSection, type BenchCluster } from "./servers.js";

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1] ?? "");
const SECONDS = Number(args.get("seconds") ?? 3);
const CLIENTS = (args.get("clients") ?? "1,100,1000").split(",").map(Number);
const TRIALS = Number(args.get("trials") ?? 5);
const ENGINE = args.get("engine") ?? "sqlite";
const VALUE = Buffer.alloc(256, 0x78);
const KEYSPACE = 10_000;
/** Connections the clients share, round-robin over the members. */
const CONNECTIONS = 9;

type Workload = "put" | "range-linearizable";
const WORKLOADS: Workload[] = ["put", "range-linearizable"];

type Unary = (req: unknown, options: { deadline?: number }, cb: (e: ServiceError | null, r: unknown) => void) => void;
type KvClient = Client & { Put: Unary; Range: Unary };

function kvClient(endpoint: string, tag: number): KvClient {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(KV), "KV");
  return new Ctor(endpoint, credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "bench.conn": tag,
  }) as unknown as KvClient;
}

/** Operations per second of `clients` concurrent clients over SECONDS, after 1 s of warm-up. */
function load(endpoints: readonly string[], workload: Workload, clients: number): Promise<number> {
  return runKvLoad({ endpoints, workload, clients, seconds: SECONDS, keyspace: KEYSPACE, value: VALUE, connections: CONNECTIONS });
}

function leaderIndex(cluster: BenchCluster): number {
  for (const [i, m] of cluster.members.entries()) {
    const out =
      spawnSync("etcdctl", ["--endpoints", m.endpoint, "endpoint", "status", "-w", "json", "--command-timeout=1s"], { encoding: "utf8" })
        .stdout ?? "";
    const leader = /"leader":(\d+)/.exec(out)?.[1];
    if (leader !== undefined && leader === /"member_id":(\d+)/.exec(out)?.[1]) return i;
  }
  return -1;
}

/**
 * Milliseconds from kill -9 of the leader until a put through another member succeeds. Puts are retried
 * back to back with a short deadline, so the measurement resolves to a few tens of milliseconds.
 */
async function failover(cluster: BenchCluster): Promise<number> {
  let leader = -1;
  for (let i = 0; i < 50 && leader < 0; i++) {
    leader = leaderIndex(cluster);
    if (leader < 0) await new Promise((r) => setTimeout(r, 200));
  }
  if (leader < 0) throw new Error(`${cluster.label}: no leader`);
  const survivor = cluster.members[(leader + 1) % cluster.members.length]!;
  const client = kvClient(survivor.endpoint, 100);
  const put = create(PutRequestSchema, { key: Buffer.from("failover"), value: VALUE });
  const tryPut = () => new Promise<boolean>((r) => client.Put(put, { deadline: Date.now() + 300 }, (e) => r(e === null)));
  if (!(await tryPut())) throw new Error(`${cluster.label}: a put before the kill failed`);
  const killed = cluster.members[leader]!;
  const start = performance.now();
  await killed.kill();
  for (;;) {
    if (await tryPut()) break;
    if (performance.now() - start > 30_000) throw new Error(`${cluster.label}: no put succeeded within 30 s of the kill`);
  }
  const elapsed = performance.now() - start;
  client.close();
  killed.restart();
  await waitClusterHealthy(cluster.members.map((m) => m.endpoint));
  await new Promise((r) => setTimeout(r, 1500)); // let the restarted member catch up and the streams settle
  return elapsed;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface ClusterResults {
  readonly throughput: Map<string, number>;
  readonly failovers: number[];
}

async function measure(cluster: BenchCluster): Promise<ClusterResults> {
  const endpoints = cluster.members.map((m) => m.endpoint);
  const throughput = new Map<string, number>();
  await load(endpoints, "put", 100); // seed the keyspace so ranges hit keys
  for (const workload of WORKLOADS) {
    for (const clients of CLIENTS) {
      const rate = await load(endpoints, workload, clients);
      throughput.set(`${workload}@${clients}`, rate);
      console.log(`${cluster.label.padEnd(22)} ${workload.padEnd(20)} clients=${String(clients).padEnd(5)} ${rate.toFixed(0)} ops/s`);
    }
  }
  const failovers: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    const ms = await failover(cluster);
    failovers.push(ms);
    console.log(`${cluster.label.padEnd(22)} failover trial ${trial + 1}: ${ms.toFixed(0)} ms`);
  }
  return { throughput, failovers };
}

async function main(): Promise<void> {
  const etcd = await startRealEtcdCluster();
  const reference = await measure(etcd).finally(() => etcd.stop());
  const ours = await startEtcdTsCluster(ENGINE);
  const results = await measure(ours).finally(() => ours.stop());

  const lines: string[] = [];
  lines.push(
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}: three members on 127.0.0.1 per cluster, one cluster at a time, etcd's default heartbeat (100 ms) and election timeout (1 s) for both, etcd-ts on ${ENGINE}. Throughput: ${SECONDS} s per cell after 1 s warm-up, 256-byte values over ${KEYSPACE} keys, ${CONNECTIONS} gRPC connections spread over the three members, the same grpc-js load generator for both. Failover: kill -9 of the leader, then puts through another member back to back (300 ms deadline each) until one succeeds; median of ${TRIALS} trials, the killed member restarted in between.`,
  );
  lines.push("");
  lines.push(`| workload | clients | etcd 3.4 ×3 ops/s | etcd-ts ×3 ops/s | ratio |`);
  lines.push(`| --- | ---: | ---: | ---: | ---: |`);
  for (const workload of WORKLOADS) {
    for (const clients of CLIENTS) {
      const key = `${workload}@${clients}`;
      const base = reference.throughput.get(key) ?? 0;
      const value = results.throughput.get(key) ?? 0;
      lines.push(
        `| ${workload} | ${clients} | ${base.toFixed(0)} | ${value.toFixed(0)} | ${base > 0 ? (value / base).toFixed(2) : "-"}× |`,
      );
    }
  }
  const refFailover = median(reference.failovers);
  const ourFailover = median(results.failovers);
  const trials = (values: readonly number[]) => values.map((v) => v.toFixed(0)).join(", ");
  lines.push("");
  lines.push(`| leader failover after kill -9 | etcd 3.4 ×3 | etcd-ts ×3 | ratio (etcd's time / ours) |`);
  lines.push(`| --- | ---: | ---: | ---: |`);
  lines.push(
    `| median ms until a put succeeds | ${refFailover.toFixed(0)} | ${ourFailover.toFixed(0)} | ${(refFailover / ourFailover).toFixed(2)}× |`,
  );
  lines.push(`| trials (ms) | ${trials(reference.failovers)} | ${trials(results.failovers)} | |`);
  lines.push("");
  lines.push(
    "Reproduce: `npm run build && npx tsx --conditions=source bench/cluster.ts` (options: `--seconds N --clients 1,100,1000 --trials N --engine sqlite|lmdb`).",
  );
  const table = lines.join("\n");
  console.log("\n" + table);
  writePerformanceSection("cluster-bench", "A 3-member cluster against etcd 3.4", table);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

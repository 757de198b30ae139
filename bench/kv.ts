/**
 * KV throughput, etcd-ts against the real etcd 3.4 on the same machine, one server at a time (so neither
 * competes with the other for the two cores), driven by the same grpc-js load generator:
 * puts, serializable ranges and linearizable ranges of 256-byte values with 1, 100 and 1000 concurrent
 * clients. Writes the ratios into docs/performance.md between the kv-bench markers.
 *
 *   npm run build && npx tsx --conditions=source bench/kv.ts [--seconds 5] [--clients 1,100,1000] [--engines sqlite,lmdb]
 */
import { cpus } from "node:os";
import { runKvLoad } from "./load.js";
import { startEtcdTs, startRealEtcd, writePerformanceSection, type BenchServer } from "./servers.js";
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1] ?? "");
const SECONDS = Number(args.get("seconds") ?? 5);
const CLIENTS = (args.get("clients") ?? "1,100,1000").split(",").map(Number);
const ENGINES = (args.get("engines") ?? "sqlite,lmdb").split(",");
const VALUE = Buffer.alloc(256, 0x78);
const KEYSPACE = 10_000;
/** Connections the clients share (etcd's benchmark tool defaults to a handful of conns for many clients). */
const CONNECTIONS = 8;

type Workload = "put" | "range-serializable" | "range-linearizable";
const WORKLOADS: Workload[] = ["put", "range-serializable", "range-linearizable"];

function load(endpoint: string, workload: Workload, clients: number): Promise<number> {
  return runKvLoad({
    endpoints: [endpoint],
    workload,
    clients,
    seconds: SECONDS,
    keyspace: KEYSPACE,
    value: VALUE,
    connections: CONNECTIONS,
  });
}

async function measure(server: BenchServer): Promise<Map<string, number>> {
  const results = new Map<string, number>();
  // seed the keyspace so ranges hit keys
  await load(server.endpoint, "put", 100).catch(() => 0);
  for (const workload of WORKLOADS) {
    for (const clients of CLIENTS) {
      const rate = await load(server.endpoint, workload, clients);
      results.set(`${workload}@${clients}`, rate);
      console.log(`${server.label.padEnd(18)} ${workload.padEnd(20)} clients=${String(clients).padEnd(5)} ${rate.toFixed(0)} ops/s`);
    }
  }
  return results;
}

async function main(): Promise<void> {
  const ref = await startRealEtcd();
  const refResults = await measure(ref).finally(() => ref.stop());
  const ours = new Map<string, Map<string, number>>();
  for (const engine of ENGINES) {
    const s = await startEtcdTs(engine);
    ours.set(engine, await measure(s).finally(() => s.stop()));
  }

  const lines: string[] = [];
  lines.push(
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}, ${SECONDS} s per cell after 1 s warm-up, 256-byte values over ${KEYSPACE} keys, ${CONNECTIONS} gRPC connections shared by the clients, one server at a time, the same grpc-js load generator for both.`,
  );
  lines.push("");
  lines.push(`| workload | clients | etcd 3.4 ops/s | ${ENGINES.map((e) => `etcd-ts ${e} ops/s | ratio`).join(" | ")} |`);
  lines.push(`| --- | ---: | ---: | ${ENGINES.map(() => "---: | ---:").join(" | ")} |`);
  for (const workload of WORKLOADS) {
    for (const clients of CLIENTS) {
      const key = `${workload}@${clients}`;
      const base = refResults.get(key) ?? 0;
      const cells = ENGINES.map((e) => {
        const v = ours.get(e)?.get(key) ?? 0;
        return `${v.toFixed(0)} | ${base > 0 ? (v / base).toFixed(2) : "-"}×`;
      });
      lines.push(`| ${workload} | ${clients} | ${base.toFixed(0)} | ${cells.join(" | ")} |`);
    }
  }
  lines.push("");
  lines.push(
    "Reproduce: `npm run build && npx tsx --conditions=source bench/kv.ts` (options: `--seconds N --clients 1,100,1000 --engines sqlite,lmdb`).",
  );
  const table = lines.join("\n");
  console.log("\n" + table);

  writePerformanceSection("kv-bench", "KV throughput against etcd 3.4", table);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

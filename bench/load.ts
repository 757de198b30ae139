/**
 * The KV load generator every benchmark uses: `clients` concurrent loops, each keeping one request in
 * flight, over a few shared gRPC connections, 1 s of warm-up, then operations per second over `seconds`.
 */
import { create } from "@bufbuild/protobuf";
import { KV, PutRequestSchema, RangeRequestSchema, grpcServiceDefinition } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";

export type KvWorkload = "put" | "range-serializable" | "range-linearizable";

export interface KvLoadOptions {
  /** Connections go to these endpoints in turn. */
  readonly endpoints: readonly string[];
  readonly workload: KvWorkload;
  readonly clients: number;
  readonly seconds: number;
  readonly keyspace: number;
  readonly value: Buffer;
  /** gRPC connections the clients share (etcd's benchmark tool uses a handful for many clients). */
  readonly connections: number;
}

type Unary = (req: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void;
type KvClient = Client & { Put: Unary; Range: Unary };

export async function runKvLoad(o: KvLoadOptions): Promise<number> {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(KV), "KV");
  const conns = Array.from(
    { length: o.connections },
    (_, i) =>
      new Ctor(o.endpoints[i % o.endpoints.length]!, credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "bench.conn": i,
      }) as unknown as KvClient,
  );
  const puts = Array.from({ length: o.keyspace }, (_, i) => create(PutRequestSchema, { key: Buffer.from(`bench/${i}`), value: o.value }));
  const ranges = Array.from({ length: o.keyspace }, (_, i) =>
    create(RangeRequestSchema, { key: Buffer.from(`bench/${i}`), serializable: o.workload === "range-serializable" }),
  );
  let done = 0;
  let errors = 0;
  let running = true;
  const worker = async (w: number) => {
    const conn = conns[w % conns.length]!;
    let i = w;
    while (running) {
      const k = i++ % o.keyspace;
      await new Promise<void>((r) => {
        const cb = (e: ServiceError | null) => {
          if (e) errors++;
          else done++;
          r();
        };
        if (o.workload === "put") conn.Put(puts[k], cb);
        else conn.Range(ranges[k], cb);
      });
    }
  };
  const workers = Array.from({ length: o.clients }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, 1000));
  const start = process.hrtime.bigint();
  const before = done;
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const ops = done - before;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  running = false;
  await Promise.all(workers);
  conns.forEach((c) => c.close());
  if (errors > 0) console.error(`  (${errors} errors)`);
  return ops / elapsed;
}

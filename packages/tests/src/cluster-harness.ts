import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema, type PutResponse, type RangeResponse } from "@etcd-ts/api";
import { Metadata, status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { healthy, sameHashKV, sameRevision, sleep, waitFor } from "@etcd-ts/test-support";
import { makeClient, services, type UnaryClient } from "./grpc-client.js";
import { checkLinearizable, describeResult, type KvOperation } from "./linearizability.js";
import { startClusterMember, type ClusterMemberSpec, type ServerProcess } from "./processes.js";

/**
 * What the cluster tests under faults share (cluster-faults.test.ts, soak.test.ts): concurrent grpc-js
 * clients whose history is recorded for the linearizability checker, starting a cluster, and the checks
 * a fault test ends with.
 */

const DEFAULT_KEYS = ["fault/a", "fault/b", "fault/c", "fault/d"];
/** A client's deadline per request: beyond it a put is ambiguous (it may still commit later). */
export const REQUEST_DEADLINE_MS = 2000;

/** An operation as recorded: which member the client talked to, for the partition's assertions. */
export interface RecordedOperation extends KvOperation {
  readonly endpoint: string;
}

export interface AcknowledgedPut {
  readonly key: string;
  readonly value: string;
  readonly revision: bigint;
}

/**
 * Where a workload's clients get the auth token they send, per member (with auth on). `invalidate` is
 * called when a member refuses the token (a restarted member has forgotten its simple tokens).
 */
export interface ClientCredentials {
  metadata(endpoint: string): Promise<Metadata>;
  invalidate(endpoint: string): void;
}

type Deadlined = (
  request: unknown,
  metadata: Metadata,
  options: { deadline: number },
  callback: (error: ServiceError | null, response: unknown) => void,
) => void;

export function callWithDeadline<Res>(
  client: UnaryClient,
  method: string,
  request: unknown,
  metadata: Metadata = new Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as unknown as Deadlined;
    fn.call(client, request, metadata, { deadline: Date.now() + REQUEST_DEADLINE_MS }, (error, response) =>
      error ? reject(error) : resolve(response as Res),
    );
  });
}

/**
 * Whether a call failed before its request left this process (no connection to a stopped member): such
 * a put certainly never happened. Anything else may have reached the member, so a put that errs
 * otherwise stays ambiguous; keeping the ambiguous ones few keeps a failing check's search small.
 */
export function neverSent(error: ServiceError): boolean {
  // Not every error that reaches here came from grpc-js with its details filled in.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  return error.code === grpcStatus.UNAVAILABLE && /ECONNREFUSED|No connection established/.test(error.details ?? "");
}

/** The member refused the token before proposing anything (etcd checks it when the request arrives). */
export function invalidToken(error: ServiceError): boolean {
  return error.code === grpcStatus.UNAUTHENTICATED && error.details === "etcdserver: invalid auth token";
}

/** Client numbers are unique in this process, so values written by different workloads never repeat. */
let nextClientNumber = 0;

export interface WorkloadOptions {
  /**
   * `readsOnly` with `serializable`: clients that only read, from the member's own state — not
   * linearizable, which the checker must notice when that member is cut off.
   */
  readonly readsOnly?: boolean;
  readonly serializable?: boolean;
  /** The keys to pick from, asked before each operation (default: four fixed keys). */
  readonly keys?: () => readonly string[];
  /** With auth on: the token each request carries. */
  readonly credentials?: ClientCredentials;
}

/**
 * Concurrent clients, one operation at a time each, on the given members: puts of unique values and
 * linearizable gets on a few keys. Every operation lands in `history` with its invocation and return
 * times (one clock, this process's); a put that errs is ambiguous, a get that errs observed nothing.
 */
export class Workload {
  readonly history: RecordedOperation[] = [];
  readonly acknowledged: AcknowledgedPut[] = [];
  private running = true;
  private readonly clients: Promise<void>[] = [];
  private readonly connections: UnaryClient[] = [];
  private seed = 7;

  constructor(
    t: TestContext | undefined,
    endpoints: readonly string[],
    clientsPerEndpoint: number,
    private readonly options: WorkloadOptions = {},
  ) {
    // A test that fails midway must not leave clients running (they would keep the process alive).
    t?.after(() => this.stop());
    for (const endpoint of endpoints) {
      for (let i = 0; i < clientsPerEndpoint; i++) {
        const kv = makeClient(services.KV, endpoint);
        this.connections.push(kv);
        this.clients.push(this.run(nextClientNumber++, endpoint, kv));
      }
    }
  }

  /** Deterministic per run, so a failure can be reasoned about from the log. */
  private random(): number {
    this.seed = (this.seed * 1103515245 + 12345) % 2 ** 31;
    return this.seed / 2 ** 31;
  }

  private async run(client: number, endpoint: string, kv: UnaryClient): Promise<void> {
    let seq = 0;
    const credentials = this.options.credentials;
    while (this.running) {
      const keys = this.options.keys?.() ?? DEFAULT_KEYS;
      const key = keys[Math.floor(this.random() * keys.length)]!;
      const isPut = this.options.readsOnly !== true && this.random() < 0.5;
      const value = `c${client}-${seq++}`;
      let metadata: Metadata;
      try {
        metadata = credentials === undefined ? new Metadata() : await credentials.metadata(endpoint);
      } catch {
        await sleep(200); // the member is down or has no leader: nothing was sent
        continue;
      }
      const invokedAt = performance.now();
      try {
        if (isPut) {
          const r = await callWithDeadline<PutResponse>(
            kv,
            "Put",
            create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }),
            metadata,
          );
          this.history.push({ client, kind: "put", key, value, invokedAt, returnedAt: performance.now(), outcome: "ok", endpoint });
          this.acknowledged.push({ key, value, revision: r.header!.revision });
        } else {
          const r = await callWithDeadline<RangeResponse>(
            kv,
            "Range",
            create(RangeRequestSchema, { key: Buffer.from(key), serializable: this.options.serializable === true }),
            metadata,
          );
          const read = r.kvs[0] === undefined ? null : Buffer.from(r.kvs[0].value).toString();
          this.history.push({ client, kind: "get", key, value: read, invokedAt, returnedAt: performance.now(), outcome: "ok", endpoint });
        }
      } catch (error) {
        const refusedToken = invalidToken(error as ServiceError);
        if (refusedToken) credentials?.invalidate(endpoint);
        const outcome = neverSent(error as ServiceError) || refusedToken ? "failed" : "ambiguous";
        this.history.push({
          client,
          kind: isPut ? "put" : "get",
          key,
          value: isPut ? value : null,
          invokedAt,
          returnedAt: performance.now(),
          outcome,
          endpoint,
        });
        await sleep(50); // no leader or no quorum for a moment: clients back off, as etcd's do
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.clients);
    for (const c of this.connections) c.close();
  }

  acknowledgedSince(since: number): number {
    return this.history.filter((o) => o.outcome === "ok" && o.kind === "put" && o.invokedAt >= since).length;
  }
}

export async function startCluster(
  t: TestContext,
  specs: readonly ClusterMemberSpec[],
  engineOf: (name: string) => "sqlite" | "lmdb" = () => "sqlite",
  extraArgs: readonly string[] = [],
): Promise<Map<string, ServerProcess>> {
  const members = new Map<string, ServerProcess>();
  t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
  const started = await Promise.all(
    specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false, engine: engineOf(s.name), extraArgs })),
  );
  started.forEach((m, i) => members.set(specs[i]!.name, m));
  await waitFor(async () => (await Promise.all(started.map((m) => healthy(m.endpoint)))).every(Boolean), 30_000, "cluster healthy");
  return members;
}

/** Checks the recorded history for linearizability, with a one-line summary on the console. */
export function checkHistory(workload: Workload, label = "history"): void {
  const result = checkLinearizable(workload.history);
  const ops = workload.history.length;
  const ambiguous = workload.history.filter((o) => o.outcome === "ambiguous").length;
  const failed = workload.history.filter((o) => o.outcome === "failed").length;
  console.log(
    `${label}: ${ops} operations (${workload.acknowledged.length} acknowledged puts, ${ambiguous} ambiguous, ${failed} never sent); ${describeResult(result)}`,
  );
  assert.equal(result.status, "ok", describeResult(result));
}

/**
 * The checks every fault test ends with: the history is linearizable; once the members agree on the
 * revision, every acknowledged put is on every member at its revision; HashKV is equal everywhere.
 */
export async function checkOutcome(workload: Workload, endpoints: readonly string[]): Promise<void> {
  checkHistory(workload);
  assert.ok(workload.acknowledged.length > 20, `enough acknowledged puts (${workload.acknowledged.length})`);

  await waitFor(() => sameRevision(endpoints), 30_000, "every member at the same revision");
  for (const endpoint of endpoints) {
    const kv = makeClient(services.KV, endpoint);
    const missing: string[] = [];
    const queue = [...workload.acknowledged];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let put = queue.pop(); put !== undefined; put = queue.pop()) {
          const r = await callWithDeadline<RangeResponse>(
            kv,
            "Range",
            create(RangeRequestSchema, { key: Buffer.from(put.key), revision: put.revision, serializable: true }),
          );
          const found = r.kvs[0];
          if (found === undefined || Buffer.from(found.value).toString() !== put.value || found.modRevision !== put.revision) {
            missing.push(`${put.key}=${put.value}@${put.revision}`);
          }
        }
      }),
    );
    kv.close();
    assert.deepEqual(missing, [], `acknowledged puts missing on ${endpoint}`);
  }
  await waitFor(() => sameHashKV(endpoints), 20_000, "HashKV equal on every member");
}

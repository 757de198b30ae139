import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema, type PutResponse, type RangeResponse } from "@etcd-ts/api";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { makeClient, services, type UnaryClient } from "./grpc-client.js";
import { checkLinearizable, describeResult, type KvOperation } from "./linearizability.js";
import { execFile } from "node:child_process";
import { clusterSpecs, freePort, startClusterMember, type ClusterMemberSpec, type ServerProcess } from "./processes.js";

/**
 * Faults on a 3-member cluster of processes on 127.0.0.1 while concurrent grpc-js clients put and read
 * (linearizable Range) a few keys through different members. Every test records the clients' history and
 * checks it for linearizability, then checks that every acknowledged write is on every member and that
 * HashKV is equal everywhere:
 * - all members restarted at once (SIGTERM, and kill -9) while idle, then writes continue;
 * - kill -9 of the leader under load, then the old leader restarted;
 * - a network partition made with TCP proxies on the peer URLs: an isolated minority cannot commit or
 *   serve linearizable reads, the majority can, and after healing everyone converges;
 * - a learner added, started, promoted and a voter removed while writes go on;
 * - and, to show the recording and the checker can fail: serializable reads from a cut-off follower.
 */

const KEYS = ["fault/a", "fault/b", "fault/c", "fault/d"];
/** A client's deadline per request: beyond it a put is ambiguous (it may still commit later). */
const REQUEST_DEADLINE_MS = 2000;

/** An operation as recorded: which member the client talked to, for the partition's assertions. */
interface RecordedOperation extends KvOperation {
  readonly endpoint: string;
}

interface AcknowledgedPut {
  readonly key: string;
  readonly value: string;
  readonly revision: bigint;
}

type Deadlined = (request: unknown, options: { deadline: number }, callback: (error: ServiceError | null, response: unknown) => void) => void;

function callWithDeadline<Res>(client: UnaryClient, method: string, request: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method] as unknown as Deadlined;
    fn.call(client, request, { deadline: Date.now() + REQUEST_DEADLINE_MS }, (error, response) => (error ? reject(error) : resolve(response as Res)));
  });
}

/**
 * Whether a call failed before its request left this process (no connection to a stopped member): such
 * a put certainly never happened. Anything else may have reached the member, so a put that errs
 * otherwise stays ambiguous; keeping the ambiguous ones few keeps a failing check's search small.
 */
function neverSent(error: ServiceError): boolean {
  return error.code === grpcStatus.UNAVAILABLE && /ECONNREFUSED|No connection established/.test(error.details ?? "");
}

/** Client numbers are unique in this process, so values written by different workloads never repeat. */
let nextClientNumber = 0;

/**
 * Concurrent clients, one operation at a time each, on the given members: puts of unique values and
 * linearizable gets on a few keys. Every operation lands in `history` with its invocation and return
 * times (one clock, this process's); a put that errs is ambiguous, a get that errs observed nothing.
 */
class Workload {
  readonly history: RecordedOperation[] = [];
  readonly acknowledged: AcknowledgedPut[] = [];
  private running = true;
  private readonly clients: Promise<void>[] = [];
  private readonly connections: UnaryClient[] = [];
  private seed = 7;

  /**
   * `readsOnly` with `serializable`: clients that only read, from the member's own state — not
   * linearizable, which the checker must notice when that member is cut off.
   */
  constructor(
    t: TestContext | undefined,
    endpoints: readonly string[],
    clientsPerEndpoint: number,
    private readonly options: { readsOnly?: boolean; serializable?: boolean } = {},
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
    while (this.running) {
      const key = KEYS[Math.floor(this.random() * KEYS.length)]!;
      const isPut = this.options.readsOnly !== true && this.random() < 0.5;
      const value = `c${client}-${seq++}`;
      const invokedAt = performance.now();
      try {
        if (isPut) {
          const r = await callWithDeadline<PutResponse>(kv, "Put", create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }));
          this.history.push({ client, kind: "put", key, value, invokedAt, returnedAt: performance.now(), outcome: "ok", endpoint });
          this.acknowledged.push({ key, value, revision: r.header!.revision });
        } else {
          const r = await callWithDeadline<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: Buffer.from(key), serializable: this.options.serializable === true }));
          const read = r.kvs[0] === undefined ? null : Buffer.from(r.kvs[0].value).toString();
          this.history.push({ client, kind: "get", key, value: read, invokedAt, returnedAt: performance.now(), outcome: "ok", endpoint });
        }
      } catch (error) {
        const outcome = neverSent(error as ServiceError) ? "failed" : "ambiguous";
        this.history.push({ client, kind: isPut ? "put" : "get", key, value: isPut ? value : null, invokedAt, returnedAt: performance.now(), outcome, endpoint });
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

async function startCluster(t: TestContext, specs: readonly ClusterMemberSpec[]): Promise<Map<string, ServerProcess>> {
  const members = new Map<string, ServerProcess>();
  t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
  const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false })));
  started.forEach((m, i) => members.set(specs[i]!.name, m));
  await waitFor(async () => (await Promise.all(started.map((m) => healthy(m.endpoint)))).every(Boolean), 30_000, "cluster healthy");
  return members;
}

/**
 * The checks every fault test ends with: the history is linearizable; once the members agree on the
 * revision, every acknowledged put is on every member at its revision; HashKV is equal everywhere.
 */
async function checkOutcome(workload: Workload, endpoints: readonly string[]): Promise<void> {
  const result = checkLinearizable(workload.history);
  const ops = workload.history.length;
  const ambiguous = workload.history.filter((o) => o.outcome === "ambiguous").length;
  const failed = workload.history.filter((o) => o.outcome === "failed").length;
  console.log(`history: ${ops} operations (${workload.acknowledged.length} acknowledged puts, ${ambiguous} ambiguous, ${failed} never sent); ${describeResult(result)}`);
  assert.equal(result.status, "ok", describeResult(result));
  assert.ok(workload.acknowledged.length > 20, `enough acknowledged puts (${workload.acknowledged.length})`);

  await waitFor(() => sameRevision(endpoints), 30_000, "every member at the same revision");
  for (const endpoint of endpoints) {
    const kv = makeClient(services.KV, endpoint);
    const missing: string[] = [];
    const queue = [...workload.acknowledged];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let put = queue.pop(); put !== undefined; put = queue.pop()) {
          const r = await callWithDeadline<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: Buffer.from(put.key), revision: put.revision, serializable: true }));
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

for (const variant of ["SIGTERM", "SIGKILL"] as const) {
  test(`all members restarted at once (${variant}) while idle, then writes continue`, { timeout: 90_000 }, async (t) => {
    const specs = await clusterSpecs(3);
    const members = await startCluster(t, specs);
    const endpoints = specs.map((s) => members.get(s.name)!.endpoint);

    const before = new Workload(t, endpoints, 2);
    await sleep(2500);
    await before.stop();
    await Promise.all([...members.values()].map((m) => (variant === "SIGTERM" ? m.stop() : m.kill())));
    for (const m of members.values()) assert.notEqual(m.child.exitCode ?? m.child.signalCode, null);

    const restarted = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false })));
    restarted.forEach((m, i) => members.set(specs[i]!.name, m));
    await waitFor(async () => (await Promise.all(restarted.map((m) => healthy(m.endpoint)))).every(Boolean), 30_000, "cluster healthy after the restart");

    const after = new Workload(t, endpoints, 2);
    await sleep(2500);
    await after.stop();
    // One history across the restart: reads after it must see the writes before it.
    const workload = new Workload(undefined, [], 0);
    workload.history.push(...before.history, ...after.history);
    workload.acknowledged.push(...before.acknowledged, ...after.acknowledged);
    assert.ok(after.acknowledgedSince(0) > 0, "writes continue after the restart");
    await checkOutcome(workload, endpoints);
  });
}

test("kill -9 of the leader under load: a new leader serves linearizable reads and writes, the old one rejoins", { timeout: 90_000 }, async (t) => {
  const specs = await clusterSpecs(3);
  const members = await startCluster(t, specs);
  const endpoints = specs.map((s) => members.get(s.name)!.endpoint);
  const workload = new Workload(t, endpoints, 2);
  await sleep(2000);

  const names = specs.map((s) => s.name);
  const leaders = await Promise.all(names.map((n) => isLeader(members.get(n)!.endpoint)));
  const leaderName = names[leaders.indexOf(true)]!;
  assert.ok(leaderName !== undefined, "a leader before the kill");
  await members.get(leaderName)!.kill();
  const killedAt = performance.now();
  await waitFor(() => workload.acknowledgedSince(killedAt) > 20, 15_000, "writes continue through the survivors");
  await sleep(1000);

  const restarted = await startClusterMember(specs, leaderName, { waitHealthy: false });
  members.set(leaderName, restarted);
  const restartedAt = performance.now();
  await waitFor(() => healthy(restarted.endpoint), 30_000, "the old leader is healthy again");
  await waitFor(() => workload.history.some((o) => o.invokedAt > restartedAt && o.outcome === "ok" && o.kind === "get" && o.endpoint === restarted.endpoint), 20_000, "reads through the restarted member succeed");
  await sleep(1000);
  await workload.stop();
  await checkOutcome(workload, endpoints);
});

/**
 * A TCP proxy in front of one member's peer listener. The member advertises the proxy's port, so every
 * raft stream to it passes here; streams from it to the others pass their proxies, and are told apart by
 * the `x-raft-from` header the peer transport sends with each stream (read before forwarding).
 * Connections without that header (lease or promotion forwarding) are let through: raft's traffic is what
 * a partition must cut.
 */
class PeerProxy {
  private readonly server: Server;
  private readonly connections = new Set<{ from: string | undefined; sockets: Socket[] }>();
  /** Refuse every connection to this member (it is the isolated one). */
  private refuseAll = false;
  /** Refuse raft streams from this member ID (hex). */
  private refuseFrom: string | undefined;

  constructor(readonly port: number, private readonly targetPort: number) {
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
  }

  close(): Promise<void> {
    this.cut(() => true);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  isolate(): void {
    this.refuseAll = true;
    this.cut(() => true);
  }

  refuseStreamsFrom(memberIdHex: string): void {
    this.refuseFrom = memberIdHex;
    this.cut((from) => from === memberIdHex);
  }

  heal(): void {
    this.refuseAll = false;
    this.refuseFrom = undefined;
  }

  private cut(which: (from: string | undefined) => boolean): void {
    for (const c of this.connections) {
      if (!which(c.from)) continue;
      for (const s of c.sockets) s.destroy();
      this.connections.delete(c);
    }
  }

  private accept(socket: Socket): void {
    if (this.refuseAll) {
      socket.destroy();
      return;
    }
    socket.on("error", () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.indexOf("\r\n\r\n") < 0 && head.length < 64 * 1024) return;
      socket.off("data", onData);
      socket.pause();
      const from = /\r\nx-raft-from: *([0-9a-f]+)\r\n/i.exec(head.toString("latin1"))?.[1];
      if (this.refuseAll || (from !== undefined && from === this.refuseFrom)) {
        socket.destroy();
        return;
      }
      const upstream = connect(this.targetPort, "127.0.0.1");
      const connection = { from, sockets: [socket, upstream] };
      this.connections.add(connection);
      upstream.on("error", () => undefined);
      upstream.setNoDelay(true);
      socket.setNoDelay(true);
      upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
      const drop = () => {
        socket.destroy();
        upstream.destroy();
        this.connections.delete(connection);
      };
      socket.once("close", drop);
      upstream.once("close", drop);
    };
    socket.on("data", onData);
  }
}

/** A 3-member cluster whose peer traffic all passes through a `PeerProxy` per member. */
async function startProxiedCluster(t: TestContext): Promise<{ specs: ClusterMemberSpec[]; proxies: Map<string, PeerProxy>; members: Map<string, ServerProcess> }> {
  // Each member listens on its own peer port and advertises its proxy's.
  const plain = await clusterSpecs(3);
  const specs: ClusterMemberSpec[] = [];
  for (const s of plain) specs.push({ ...s, advertisedPeerPort: await freePort() });
  const proxies = new Map(specs.map((s) => [s.name, new PeerProxy(s.advertisedPeerPort!, s.peerPort)]));
  t.after(() => Promise.all([...proxies.values()].map((p) => p.close())));
  await Promise.all([...proxies.values()].map((p) => p.listen()));
  const members = await startCluster(t, specs);
  return { specs, proxies, members };
}

/** Cuts `isolatedName` (member ID `isolatedId`, hex) off: nothing reaches it, its raft streams to the others are refused. */
function isolateMember(proxies: Map<string, PeerProxy>, isolatedName: string, isolatedId: string): void {
  for (const [name, proxy] of proxies) {
    if (name === isolatedName) proxy.isolate();
    else proxy.refuseStreamsFrom(isolatedId);
  }
}

for (const isolate of ["leader", "follower"] as const) {
  test(`a partitioned minority (the ${isolate}) cannot commit or read; the majority can; after healing all converge`, { timeout: 90_000 }, async (t) => {
    const { specs, proxies, members } = await startProxiedCluster(t);
    const endpoints = specs.map((s) => members.get(s.name)!.endpoint);

    const workload = new Workload(t, endpoints, 2);
    await sleep(2000);

    // An isolated leader must notice it lost its quorum; an isolated follower must not answer from its
    // own, possibly stale, state.
    const names = specs.map((s) => s.name);
    const leaders = await Promise.all(names.map((n) => isLeader(members.get(n)!.endpoint)));
    assert.ok(leaders.includes(true), "a leader before the partition");
    const isolatedName = names[isolate === "leader" ? leaders.indexOf(true) : leaders.indexOf(false)]!;
    const isolated = members.get(isolatedName)!;
    const isolatedId = await memberIdHex(isolated.endpoint);
    const cutAt = performance.now();
    isolateMember(proxies, isolatedName, isolatedId);
    const majority = names.filter((n) => n !== isolatedName).map((n) => members.get(n)!.endpoint);
    await waitFor(async () => (await Promise.all(majority.map((e) => isLeader(e)))).some(Boolean), 15_000, "the majority elects a leader");
    await sleep(4000);
    const healAt = performance.now();
    for (const proxy of proxies.values()) proxy.heal();

    // During the partition: nothing through the minority succeeded (an operation sent after the cut and
    // answered before the heal), the majority went on committing.
    const duringPartition = workload.history.filter((o) => o.invokedAt > cutAt && o.returnedAt < healAt && o.outcome === "ok");
    const minorityOk = duringPartition.filter((o) => o.endpoint === isolated.endpoint);
    assert.deepEqual(minorityOk.map((o) => `${o.kind} ${o.key}`), [], "no put committed and no linearizable read served by the isolated member");
    const majorityPuts = duringPartition.filter((o) => o.kind === "put" && o.endpoint !== isolated.endpoint).length;
    const majorityGets = duringPartition.filter((o) => o.kind === "get" && o.endpoint !== isolated.endpoint).length;
    console.log(`partition of ${isolatedName} (the ${isolate}): majority committed ${majorityPuts} puts and served ${majorityGets} reads; the minority none`);
    assert.ok(majorityPuts > 10, `the majority commits (${majorityPuts} puts)`);
    assert.ok(majorityGets > 10, `the majority serves linearizable reads (${majorityGets})`);

    // Healed: the isolated member rejoins and serves again.
    const healed = performance.now();
    await waitFor(() => healthy(isolated.endpoint), 20_000, "the isolated member is healthy again");
    await waitFor(() => workload.history.some((o) => o.invokedAt > healed && o.outcome === "ok" && o.kind === "put" && o.endpoint === isolated.endpoint), 20_000, "puts through the formerly isolated member succeed");
    await sleep(1500);
    await workload.stop();
    await checkOutcome(workload, endpoints);
  });
}

test("the checker catches stale serializable reads from an isolated follower", { timeout: 90_000 }, async (t) => {
  const { specs, proxies, members } = await startProxiedCluster(t);
  const names = specs.map((s) => s.name);
  const leaders = await Promise.all(names.map((n) => isLeader(members.get(n)!.endpoint)));
  const followerName = names[leaders.indexOf(false)]!;
  const follower = members.get(followerName)!;
  const majority = names.filter((n) => n !== followerName).map((n) => members.get(n)!.endpoint);
  const writers = new Workload(t, majority, 2);
  const staleReaders = new Workload(t, [follower.endpoint], 2, { readsOnly: true, serializable: true });
  await sleep(1000);
  isolateMember(proxies, followerName, await memberIdHex(follower.endpoint));
  await sleep(3000);
  for (const proxy of proxies.values()) proxy.heal();
  await Promise.all([writers.stop(), staleReaders.stop()]);

  const history = [...writers.history, ...staleReaders.history];
  const result = checkLinearizable(history);
  console.log(describeResult(result));
  assert.equal(result.status, "illegal", "serializable reads from a cut-off member are stale");
  const culprit = result.firstIllegal!.operation as RecordedOperation;
  assert.equal(culprit.kind, "get");
  assert.equal(culprit.endpoint, follower.endpoint, "the failing operation is a read from the isolated follower");
});

test("a learner added, started, promoted and a voter removed while writes go on", { timeout: 120_000 }, async (t) => {
  const specs = await clusterSpecs(4);
  const initial = specs.slice(0, 3);
  const members = await startCluster(t, initial);
  const [n1, n2, n3] = initial.map((s) => members.get(s.name)!);
  // The clients use n1 and n2; n3 is the voter removed later, n4 the learner.
  const workload = new Workload(t, [n1!.endpoint, n2!.endpoint], 3);
  await sleep(1000);

  const n4 = specs[3]!;
  const add = await retryWhileUnhealthy(() => etcdctl(n1!.endpoint, ["member", "add", n4.name, "--learner", `--peer-urls=http://127.0.0.1:${n4.peerPort}`]));
  assert.equal(add.code, 0, add.stderr);
  const learnerId = /Member\s+([0-9a-f]+) added to cluster/.exec(add.stdout)?.[1];
  assert.ok(learnerId !== undefined, `member add printed: ${add.stdout} ${add.stderr}`);
  const learner = await startClusterMember(specs, n4.name, { state: "existing", waitHealthy: false });
  members.set(n4.name, learner);
  await waitFor(async () => /"isLearner":true/.test(await status(learner.endpoint)), 20_000, "the learner runs");
  await waitFor(async () => (await etcdctl(n2!.endpoint, ["member", "promote", learnerId])).code === 0, 30_000, "the learner promoted once in sync");
  assert.match((await etcdctl(n1!.endpoint, ["member", "list"])).stdout, new RegExp(`${learnerId}, started, ${n4.name}, .*, false`));
  const promotedAt = performance.now();
  await waitFor(() => workload.acknowledgedSince(promotedAt) > 10, 15_000, "writes go on after the promotion");

  const n3Id = await memberIdHex(n3!.endpoint);
  const removed = await retryWhileUnhealthy(() => etcdctl(n1!.endpoint, ["member", "remove", n3Id]));
  assert.equal(removed.code, 0, removed.stderr);
  await waitFor(() => n3!.child.exitCode !== null, 15_000, "the removed member exits");
  members.delete(initial[2]!.name);
  const removedAt = performance.now();
  await waitFor(() => workload.acknowledgedSince(removedAt) > 10, 15_000, "writes go on after the removal");
  await workload.stop();

  const remaining = [n1!.endpoint, n2!.endpoint, learner.endpoint];
  assert.equal((await etcdctl(n1!.endpoint, ["member", "list"])).stdout.trim().split("\n").length, 3);
  await checkOutcome(workload, remaining);
});

/**
 * etcdctl without blocking the event loop: the clients' timings and the partition's proxies live in this
 * process, and a synchronous child process would stall them (long enough to cost the cluster its leader).
 */
function etcdctl(endpoint: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("etcdctl", ["--endpoints", endpoint, ...args], { env: { ...process.env, ETCDCTL_API: "3" }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function retryWhileUnhealthy(run: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<{ code: number; stdout: string; stderr: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await run();
    if (r.code === 0 || !/unhealthy cluster|not enough started/.test(r.stderr) || Date.now() > deadline) return r;
    await sleep(500);
  }
}

async function healthy(endpoint: string): Promise<boolean> {
  return (await etcdctl(endpoint, ["endpoint", "health", "--command-timeout=2s"])).code === 0;
}

async function status(endpoint: string): Promise<string> {
  return (await etcdctl(endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"])).stdout;
}

async function memberIdHex(endpoint: string): Promise<string> {
  return BigInt(/"member_id":(\d+)/.exec(await status(endpoint))![1]!).toString(16);
}

async function isLeader(endpoint: string): Promise<boolean> {
  const out = await status(endpoint);
  const leader = /"leader":(\d+)/.exec(out)?.[1];
  return leader !== undefined && leader === /"member_id":(\d+)/.exec(out)?.[1];
}

async function sameRevision(endpoints: readonly string[]): Promise<boolean> {
  const revs = await Promise.all(endpoints.map(async (e) => /"revision":(\d+)/.exec(await status(e))?.[1]));
  return revs[0] !== undefined && revs.every((r) => r === revs[0]);
}

async function sameHashKV(endpoints: readonly string[]): Promise<boolean> {
  const hashes = await Promise.all(endpoints.map(async (e) => /"hash":(\d+)/.exec((await etcdctl(e, ["endpoint", "hashkv", "-w", "json"])).stdout)?.[1]));
  return hashes[0] !== undefined && hashes.every((h) => h === hashes[0]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(200);
  }
}

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import {
  endpointStatus,
  etcdctlAsync,
  freePort,
  healthy,
  isLeader,
  memberIdHex,
  retryWhileUnhealthy,
  sleep,
  waitFor,
} from "@etcd-ts/test-support";
import { Workload, checkOutcome, startCluster, type RecordedOperation } from "./cluster-harness.js";
import { checkLinearizable, describeResult } from "./linearizability.js";
import { clusterSpecs, startClusterMember, type ClusterMemberSpec, type ServerProcess } from "./processes.js";

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
    await waitFor(
      async () => (await Promise.all(restarted.map((m) => healthy(m.endpoint)))).every(Boolean),
      30_000,
      "cluster healthy after the restart",
    );

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

test(
  "kill -9 of the leader under load: a new leader serves linearizable reads and writes, the old one rejoins",
  { timeout: 90_000 },
  async (t) => {
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
    await waitFor(
      () =>
        workload.history.some(
          (o) => o.invokedAt > restartedAt && o.outcome === "ok" && o.kind === "get" && o.endpoint === restarted.endpoint,
        ),
      20_000,
      "reads through the restarted member succeed",
    );
    await sleep(1000);
    await workload.stop();
    await checkOutcome(workload, endpoints);
  },
);

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
  /** Accepted sockets whose request head has not arrived yet (a client may connect and send later). */
  private readonly pending = new Set<Socket>();
  /** Refuse every connection to this member (it is the isolated one). */
  private refuseAll = false;
  /** Refuse raft streams from this member ID (hex). */
  private refuseFrom: string | undefined;

  constructor(
    readonly port: number,
    private readonly targetPort: number,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
  }

  close(): Promise<void> {
    this.cut(() => true);
    // server.close() waits for every accepted socket to end, including those still waiting for a head.
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  isolate(): void {
    this.refuseAll = true;
    this.cut(() => true);
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
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
    this.pending.add(socket);
    socket.once("close", () => this.pending.delete(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.indexOf("\r\n\r\n") < 0 && head.length < 64 * 1024) return;
      this.pending.delete(socket);
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
async function startProxiedCluster(
  t: TestContext,
): Promise<{ specs: ClusterMemberSpec[]; proxies: Map<string, PeerProxy>; members: Map<string, ServerProcess> }> {
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
  test(
    `a partitioned minority (the ${isolate}) cannot commit or read; the majority can; after healing all converge`,
    { timeout: 90_000 },
    async (t) => {
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
      await waitFor(
        async () => (await Promise.all(majority.map((e) => isLeader(e)))).some(Boolean),
        15_000,
        "the majority elects a leader",
      );
      await sleep(4000);
      const healAt = performance.now();
      for (const proxy of proxies.values()) proxy.heal();

      // During the partition: nothing through the minority succeeded (an operation sent after the cut and
      // answered before the heal), the majority went on committing.
      const duringPartition = workload.history.filter((o) => o.invokedAt > cutAt && o.returnedAt < healAt && o.outcome === "ok");
      const minorityOk = duringPartition.filter((o) => o.endpoint === isolated.endpoint);
      assert.deepEqual(
        minorityOk.map((o) => `${o.kind} ${o.key}`),
        [],
        "no put committed and no linearizable read served by the isolated member",
      );
      const majorityPuts = duringPartition.filter((o) => o.kind === "put" && o.endpoint !== isolated.endpoint).length;
      const majorityGets = duringPartition.filter((o) => o.kind === "get" && o.endpoint !== isolated.endpoint).length;
      console.log(
        `partition of ${isolatedName} (the ${isolate}): majority committed ${majorityPuts} puts and served ${majorityGets} reads; the minority none`,
      );
      assert.ok(majorityPuts > 10, `the majority commits (${majorityPuts} puts)`);
      assert.ok(majorityGets > 10, `the majority serves linearizable reads (${majorityGets})`);

      // Healed: the isolated member rejoins and serves again.
      const healed = performance.now();
      await waitFor(() => healthy(isolated.endpoint), 20_000, "the isolated member is healthy again");
      await waitFor(
        () =>
          workload.history.some((o) => o.invokedAt > healed && o.outcome === "ok" && o.kind === "put" && o.endpoint === isolated.endpoint),
        20_000,
        "puts through the formerly isolated member succeed",
      );
      await sleep(1500);
      await workload.stop();
      await checkOutcome(workload, endpoints);
    },
  );
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
  const add = await retryWhileUnhealthy(() =>
    etcdctlAsync(n1!.endpoint, ["member", "add", n4.name, "--learner", `--peer-urls=http://127.0.0.1:${n4.peerPort}`]),
  );
  assert.equal(add.code, 0, add.stderr);
  const learnerId = /Member\s+([0-9a-f]+) added to cluster/.exec(add.stdout)?.[1];
  assert.ok(learnerId !== undefined, `member add printed: ${add.stdout} ${add.stderr}`);
  const learner = await startClusterMember(specs, n4.name, { state: "existing", waitHealthy: false });
  members.set(n4.name, learner);
  await waitFor(async () => /"isLearner":true/.test(await endpointStatus(learner.endpoint)), 20_000, "the learner runs");
  await waitFor(
    async () => (await etcdctlAsync(n2!.endpoint, ["member", "promote", learnerId])).code === 0,
    30_000,
    "the learner promoted once in sync",
  );
  assert.match((await etcdctlAsync(n1!.endpoint, ["member", "list"])).stdout, new RegExp(`${learnerId}, started, ${n4.name}, .*, false`));
  const promotedAt = performance.now();
  await waitFor(() => workload.acknowledgedSince(promotedAt) > 10, 15_000, "writes go on after the promotion");

  const n3Id = await memberIdHex(n3!.endpoint);
  const removed = await retryWhileUnhealthy(() => etcdctlAsync(n1!.endpoint, ["member", "remove", n3Id]));
  assert.equal(removed.code, 0, removed.stderr);
  await waitFor(() => n3!.child.exitCode !== null, 15_000, "the removed member exits");
  members.delete(initial[2]!.name);
  const removedAt = performance.now();
  await waitFor(() => workload.acknowledgedSince(removedAt) > 10, 15_000, "writes go on after the removal");
  await workload.stop();

  const remaining = [n1!.endpoint, n2!.endpoint, learner.endpoint];
  assert.equal((await etcdctlAsync(n1!.endpoint, ["member", "list"])).stdout.trim().split("\n").length, 3);
  await checkOutcome(workload, remaining);
});

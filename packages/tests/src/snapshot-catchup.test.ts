import { spawn, type ChildProcess } from "node:child_process";
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { HashRequestSchema, PutRequestSchema, RangeRequestSchema, type HashResponse, type RangeResponse } from "@etcd-ts/api";
import { call, makeClient, services } from "./grpc-client.js";
import { etcdctl, isLeader, sameRevision, waitFor } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, type ServerProcess } from "./processes.js";

/** Puts enough entries that the leader's raft log is compacted past index 5000 + --snapshot-count. */
const KEYS = 7000;
const SNAPSHOT_COUNT = "1000";

/**
 * A member stopped while the others write far past what the leader keeps of its log (a snapshot every
 * 1000 entries, 5000 kept behind it) can only catch up from a snapshot: the leader streams its whole
 * backend over the peer port, the member installs it and then follows the log. It ends with every key
 * and the same HashKV as the others.
 */
test("a lagging member catches up by snapshot", { timeout: 180_000 }, async (t) => {
  const specs = await clusterSpecs(3);
  const members = new Map<string, ServerProcess>();
  t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
  const extraArgs = ["--snapshot-count", SNAPSHOT_COUNT, "--log-level", "info"];
  const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false, extraArgs })));
  started.forEach((m, i) => members.set(specs[i]!.name, m));
  await waitFor(
    () => started.every((m) => etcdctl(m.endpoint, ["endpoint", "health", "--command-timeout=2s"]).code === 0),
    30_000,
    "cluster healthy",
  );
  assert.equal(etcdctl(started[0]!.endpoint, ["put", "early", "1"]).code, 0);

  const lagging = specs[2]!;
  await members.get(lagging.name)!.stop();
  members.delete(lagging.name);

  const client = makeClient(services.KV, started[0]!.endpoint);
  let next = 0;
  const writer = async () => {
    while (next < KEYS) {
      const i = next++;
      const put = create(PutRequestSchema, { key: Buffer.from(`bulk/${String(i).padStart(5, "0")}`), value: Buffer.from(`v${i}`) });
      // A put that times out (a slow fsync on a busy machine) is retried, as etcd's clients do.
      for (let attempt = 0; ; attempt++) {
        try {
          await call(client, "Put", put);
          break;
        } catch (error) {
          if (attempt >= 5 || (error as { code?: number }).code !== 14) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, () => writer()));
  client.close();
  // The leader snapshots and compacts its log behind the last snapshot in the background.
  await new Promise((r) => setTimeout(r, 2000));

  const restarted = await startClusterMember(specs, lagging.name, { waitHealthy: false, extraArgs });
  members.set(lagging.name, restarted);
  await waitFor(
    () => etcdctl(restarted.endpoint, ["endpoint", "health", "--command-timeout=2s"]).code === 0,
    60_000,
    "the lagging member is healthy",
  );
  await waitFor(() => /installed a database snapshot from the leader/.test(restarted.log()), 5000, "the snapshot install logged").catch(
    () => undefined,
  );
  if (!/installed a database snapshot from the leader/.test(restarted.log())) {
    for (const [name, m] of members) console.log(`--- ${name} pid ${m.child.pid} exit ${m.child.exitCode}\n${m.log().slice(-1500)}`);
  }
  assert.match(restarted.log(), /installed a database snapshot from the leader/, "caught up by snapshot, not by the log");
  await waitFor(() => sameRevision([...members.values()].map((m) => m.endpoint)), 30_000, "every member at the same revision");

  const kv = makeClient(services.KV, restarted.endpoint);
  const r = await call<RangeResponse>(
    kv,
    "Range",
    create(RangeRequestSchema, { key: Buffer.from("bulk/"), rangeEnd: Buffer.from("bulk0"), serializable: true, countOnly: true }),
  );
  const early = await call<RangeResponse>(kv, "Range", create(RangeRequestSchema, { key: Buffer.from("early"), serializable: true }));
  kv.close();
  assert.equal(Number(r.count), KEYS);
  assert.equal(early.kvs.length, 1);
  const hashes = [...members.values()].map(
    (m) => /"hash":(\d+)/.exec(etcdctl(m.endpoint, ["endpoint", "hashkv", "-w", "json"]).stdout)?.[1],
  );
  assert.ok(hashes[0] !== undefined);
  assert.deepEqual(hashes, [hashes[0], hashes[0], hashes[0]], "HashKV equal on every member");
  // Maintenance.Hash covers every bucket (membership, leases, auth, alarms): equal too.
  const backendHashes = await Promise.all(
    [...members.values()].map(async (m) => {
      const maintenance = makeClient(services.Maintenance, m.endpoint);
      const response = await call<HashResponse>(maintenance, "Hash", create(HashRequestSchema, {}));
      maintenance.close();
      return response.hash;
    }),
  );
  assert.deepEqual(backendHashes, [backendHashes[0], backendHashes[0], backendHashes[0]], "Hash equal on every member");
  // and it keeps following the log
  assert.equal(etcdctl(started[1]!.endpoint, ["put", "after", "x"]).code, 0);
  await waitFor(
    () => etcdctl(restarted.endpoint, ["get", "after", "--consistency=s", "--print-value-only"]).stdout === "x\n",
    10_000,
    "a later write reaches the member",
  );
});

/**
 * A member frozen (SIGSTOP) while the others write past the leader's compacted log is sent a snapshot
 * when it resumes, with a client watching on it: the watch stream is reset when the store is replaced,
 * etcdctl resumes it, and later events arrive.
 */
test("a watch on a member that installs a snapshot resumes", { timeout: 180_000 }, async (t) => {
  const specs = await clusterSpecs(3);
  const members = new Map<string, ServerProcess>();
  const watchers: ChildProcess[] = [];
  t.after(async () => {
    for (const w of watchers) w.kill("SIGKILL");
    for (const m of members.values()) m.child.kill("SIGCONT");
    await Promise.all([...members.values()].map((m) => m.kill()));
  });
  const extraArgs = ["--snapshot-count", SNAPSHOT_COUNT, "--log-level", "info"];
  const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false, extraArgs })));
  started.forEach((m, i) => members.set(specs[i]!.name, m));
  await waitFor(
    () => started.every((m) => etcdctl(m.endpoint, ["endpoint", "health", "--command-timeout=2s"]).code === 0),
    30_000,
    "cluster healthy",
  );
  const leaderIndex = (await Promise.all(started.map((m) => isLeader(m.endpoint)))).indexOf(true);
  const frozen = started[(leaderIndex + 1) % 3]!;
  const writeTo = started[leaderIndex]!;

  const watch = spawn("etcdctl", ["--endpoints", frozen.endpoint, "watch", "watched"], { stdio: ["ignore", "pipe", "pipe"] });
  watchers.push(watch);
  let seen = "";
  watch.stdout.setEncoding("utf8");
  watch.stdout.on("data", (c: string) => (seen += c));
  assert.equal(etcdctl(writeTo.endpoint, ["put", "watched", "before"]).code, 0);
  await waitFor(() => seen.includes("before"), 10_000, "the watch works");

  frozen.child.kill("SIGSTOP");
  const client = makeClient(services.KV, writeTo.endpoint);
  let next = 0;
  const writer = async () => {
    while (next < KEYS) {
      const i = next++;
      const put = create(PutRequestSchema, { key: Buffer.from(`bulk/${i}`), value: Buffer.from(`v${i}`) });
      for (let attempt = 0; ; attempt++) {
        try {
          await call(client, "Put", put);
          break;
        } catch (error) {
          if (attempt >= 5 || (error as { code?: number }).code !== 14) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, () => writer()));
  client.close();
  await new Promise((r) => setTimeout(r, 2000));
  frozen.child.kill("SIGCONT");

  await waitFor(() => /installed a database snapshot from the leader/.test(frozen.log()), 60_000, "the frozen member installs a snapshot");
  assert.equal(etcdctl(writeTo.endpoint, ["put", "watched", "after"]).code, 0);
  await waitFor(() => seen.includes("after"), 20_000, "the watch resumed on the new store");
  assert.equal(watch.exitCode, null, "etcdctl watch is still running");
});

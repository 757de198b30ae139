import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { etcdctl } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * `/metrics`, `/livez`, `/readyz` and `/health` end to end: etcd's metric names with etcd 3.4's types
 * (checked against a real etcd 3.4), values that move with the traffic, and health that follows the
 * leader.
 */

/** The metric families every etcd dashboard reads, which etcd-ts must serve with etcd's types. */
const REQUIRED = [
  "etcd_server_has_leader",
  "etcd_server_is_leader",
  "etcd_server_leader_changes_seen_total",
  "etcd_server_proposals_committed_total",
  "etcd_server_proposals_applied_total",
  "etcd_server_proposals_pending",
  "etcd_server_proposals_failed_total",
  "etcd_server_version",
  "etcd_server_id",
  "etcd_server_is_learner",
  "etcd_server_quota_backend_bytes",
  "etcd_mvcc_db_total_size_in_bytes",
  "etcd_mvcc_db_total_size_in_use_in_bytes",
  "etcd_debugging_mvcc_keys_total",
  "etcd_disk_wal_fsync_duration_seconds",
  "etcd_disk_backend_commit_duration_seconds",
  "etcd_disk_wal_write_bytes_total",
  "grpc_server_started_total",
  "grpc_server_handled_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
];

interface Scrape {
  readonly types: Map<string, string>;
  readonly helps: Map<string, string>;
  /** `name{labels}` exactly as written → value. */
  readonly samples: Map<string, number>;
}

async function scrape(port: number): Promise<Scrape> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m !== null) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m !== null) {
      helps.set(m[1]!, m[2]!);
      continue;
    }
    m = /^(\S+(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m !== null, `unparsable line: ${line}`);
    samples.set(m[1]!, m[2] === "+Inf" ? Infinity : Number(m[2]));
  }
  return { types, helps, samples };
}

const value = (s: Scrape, key: string): number => {
  const v = s.samples.get(key);
  assert.ok(v !== undefined, `no sample ${key}`);
  return v;
};

const putHandled = 'grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}';
const putStarted = 'grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}';

describe("one member", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startEtcdTs({ name: "metrics" });
  });
  after(() => server?.stop());

  test("serves etcd's metric names with etcd 3.4's types and help texts", async (t) => {
    const reference = await startRealEtcd({ name: "metrics-ref" });
    t.after(() => reference.stop());
    etcdctl(reference.endpoint, ["put", "a", "b"]);
    const theirs = await scrape(reference.port);
    const ours = await scrape(server.port);
    for (const name of REQUIRED) {
      assert.equal(ours.types.get(name), theirs.types.get(name), `type of ${name}`);
      assert.equal(ours.helps.get(name), theirs.helps.get(name), `help of ${name}`);
    }
    // The histogram buckets are etcd's: 1 ms doubling to 8.192 s.
    const buckets = (s: Scrape) => [...s.samples.keys()].filter((k) => k.startsWith("etcd_disk_wal_fsync_duration_seconds_bucket")).sort();
    assert.deepEqual(buckets(ours), buckets(theirs));
    assert.equal(value(ours, 'etcd_server_version{server_version="3.4.23"}'), 1);
    assert.equal(value(ours, "etcd_server_has_leader"), 1);
    assert.equal(value(ours, "etcd_server_is_leader"), 1);
    assert.ok(value(ours, "etcd_server_leader_changes_seen_total") >= 1);
    assert.ok(value(ours, "process_start_time_seconds") > 1.6e9);
    assert.ok(value(ours, "process_resident_memory_bytes") > 1e6);
  });

  test("values move with the traffic: a put is proposed, committed, applied, fsynced and counted", async () => {
    const before = await scrape(server.port);
    assert.equal(etcdctl(server.endpoint, ["put", "moving", "1"]).code, 0);
    assert.equal(etcdctl(server.endpoint, ["get", "moving", "--rev=100000"]).code, 1);
    const after = await scrape(server.port);
    const delta = (key: string) => value(after, key) - value(before, key);
    assert.ok(delta("etcd_server_proposals_applied_total") >= 1);
    assert.ok(delta("etcd_server_proposals_committed_total") >= 1);
    assert.equal(value(after, "etcd_server_proposals_committed_total"), value(after, "etcd_server_proposals_applied_total"));
    assert.equal(value(after, "etcd_server_proposals_pending"), 0);
    assert.ok(delta("etcd_disk_wal_fsync_duration_seconds_count") >= 1);
    assert.ok(delta("etcd_disk_wal_fsync_duration_seconds_sum") > 0);
    assert.ok(delta("etcd_disk_backend_commit_duration_seconds_count") >= 1);
    assert.ok(delta("etcd_disk_wal_write_bytes_total") > 0);
    assert.equal(delta("etcd_debugging_mvcc_keys_total"), 1);
    assert.equal(delta(putStarted), 1);
    assert.equal(delta(putHandled), 1);
    // A future revision is OutOfRange, counted under its code as grpc-prometheus does.
    const outOfRange =
      'grpc_server_handled_total{grpc_code="OutOfRange",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"}';
    assert.equal(value(after, outOfRange) - (before.samples.get(outOfRange) ?? 0), 1);
    assert.ok(value(after, "etcd_mvcc_db_total_size_in_bytes") >= value(after, "etcd_mvcc_db_total_size_in_use_in_bytes"));
  });

  test("streams are counted by type and code", async () => {
    const watchStarted = 'grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"}';
    const before = await scrape(server.port);
    // etcdctl's watch ends when its stdin closes (interactive mode), cancelling the stream.
    etcdctl(server.endpoint, ["watch", "-i"], "watch w\n");
    const after = await scrape(server.port);
    assert.equal(value(after, watchStarted) - (before.samples.get(watchStarted) ?? 0), 1);
  });

  test("/livez and /readyz answer ok, /health true", async () => {
    for (const path of ["/livez", "/readyz"]) {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "ok");
    }
    const verbose = await fetch(`http://127.0.0.1:${server.port}/readyz?verbose`);
    assert.equal(await verbose.text(), "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nreadyz check passed\n");
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    assert.deepEqual([health.status, await health.json()], [200, { health: "true" }]);
  });
});

describe("a member that lost its leader", () => {
  const members: ServerProcess[] = [];
  before(async () => {
    const specs = await clusterSpecs(3);
    members.push(...(await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false })))));
    const deadline = Date.now() + 20_000;
    while (etcdctl(members[0]!.endpoint, ["endpoint", "health", "--command-timeout=1s"]).code !== 0) {
      assert.ok(Date.now() < deadline, "cluster did not become healthy");
      await new Promise((r) => setTimeout(r, 150));
    }
  });
  after(() => Promise.all(members.map((m) => m.stop())));

  test("reports no leader in /metrics, 503 on /health and /readyz, and still ok on /livez", async () => {
    await members[1]!.stop();
    await members[2]!.stop();
    const port = members[0]!.port;
    const deadline = Date.now() + 15_000;
    while (value(await scrape(port), "etcd_server_has_leader") !== 0) {
      assert.ok(Date.now() < deadline, "has_leader stayed 1");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(value(await scrape(port), "etcd_server_is_leader"), 0);
    const health = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(20_000) });
    assert.deepEqual([health.status, await health.json()], [503, { health: "false" }]);
    const notReady = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(notReady.status, 503);
    assert.match(await notReady.text(), /\[-\]linearizable_read failed: .*\nreadyz check failed\n$/);
    const readyz = await fetch(`http://127.0.0.1:${port}/readyz?exclude=linearizable_read`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(readyz.status, 200, "serializable reads still work");
    const livez = await fetch(`http://127.0.0.1:${port}/livez`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(livez.status, 200);
  });
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { etcdctl, freePort, healthy, isLeader, tempDir, waitFor } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/** Snapshot save/status and alarms with real etcdctl against the built server. */
test("etcdctl snapshot save from etcd-ts is read by etcdctl snapshot status", { timeout: 60_000 }, async (t) => {
  const server = await startEtcdTs();
  t.after(() => server.stop());
  const e = server.endpoint;
  for (let i = 0; i < 100; i++) assert.equal(etcdctl(e, ["put", `snap/${i}`, "x".repeat(100)]).code, 0);
  assert.equal(etcdctl(e, ["del", "snap/0"]).code, 0);
  const file = join(tempDir("snapshot"), "snap.db");
  const saved = etcdctl(`http://${e}`, ["snapshot", "save", file]);
  assert.equal(saved.code, 0, saved.stderr);
  const status = etcdctl(e, ["snapshot", "status", file, "-w", "json"]);
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout) as { revision: number; totalKey: number };
  assert.equal(parsed.revision, 102);
  // 101 key rows, consistent_index, clusterVersion, one member, authRevision: no member-local rows.
  assert.equal(parsed.totalKey, 105);

  // etcdctl snapshot restore accepts it and a real etcd 3.4 serves the data
  const port = await freePort();
  const peerPort = await freePort();
  const dataDir = join(tempDir("restored"), "etcd");
  const restore = etcdctl(e, [
    "snapshot",
    "restore",
    file,
    "--data-dir",
    dataDir,
    "--name",
    "e2e",
    "--initial-cluster",
    `e2e=http://127.0.0.1:${peerPort}`,
    "--initial-advertise-peer-urls",
    `http://127.0.0.1:${peerPort}`,
  ]);
  assert.equal(restore.code, 0, restore.stderr);
  const etcd = await startRealEtcd({ port, peerPort, dataDir });
  t.after(() => etcd.stop());
  assert.equal(etcdctl(etcd.endpoint, ["get", "snap/", "--prefix", "--keys-only", "-w", "json"]).stdout.match(/"count":(\d+)/)?.[1], "99");
  assert.equal(etcdctl(etcd.endpoint, ["get", "snap/42", "--print-value-only"]).stdout, `${"x".repeat(100)}\n`);
});

test(
  "NOSPACE: writes refused past --quota-backend-bytes, reads and deletes work, disarm after compact and defrag",
  { timeout: 90_000 },
  async (t) => {
    const server = await startEtcdTs({ extraArgs: ["--quota-backend-bytes", String(200 * 1024)] });
    t.after(() => server.stop());
    const e = server.endpoint;
    assert.equal(etcdctl(e, ["alarm", "list"]).stdout, "");
    let refused = "";
    for (let i = 0; i < 400 && refused === ""; i++) {
      const r = etcdctl(e, ["put", `big/${i % 5}`, "v".repeat(4096)]);
      if (r.code !== 0) refused = r.stderr;
    }
    assert.match(refused, /etcdserver: mvcc: database space exceeded/);
    assert.match(etcdctl(e, ["alarm", "list"]).stdout, /memberID:\d+ alarm:NOSPACE/);
    assert.match(etcdctl(e, ["endpoint", "status", "-w", "json"]).stdout, /"errors":\["memberID:\d+ alarm:NOSPACE "\]/);
    // while raised: puts, putting txns and lease grants are refused; reads and deletes work
    assert.match(etcdctl(e, ["put", "small", "1"]).stderr, /database space exceeded/);
    assert.match(etcdctl(e, ["lease", "grant", "10"]).stderr, /database space exceeded/);
    assert.equal(etcdctl(e, ["get", "big/0", "--print-value-only"]).code, 0);
    assert.equal(etcdctl(e, ["del", "big/1"]).code, 0);
    // free space, then disarm
    const rev = /"revision":(\d+)/.exec(etcdctl(e, ["endpoint", "status", "-w", "json"]).stdout)![1]!;
    assert.equal(etcdctl(e, ["compact", rev, "--physical"]).code, 0);
    assert.equal(etcdctl(e, ["defrag"]).code, 0);
    const disarm = etcdctl(e, ["alarm", "disarm"]);
    assert.equal(disarm.code, 0, disarm.stderr);
    assert.match(disarm.stdout, /memberID:\d+ alarm:NOSPACE/);
    assert.equal(etcdctl(e, ["alarm", "list"]).stdout, "");
    assert.equal(etcdctl(e, ["put", "small", "1"]).code, 0);
  },
);

test(
  "CORRUPT: the leader's corruption check raises it for a member whose history differs; writes are then refused",
  { timeout: 120_000 },
  async (t) => {
    const specs = await clusterSpecs(3);
    const members = new Map<string, ServerProcess>();
    t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
    const extraArgs = ["--experimental-corrupt-check-time", "1s"];
    const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false, extraArgs })));
    started.forEach((m, i) => members.set(specs[i]!.name, m));
    await waitFor(async () => (await Promise.all(started.map((m) => healthy(m.endpoint)))).every(Boolean), 30_000, "cluster healthy");
    for (let i = 0; i < 10; i++) assert.equal(etcdctl(started[0]!.endpoint, ["put", `k${i}`, `v${i}`]).code, 0);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(etcdctl(started[0]!.endpoint, ["alarm", "list"]).stdout, "", "equal histories raise nothing");

    // change the newest value in one follower's backend while it is stopped
    const leaderIndex = (await Promise.all(started.map((m) => isLeader(m.endpoint)))).indexOf(true);
    const victimSpec = specs[(leaderIndex + 1) % 3]!;
    await members.get(victimSpec.name)!.stop();
    const db = join(victimSpec.dataDir, "member", "backend", "data.db");
    const sql =
      "UPDATE kv SET value = CAST(substr(value, 1, length(value) - 1) || X'77' AS BLOB) WHERE bucket = (SELECT id FROM buckets WHERE name = 'key') " +
      "AND key = (SELECT max(key) FROM kv WHERE bucket = (SELECT id FROM buckets WHERE name = 'key'));";
    const update = spawnSync("sqlite3", [db, sql], { encoding: "utf8" });
    assert.equal(update.status, 0, update.stderr);
    const victim = await startClusterMember(specs, victimSpec.name, { waitHealthy: false, extraArgs });
    members.set(victimSpec.name, victim);
    await waitFor(() => /alarm:CORRUPT/.test(etcdctl(started[leaderIndex]!.endpoint, ["alarm", "list"]).stdout), 20_000, "CORRUPT raised");
    const victimId = /"member_id":(\d+)/.exec(etcdctl(victim.endpoint, ["endpoint", "status", "-w", "json"]).stdout)?.[1];
    assert.match(
      etcdctl(started[leaderIndex]!.endpoint, ["alarm", "list"]).stdout,
      new RegExp(`^memberID:${victimId} alarm:CORRUPT \n$`),
      "only the changed member",
    );
    assert.match(etcdctl(started[leaderIndex]!.endpoint, ["put", "k", "v"]).stderr, /etcdserver: corrupt cluster/);
    assert.equal(etcdctl(started[leaderIndex]!.endpoint, ["get", "k1", "--print-value-only"]).stdout, "v1\n", "reads still work");
    assert.match(etcdctl(started[leaderIndex]!.endpoint, ["endpoint", "status", "-w", "json"]).stdout, /alarm:CORRUPT /);
  },
);

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { etcdctl, freePort, startEtcdTs, startRealEtcd, tempDir } from "./processes.js";

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
    "snapshot", "restore", file, "--data-dir", dataDir, "--name", "e2e",
    "--initial-cluster", `e2e=http://127.0.0.1:${peerPort}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peerPort}`,
  ]);
  assert.equal(restore.code, 0, restore.stderr);
  const etcd = await startRealEtcd({ port, peerPort, dataDir });
  t.after(() => etcd.stop());
  assert.equal(etcdctl(etcd.endpoint, ["get", "snap/", "--prefix", "--keys-only", "-w", "json"]).stdout.match(/"count":(\d+)/)?.[1], "99");
  assert.equal(etcdctl(etcd.endpoint, ["get", "snap/42", "--print-value-only"]).stdout, `${"x".repeat(100)}\n`);
});

test("NOSPACE: writes refused past --quota-backend-bytes, reads and deletes work, disarm after compact and defrag", { timeout: 90_000 }, async (t) => {
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
});

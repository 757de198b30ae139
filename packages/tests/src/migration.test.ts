import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { etcdctl, tempDir } from "@etcd-ts/test-support";
import { startEtcdTs, startRealEtcd } from "./processes.js";

/**
 * etcd's snapshot file both ways: etcd → etcd-ts (`etcdctl snapshot save` from etcd, a new etcd-ts member
 * started with --initial-snapshot) and etcd-ts → etcd (`etcdctl snapshot save` from etcd-ts,
 * `etcdctl snapshot restore`, a real etcd started on the result). Keys, values and revisions survive.
 */
test("a snapshot of etcd seeds a new etcd-ts member, and a snapshot of etcd-ts restores into etcd", { timeout: 120_000 }, async (t) => {
  const dir = tempDir("migration");
  const real = await startRealEtcd();
  t.after(() => real.stop());
  for (const [k, v] of [
    ["m/a", "1"],
    ["m/b", "2"],
    ["m/a", "3"],
  ] as const)
    assert.equal(etcdctl(real.endpoint, ["put", k, v]).code, 0);
  assert.equal(etcdctl(real.endpoint, ["del", "m/b"]).code, 0);
  const fromEtcd = join(dir, "from-etcd.db");
  assert.equal(etcdctl(real.endpoint, ["snapshot", "save", fromEtcd]).code, 0);
  const expected = etcdctl(real.endpoint, ["get", "m/", "--prefix", "-w", "json"]).stdout;
  await real.stop();

  const ours = await startEtcdTs({ extraArgs: ["--initial-snapshot", fromEtcd] });
  t.after(() => ours.stop());
  const got = etcdctl(ours.endpoint, ["get", "m/", "--prefix", "-w", "json"]).stdout;
  const kvs = (text: string) => /"kvs":(\[.*?\])/.exec(text)?.[1];
  const revision = (text: string) => /"revision":(\d+)/.exec(text)?.[1];
  assert.equal(kvs(got), kvs(expected), "same keys, values, create/mod revisions and versions");
  assert.equal(revision(got), revision(expected), "the store revision carries over");
  assert.equal(etcdctl(ours.endpoint, ["put", "m/c", "4"]).code, 0);

  const fromOurs = join(dir, "from-etcd-ts.db");
  assert.equal(etcdctl(ours.endpoint, ["snapshot", "save", fromOurs]).code, 0);
  const status = etcdctl(ours.endpoint, ["snapshot", "status", fromOurs, "-w", "json"]);
  assert.equal(status.code, 0, status.stderr);
  const restoredDir = join(dir, "restored");
  const restore = spawnSync("etcdctl", ["snapshot", "restore", fromOurs, "--data-dir", restoredDir], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  assert.equal(restore.status, 0, restore.stderr);
  const back = await startRealEtcd({ dataDir: restoredDir, name: "default" });
  t.after(() => back.stop());
  const final = etcdctl(back.endpoint, ["get", "m/", "--prefix", "--print-value-only"]).stdout;
  assert.equal(final, "3\n4\n");
});

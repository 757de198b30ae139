/**
 * A follower cut off while the others snapshot and compact their logs past it cannot catch up from the
 * log: the leader ships it the whole database over the peer network, it installs it, and it follows the
 * log from there.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster, eventually, get, put } from "../testing/in-process-cluster.js";

let cluster: InProcessCluster;
before(async () => {
  // A raft snapshot every 20 entries, keeping 10 behind it: 100 writes compact the log well past a
  // member that missed them.
  cluster = await InProcessCluster.start({ size: 3, snapshotCount: 20, snapshotCatchUpEntries: 10 });
});
after(() => cluster.stop());

test("a member cut off while the others compacted past it catches up from a shipped database", { timeout: 60_000 }, async () => {
  const leader = await cluster.waitForLeader();
  const behind = cluster.members.find((m) => m !== leader)!;
  await put(leader, "early", "e");
  assert.equal(await get(behind, "early"), "e");

  cluster.network.isolate(behind.server.memberId);
  const writers = cluster.members.filter((m) => m !== behind);
  for (let i = 0; i < 100; i++) await put(writers[i % 2]!, `k${i}`, `v${i}`);
  // Delete one key the member had, so the shipped database must replace its state, not add to it.
  await leader.server.deleteRange({
    $typeName: "etcdserverpb.DeleteRangeRequest",
    key: new TextEncoder().encode("early"),
    rangeEnd: new Uint8Array(0),
    prevKv: false,
  });
  assert.equal(await get(behind, "k0", { serializable: true }), undefined, "the cut-off member missed the writes");
  assert.equal(cluster.network.stats.snapshots, 0);

  cluster.network.heal();
  const revision = leader.server.status().header!.revision;
  await eventually(() => behind.server.status().header!.revision === revision, "the member reaches the cluster's revision", 20_000);
  assert.ok(cluster.network.stats.snapshots >= 1, "the leader shipped a database");
  for (let i = 0; i < 100; i += 9) assert.equal(await get(behind, `k${i}`, { serializable: true }), `v${i}`);
  assert.equal(await get(behind, "early", { serializable: true }), undefined, "the delete came with the database");
  const [mine, leaders] = await Promise.all([behind.server.hashKV(Number(revision)), leader.server.hashKV(Number(revision))]);
  assert.equal(mine.hash, leaders.hash, "the same history as the leader's");

  // And it follows the log after the install.
  await put(leader, "after", "a");
  assert.equal(await get(behind, "after"), "a");
});

/**
 * Three real members in one process over the simulated network: they elect one leader, and a write
 * through any member is visible on every member.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { MessageType } from "@etcd-ts/raft";
import { InProcessCluster, get, put } from "../testing/in-process-cluster.js";

let cluster: InProcessCluster;
before(async () => {
  cluster = await InProcessCluster.start({ size: 3 });
});
after(() => cluster.stop());

test("three members elect one leader that every member knows", async () => {
  const leader = await cluster.waitForLeader();
  assert.equal(cluster.members.filter((m) => m.server.isLeader()).length, 1);
  for (const m of cluster.members) {
    assert.equal(m.server.leaderId(), leader.server.memberId, `${m.name} names the leader`);
    // A new cluster starts at term 1 (as etcd's), so the first election makes term 2 or more.
    assert.ok(m.server.status().raftTerm >= 2n, `${m.name} is past the bootstrap term`);
  }
  assert.equal(new Set(cluster.members.map((m) => m.server.clusterId)).size, 1);
  assert.equal(new Set(cluster.members.map((m) => m.server.memberId)).size, 3);
});

test("writes through the leader and through followers are visible on every member", async () => {
  const leader = await cluster.waitForLeader();
  const followers = cluster.members.filter((m) => m !== leader);
  const revisions: bigint[] = [];
  revisions.push(await put(leader, "from-leader", "a"));
  for (const [i, f] of followers.entries()) revisions.push(await put(f, `from-${f.name}`, `b${i}`));
  // Each write is a new revision, in the order they were acknowledged.
  for (let i = 1; i < revisions.length; i++) assert.equal(revisions[i], revisions[i - 1]! + 1n);
  for (const m of cluster.members) {
    assert.equal(await get(m, "from-leader"), "a", `${m.name} reads the leader's write`);
    for (const [i, f] of followers.entries()) assert.equal(await get(m, `from-${f.name}`), `b${i}`, `${m.name} reads ${f.name}'s write`);
    assert.equal(m.server.status().header!.revision, revisions.at(-1), `${m.name} is at the last revision`);
  }
  // The members agree on the whole keyspace's history.
  const hashes = await Promise.all(cluster.members.map((m) => m.server.hashKV(Number(revisions.at(-1)))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1);
});

test("writes commit and every member converges while the network drops a third of the appends", async () => {
  const leader = await cluster.waitForLeader();
  cluster.network.dropType(MessageType.App, 0.33);
  const droppedBefore = cluster.network.stats.dropped;
  try {
    for (let i = 0; i < 30; i++) await put(cluster.members[i % 3]!, `lossy-${i}`, String(i));
  } finally {
    cluster.network.heal();
  }
  assert.ok(cluster.network.stats.dropped > droppedBefore, "appends were dropped");
  const revision = leader.server.status().header!.revision;
  for (const m of cluster.members) {
    for (let i = 0; i < 30; i += 7) assert.equal(await get(m, `lossy-${i}`), String(i), `${m.name} has lossy-${i}`);
    assert.ok(m.server.status().header!.revision >= revision);
  }
});

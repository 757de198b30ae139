/**
 * The leader cut off from the other two: they elect a new leader and serve writes, the old leader
 * commits nothing, and once the network heals it follows the new leader and holds every write that was
 * acknowledged — and none that was not.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster, eventually, get, put } from "../testing/in-process-cluster.js";

let cluster: InProcessCluster;
before(async () => {
  cluster = await InProcessCluster.start({ size: 3, requestTimeoutMs: 3000 });
});
after(() => cluster.stop());

test("a partitioned leader is replaced; it commits nothing and catches up after healing", async () => {
  const old = await cluster.waitForLeader();
  const others = cluster.members.filter((m) => m !== old);
  await put(old, "before", "1");
  const termBefore = old.server.status().raftTerm;

  cluster.network.isolate(old.server.memberId);
  // A write the old leader takes while cut off can never be committed: only its own log holds it.
  const lost = put(old, "lost", "x").then(
    () => "acknowledged",
    (error: unknown) => `refused: ${String(error)}`,
  );

  const next = await cluster.waitForLeader(others);
  assert.notEqual(next.server.memberId, old.server.memberId);
  assert.ok(next.server.status().raftTerm > termBefore, "the new leader has a later term");
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) {
    await put(others[i % 2]!, `after-${i}`, String(i));
    acknowledged.push(`after-${i}`);
  }
  // With check-quorum the old leader steps down once it hears from no one: no member leads it now.
  await eventually(() => !old.server.isLeader(), "the isolated leader steps down");
  assert.match(await lost, /^refused: .*(timed out|timeout)/i);
  assert.equal(await get(old, "after-0", { serializable: true }), undefined, "nothing of the majority reached the isolated member");

  cluster.network.heal();
  const leader = await cluster.waitForLeader(cluster.members);
  assert.equal(leader.server.memberId, next.server.memberId, "the healed member follows the new leader, it does not depose it");
  for (const key of ["before", ...acknowledged]) assert.notEqual(await get(old, key), undefined, `the old leader has ${key}`);
  for (const m of cluster.members) assert.equal(await get(m, "lost"), undefined, `${m.name} never applied the unacknowledged write`);
  const revision = leader.server.status().header!.revision;
  await eventually(() => old.server.status().header!.revision === revision, "the old leader reaches the cluster's revision");
  const hashes = await Promise.all(cluster.members.map((m) => m.server.hashKV(Number(revision))));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, "every member holds the same history");
});

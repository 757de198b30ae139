/**
 * Membership changes on a running cluster, through the Cluster service as etcdctl would make them: a
 * learner is added, joins from the members' list, catches up, is promoted (asked on a follower, which
 * forwards to the leader), and a voter is removed — it learns it was removed and stops.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HEALTH_INTERVAL_MS } from "../grpc/cluster-service.js";
import { InProcessCluster, eventually, get, put, type InProcessMember } from "../testing/in-process-cluster.js";

let cluster: InProcessCluster;
before(async () => {
  cluster = await InProcessCluster.start({ size: 3 });
});
after(() => cluster.stop());

const learnerFlags = (m: InProcessMember) => new Map(m.server.membership.list().map((x) => [x.name, x.isLearner]));

test("add a learner, let it catch up, promote it, remove a voter", { timeout: 60_000 }, async () => {
  let leader = await cluster.waitForLeader();
  for (let i = 0; i < 50; i++) await put(leader, `k${i}`, `v${i}`);
  // Strict reconfiguration: a member is added only once every voter has been connected this long.
  await new Promise((r) => setTimeout(r, HEALTH_INTERVAL_MS + 100));

  const learner = await cluster.addMember("m4", { learner: true });
  await learner.server.ready();
  assert.equal(learnerFlags(leader).get("m4"), true, "m4 joined as a learner");
  assert.equal(learner.server.membership.list().length, 4);
  // A learner does not vote: the leader is unchanged and the quorum is still two of three.
  assert.equal(learner.server.leaderId(), leader.server.memberId);
  await eventually(async () => (await get(learner, "k49", { serializable: true })) === "v49", "the learner catches up");
  await put(leader, "after-learner", "yes");
  await eventually(async () => (await get(learner, "after-learner", { serializable: true })) === "yes", "the learner follows new writes");

  // Promotion asked on a follower: only the leader knows whether the learner is in sync, so it is forwarded.
  const follower = cluster.members.find((m) => m !== leader && m !== learner)!;
  const requestsBefore = cluster.network.stats.requests;
  await follower.cluster.memberPromote({ $typeName: "etcdserverpb.MemberPromoteRequest", ID: learner.server.memberId });
  assert.ok(cluster.network.stats.requests > requestsBefore, "the follower forwarded the promotion");
  // Answered once the leader applied it; the follower's own list may still be applying it, as in etcd.
  assert.equal(learnerFlags(leader).get("m4"), false, "the leader applied the promotion");
  for (const m of cluster.running()) {
    await eventually(() => learnerFlags(m).get("m4") === false, `${m.name} sees m4 as a voter`);
  }
  await eventually(() => !learner.server.status().isLearner, "m4 knows it votes");

  // Remove a voter that is not the leader; it applies its own removal and stops serving.
  leader = await cluster.waitForLeader();
  const removed = cluster.members.find((m) => m !== leader && m !== learner)!;
  const response = await leader.cluster.memberRemove({ $typeName: "etcdserverpb.MemberRemoveRequest", ID: removed.server.memberId });
  assert.deepEqual(response.members.map((m) => m.name).sort(), ["m1", "m2", "m3", "m4"].filter((n) => n !== removed.name).sort());
  await Promise.race([
    removed.server.removedFromCluster,
    new Promise((_, reject) => setTimeout(() => reject(new Error("the removed member never learned it was removed")), 10_000)),
  ]);
  removed.stopped = true;

  // The three members left serve writes and agree.
  const remaining = cluster.members.filter((m) => m !== removed);
  leader = await cluster.waitForLeader(remaining);
  await put(
    remaining.find((m) => m !== leader)!,
    "after-remove",
    "ok",
  );
  for (const m of remaining) {
    assert.equal(await get(m, "after-remove"), "ok", `${m.name} reads the write after the removal`);
    assert.equal(m.server.membership.list().length, 3);
    assert.equal(m.server.membership.get(removed.server.memberId), undefined);
  }
});

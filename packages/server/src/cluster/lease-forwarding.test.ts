/**
 * Only the leader runs lease clocks: a keep-alive or TimeToLive asked on a follower is forwarded over the
 * peer network and answered by the leader's lessor.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { InProcessCluster } from "../testing/in-process-cluster.js";

let cluster: InProcessCluster;
before(async () => {
  cluster = await InProcessCluster.start({ size: 3 });
});
after(() => cluster.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("keep-alive and TimeToLive on a follower are answered by the leader's lessor", async () => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.members.find((m) => m !== leader)!;
  const id = 0x1234n;
  await follower.server.proposeRequest({ case: "leaseGrant", value: { $typeName: "etcdserverpb.LeaseGrantRequest", ID: id, TTL: 3n } });

  // The follower's own lessor does not answer: it is not the leader.
  await assert.rejects(follower.server.lessor.renew(id), /not.*leader|leader/i);

  const asked = cluster.network.stats.requests;
  const fresh = await follower.server.leaseTimeToLive(id, false);
  assert.equal(fresh.grantedTTL, 3);
  assert.ok(fresh.ttl >= 2 && fresh.ttl <= 3, `ttl ${fresh.ttl}`);
  await sleep(1500);
  // The clock that ran is the leader's: its remaining TTL is what the follower reports.
  const later = await follower.server.leaseTimeToLive(id, false);
  const atLeader = await leader.server.leaseTimeToLive(id, false);
  assert.ok(later.ttl <= 2, `ttl after 1.5 s: ${later.ttl}`);
  // Asked one after the other: a second may have ended in between.
  assert.ok(later.ttl - atLeader.ttl >= 0 && later.ttl - atLeader.ttl <= 1, `follower ${later.ttl}, leader ${atLeader.ttl}`);

  assert.equal(await follower.server.leaseRenew(id), 3, "a keep-alive through the follower renews to the granted TTL");
  const renewed = await leader.server.leaseTimeToLive(id, false);
  assert.ok(renewed.ttl >= 2, `the leader's lessor was renewed: ttl ${renewed.ttl}`);
  assert.equal(cluster.network.stats.requests - asked, 3, "two TimeToLive and one keep-alive went to the leader");

  // An unknown lease, as the leader answers it.
  assert.equal(await follower.server.leaseRenew(0x9999n), 0);
  assert.equal((await follower.server.leaseTimeToLive(0x9999n, false)).ttl, -1);
});

test("a follower cut off from the leader cannot forward a keep-alive", async () => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.members.find((m) => m !== leader)!;
  const id = 0x5678n;
  await leader.server.proposeRequest({ case: "leaseGrant", value: { $typeName: "etcdserverpb.LeaseGrantRequest", ID: id, TTL: 5n } });
  cluster.network.cut(leader.server.memberId, follower.server.memberId);
  try {
    await assert.rejects(follower.server.leaseRenew(id));
  } finally {
    cluster.network.heal();
  }
  assert.equal(await follower.server.leaseRenew(id), 5);
});

/**
 * A linearizable read on a follower asks the leader for its commit index (ReadIndex) and waits until it
 * has applied that far, so it sees a write acknowledged just before — even when the follower's copy of
 * the log lags behind; a serializable read answers from what the follower has now.
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

test("a linearizable read on a lagging follower sees the write the leader just acknowledged", async () => {
  const leader = await cluster.waitForLeader();
  const [lagging, other] = cluster.members.filter((m) => m !== leader) as [typeof leader, typeof leader];
  await put(leader, "k", "old");
  assert.equal(await get(lagging, "k"), "old");

  // Everything from the leader to one follower arrives 200 ms late; the other follower keeps the quorum.
  cluster.network.delayLink(leader.server.memberId, lagging.server.memberId, 200);
  for (let round = 0; round < 3; round++) {
    const value = `new-${round}`;
    await put(leader, "k", value);
    // The follower has not applied the write yet: its own state is stale...
    assert.equal(await get(lagging, "k", { serializable: true }), round === 0 ? "old" : `new-${round - 1}`);
    const readIndexesBefore = cluster.network.stats.byType.get(MessageType.ReadIndex) ?? 0;
    // ...but a linearizable read waits for the leader's index to be applied.
    assert.equal(await get(lagging, "k"), value);
    assert.ok(
      (cluster.network.stats.byType.get(MessageType.ReadIndex) ?? 0) > readIndexesBefore,
      "the follower asked the leader (MsgReadIndex)",
    );
    assert.equal(await get(other, "k"), value);
  }
  cluster.network.heal();
});

test("linearizable reads that arrive together share one ReadIndex round, and each sees the latest write", async () => {
  const leader = await cluster.waitForLeader();
  const follower = cluster.members.find((m) => m !== leader)!;
  cluster.network.delayLink(leader.server.memberId, follower.server.memberId, 50);
  await put(leader, "shared", "v1");
  const readIndexesBefore = cluster.network.stats.byType.get(MessageType.ReadIndex) ?? 0;
  const values = await Promise.all(Array.from({ length: 50 }, () => get(follower, "shared")));
  assert.deepEqual(new Set(values), new Set(["v1"]));
  const asked = (cluster.network.stats.byType.get(MessageType.ReadIndex) ?? 0) - readIndexesBefore;
  assert.ok(asked >= 1 && asked <= 2, `50 reads asked the leader ${asked} times`);
  cluster.network.heal();
});

test("serializable reads are answered once the turn's I/O is handled, together, not each in its own turn", async () => {
  const leader = await cluster.waitForLeader();
  await put(leader, "turn", "v");
  // An immediate queued before the reads runs before any of them is answered: the answers of one turn
  // go out together (one socket write per connection), as those of a linearizable round do.
  let immediateRan = false;
  setImmediate(() => (immediateRan = true));
  const answeredAfterImmediate = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const value = await get(leader, "turn", { serializable: true });
      assert.equal(value, "v");
      return immediateRan;
    }),
  );
  assert.deepEqual(new Set(answeredAfterImmediate), new Set([true]));
});

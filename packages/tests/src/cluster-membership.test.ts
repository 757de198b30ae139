import { test } from "node:test";
import assert from "node:assert/strict";
import { etcdctl, isLeader, memberIdHex, retryWhileUnhealthy, sameHashKV, waitFor } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, type ClusterMemberSpec, type ServerProcess } from "./processes.js";

/**
 * Membership changes with real etcdctl against member processes on 127.0.0.1: a fourth member added
 * with `member add` and started with `--initial-cluster-state existing` catches up; a learner is added,
 * refused promotion while it is not started, promoted once in sync; leadership moves; members are
 * removed (a removed member exits); etcd's errors for the rest.
 */
test("member add/remove/promote and move-leader on a running cluster", { timeout: 180_000 }, async (t) => {
  const specs = await clusterSpecs(5);
  const initial = specs.slice(0, 3);
  const members = new Map<string, ServerProcess>();
  t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
  const started = await Promise.all(initial.map((s) => startClusterMember(initial, s.name, { waitHealthy: false })));
  started.forEach((m, i) => members.set(initial[i]!.name, m));
  const e1 = started[0]!.endpoint;
  await waitFor(
    () => started.every((m) => etcdctl(m.endpoint, ["endpoint", "health", "--command-timeout=2s"]).code === 0),
    30_000,
    "cluster healthy",
  );
  for (let i = 0; i < 20; i++) assert.equal(etcdctl(e1, ["put", `before/${i}`, `v${i}`]).code, 0);

  // etcd's errors
  assert.match(etcdctl(e1, ["member", "remove", "1234"]).stderr, /etcdserver: member not found/);
  assert.match(
    etcdctl(e1, ["member", "add", "x", `--peer-urls=http://127.0.0.1:${initial[1]!.peerPort}`]).stderr,
    /etcdserver: Peer URLs already exists|etcdserver: unhealthy cluster/,
  );

  // a fourth voter: added (retried while the peers' streams are younger than etcd's health interval)
  const n4 = specs[3]!;
  const add = await retryWhileUnhealthy(() => etcdctl(e1, ["member", "add", n4.name, `--peer-urls=http://127.0.0.1:${n4.peerPort}`]));
  assert.equal(add.code, 0, add.stderr);
  const n4Id = /Member\s+([0-9a-f]+) added to cluster/.exec(add.stdout)?.[1];
  assert.ok(n4Id !== undefined, add.stdout);
  assert.match(add.stdout, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
  assert.match(etcdctl(e1, ["member", "list"]).stdout, new RegExp(`${n4Id}, unstarted, , http://127.0.0.1:${n4.peerPort}, , false`));
  const fourth = await startClusterMember(specs.slice(0, 4), n4.name, { state: "existing" });
  members.set(n4.name, fourth);
  await waitFor(() => getCount(fourth.endpoint, "before/") === 20, 20_000, "the new member has the keys written before it joined");
  assert.equal(etcdctl(fourth.endpoint, ["put", "after/4", "x"]).code, 0);
  await waitFor(() => memberLine(e1, n4Id)?.includes(`, ${n4.name}, `) === true, 10_000, "the new member published its name");
  await waitFor(() => sameHashKV([...members.values()].map((m) => m.endpoint)), 20_000, "equal HashKV on the four members");

  // a learner: only one at a time, not promotable before it has the log
  const n5 = specs[4]!;
  const addLearner = await retryWhileUnhealthy(() =>
    etcdctl(e1, ["member", "add", n5.name, "--learner", `--peer-urls=http://127.0.0.1:${n5.peerPort}`]),
  );
  assert.equal(addLearner.code, 0, addLearner.stderr);
  const n5Id = /Member\s+([0-9a-f]+) added to cluster/.exec(addLearner.stdout)![1]!;
  assert.match(
    etcdctl(e1, ["member", "add", "other", "--learner", "--peer-urls=http://127.0.0.1:1"]).stderr,
    /etcdserver: too many learner members in cluster/,
  );
  assert.match(
    etcdctl(e1, ["member", "promote", n5Id]).stderr,
    /etcdserver: can only promote a learner member which is in sync with leader/,
  );
  assert.match(etcdctl(e1, ["member", "promote", n4Id]).stderr, /etcdserver: can only promote a learner member/);
  const learner = await startClusterMember(specs, n5.name, { state: "existing", waitHealthy: false });
  members.set(n5.name, learner);
  await waitFor(
    () => /"isLearner":true/.test(etcdctl(learner.endpoint, ["endpoint", "status", "-w", "json"]).stdout),
    20_000,
    "the learner serves Status",
  ).catch((e: unknown) => {
    console.log(learner.log().slice(-3000), etcdctl(learner.endpoint, ["endpoint", "status", "-w", "json"]));
    throw e;
  });
  // a learner serves serializable reads and Status only, as etcd 3.4
  await waitFor(
    () => etcdctl(learner.endpoint, ["get", "before/0", "--consistency=s", "--print-value-only"]).stdout === "v0\n",
    20_000,
    "the learner has the data",
  );
  assert.match(etcdctl(learner.endpoint, ["put", "k", "v"]).stderr, /etcdserver: rpc not supported for learner/);
  assert.match(etcdctl(learner.endpoint, ["get", "before/0"]).stderr, /etcdserver: rpc not supported for learner/);
  // a promotion asked of a follower is forwarded to the leader
  await waitFor(() => etcdctl(started[1]!.endpoint, ["member", "promote", n5Id]).code === 0, 20_000, "learner promoted once in sync");
  assert.match(memberLine(e1, n5Id) ?? "", /, false$/);

  // leadership moves to a chosen voter
  const endpoints = [...members.values()].map((m) => m.endpoint);
  const leaderEndpoint = endpoints[(await Promise.all(endpoints.map((e) => isLeader(e)))).indexOf(true)]!;
  const target = await memberIdHex(fourth.endpoint);
  if (!(await isLeader(fourth.endpoint))) {
    assert.match(etcdctl(fourth.endpoint, ["move-leader", target]).stderr, /etcdserver: not leader|no leader/i);
    const moved = etcdctl(leaderEndpoint, ["move-leader", target]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, new RegExp(`Leadership transferred from [0-9a-f]+ to ${target}`));
    await waitFor(() => isLeader(fourth.endpoint), 10_000, "the fourth member leads");
  }

  // removals: the learner-turned-voter, then a voter that is not the leader; the removed member exits
  for (const [name, id] of [
    [n5.name, n5Id],
    [initial[2]!.name, await memberIdHex(members.get(initial[2]!.name)!.endpoint)],
  ] as const) {
    const removed = await retryWhileUnhealthy(() => etcdctl(fourth.endpoint, ["member", "remove", id]));
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`Member\\s+${id} removed from cluster`));
    const process = members.get(name)!;
    await waitFor(() => process.child.exitCode !== null, 15_000, `${name} exits after its removal`);
    assert.match(process.log(), /permanently removed from the cluster/);
    members.delete(name);
  }
  assert.equal(etcdctl(fourth.endpoint, ["member", "list"]).stdout.trim().split("\n").length, 3);
  assert.match(etcdctl(fourth.endpoint, ["member", "remove", n5Id]).stderr, /etcdserver: member not found/);
  assert.equal(etcdctl(e1, ["put", "after/remove", "y"]).code, 0);
  await waitFor(() => sameHashKV([...members.values()].map((m) => m.endpoint)), 20_000, "equal HashKV on the remaining members");

  // a restart replays the membership changes in the log with their original verdicts
  await members.get(initial[0]!.name)!.stop();
  const restarted = await startClusterMember(specs.slice(0, 4), initial[0]!.name);
  members.set(initial[0]!.name, restarted);
  assert.equal(etcdctl(restarted.endpoint, ["put", "after/restart", "z"]).code, 0);
  assert.equal(etcdctl(restarted.endpoint, ["member", "list"]).stdout.trim().split("\n").length, 3);
  await waitFor(() => sameHashKV([...members.values()].map((m) => m.endpoint)), 20_000, "equal HashKV after the restart");
});

function getCount(endpoint: string, prefix: string): number {
  const r = etcdctl(endpoint, ["get", prefix, "--prefix", "--keys-only", "--consistency=s", "-w", "json"]);
  return Number(/"count":(\d+)/.exec(r.stdout)?.[1] ?? 0);
}

function memberLine(endpoint: string, id: string): string | undefined {
  return etcdctl(endpoint, ["member", "list"])
    .stdout.split("\n")
    .find((l) => l.startsWith(`${id},`));
}

export type { ClusterMemberSpec };

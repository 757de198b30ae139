import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema, type PutResponse, type RangeResponse, type StatusResponse } from "@etcd-ts/api";
import { call, makeClient, services } from "./grpc-client.js";
import { etcdctl, sameRevision, waitFor } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, type ServerProcess } from "./processes.js";

/**
 * Three members as processes on 127.0.0.1: writes through any member, kill -9 of the leader under a
 * put load, a new leader, the old leader restarted and caught up, equal HashKV everywhere.
 */
test("a 3-member cluster survives kill -9 of its leader with every acknowledged write", { timeout: 120_000 }, async (t) => {
  const specs = await clusterSpecs(3);
  const members = new Map<string, ServerProcess>();
  t.after(() => Promise.all([...members.values()].map((m) => m.kill())));
  // Members wait for each other; only then is the cluster healthy.
  const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false })));
  started.forEach((m, i) => members.set(specs[i]!.name, m));
  const endpoints = started.map((m) => m.endpoint);
  await waitFor(
    () => endpoints.every((e) => etcdctl(e, ["endpoint", "health", "--command-timeout=2s"]).code === 0),
    30_000,
    "cluster healthy",
  );

  // writes through any member are seen by all (linearizable reads)
  for (const [i, e] of endpoints.entries()) assert.equal(etcdctl(e, ["put", `via/${i}`, `v${i}`]).code, 0);
  for (const e of endpoints) assert.equal(etcdctl(e, ["get", "via/", "--prefix", "--print-value-only"]).stdout, "v0\nv1\nv2\n");
  const list = etcdctl(endpoints[0], ["member", "list"]).stdout.trim().split("\n");
  assert.equal(list.length, 3);
  for (const s of specs)
    assert.ok(
      list.some((l) => l.includes(`, ${s.name}, `) && l.includes(`:${s.port}`)),
      `member list shows ${s.name} with its client URL`,
    );

  const leaderName = findLeader(
    specs.map((s) => s.name),
    endpoints,
  );
  const leader = members.get(leaderName)!;
  const others = specs.filter((s) => s.name !== leaderName).map((s) => members.get(s.name)!);

  // put load through a follower while the leader is killed
  const client = makeClient(services.KV, others[0]!.endpoint);
  const acknowledged = new Map<string, bigint>();
  let stop = false;
  let seq = 0;
  const writer = async (w: number) => {
    while (!stop) {
      const key = `load/${w}/${seq++}`;
      try {
        const r = await call<PutResponse>(client, "Put", create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(key) }));
        acknowledged.set(key, r.header!.revision);
      } catch {
        await new Promise((r) => setTimeout(r, 50)); // no leader for a moment: etcd clients retry too
      }
    }
  };
  const writers = Array.from({ length: 8 }, (_, w) => writer(w));
  await new Promise((r) => setTimeout(r, 700));
  await leader.kill();
  const killedAt = Date.now();
  const before = acknowledged.size;
  await waitFor(() => acknowledged.size > before + 20, 15_000, "writes continue after the leader died");
  const failover = Date.now() - killedAt;
  stop = true;
  await Promise.all(writers);
  client.close();
  console.log(`failover: writes resumed ${failover} ms after kill -9 of the leader; ${acknowledged.size} puts acknowledged`);

  // the old leader comes back and catches up
  const restarted = await startClusterMember(specs, leaderName, { waitHealthy: false });
  members.set(leaderName, restarted);
  await waitFor(() => etcdctl(restarted.endpoint, ["endpoint", "health", "--command-timeout=2s"]).code === 0, 30_000, "old leader healthy");
  const allEndpoints = specs.map((s) => members.get(s.name)!.endpoint);
  await waitFor(() => sameRevision(allEndpoints), 20_000, "every member at the same revision");
  for (const e of allEndpoints) {
    const kv = makeClient(services.KV, e);
    const r = await call<RangeResponse>(
      kv,
      "Range",
      create(RangeRequestSchema, { key: Buffer.from("load/"), rangeEnd: Buffer.from("load0"), serializable: true }),
    );
    kv.close();
    const found = new Map(r.kvs.map((x) => [Buffer.from(x.key).toString(), x.modRevision]));
    for (const [key, rev] of acknowledged) assert.equal(found.get(key), rev, `${key} on ${e}`);
  }
  const hashes = allEndpoints.map((e) => /"hash":(\d+)/.exec(etcdctl(e, ["endpoint", "hashkv", "-w", "json"]).stdout)?.[1]);
  assert.ok(hashes[0] !== undefined);
  assert.deepEqual(hashes, [hashes[0], hashes[0], hashes[0]], "HashKV equal on every member");
});

function findLeader(names: string[], endpoints: string[]): string {
  for (const [i, e] of endpoints.entries()) {
    const out = etcdctl(e, ["endpoint", "status", "-w", "json"]).stdout;
    const leader = /"leader":(\d+)/.exec(out)?.[1];
    const self = /"member_id":(\d+)/.exec(out)?.[1];
    if (leader !== undefined && leader === self) return names[i]!;
  }
  throw new Error("no leader found");
}

export type { StatusResponse };

import { readFileSync } from "node:fs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { CompactionRequestSchema, PutRequestSchema, type PutResponse } from "@etcd-ts/api";
import { call, makeClient, services } from "./grpc-client.js";
import { etcdctl, httpHealthy, waitFor } from "@etcd-ts/test-support";
import { clusterSpecs, startClusterMember, type ServerProcess } from "./processes.js";

/** Kill/restart rounds (2 in CI; more to hunt for a restart that does not come back). */
const ROUNDS = Number(process.env.RESTART_ROUNDS ?? 2);
/** Low, so the members snapshot and compact their logs often. */
const SNAPSHOT_COUNT = process.env.RESTART_SNAPSHOT_COUNT ?? "300";
/** How long the member stays down: long enough under this load that the leader's log no longer reaches it. */
const DOWN_MS = Number(process.env.RESTART_DOWN_MS ?? 12_000);

/**
 * A follower killed (-9) while the others write and compact, restarted after the leader snapshotted and
 * compacted its log past it (so it catches up from the leader's database, or from the log when it was not
 * down long enough), with the load going on: each time it must become healthy and reach the others'
 * revision within a generous bound.
 */
test(
  "a follower killed -9 under load comes back across the leader's snapshots",
  { timeout: 60_000 + ROUNDS * (DOWN_MS + 120_000) },
  async (t) => {
    const specs = await clusterSpecs(3);
    const members = new Map<string, ServerProcess>();
    let stopLoad = false;
    t.after(async () => {
      stopLoad = true;
      await Promise.all([...members.values()].map((m) => m.kill()));
    });
    const extraArgs = ["--snapshot-count", SNAPSHOT_COUNT, "--log-level", "info"];
    const started = await Promise.all(specs.map((s) => startClusterMember(specs, s.name, { waitHealthy: false, extraArgs })));
    started.forEach((m, i) => members.set(specs[i]!.name, m));
    await waitFor(async () => (await Promise.all(started.map((m) => httpHealthy(m.endpoint)))).every(Boolean), 30_000, "cluster healthy");

    let puts = 0;
    let revision = 0;
    const sleepUnlessStopped = async (ms: number) => {
      for (let waited = 0; waited < ms && !stopLoad; waited += 100) await new Promise((r) => setTimeout(r, 100));
    };
    const writer = async (endpoint: string) => {
      const client = makeClient(services.KV, endpoint);
      try {
        while (!stopLoad) {
          const put = create(PutRequestSchema, { key: Buffer.from(`k/${puts % 500}`), value: Buffer.from(`v${puts}`) });
          try {
            const r = await call<PutResponse>(client, "Put", put);
            revision = Math.max(revision, Number(r.header?.revision ?? 0));
            puts++;
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      } finally {
        client.close();
      }
    };
    // Compaction goes on as in production, so a snapshot install meets compactions in flight.
    const compactor = async () => {
      const client = makeClient(services.KV, started[0]!.endpoint);
      let compacted = 0;
      try {
        while (!stopLoad) {
          await sleepUnlessStopped(2000);
          const to = revision - 200;
          if (to <= compacted) continue;
          await call(client, "Compact", create(CompactionRequestSchema, { revision: BigInt(to) })).then(
            () => (compacted = to),
            () => undefined,
          );
        }
      } finally {
        client.close();
      }
    };
    const load = Promise.all([...Array.from({ length: 8 }, (_, i) => writer(started[i % 2]!.endpoint)), compactor()]);
    let installs = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000));
        await members.get("n3")!.kill();
        await new Promise((r) => setTimeout(r, DOWN_MS));
        const restarted = await startClusterMember(specs, "n3", { waitHealthy: false, extraArgs });
        members.set("n3", restarted);
        const from = Date.now();
        const diagnose = (error: Error) => {
          const statuses = [...members.values()].map((m) =>
            etcdctl(m.endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"]).stdout.trim(),
          );
          throw new Error(`${error.message}\nstatus:\n${statuses.join("\n")}\nn3's log:\n${restarted.log().slice(-6000)}`);
        };
        await waitFor(() => httpHealthy(restarted.endpoint), 60_000, `n3 healthy after restart ${round + 1}`).catch(diagnose);
        const target = revision;
        await waitFor(() => currentRevision(restarted.endpoint) >= target, 60_000, `n3 at revision ${target}`).catch(diagnose);
        const installed = /installed a database snapshot/.test(restarted.log());
        if (installed) installs++;
        console.log(
          `restart ${round + 1}: healthy and caught up after ${Date.now() - from} ms; ${puts} puts so far; ${installed ? "installed the leader's database" : "caught up from the log"}; ` +
            [...members].map(([name, m]) => `${name} ${rssMiB(m.child.pid)}`).join(", "),
        );
      }
    } finally {
      stopLoad = true;
      await load;
    }
    assert.ok(puts > 0);
    console.log(`${installs} of ${ROUNDS} restarts caught up by a snapshot`);
  },
);

function currentRevision(endpoint: string): number {
  return Number(/"revision":(\d+)/.exec(etcdctl(endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"]).stdout)?.[1] ?? 0);
}

/** Resident and peak memory of a process, from /proc. */
function rssMiB(pid: number | undefined): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return `RSS ${(kib("VmRSS") / 1024).toFixed(0)} MiB (peak ${(kib("VmHWM") / 1024).toFixed(0)})`;
  } catch {
    return "gone";
  }
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, type PutResponse } from "@etcd-ts/api";
import { assertAcknowledgedPresent, call, makeClient, services } from "./grpc-client.js";
import { startEtcdTs } from "./processes.js";

/**
 * kill -9 under a concurrent put load, for each engine: every put acknowledged before the kill is there
 * after the restart, at the revision its response reported.
 */
for (const engine of ["sqlite", "lmdb"] as const) {
  test(`every acknowledged put survives kill -9 (${engine})`, async (t) => {
    const first = await startEtcdTs({ engine });
    t.after(() => first.kill());
    const client = makeClient(services.KV, first.endpoint);
    const acknowledged = new Map<string, { value: string; revision: bigint }>();
    let stop = false;
    let seq = 0;
    const writer = async (w: number) => {
      while (!stop) {
        const key = `crash/${w}/${seq++}`;
        const value = `v-${key}`;
        try {
          const response = await call<PutResponse>(
            client,
            "Put",
            create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }),
          );
          acknowledged.set(key, { value, revision: response.header!.revision });
        } catch {
          return; // the server died under us: this put was never acknowledged
        }
      }
    };
    const writers = Array.from({ length: 32 }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 1500));
    await first.kill();
    stop = true;
    await Promise.all(writers);
    client.close();
    assert.ok(acknowledged.size > 50, `only ${acknowledged.size} puts were acknowledged before the kill`);

    const second = await startEtcdTs({ engine, dataDir: first.dataDir, port: first.port, peerPort: first.peerPort });
    t.after(() => second.stop());
    const reader = makeClient(services.KV, second.endpoint);
    t.after(() => reader.close());
    const all = await assertAcknowledgedPresent(reader, "crash/", "crash0", acknowledged, "after restart");
    // Revisions continue from where they were: no revision is reused after the restart.
    const after = await call<PutResponse>(reader, "Put", create(PutRequestSchema, { key: Buffer.from("after"), value: Buffer.from("x") }));
    assert.equal(after.header!.revision, all.header!.revision + 1n);
  });
}

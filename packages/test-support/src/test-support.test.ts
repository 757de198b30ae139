import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "node:test";
import { etcdctl, freePort, haveEtcd, isLeader, startEtcd, teardown, waitFor } from "./index.js";

test("freePort: distinct ports, each bindable on 127.0.0.1", async () => {
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports.slice(0, 3)) {
    await new Promise<void>((resolve, reject) => {
      const server = createServer().once("error", reject);
      server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
    });
  }
});

test("waitFor: resolves once the predicate holds, names what it waited for on timeout", async () => {
  let calls = 0;
  await waitFor(() => Promise.resolve(++calls === 3), 5000, "the third call", 1);
  assert.equal(calls, 3);
  await assert.rejects(
    waitFor(() => false, 30, "never", 5),
    /timed out waiting for: never/,
  );
});

test("teardown: runs last-registered-first in one hook, runs every cleanup when one throws, rethrows the first error", async () => {
  const hooks: (() => unknown)[] = [];
  const host = { after: (fn: () => unknown) => hooks.push(fn) };
  const ran: string[] = [];
  teardown(host)(() => ran.push("remove dir"));
  teardown(host)(() => {
    ran.push("stop member");
    throw new Error("stop failed");
  });
  teardown(host)(() => {
    ran.push("close client");
    throw new Error("close failed");
  });
  assert.equal(hooks.length, 1, "one after-hook per test context");
  await assert.rejects(Promise.resolve(hooks[0]?.()), /close failed/);
  assert.deepEqual(ran, ["close client", "stop member", "remove dir"]);
});

test(
  "startEtcd: a real etcd serves on its ports, and stopping it removes the data dir it made",
  { skip: haveEtcd() ? false : "etcd 3.4 is not installed", timeout: 60_000 },
  async (t) => {
    const etcd = await startEtcd({ logLevel: "error" });
    t.after(() => etcd.kill());
    assert.equal(etcdctl(etcd.endpoint, ["put", "k", "v"]).code, 0);
    assert.equal(etcdctl(etcd.clientUrl, ["get", "k", "--print-value-only"]).stdout, "v\n");
    assert.ok(await isLeader(etcd.endpoint));
    assert.ok(existsSync(etcd.dataDir));
    await etcd.stop();
    assert.ok(etcd.child.exitCode !== null || etcd.child.signalCode !== null, "the process exited");
    assert.ok(!existsSync(etcd.dataDir));
  },
);

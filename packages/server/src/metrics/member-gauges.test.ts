/**
 * Gauges handed to `startMember` (the app's JSON gateway bounds) are served on `/metrics` with the
 * member's own, read at each scrape; a name the member already serves is refused before anything starts.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openMemoryBackend } from "@etcd-ts/storage";
import { defaultConfig, type ServerConfig } from "../config.js";
import { silentLogger } from "../log.js";
import { startMember } from "../member.js";
import { freePort, teardown } from "@etcd-ts/test-support";

async function memberConfig(t: TestContext): Promise<{ config: ServerConfig; port: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-gauges-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const peer = `http://127.0.0.1:${await freePort()}`;
  const client = `http://127.0.0.1:${port}`;
  return {
    port,
    config: {
      ...defaultConfig("n1"),
      dataDir,
      listenClientUrls: [client],
      advertiseClientUrls: [client],
      listenPeerUrls: [peer],
      initialAdvertisePeerUrls: [peer],
      initialCluster: new Map([["n1", [peer]]]),
    },
  };
}

test("gauges given to the member are on /metrics and read at each scrape", async (t) => {
  const { config, port } = await memberConfig(t);
  let held = 3;
  const member = await startMember({
    config,
    backend: openMemoryBackend(),
    logger: silentLogger,
    gauges: [{ name: "etcd_ts_test_held_bytes", help: "Bytes held (bounded).", read: () => held }],
  });
  teardown(t)(() => member.stop());
  const scrape = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const first = await scrape();
  assert.match(
    first,
    /^# HELP etcd_ts_test_held_bytes Bytes held \(bounded\)\.\n# TYPE etcd_ts_test_held_bytes gauge\netcd_ts_test_held_bytes 3$/m,
  );
  assert.match(first, /^etcd_server_has_leader 1$/m);
  held = 1_048_576;
  assert.match(await scrape(), /^etcd_ts_test_held_bytes 1\.048576e\+06$/m);
});

test("a gauge named as one of the member's own is refused before the member starts", async (t) => {
  const { config, port } = await memberConfig(t);
  const backend = openMemoryBackend();
  teardown(t)(() => backend.close());
  await assert.rejects(
    startMember({ config, backend, logger: silentLogger, gauges: [{ name: "etcd_server_has_leader", help: "x", read: () => 0 }] }),
    /etcd_server_has_leader registered twice/,
  );
  // Nothing listens: the member never started.
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) }));
});

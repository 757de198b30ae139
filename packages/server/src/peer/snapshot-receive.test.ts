/**
 * What a member keeps of databases sent to its peer port: files raft never took are removed at start,
 * an upload whose raft message claims more than a raft message can be is cut off, not buffered, and one
 * whose message is no snapshot is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType, encodeMessage } from "@etcd-ts/raft";
import { openMemoryBackend } from "@etcd-ts/storage";
import { defaultConfig, type ServerConfig } from "../config.js";
import { EtcdServer } from "../etcd-server.js";
import { freePort, teardown } from "@etcd-ts/test-support";
import { RAFT_SNAPSHOT_PATH, receivedSnapshotDir, receivedSnapshotPath } from "./snapshot-transfer.js";
import { CLUSTER_ID_HEADER } from "./transport.js";

async function memberConfig(dataDir: string): Promise<{ config: ServerConfig; peerPort: number }> {
  const peerPort = await freePort();
  const peer = `http://127.0.0.1:${peerPort}`;
  return {
    config: {
      ...defaultConfig("n1"),
      dataDir,
      listenPeerUrls: [peer],
      initialAdvertisePeerUrls: [peer],
      initialCluster: new Map([["n1", [peer]]]),
    },
    peerPort,
  };
}

test("databases left in snap-received that raft never took are removed when the member starts", { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-snap-received-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const { config } = await memberConfig(dataDir);
  const backend = openMemoryBackend();
  const first = await EtcdServer.start({ config, backend });
  await first.ready();
  await first.stop();

  // A declined database (an index the log already holds) and a transfer cut short by a stop.
  mkdirSync(receivedSnapshotDir(dataDir), { recursive: true });
  writeFileSync(receivedSnapshotPath(dataDir, 1), Buffer.alloc(1024 * 1024));
  writeFileSync(join(receivedSnapshotDir(dataDir), "incoming-1-2.part"), Buffer.alloc(4096));

  const second = await EtcdServer.start({ config, backend });
  teardown(t)(() => second.stop());
  await second.ready();
  const left = existsSync(receivedSnapshotDir(dataDir)) ? readdirSync(receivedSnapshotDir(dataDir)) : [];
  assert.deepEqual(left, []);
});

test("a snapshot upload whose raft message claims more than 16 MiB is cut off before it is buffered", { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-snap-upload-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const { config, peerPort } = await memberConfig(dataDir);
  const server = await EtcdServer.start({ config, backend: openMemoryBackend() });
  teardown(t)(() => server.stop());
  await server.ready();

  const heapBefore = process.memoryUsage().heapUsed;
  let sent = 0;
  const outcome = await new Promise<string>((resolve) => {
    const req = request({
      host: "127.0.0.1",
      port: peerPort,
      method: "POST",
      path: RAFT_SNAPSHOT_PATH,
      headers: { "content-type": "application/octet-stream", [CLUSTER_ID_HEADER]: server.clusterId.toString(16) },
    });
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(`answered ${res.statusCode}`));
      res.on("error", () => resolve("closed"));
    });
    req.on("error", () => resolve("closed"));
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(0xfffffff0, 0);
    req.write(prefix);
    const chunk = Buffer.alloc(1024 * 1024, 7);
    // Up to 256 MiB follow; a member that buffers the claimed message would hold all of it.
    const pump = (): void => {
      while (sent < 256 && !req.destroyed) {
        sent++;
        if (!req.write(chunk)) {
          req.once("drain", pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
  assert.ok(outcome === "closed" || outcome.startsWith("answered"), outcome);
  assert.ok(sent < 256, `the member read all ${sent} MiB of a refused upload`);
  assert.ok(process.memoryUsage().heapUsed - heapBefore < 128 * 1024 * 1024, "the refused upload was not buffered");
  // The partial file goes once the member has seen the connection end (it answers before it cleans up).
  const partials = (): string[] => (existsSync(receivedSnapshotDir(dataDir)) ? readdirSync(receivedSnapshotDir(dataDir)) : []);
  for (let i = 0; i < 50 && partials().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(partials(), []);
});

test("an upload whose raft message carries no snapshot is answered 400 and leaves no file", { timeout: 60_000 }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-snap-upload-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const { config, peerPort } = await memberConfig(dataDir);
  const server = await EtcdServer.start({ config, backend: openMemoryBackend() });
  teardown(t)(() => server.stop());
  await server.ready();

  const head = encodeMessage({
    type: MessageType.App,
    from: 2n,
    to: server.memberId,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
  });
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(head.byteLength, 0);
  const body = Buffer.concat([prefix, head, Buffer.alloc(256 * 1024, 7)]);
  const answer = await new Promise<{ status: number | undefined; text: string }>((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: peerPort,
      method: "POST",
      path: RAFT_SNAPSHOT_PATH,
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(body.length),
        [CLUSTER_ID_HEADER]: server.clusterId.toString(16),
      },
    });
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
  assert.equal(answer.status, 400);
  assert.match(answer.text, /no raft snapshot message/);
  const left = existsSync(receivedSnapshotDir(dataDir)) ? readdirSync(receivedSnapshotDir(dataDir)) : [];
  assert.deepEqual(left, []);
});

/**
 * Opening a member's parts from its data dir before there is a server: a new member, a restart, a
 * database raft took before a stop, and data dirs whose backend and raft log disagree.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { saveBoltSnapshotFile } from "@etcd-ts/snapshot";
import { openMemoryBackend, type Backend } from "@etcd-ts/storage";
import { clusterStateSnapshot } from "./maintenance/backend-snapshot.js";
import { bootstrapMember, type BootstrappedMember } from "./bootstrap.js";
import { defaultConfig, type ServerConfig } from "./config.js";
import { silentLogger } from "./log.js";
import { receivedSnapshotDir, receivedSnapshotPath } from "./peer/snapshot-transfer.js";
import { teardown, type AfterHookHost } from "@etcd-ts/test-support";

const PEER = "http://127.0.0.1:2380";

function memberConfig(dataDir: string): ServerConfig {
  return {
    ...defaultConfig("n1"),
    dataDir,
    listenPeerUrls: [PEER],
    initialAdvertisePeerUrls: [PEER],
    initialCluster: new Map([["n1", [PEER]]]),
  };
}

function tempDir(t: AfterHookHost): string {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-bootstrap-"));
  teardown(t)(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(config: ServerConfig, backend: Backend): Promise<BootstrappedMember> {
  return bootstrapMember({
    config,
    backend,
    logger: silentLogger,
    tickMs: 100,
    electionTicks: 10,
    fetchCluster: () => Promise.reject(new Error("a new cluster asks no peers")),
  });
}

async function close(member: BootstrappedMember): Promise<void> {
  member.state.close();
  member.lessor.close();
  await member.storage.close();
}

test("a new member bootstraps its cluster at term 1; opened again, it is a restart of the same member", async (t) => {
  const config = memberConfig(tempDir(t));
  const backend = openMemoryBackend();
  const first = await open(config, backend);
  assert.equal(first.restarted, false);
  assert.equal(first.storage.hardState.term, 1);
  assert.deepEqual(
    first.membership.list().map((m) => m.peerUrls),
    [[PEER]],
  );
  const { localId, clusterId } = first.membership;
  await close(first);

  const second = await open(config, backend);
  teardown(t)(() => close(second));
  assert.equal(second.restarted, true);
  assert.equal(second.membership.localId, localId);
  assert.equal(second.membership.clusterId, clusterId);
});

test("a data dir whose backend and raft log disagree is refused", async (t) => {
  const backend = openMemoryBackend();
  await close(await open(memberConfig(tempDir(t)), backend));
  // The backend of a member, the raft log of none.
  await assert.rejects(
    open(memberConfig(tempDir(t)), backend),
    /raft is missing but the backend belongs to a member: the data dir is damaged/,
  );

  const dataDir = tempDir(t);
  await close(await open(memberConfig(dataDir), openMemoryBackend()));
  // A raft log, and a backend without membership.
  await assert.rejects(
    open(memberConfig(dataDir), openMemoryBackend()),
    /has no membership but a raft log exists: the data dir is damaged/,
  );
});

test("a database raft took before a stop is installed at the next start; without it the data dir is damaged", async (t) => {
  // The leader's side: the same member's state at index 50, as it would ship it.
  const leaderBackend = openMemoryBackend();
  await close(await open(memberConfig(tempDir(t)), leaderBackend));
  await leaderBackend.update((txn) => {
    txn.createBucket(META_BUCKET);
    writeConsistentIndex(txn, 50);
  });

  const dataDir = tempDir(t);
  const config = memberConfig(dataDir);
  const backend = openMemoryBackend();
  const first = await open(config, backend);
  const confState = first.membership.confState();
  // Raft persisted the snapshot, then the process stopped before the database became the backend.
  await first.storage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 50, term: 2, confState } });
  await close(first);

  await assert.rejects(
    open(config, backend),
    /holds a snapshot at index 50 but the backend is at 0 and .* is missing: the data dir is damaged/,
  );

  mkdirSync(receivedSnapshotDir(dataDir), { recursive: true });
  const view = clusterStateSnapshot(leaderBackend.snapshot());
  try {
    await saveBoltSnapshotFile(view, receivedSnapshotPath(dataDir, 50));
  } finally {
    view.close();
  }
  // A database raft never took, left beside it: removed, as it can no longer be installed.
  const declined = receivedSnapshotPath(dataDir, 7);
  writeFileSync(declined, "db");

  const second = await open(config, backend);
  teardown(t)(() => close(second));
  assert.equal(second.state.store.consistentIndex(), 50);
  assert.equal(second.membership.localId, first.membership.localId);
  assert.equal(existsSync(receivedSnapshotPath(dataDir, 50)), false);
  assert.equal(existsSync(declined), false);
});

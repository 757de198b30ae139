/**
 * Against the real etcd 3.4 tools: our snapshot passes `etcdctl snapshot status` and `restore` and a real
 * etcd serves it; a snapshot saved from a real etcd reads and restores here and goes back again.
 * Skipped when etcd/etcdctl are not installed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  ALARM_BUCKET,
  AUTH_BUCKET,
  CLUSTER_BUCKET,
  KEY_BUCKET,
  LEASE_BUCKET,
  MEMBERS_BUCKET,
  META_BUCKET,
  isConsistentIndexRow,
} from "@etcd-ts/schema";
import { compareBytes, openMemoryBackend } from "@etcd-ts/storage";
import { etcdctl, etcdctlOutput, freePort, haveEtcd, startEtcd } from "@etcd-ts/test-support";
import { readBoltFile, restoreBoltSnapshot, saveBoltSnapshotFile, snapshotStatus, verifySnapshotHash } from "./index.js";
import { backendContents, boltContents } from "./testing/dump.js";
import { EtcdHistory, decodeKeyValue, patternBytes, populate, sampleHistory } from "./testing/etcd-data.js";
import type { KeyValue } from "./testing/etcd-data.js";

const skip = haveEtcd() ? false : "etcd and etcdctl are not installed";
const workDir = mkdtempSync(join(tmpdir(), "snapshot-etcd-"));
after(() => rmSync(workDir, { recursive: true, force: true }));

interface JsonKv {
  key: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  value?: string;
  lease?: number;
}

interface JsonGet {
  header: { revision: number };
  kvs?: JsonKv[];
  count?: number;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

/** The JSON `etcdctl get -w json` prints for these live keys (empty values and zero leases omitted). */
function expectedKvs(live: Iterable<KeyValue>): JsonKv[] {
  return [...live]
    .sort((a, b) => compareBytes(a.key, b.key))
    .map((kv) => ({
      key: b64(kv.key),
      create_revision: kv.createRevision,
      mod_revision: kv.modRevision,
      version: kv.version,
      ...(kv.value.length > 0 ? { value: b64(kv.value) } : {}),
    }));
}

function getAll(endpoint: string): JsonGet {
  return JSON.parse(etcdctlOutput(endpoint, ["get", "", "--prefix", "-w", "json"])) as JsonGet;
}

function etcdctlStatus(path: string): unknown {
  return JSON.parse(etcdctlOutput(undefined, ["snapshot", "status", path, "-w", "json"]));
}

/** A member's name and ports, chosen before `etcdctl snapshot restore` writes them into its data dir. */
interface MemberPorts {
  readonly name: string;
  readonly port: number;
  readonly peerPort: number;
}

async function memberPorts(name: string): Promise<MemberPorts> {
  return { name, port: await freePort(), peerPort: await freePort() };
}

/** `etcdctl snapshot restore` into a fresh data dir for a one-member cluster on `ports`. */
function etcdctlRestore(path: string, dataDir: string, ports: MemberPorts): void {
  const peerUrl = `http://127.0.0.1:${ports.peerPort}`;
  etcdctlOutput(undefined, [
    "snapshot",
    "restore",
    path,
    "--data-dir",
    dataDir,
    "--name",
    ports.name,
    "--initial-cluster",
    `${ports.name}=${peerUrl}`,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster-token",
    "etcd-ts-snapshot-test",
  ]);
}

/** Restores `path` with etcdctl, starts etcd on it, and returns everything it serves. */
async function serveWithEtcd(path: string, name: string): Promise<JsonGet> {
  const ports = await memberPorts(name);
  const dataDir = join(workDir, `${name}.etcd`);
  etcdctlRestore(path, dataDir, ports);
  const member = await startEtcd({ ...ports, dataDir });
  try {
    return getAll(member.clientUrl);
  } finally {
    await member.stop();
  }
}

test("etcd-ts → etcd: etcdctl reads and restores our snapshot and etcd serves exactly the data", { skip, timeout: 180_000 }, async () => {
  const history = sampleHistory();
  const backend = openMemoryBackend();
  await populate(backend, history);
  const path = join(workDir, "from-etcd-ts.db");
  const snapshot = backend.snapshot();
  try {
    await saveBoltSnapshotFile(snapshot, path);
  } finally {
    snapshot.close();
  }

  const status = etcdctlStatus(path);
  assert.deepEqual(status, snapshotStatus(path));
  assert.deepEqual(
    { revision: (status as { revision: number }).revision, totalKey: (status as { totalKey: number }).totalKey },
    { revision: history.revision, totalKey: history.rows.length + 1 },
  );

  const served = await serveWithEtcd(path, "restored-from-ts");
  assert.equal(served.header.revision, history.revision);
  assert.equal(served.count, history.live.size);
  assert.deepEqual(served.kvs, expectedKvs(history.live.values()));
});

test("etcd → etcd-ts → etcd: a snapshot saved from real etcd reads, restores, and goes back", { skip, timeout: 180_000 }, async () => {
  const ports = await memberPorts("source");
  const member = await startEtcd({ ...ports, dataDir: join(workDir, "source.etcd") });
  const path = join(workDir, "from-etcd.db");
  const big = patternBytes(100_000, 7);
  let original: JsonGet;
  try {
    const endpoint = member.clientUrl;
    for (const value of ["v1", "v2", "v3"]) etcdctlOutput(endpoint, ["put", "a", value]);
    etcdctlOutput(endpoint, ["put", "b", "gone soon"]);
    etcdctlOutput(endpoint, ["del", "b"]);
    etcdctlOutput(endpoint, ["put", "big"], big);
    etcdctlOutput(endpoint, ["put", "c", "small"]);
    original = getAll(endpoint);
    etcdctlOutput(endpoint, ["snapshot", "save", path]);
  } finally {
    await member.stop();
  }
  assert.equal(original.header.revision, 8);

  // What etcd wrote: the hash, the status, the rows of key and meta.
  assert.equal(verifySnapshotHash(path).dbSize % 4096, 0);
  const etcdStatus = etcdctlStatus(path);
  assert.deepEqual(snapshotStatus(path), etcdStatus);
  const file = readBoltFile(path);
  let fileContents;
  try {
    assert.deepEqual(file.check(), []);
    for (const bucket of [KEY_BUCKET, META_BUCKET, LEASE_BUCKET, AUTH_BUCKET, MEMBERS_BUCKET, CLUSTER_BUCKET, ALARM_BUCKET]) {
      assert.ok(file.bucketNames().includes(bucket), `bucket ${bucket}`);
    }
    const rows = [...file.entries(KEY_BUCKET)].map(({ key, value }) => {
      const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
      return {
        main: Number(view.getBigUint64(0, false)),
        tombstone: key.length === 18 && key[17] === 0x74,
        kv: decodeKeyValue(value),
      };
    });
    const text = (b: Uint8Array): string => Buffer.from(b).toString();
    assert.deepEqual(
      rows.map((r) => [r.main, text(r.kv.key), r.tombstone, r.kv.version, r.kv.createRevision]),
      [
        [2, "a", false, 1, 2],
        [3, "a", false, 2, 2],
        [4, "a", false, 3, 2],
        [5, "b", false, 1, 5],
        [6, "b", true, 0, 0],
        [7, "big", false, 1, 7],
        [8, "c", false, 1, 8],
      ],
    );
    assert.deepEqual(
      rows.slice(0, 3).map((r) => text(r.kv.value)),
      ["v1", "v2", "v3"],
    );
    assert.deepEqual(rows[5]?.kv.value, big);
    const consistentIndex = [...file.entries(META_BUCKET)].find((e) => isConsistentIndexRow(META_BUCKET, e.key));
    assert.equal(consistentIndex?.value.length, 8);
    fileContents = boltContents(file);
  } finally {
    file.close();
  }

  // etcd's own data file (no hash, bigger than its pages, freelist not stored) reads the same.
  const liveDb = readBoltFile(join(workDir, "source.etcd", "member", "snap", "db"));
  try {
    assert.ok(liveDb.fileSize >= liveDb.dbSize);
    assert.deepEqual(liveDb.check(), []);
    assert.deepEqual(boltContents(liveDb).key, fileContents.key);
  } finally {
    liveDb.close();
  }
  const fromDataDir = openMemoryBackend();
  await assert.rejects(restoreBoltSnapshot(join(workDir, "source.etcd", "member", "snap", "db"), fromDataDir), /missing hash/);
  await restoreBoltSnapshot(join(workDir, "source.etcd", "member", "snap", "db"), fromDataDir, { skipHashCheck: true });
  assert.deepEqual(backendContents(fromDataDir).key, fileContents.key);

  // Into etcd-ts's storage: every bucket, key and meta included, byte for byte.
  const backend = openMemoryBackend();
  await restoreBoltSnapshot(path, backend);
  const restored = backendContents(backend);
  assert.deepEqual(restored.key, fileContents.key);
  assert.deepEqual(restored.meta, fileContents.meta);
  assert.deepEqual(restored, fileContents);

  // And back out: the same content by etcdctl's hash, and etcd serves the same keys.
  const back = join(workDir, "back-to-etcd.db");
  const snapshot = backend.snapshot();
  try {
    await saveBoltSnapshotFile(snapshot, back);
  } finally {
    snapshot.close();
  }
  const { totalSize: _ignored, ...backStatus } = etcdctlStatus(back) as Record<string, number>;
  const { totalSize: _ignored2, ...etcdStatusContent } = etcdStatus as Record<string, number>;
  assert.deepEqual(backStatus, etcdStatusContent);
  const served = await serveWithEtcd(back, "round-trip");
  assert.deepEqual(served.kvs, original.kvs);
  assert.equal(served.header.revision, original.header.revision);
});

test("etcdctl refuses our snapshot when its hash is wrong, as we do", { skip, timeout: 60_000 }, async () => {
  const backend = openMemoryBackend();
  await populate(backend, sampleHistory());
  const path = join(workDir, "bad-hash.db");
  const snapshot = backend.snapshot();
  try {
    await saveBoltSnapshotFile(snapshot, path);
  } finally {
    snapshot.close();
  }
  const { openSync, writeSync, closeSync, statSync } = await import("node:fs");
  const fd = openSync(path, "r+");
  writeSync(fd, new Uint8Array([0xee]), 0, 1, statSync(path).size - 1);
  closeSync(fd);
  const result = etcdctl(undefined, ["snapshot", "restore", path, "--data-dir", join(workDir, "bad-hash.etcd")]);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /expected sha256/);
  assert.throws(() => verifySnapshotHash(path), /sha256 mismatch/);
});

test("a large store (deep trees, overflow pages) passes bbolt's Tx.Check and etcd serves it", { skip, timeout: 180_000 }, async () => {
  const history = new EtcdHistory();
  for (let i = 0; i < 20_000; i++) {
    const size = i % 1000 === 0 ? 30_000 : i % 7 === 0 ? 0 : 20 + (i % 180);
    history.put(`/k/${String(i % 12_000).padStart(6, "0")}`, patternBytes(size, i));
  }
  for (let i = 0; i < 12_000; i += 13) history.delete(`/k/${String(i).padStart(6, "0")}`);
  const backend = openMemoryBackend();
  await populate(backend, history, 99_999);
  // A bucket of 2000-byte keys: two per page, so its tree is four branch levels deep.
  await backend.update((txn) => {
    txn.createBucket("zz-wide-keys");
    for (let i = 0; i < 300; i++) txn.put("zz-wide-keys", patternBytes(2000, i), patternBytes(i, i));
  });
  const path = join(workDir, "large.db");
  const snapshot = backend.snapshot();
  try {
    await saveBoltSnapshotFile(snapshot, path);
  } finally {
    snapshot.close();
  }
  assert.deepEqual(etcdctlStatus(path), snapshotStatus(path));
  const served = await serveWithEtcd(path, "large");
  assert.equal(served.header.revision, history.revision);
  assert.deepEqual(served.kvs, expectedKvs(history.live.values()));
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "@etcd-ts/api";
import { StorageError, isStorageError, openMemoryBackend, type Backend, type WriteTxn } from "@etcd-ts/storage";
import { defaultConfig, type ServerConfig } from "./config.js";
import { EtcdServer } from "./etcd-server.js";
import { freePort, teardown } from "@etcd-ts/test-support";

/**
 * A backend whose commits fail on demand as a full disk fails SQLite's COMMIT: the transaction's
 * function runs, then the engine rolls it all back and rejects with StorageError Full.
 */
function failingBackend(
  inner: Backend,
): Backend & { failWith: StorageError | undefined; failFlushWith: StorageError | undefined; flushes: number } {
  const wrapper = Object.create(inner) as Backend & {
    failWith: StorageError | undefined;
    failFlushWith: StorageError | undefined;
    flushes: number;
  };
  wrapper.failWith = undefined;
  wrapper.failFlushWith = undefined;
  wrapper.flushes = 0;
  wrapper.flush = () => {
    wrapper.flushes++;
    return wrapper.failFlushWith === undefined ? inner.flush() : Promise.reject(wrapper.failFlushWith);
  };
  wrapper.update = (fn: (txn: WriteTxn) => void) => {
    const failure = wrapper.failWith;
    if (failure === undefined) return inner.update(fn);
    return inner.update((txn) => {
      fn(txn);
      throw failure;
    });
  };
  return wrapper;
}

const put = (key: string, value: string) => create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) });

test(
  "a backend that cannot commit stops the member with the reason; a restart has every acknowledged write",
  { timeout: 60_000 },
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-disk-failure-"));
    teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
    const peer = `http://127.0.0.1:${await freePort()}`;
    const config: ServerConfig = {
      ...defaultConfig("n1"),
      dataDir,
      listenPeerUrls: [peer],
      initialAdvertisePeerUrls: [peer],
      initialCluster: new Map([["n1", [peer]]]),
    };
    // The memory engine outlives the member (EtcdServer.stop leaves the backend open): it plays the disk.
    const backend = failingBackend(openMemoryBackend());
    const first = await EtcdServer.start({ config, backend });
    teardown(t)(() => first.stop());
    await first.ready();
    for (let i = 0; i < 5; i++) await first.put(put(`k${i}`, `v${i}`));

    backend.failWith = new StorageError(
      "Full",
      `data dir ${dataDir}/member/backend: sqlite: database or disk is full (SQLITE_FULL; 0 bytes free on its file system)`,
    );
    await assert.rejects(first.put(put("k5", "v5")), (e: unknown) => isStorageError(e, "Full"));
    const failure = await first.stoppedByFailure;
    assert.match(failure.message, /^its disk failed: committing entries \d+\.\.\d+ to the backend failed: .*SQLITE_FULL/);
    assert.ok(failure.message.includes(dataDir), "the reason names the data dir");
    await assert.rejects(first.put(put("k6", "v6")), /server stopped/);
    await first.stop();

    // Space is back.
    backend.failWith = undefined;
    const second = await EtcdServer.start({ config, backend });
    teardown(t)(() => second.stop());
    await second.ready();
    const all = await second.range(create(RangeRequestSchema, { key: Buffer.from("k"), rangeEnd: Buffer.from("l") }));
    const found = new Map(all.kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString()]));
    for (let i = 0; i < 5; i++) assert.equal(found.get(`k${i}`), `v${i}`, `acknowledged k${i}`);
    // The put that failed was committed to the WAL before the backend refused it: the restart applies it.
    assert.equal(found.get("k5"), "v5");
    assert.equal(found.has("k6"), false);
    await second.put(put("k7", "v7"));
  },
);

test(
  "a backend flush that fails (fsync EIO) before a raft snapshot stops the member with the reason (never a retried flush and a WAL compacted behind it); a restart has every acknowledged write",
  { timeout: 60_000 },
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-disk-failure-"));
    teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
    const peer = `http://127.0.0.1:${await freePort()}`;
    const config: ServerConfig = {
      ...defaultConfig("n1"),
      dataDir,
      listenPeerUrls: [peer],
      initialAdvertisePeerUrls: [peer],
      initialCluster: new Map([["n1", [peer]]]),
    };
    const backend = failingBackend(openMemoryBackend());
    backend.failFlushWith = new StorageError("Io", `data dir ${dataDir}/member/backend: sqlite: disk I/O error (SQLITE_IOERR_FSYNC)`);
    const first = await EtcdServer.start({ config, backend, snapshotCount: 5 });
    teardown(t)(() => first.stop());
    await first.ready();
    const acknowledged: string[] = [];
    for (let i = 0; i < 20 && backend.flushes === 0; i++) {
      await first.put(put(`k${i}`, `v${i}`));
      acknowledged.push(`k${i}`);
    }
    const failure = await first.stoppedByFailure;
    assert.match(failure.message, /flushing the backend before a raft snapshot failed: .*SQLITE_IOERR_FSYNC/);
    await first.stop();

    backend.failFlushWith = undefined;
    const second = await EtcdServer.start({ config, backend, snapshotCount: 5 });
    teardown(t)(() => second.stop());
    await second.ready();
    const all = await second.range(create(RangeRequestSchema, { key: Buffer.from("k"), rangeEnd: Buffer.from("l") }));
    const keys = new Set(all.kvs.map((kv) => Buffer.from(kv.key).toString()));
    for (const key of acknowledged) assert.ok(keys.has(key), `acknowledged ${key}`);
  },
);

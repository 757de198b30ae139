import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import type { Entry, ReadTxn } from "@etcd-ts/storage";
import {
  BoltFile,
  ETCD_SNAPSHOT_CHUNK_SIZE,
  boltSnapshotStream,
  isSnapshotError,
  openBoltSnapshotStream,
  maintenanceSnapshotResponses,
  readBoltFile,
  restoreBoltSnapshot,
  saveBoltSnapshotFile,
  snapshotStatus,
  verifySnapshotHash,
  writeBoltSnapshot,
} from "./index.js";
import { backendContents, boltContents } from "./testing/dump.js";
import { patternBytes } from "./testing/etcd-data.js";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** 10k keys in `key`-like rows with values from empty to 12 KiB, plus buckets of every shape. */
async function bigStore() {
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    for (const bucket of ["data", "empty", "tiny", "longkeys", META_BUCKET, "ünïcode"]) txn.createBucket(bucket);
    for (let i = 0; i < 10_000; i++) {
      const size = i % 997 === 0 ? 12_000 : i % 5 === 0 ? 0 : (i * 7) % 300;
      txn.put("data", ascii(`key/${String(i).padStart(6, "0")}`), patternBytes(size, i));
    }
    txn.put("tiny", ascii("a"), ascii("1"));
    txn.put("tiny", ascii("b"), new Uint8Array());
    // 1000-byte keys: four per page, so the tree gets three branch levels.
    for (let i = 0; i < 200; i++) {
      const key = new Uint8Array(1000).fill(0x61);
      key.set(ascii(String(i).padStart(5, "0")), 995);
      txn.put("longkeys", key, ascii(`v${i}`));
    }
    writeConsistentIndex(txn, 42);
    txn.put("ünïcode", new Uint8Array([0xff, 0x00]), new Uint8Array(9000).fill(7));
  });
  return backend;
}

function concat(chunks: Iterable<Uint8Array>): Uint8Array {
  return Buffer.concat([...chunks]);
}

test("round trip: 10k keys and every bucket shape come back byte for byte", async () => {
  const backend = await bigStore();
  const snapshot = backend.snapshot();
  const stream = boltSnapshotStream(snapshot);
  const bytes = concat(stream);
  snapshot.close();
  assert.equal(bytes.length, stream.dbSize);
  assert.equal(stream.size, stream.dbSize);
  assert.equal(stream.dbSize % 4096, 0);
  assert.equal(stream.bucketCount, 6);
  assert.equal(stream.keyCount, 10_000 + 2 + 200 + 1 + 1);

  const file = readBoltFile(bytes);
  assert.deepEqual(file.check(), []);
  assert.equal(file.meta.pageSize, 4096);
  assert.equal(file.meta.highWaterPgid * 4096, bytes.length);
  assert.equal(file.meta.txid, 2n);
  assert.equal(file.metaPage, 0);
  assert.deepEqual(file.bucketNames(), ["data", "empty", "longkeys", "meta", "tiny", "ünïcode"]);
  const inline = Object.fromEntries(file.buckets().map((b) => [b.name, b.inline]));
  assert.deepEqual(inline, { data: false, empty: true, longkeys: false, meta: true, tiny: true, ünïcode: false });
  assert.deepEqual(boltContents(file), backendContents(backend));
});

test("the tree has branch pages, overflow pages, and keys in order at every level", async () => {
  const backend = await bigStore();
  const bytes = concat(backend.view((txn) => [...boltSnapshotStream(txn)]));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let branches = 0;
  let overflowPages = 0;
  for (let pgid = 3; pgid * 4096 < bytes.length; pgid++) {
    const flags = view.getUint16(pgid * 4096 + 8, true);
    const overflow = view.getUint32(pgid * 4096 + 12, true);
    assert.equal(view.getBigUint64(pgid * 4096, true), BigInt(pgid), `page ${pgid} header id`);
    if (flags === 0x01) branches++;
    overflowPages += overflow;
    pgid += overflow;
  }
  assert.ok(branches >= 5, `expected several branch pages, found ${branches}`);
  assert.ok(overflowPages >= 20, `expected overflow pages, found ${overflowPages}`);
});

test("the stream is the same bytes sync, async, chunked any size, and from a path", async () => {
  const backend = await bigStore();
  const snapshot = backend.snapshot();
  try {
    const reference = concat(boltSnapshotStream(snapshot, { appendSha256: true }));
    const asyncChunks: Uint8Array[] = [];
    for await (const chunk of boltSnapshotStream(snapshot, { appendSha256: true })) asyncChunks.push(chunk);
    assert.deepEqual(Buffer.concat(asyncChunks), Buffer.from(reference));
    const odd = [...boltSnapshotStream(snapshot, { appendSha256: true, chunkSize: 1000 })];
    assert.ok(odd.slice(0, -2).every((c) => c.length === 1000));
    assert.deepEqual(Buffer.concat(odd), Buffer.from(reference));

    const dir = mkdtempSync(join(tmpdir(), "snapshot-test-"));
    try {
      const path = join(dir, "snap.db");
      const result = await saveBoltSnapshotFile(snapshot, path);
      assert.deepEqual(readFileSync(path), Buffer.from(reference));
      assert.equal(result.size, reference.length);
      assert.equal(verifySnapshotHash(path).sha256, Buffer.from(result.sha256).toString("hex"));
      const fromPath = readBoltFile(path);
      try {
        assert.deepEqual(boltContents(fromPath), backendContents(backend));
        assert.deepEqual(fromPath.check(), []);
        assert.deepEqual(snapshotStatus(fromPath), snapshotStatus(reference));
      } finally {
        fromPath.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    snapshot.close();
  }
});

test("writeBoltSnapshot respects a Node stream's backpressure and returns the hash", async () => {
  const backend = await bigStore();
  const snapshot = backend.snapshot();
  const sink = new PassThrough({ highWaterMark: 1024 });
  const received: Buffer[] = [];
  const drained = (async () => {
    for await (const chunk of sink) {
      received.push(chunk as Buffer);
      await new Promise((r) => setImmediate(r));
    }
  })();
  const result = await writeBoltSnapshot(snapshot, sink, { appendSha256: true });
  sink.end();
  await drained;
  snapshot.close();
  const bytes = Buffer.concat(received);
  assert.equal(bytes.length, result.size);
  assert.equal(result.size, result.dbSize + 32);
  assert.deepEqual(new Uint8Array(bytes.subarray(result.dbSize)), result.sha256);
  verifySnapshotHash(bytes);
});

test("maintenance responses are etcd 3.4's: 32 KiB blobs counting down, then the sha256", async () => {
  const backend = await bigStore();
  const snapshot = backend.snapshot();
  const responses: { remainingBytes: number; blob: Uint8Array }[] = [];
  for await (const response of maintenanceSnapshotResponses(snapshot)) responses.push(response);
  const dbSize = boltSnapshotStream(snapshot).dbSize;
  snapshot.close();
  const last = responses.at(-1);
  assert.ok(last !== undefined);
  assert.equal(last.remainingBytes, 0);
  assert.equal(last.blob.length, 32);
  let sent = 0;
  for (const response of responses.slice(0, -1)) {
    sent += response.blob.length;
    assert.equal(response.remainingBytes, dbSize - sent);
  }
  assert.equal(sent, dbSize);
  assert.ok(responses.slice(0, -2).every((r) => r.blob.length === ETCD_SNAPSHOT_CHUNK_SIZE));
  verifySnapshotHash(Buffer.concat(responses.map((r) => r.blob)));
});

test("restore replaces a backend's content with the file's, in one update", async () => {
  const source = await bigStore();
  const bytes = concat(source.view((txn) => [...boltSnapshotStream(txn, { appendSha256: true })]));
  const target = openMemoryBackend();
  await target.update((txn) => {
    txn.createBucket("stale");
    txn.put("stale", ascii("x"), ascii("y"));
    txn.createBucket("data");
    txn.put("data", ascii("zzz-not-in-the-file"), ascii("y"));
  });
  const result = await restoreBoltSnapshot(bytes, target);
  assert.deepEqual(result, { buckets: 6, keys: 10_204, dbSize: bytes.length - 32 });
  assert.deepEqual(backendContents(target), backendContents(source));
});

test("an empty store is a valid database with an empty root leaf", () => {
  const backend = openMemoryBackend();
  const bytes = concat(backend.view((txn) => [...boltSnapshotStream(txn)]));
  assert.equal(bytes.length, 4 * 4096);
  const file = readBoltFile(bytes);
  assert.deepEqual(file.check(), []);
  assert.deepEqual(file.bucketNames(), []);
  assert.deepEqual(snapshotStatus(bytes), { hash: 0, revision: 0, totalKey: 0, totalSize: 4 * 4096 });
});

test("data bbolt cannot hold is refused by name", async () => {
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    txn.createBucket("b");
    txn.put("b", new Uint8Array(), ascii("v"));
  });
  assert.throws(
    () => backend.view((txn) => boltSnapshotStream(txn)),
    (e) => isSnapshotError(e, "InvalidData") && /empty key/.test(e.message),
  );
  await backend.update((txn) => {
    txn.delete("b", new Uint8Array());
    txn.put("b", new Uint8Array(40_000), ascii("v"));
  });
  assert.throws(
    () => backend.view((txn) => boltSnapshotStream(txn)),
    (e) => isSnapshotError(e, "InvalidData"),
  );
});

test("a view that changes between the planning and writing passes is detected", () => {
  let pass = 0;
  const rows = (n: number): Entry[] =>
    Array.from({ length: n }, (_, i) => ({ key: ascii(`k${String(i).padStart(5, "0")}`), value: new Uint8Array(100) }));
  const shifty: ReadTxn = {
    get: () => undefined,
    buckets: () => ["b"],
    range: () => rows(pass++ === 0 ? 500 : 501)[Symbol.iterator](),
  };
  const stream = boltSnapshotStream(shifty);
  assert.throws(
    () => [...stream],
    (e) => isSnapshotError(e, "InvalidData") && /changed while/.test(e.message),
  );
});

test("BoltFile.entries names a missing bucket", async () => {
  const backend = await bigStore();
  const file = BoltFile.open(concat(backend.view((txn) => [...boltSnapshotStream(txn)])));
  assert.throws(
    () => file.entries("nope"),
    (e) => isSnapshotError(e, "BucketNotFound"),
  );
});

test("a file written with another page size reads back", async () => {
  const backend = await bigStore();
  const bytes = concat(backend.view((txn) => [...boltSnapshotStream(txn, { pageSize: 16384 })]));
  const file = readBoltFile(bytes);
  assert.equal(file.meta.pageSize, 16384);
  assert.deepEqual(file.check(), []);
  assert.deepEqual(boltContents(file), backendContents(backend));
});

test("the async stream lets the event loop run while it plans and while it is consumed", async () => {
  const backend = await bigStore();
  const snapshot = backend.snapshot();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    const stream = await openBoltSnapshotStream(snapshot);
    const ticksAfterPlanning = ticks;
    assert.ok(ticksAfterPlanning > 0, "no timer ran during planning");
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(ticks > ticksAfterPlanning, "no timer ran while the chunks were consumed");
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([...boltSnapshotStream(snapshot)]));
  } finally {
    clearInterval(timer);
    snapshot.close();
  }
});

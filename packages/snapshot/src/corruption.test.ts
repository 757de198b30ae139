import assert from "node:assert/strict";
import { test } from "node:test";
import { META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import { decodeMetaPage, encodeMetaPage } from "./bolt-format.js";
import {
  appendSnapshotHash,
  boltSnapshotStream,
  isSnapshotError,
  readBoltFile,
  restoreBoltSnapshot,
  snapshotStatus,
  verifySnapshotHash,
} from "./index.js";
import { backendContents, boltContents } from "./testing/dump.js";
import { patternBytes } from "./testing/etcd-data.js";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const PAGE = 4096;

/** A plain database (no hash) with a multi-page bucket, and its expected contents. */
async function sampleDb() {
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    txn.createBucket("data");
    txn.createBucket(META_BUCKET);
    for (let i = 0; i < 2000; i++) txn.put("data", ascii(`k${String(i).padStart(5, "0")}`), patternBytes(i % 200, i));
    writeConsistentIndex(txn, 0);
  });
  const db = Buffer.concat(backend.view((txn) => [...boltSnapshotStream(txn)]));
  return { db: new Uint8Array(db), contents: backendContents(backend) };
}

function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** The first leaf page of bucket data: the first non-meta page after the freelist. */
function firstDataLeaf(db: Uint8Array): number {
  const view = new DataView(db.buffer, db.byteOffset, db.byteLength);
  for (let pgid = 3; pgid * PAGE < db.length; pgid++) {
    if (view.getUint16(pgid * PAGE + 8, true) === 0x02 && view.getUint16(pgid * PAGE + 10, true) > 2) return pgid;
  }
  throw new Error("no leaf page");
}

test("a truncated file is refused with the sizes that do not add up", async () => {
  const { db } = await sampleDb();
  const half = db.subarray(0, Math.floor(db.length / 2));
  assert.throws(
    () => readBoltFile(half),
    (e) => isSnapshotError(e, "Corrupt") && /truncated: it has \d+ bytes but its meta page says the database is \d+ bytes/.test(e.message),
  );
  assert.throws(
    () => readBoltFile(db.subarray(0, 50)),
    (e) => isSnapshotError(e, "Corrupt") && /too short/.test(e.message),
  );
  // A truncated snapshot lost its hash too: etcd's restore refuses it for that first.
  const withHash = appendSnapshotHash(db);
  const cut = withHash.subarray(0, withHash.length - 100);
  assert.throws(
    () => verifySnapshotHash(cut),
    (e) => isSnapshotError(e, "MissingHash"),
  );
  await assert.rejects(restoreBoltSnapshot(cut, openMemoryBackend()), (e) => isSnapshotError(e, "MissingHash"));
});

test("one damaged meta page falls back to the other, as bbolt does; two are fatal", async () => {
  const { db, contents } = await sampleDb();
  const oneBad = copy(db);
  oneBad[16 + 40] = oneBad[16 + 40]! ^ 0x01; // meta 0's high-water mark: the checksum no longer matches
  const file = readBoltFile(oneBad);
  assert.equal(file.metaPage, 1);
  assert.match(file.otherMetaProblem ?? "", /meta page 0: checksum mismatch/);
  assert.deepEqual(boltContents(file), contents);

  const bothBad = copy(oneBad);
  bothBad[PAGE + 16 + 48] = bothBad[PAGE + 16 + 48]! ^ 0x80; // meta 1's txid
  assert.throws(
    () => readBoltFile(bothBad),
    (e) =>
      isSnapshotError(e, "Corrupt") &&
      /not a valid bbolt database: meta page 0: checksum mismatch .*; meta page 1: checksum mismatch/.test(e.message),
  );
});

test("a file that is not bbolt says so", () => {
  const junk = patternBytes(3 * PAGE, 5);
  assert.throws(
    () => readBoltFile(junk),
    (e) => isSnapshotError(e, "Corrupt") && /bad magic .*not a bbolt database/.test(e.message),
  );
  const wrongVersion = new Uint8Array(4 * PAGE);
  const view = new DataView(wrongVersion.buffer);
  view.setUint32(16, 0xed0cdaed, true);
  view.setUint32(20, 1, true);
  assert.throws(
    () => readBoltFile(wrongVersion),
    (e) => isSnapshotError(e, "Corrupt") && /unsupported bbolt format version 1/.test(e.message),
  );
});

test("a wrong trailing hash is refused and the backend is left alone", async () => {
  const { db } = await sampleDb();
  const snapshot = appendSnapshotHash(db);
  assert.equal(verifySnapshotHash(snapshot).dbSize, db.length);
  const badHash = copy(snapshot);
  badHash[badHash.length - 1] = badHash[badHash.length - 1]! ^ 0xff;
  assert.throws(
    () => verifySnapshotHash(badHash),
    (e) => isSnapshotError(e, "HashMismatch") && /sha256 mismatch/.test(e.message),
  );
  const badData = copy(snapshot);
  badData[5 * PAGE + 100] = badData[5 * PAGE + 100]! ^ 0xff;
  assert.throws(
    () => verifySnapshotHash(badData),
    (e) => isSnapshotError(e, "HashMismatch"),
  );

  const target = openMemoryBackend();
  await target.update((txn) => {
    txn.createBucket("mine");
    txn.put("mine", ascii("k"), ascii("v"));
  });
  const before = backendContents(target);
  await assert.rejects(restoreBoltSnapshot(badHash, target), (e) => isSnapshotError(e, "HashMismatch"));
  assert.deepEqual(backendContents(target), before);
  // A db without a hash needs skipHashCheck, as with etcdctl.
  await assert.rejects(restoreBoltSnapshot(db, target), (e) => isSnapshotError(e, "MissingHash"));
  await restoreBoltSnapshot(db, target, { skipHashCheck: true });
});

test("damaged pages are named: wrong type, wrong id, keys out of order, child out of bounds", async () => {
  const { db } = await sampleDb();
  const leaf = firstDataLeaf(db);

  const wrongType = copy(db);
  wrongType[leaf * PAGE + 8] = 0x10; // leaf → freelist
  assert.throws(
    () => snapshotStatus(wrongType),
    (e) => isSnapshotError(e, "Corrupt") && new RegExp(`page ${leaf} has type freelist`).test(e.message),
  );
  assert.throws(() => [...readBoltFile(wrongType).entries("data")], new RegExp(`page ${leaf} has type freelist, expected branch or leaf`));

  const wrongId = copy(db);
  wrongId[leaf * PAGE] = wrongId[leaf * PAGE]! + 1;
  assert.throws(() => [...readBoltFile(wrongId).entries("data")], new RegExp(`page ${leaf} has id ${leaf + 1} in its header`));

  const unordered = copy(db);
  const view = new DataView(unordered.buffer);
  const keyAt = leaf * PAGE + 16 + view.getUint32(leaf * PAGE + 16 + 4, true);
  unordered[keyAt] = 0xff; // the first key now sorts after the second
  assert.throws(
    () => [...readBoltFile(unordered).entries("data")],
    (e) => isSnapshotError(e, "Corrupt") && /bucket "data": keys out of order/.test(e.message),
  );

  // The root page of "data" is a branch (2000 keys); point its first child past the end.
  const file = readBoltFile(db);
  assert.equal(file.buckets()[0]?.name, "data");
  const dataRoot = Number(new DataView(findBucketValue(db, file.meta.rootPgid)).getBigUint64(0, true));
  const outOfBounds = copy(db);
  const oob = new DataView(outOfBounds.buffer);
  assert.equal(oob.getUint16(dataRoot * PAGE + 8, true), 0x01);
  oob.setBigUint64(dataRoot * PAGE + 16 + 8, 999_999n, true);
  assert.throws(() => [...readBoltFile(outOfBounds).entries("data")], /page 999999 is out of bounds \(high-water mark \d+\)/);
});

test("check finds unreachable pages and double references, as bbolt's Tx.Check does", async () => {
  const { db } = await sampleDb();
  // One more page below the high-water mark that nothing points at.
  const grown = new Uint8Array(db.length + PAGE);
  grown.set(db);
  for (const page of [0, 1] as const) {
    const decoded = decodeMetaPage(grown.subarray(page * PAGE, page * PAGE + 80));
    assert.ok("meta" in decoded);
    encodeMetaPage(grown.subarray(page * PAGE, (page + 1) * PAGE), page, {
      ...decoded.meta,
      highWaterPgid: decoded.meta.highWaterPgid + 1,
    });
  }
  const lastPgid = db.length / PAGE;
  assert.deepEqual(readBoltFile(grown).check(), [`page ${lastPgid}: unreachable unfreed`]);
  assert.throws(() => snapshotStatus(grown), /snapshot file integrity check failed\. 1 errors found\.\npage \d+: unreachable unfreed/);

  // Listed in the freelist (page 2), the page is free and the file sound; in both count encodings.
  const freelist = new DataView(grown.buffer, 2 * PAGE, PAGE);
  freelist.setUint16(10, 1, true);
  freelist.setBigUint64(16, BigInt(lastPgid), true);
  assert.deepEqual(readBoltFile(grown).check(), []);
  freelist.setUint16(10, 0xffff, true);
  freelist.setBigUint64(16, 1n, true);
  freelist.setBigUint64(24, BigInt(lastPgid), true);
  assert.deepEqual(readBoltFile(grown).check(), []);
  freelist.setBigUint64(16, 2n, true);
  freelist.setBigUint64(32, BigInt(lastPgid), true);
  assert.deepEqual(readBoltFile(grown).check(), [`page ${lastPgid}: already freed`]);
  // A reachable page in the freelist.
  freelist.setBigUint64(32, BigInt(file0DataRoot(grown)), true);
  assert.deepEqual(readBoltFile(grown).check(), [`page ${file0DataRoot(grown)}: reachable freed`]);

  // Two branch elements pointing at one page: that page is referenced twice (and its keys repeat).
  const file = readBoltFile(db);
  const dataRoot = Number(new DataView(findBucketValue(db, file.meta.rootPgid)).getBigUint64(0, true));
  const doubled = copy(db);
  const view = new DataView(doubled.buffer);
  const firstChild = view.getBigUint64(dataRoot * PAGE + 16 + 8, true);
  view.setBigUint64(dataRoot * PAGE + 32 + 8, firstChild, true);
  const problems = readBoltFile(doubled).check();
  assert.ok(problems.includes(`page ${firstChild}: multiple references`), problems.join("\n"));
  assert.ok(problems.includes(`bucket "data": keys out of order`), problems.join("\n"));
  assert.equal(problems.length, 2, problems.join("\n"));
});

/** The value of the first bucket in the root leaf page `rootPgid`: its 16-byte header. */
function findBucketValue(db: Uint8Array, rootPgid: number): ArrayBuffer {
  const view = new DataView(db.buffer, db.byteOffset, db.byteLength);
  const at = rootPgid * PAGE + 16;
  const pos = view.getUint32(at + 4, true);
  const ksize = view.getUint32(at + 8, true);
  const start = at + pos + ksize;
  return db.slice(start, start + 16).buffer;
}

/** The root page of bucket "data" (the first bucket). */
function file0DataRoot(db: Uint8Array): number {
  return Number(new DataView(findBucketValue(db, readBoltFile(db).meta.rootPgid)).getBigUint64(0, true));
}

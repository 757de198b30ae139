// Fuzzing the bbolt reader with damaged snapshot files: the reader, `check`, `snapshotStatus` and
// `restoreBoltSnapshot` (from bytes and from a path) must refuse damage with a SnapshotError — never a
// RangeError/TypeError from deep inside, never a hang, never an allocation sized by a field of the file.
//
// Short by default; FUZZ_RUNS=<n> runs n cases per property (FUZZ_SEED=<n> replays a seed).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { KEY_BUCKET, LEASE_BUCKET, MEMBERS_BUCKET, META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { openMemoryBackend } from "@etcd-ts/storage";
import {
  BRANCH_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  PAGE_HEADER_SIZE,
  dataView,
  decodeMetaPage,
  encodeBucketHeader,
  encodeMetaPage,
  readPageHeader,
  writeBranchPage,
  writeLeafPage,
  type BoltMeta,
} from "./bolt-format.js";
import { appendSnapshotHash, boltSnapshotStream, isSnapshotError, readBoltFile, restoreBoltSnapshot, snapshotStatus } from "./index.js";
import { patternBytes } from "./testing/etcd-data.js";

const RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 300;
/** Without FUZZ_RUNS a property stops after this long (a shared CI machine may be slow). */
const TIME_LIMIT_MS = process.env.FUZZ_RUNS !== undefined ? undefined : 4000;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;
const params = (): fc.Parameters<unknown> => ({
  numRuns: RUNS,
  // The option, not its plugin: a run interrupted before any success fails with the option, passes with the plugin.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  ...(TIME_LIMIT_MS !== undefined ? { interruptAfterTimeLimit: TIME_LIMIT_MS } : {}),
  ...(SEED !== undefined ? { seed: SEED } : {}),
});

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** etcd's key bucket key: main revision (8 bytes big-endian), '_', sub revision. */
function revisionKey(main: number): Uint8Array {
  const key = new Uint8Array(17);
  dataView(key).setBigUint64(0, BigInt(main), false);
  key[8] = 0x5f;
  return key;
}

/** An etcd-like database: several buckets, one spanning many pages (branch pages), small inline ones. */
async function sampleDb(pageSize = 4096): Promise<Uint8Array> {
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    for (const bucket of [KEY_BUCKET, META_BUCKET, LEASE_BUCKET, MEMBERS_BUCKET]) txn.createBucket(bucket);
    for (let i = 1; i <= 600; i++) txn.put(KEY_BUCKET, revisionKey(i), patternBytes(i % 97, i));
    txn.put(KEY_BUCKET, revisionKey(601), patternBytes(3 * pageSize, 7)); // an overflow page
    writeConsistentIndex(txn, 0);
    txn.put(LEASE_BUCKET, ascii("l1"), ascii("x"));
  });
  return new Uint8Array(Buffer.concat(backend.view((txn) => [...boltSnapshotStream(txn, { pageSize })])));
}

const work = mkdtempSync(join(tmpdir(), "etcd-ts-snapshot-fuzz-"));
after(() => rmSync(work, { recursive: true, force: true }));
let fileNo = 0;

const outcomes = new Map<string, number>();
function report(t: { diagnostic(message: string): void }): void {
  const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
  t.diagnostic(
    `${total} reads: ${[...outcomes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([k, v]) => `${v} ${k}`)
      .join("; ")}`,
  );
  outcomes.clear();
}

/** Runs one reader; a SnapshotError is an answer, anything else fails the property. */
async function answer(what: string, read: () => unknown): Promise<void> {
  try {
    await read();
    outcomes.set("ok", (outcomes.get("ok") ?? 0) + 1);
  } catch (e) {
    if (!isSnapshotError(e)) {
      throw new Error(
        `${what}: untyped error from a damaged file: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`,
      );
    }
    const kind = `${e.code}: ${e.message
      .replace(/\d+/g, "N")
      .replace(/"[^"]*"/g, "S")
      .slice(0, 50)}`;
    outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
  }
}

/** Every way the server and etcdctl-like tools read a snapshot. */
async function readEverything(db: Uint8Array): Promise<void> {
  await answer("read", () => {
    const file = readBoltFile(db);
    for (const bucket of file.buckets()) for (const _ of bucket.entries());
    file.check();
  });
  await answer("status", () => snapshotStatus(db));
  await answer("restore", () => restoreBoltSnapshot(appendSnapshotHash(db), openMemoryBackend()));
  const path = join(work, `db-${fileNo++}`);
  writeFileSync(path, db);
  try {
    await answer("status of a path", () => snapshotStatus(path));
    await answer("restore of a path", () => restoreBoltSnapshot(path, openMemoryBackend(), { skipHashCheck: true }));
  } finally {
    rmSync(path, { force: true });
  }
}

function pageCount(db: Uint8Array, pageSize: number): number {
  return Math.floor(db.length / pageSize);
}

/** Damage to a database: raw bytes, page headers, element fields, and meta fields with a valid checksum. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("overwrite" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({
    kind: fc.constant("pageHeader" as const),
    page: fc.nat(),
    field: fc.constantFrom("id", "flags", "count", "overflow"),
    value: fc.oneof(fc.nat(40), fc.constantFrom(0x01, 0x02, 0x10, 0xffff, 0xffffffff)),
  }),
  fc.record({
    kind: fc.constant("element" as const),
    page: fc.nat(),
    element: fc.nat(),
    field: fc.nat(3),
    value: fc.oneof(fc.nat(64), fc.nat(5000), fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff)),
  }),
  fc.record({
    kind: fc.constant("meta" as const),
    page: fc.constantFrom(0 as const, 1 as const),
    field: fc.constantFrom("pageSize", "rootPgid", "freelistPgid", "highWaterPgid", "txid"),
    value: fc.oneof(fc.nat(64), fc.constantFrom(512, 1024, 8192, 65536, 2 ** 26, 2 ** 40, Number.MAX_SAFE_INTEGER)),
  }),
);
type Damage = typeof damage extends fc.Arbitrary<infer D> ? D : never;

function applyDamage(original: Uint8Array, pageSize: number, damages: readonly Damage[]): Uint8Array {
  let db = new Uint8Array(original);
  for (const d of damages) {
    if (db.length === 0) break;
    const view = dataView(db);
    const pages = Math.max(1, pageCount(db, pageSize));
    switch (d.kind) {
      case "flip":
        db[d.at % db.length] = db[d.at % db.length]! ^ d.value;
        break;
      case "truncate":
        db = db.slice(0, d.at % (db.length + 1));
        break;
      case "overwrite":
        db.set(d.bytes.subarray(0, Math.max(0, db.length - (d.at % db.length))), d.at % db.length);
        break;
      case "pageHeader": {
        const at = (2 + (d.page % Math.max(1, pages - 2))) * pageSize;
        if (at + PAGE_HEADER_SIZE > db.length) break;
        if (d.field === "id") view.setBigUint64(at, BigInt(d.value), true);
        else if (d.field === "flags") view.setUint16(at + 8, d.value & 0xffff, true);
        else if (d.field === "count") view.setUint16(at + 10, d.value & 0xffff, true);
        else view.setUint32(at + 12, d.value >>> 0, true);
        break;
      }
      case "element": {
        const at = (2 + (d.page % Math.max(1, pages - 2))) * pageSize;
        if (at + PAGE_HEADER_SIZE > db.length) break;
        const header = readPageHeader(db, at);
        if (header.count === 0) break;
        const el = at + PAGE_HEADER_SIZE + (d.element % header.count) * LEAF_ELEMENT_SIZE;
        if (el + 16 > db.length) break;
        if (header.flags & BRANCH_PAGE_FLAG && d.field >= 2)
          view.setBigUint64(el + 8, BigInt(d.value), true); // the child page id
        else view.setUint32(el + 4 * d.field, d.value >>> 0, true);
        break;
      }
      case "meta": {
        const at = d.page * pageSize;
        if (at + pageSize > db.length) break;
        const decoded = decodeMetaPage(db.subarray(at, at + pageSize));
        if (!("meta" in decoded)) break;
        const meta: BoltMeta = { ...decoded.meta, [d.field]: d.field === "txid" ? BigInt(d.value) : d.value };
        // encodeMetaPage writes a fresh checksum: the damage reaches the reader behind the meta check.
        const page = new Uint8Array(pageSize);
        encodeMetaPage(page, d.page, meta);
        db.set(page.subarray(0, 128), at);
        break;
      }
    }
  }
  return db;
}

test("fuzz: damaged snapshot files are refused with a SnapshotError", { timeout: 900_000 }, async (t) => {
  const bases = [await sampleDb(4096), await sampleDb(1024)];
  await readEverything(bases[0]!); // the undamaged database reads
  assert.deepEqual([...outcomes.keys()], ["ok"]);
  outcomes.clear();
  await fc.assert(
    fc.asyncProperty(fc.nat(1), fc.array(damage, { minLength: 1, maxLength: 4 }), async (which, damages) => {
      const pageSize = which === 0 ? 4096 : 1024;
      await readEverything(applyDamage(bases[which]!, pageSize, damages));
    }),
    params(),
  );
  report(t);
});

/** A database written page by page: meta pages, an empty freelist, then `pages` at ids 3.. . */
function handMadeDb(pages: (page: Uint8Array, pgid: number) => void, count: number, pageSize = 512): Uint8Array {
  const highWater = 3 + count;
  const db = new Uint8Array(highWater * pageSize);
  const meta: BoltMeta = { pageSize, flags: 0, rootPgid: 3, rootSequence: 0n, freelistPgid: 2, highWaterPgid: highWater, txid: 1n };
  encodeMetaPage(db.subarray(0, pageSize), 0, meta);
  encodeMetaPage(db.subarray(pageSize, 2 * pageSize), 1, meta);
  dataView(db).setBigUint64(2 * pageSize, 2n, true);
  dataView(db).setUint16(2 * pageSize + 8, 0x10, true);
  for (let i = 0; i < count; i++) pages(db.subarray((3 + i) * pageSize, (4 + i) * pageSize), 3 + i);
  return db;
}

test("a tree whose branch pages share their children is refused, not walked exponentially", () => {
  // Root bucket: page 3 is a leaf naming bucket "b" with root page 4. Pages 4..63 are branch pages each
  // pointing twice at the next one; page 64 is an empty leaf. Walked naively that is 2^60 visits.
  const depth = 60;
  const db = handMadeDb((page, pgid) => {
    if (pgid === 3) writeLeafPage(page, 0, 3n, 0, [{ flags: 1, key: ascii("b"), value: encodeBucketHeader(4) }]);
    else if (pgid < 4 + depth)
      writeBranchPage(page, 0, BigInt(pgid), 0, [
        { key: ascii("a"), pgid: pgid + 1 },
        { key: ascii("b"), pgid: pgid + 1 },
      ]);
    else writeLeafPage(page, 0, BigInt(pgid), 0, []);
  }, depth + 2);
  assert.throws(
    () => [...readBoltFile(db).entries("b")],
    (e) => isSnapshotError(e, "Corrupt") && /referenced more than once/.test(e.message),
  );
  const problems = readBoltFile(db).check();
  assert.ok(problems.length > 0 && problems.length < 100, `${problems.length} problems`);
  assert.throws(
    () => snapshotStatus(db),
    (e) => isSnapshotError(e, "Corrupt"),
  );
});

test("a bucket nested in itself is refused, not recursed into until the stack overflows", () => {
  // Bucket "b" (root page 4) holds a nested bucket "n" whose root is page 4 again.
  const db = handMadeDb((page, pgid) => {
    if (pgid === 3) writeLeafPage(page, 0, 3n, 0, [{ flags: 1, key: ascii("b"), value: encodeBucketHeader(4) }]);
    else writeLeafPage(page, 0, 4n, 0, [{ flags: 1, key: ascii("n"), value: encodeBucketHeader(4) }]);
  }, 2);
  const problems = readBoltFile(db).check();
  assert.ok(
    problems.some((p) => /page 4: multiple references/.test(p)),
    problems.join("\n"),
  );
  assert.throws(
    () => snapshotStatus(db),
    (e) => isSnapshotError(e, "Corrupt"),
  );
  assert.throws(
    () => [...readBoltFile(db).entries("b")],
    (e) => isSnapshotError(e, "Unsupported"),
  );
});

test("a leaf element is read only within its page", () => {
  const db = handMadeDb((page, pgid) => {
    if (pgid === 3) writeLeafPage(page, 0, 3n, 0, [{ flags: 1, key: ascii("b"), value: encodeBucketHeader(4) }]);
    else writeLeafPage(page, 0, 4n, 0, [{ flags: 0, key: ascii("k"), value: ascii("v") }]);
  }, 2);
  // pos points far past the page: a length field must not make the reader look (or allocate) elsewhere.
  dataView(db).setUint32(4 * 512 + PAGE_HEADER_SIZE + 4, 0xfffffff0, true);
  assert.throws(
    () => [...readBoltFile(db).entries("b")],
    (e) => isSnapshotError(e, "Corrupt"),
  );
});

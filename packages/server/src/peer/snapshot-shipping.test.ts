/**
 * Shipping databases between members, without a network: what the leader sends a follower behind the
 * log (the view's index, term and configuration; one transfer per follower; raft told how it ended),
 * and what a follower keeps of the databases it received until raft installs or declines them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MessageType, SnapshotStatus, type Message } from "@etcd-ts/raft";
import { MEMBERS_BUCKET, META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { openMemoryBackend, type Snapshot as BackendSnapshot } from "@etcd-ts/storage";
import { silentLogger } from "../log.js";
import { SnapshotShipping, type SnapshotShippingHost } from "./snapshot-shipping.js";
import { receivedSnapshotPath } from "./snapshot-transfer.js";
import { teardown, type AfterHookHost } from "@etcd-ts/test-support";

interface Shipped {
  readonly urls: readonly string[];
  readonly message: Message;
  readonly settle: (error?: Error) => void;
}

async function fixture(t: AfterHookHost) {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-shipping-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    txn.createBucket(META_BUCKET);
    writeConsistentIndex(txn, 42);
    txn.createBucket(MEMBERS_BUCKET);
    const encoder = new TextEncoder();
    txn.put(MEMBERS_BUCKET, encoder.encode("a"), encoder.encode(JSON.stringify({ id: "a", peerURLs: [] })));
    txn.put(MEMBERS_BUCKET, encoder.encode("b"), encoder.encode(JSON.stringify({ id: "b", peerURLs: [], isLearner: true })));
  });
  const shipped: Shipped[] = [];
  const reports: [bigint, SnapshotStatus][] = [];
  const stepped: Message[] = [];
  const closedViews: BackendSnapshot[] = [];
  const host: SnapshotShippingHost = {
    dataDir,
    backend,
    logger: silentLogger,
    termAt: (index) => (index === 42 ? 7 : 0),
    peerUrls: (id) => (id === 0xbn ? ["http://127.0.0.1:1"] : undefined),
    ship: (urls, message, view) =>
      new Promise<void>((resolve, reject) => {
        shipped.push({
          urls,
          message,
          settle: (error) => {
            view.close();
            closedViews.push(view);
            if (error === undefined) resolve();
            else reject(error);
          },
        });
      }),
    reportSnapshot: (to, status) => reports.push([to, status]),
    step: (message) => stepped.push(message),
  };
  return { dataDir, shipping: new SnapshotShipping(host), shipped, reports, stepped, closedViews };
}

function msgSnap(to: bigint, index = 0): Message {
  return {
    type: MessageType.Snap,
    to,
    from: 0xan,
    term: 7,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: { data: new Uint8Array(0), metadata: { index, term: 0, confState: { voters: [], learners: [] } } },
    context: new Uint8Array(0),
  };
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("the leader ships its backend view with the index, term and configuration it holds; raft hears the outcome", async (t) => {
  const f = await fixture(t);
  f.shipping.send(msgSnap(0xbn));
  assert.equal(f.shipped.length, 1);
  const { message, urls } = f.shipped[0]!;
  assert.deepEqual(urls, ["http://127.0.0.1:1"]);
  assert.deepEqual(message.snapshot?.metadata, { index: 42, term: 7, confState: { voters: [0xan], learners: [0xbn] } });

  // One transfer per follower at a time: raft asking again meanwhile sends nothing more.
  f.shipping.send(msgSnap(0xbn));
  assert.equal(f.shipped.length, 1);
  assert.deepEqual(f.reports, []);

  f.shipped[0]!.settle();
  await settled();
  assert.deepEqual(f.reports, [[0xbn, SnapshotStatus.Finish]]);
  assert.equal(f.closedViews.length, 1);

  // Once it ended, the next request ships again; a failed transfer is reported as one.
  f.shipping.send(msgSnap(0xbn));
  assert.equal(f.shipped.length, 2);
  f.shipped[1]!.settle(new Error("connection reset"));
  await settled();
  assert.deepEqual(f.reports, [
    [0xbn, SnapshotStatus.Finish],
    [0xbn, SnapshotStatus.Failure],
  ]);
});

test("a snapshot for a peer that is not a member fails at once and ships nothing", async (t) => {
  const f = await fixture(t);
  f.shipping.send(msgSnap(0xcn));
  assert.equal(f.shipped.length, 0);
  assert.deepEqual(f.reports, [[0xcn, SnapshotStatus.Failure]]);
});

test("received databases are kept by index until raft installs them or declines them", async (t) => {
  const f = await fixture(t);
  mkdirSync(f.shipping.receivedDir, { recursive: true });
  const file = (index: number, suffix = ""): string => {
    const path = receivedSnapshotPath(f.dataDir, index) + suffix;
    writeFileSync(path, "db");
    return path;
  };

  // The same index received twice: the newer file replaces the older one on disk.
  const first = file(10, ".old");
  await f.shipping.deliver(msgSnap(0xan, 10), first);
  const second = file(10);
  await f.shipping.deliver(msgSnap(0xan, 10), second);
  assert.equal(f.stepped.length, 2);
  assert.equal(existsSync(first), false);

  const later = file(20);
  await f.shipping.deliver(msgSnap(0xan, 20), later);
  const declined = file(5);
  await f.shipping.deliver(msgSnap(0xan, 5), declined);

  // Raft installs 10: the file is the caller's now, and cannot be taken twice.
  assert.equal(f.shipping.take(10), second);
  assert.throws(() => f.shipping.take(10), /no database was received/);
  assert.equal(existsSync(second), true);

  // Applied up to 10: the database at 5 can no longer be installed and goes; the one at 20 stays.
  f.shipping.dropDeclined(10);
  for (let i = 0; i < 100 && existsSync(declined); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(existsSync(declined), false);
  assert.equal(existsSync(later), true);
  assert.equal(f.shipping.take(20), later);
});

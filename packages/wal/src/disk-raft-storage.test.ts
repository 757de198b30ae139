import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isRaftError, EntryType, RawNode, StateType, decodeConfChange, type ConfState, type Entry, type Snapshot } from "@etcd-ts/raft";
import { DiskRaftStorage } from "./disk-raft-storage.js";
import { isWalError } from "./errors.js";
import { Snapshotter, snapshotFileName } from "./snapshotter.js";
import { entryData, makeEntries, tempDir } from "./testing/fixtures.js";
import { Wal } from "./wal.js";

const CONF: ConfState = { voters: [1n], learners: [] };
const META = new TextEncoder().encode("member 1");
/** Small segments: the default 64 MiB would be zero-filled for every test. */
const SMALL = { segmentSize: 64 * 1024 };

function allEntries(s: DiskRaftStorage): Entry[] {
  if (s.lastIndex() < s.firstIndex()) return [];
  return s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity);
}

function summary(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString("hex").slice(0, 16)}`);
}

/** Runs the Ready loop of a single-node RawNode until it has nothing to do (applying conf changes);
 * returns the committed entries. */
async function drain(node: RawNode, storage: DiskRaftStorage): Promise<Entry[]> {
  const applied: Entry[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    await storage.persist({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, mustSync: rd.mustSync });
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) node.applyConfChange(decodeConfChange(e.data));
    }
    applied.push(...rd.committedEntries);
    node.advance();
  }
  return applied;
}

function newNode(storage: DiskRaftStorage, applied = 0): RawNode {
  return new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, applied });
}

describe("DiskRaftStorage", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async () => cleanup());

  it("creates a new log with the initial membership and recovers what was persisted", async () => {
    let s = await DiskRaftStorage.open(dir, { ...SMALL, metadata: META, confState: CONF });
    assert.equal(s.isNew, true);
    assert.deepEqual(s.initialState().confState, CONF);
    assert.deepEqual((await readdir(dir)).sort(), ["snap", "wal"]);
    await s.persist({ hardState: { term: 2, vote: 1n, commit: 3 }, entries: makeEntries(1, 5, 2) });
    await s.persist({ hardState: { term: 2, vote: 1n, commit: 5 }, entries: [], mustSync: false });
    const before = summary(allEntries(s));
    await s.close();

    s = await DiskRaftStorage.open(dir, SMALL);
    assert.equal(s.isNew, false);
    assert.deepEqual(Buffer.from(s.metadata), Buffer.from(META));
    assert.deepEqual(s.initialState(), { hardState: { term: 2, vote: 1n, commit: 5 }, confState: CONF });
    assert.deepEqual(summary(allEntries(s)), before);
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 5);
    assert.equal(s.term(0), 0);
    await s.close();
  });

  it("a conflicting tail from a new leader replaces the old one, on disk too", async () => {
    let s = await DiskRaftStorage.open(dir, { ...SMALL, confState: CONF });
    await s.persist({ hardState: { term: 1, vote: 1n, commit: 5 }, entries: makeEntries(1, 10, 1) });
    await s.persist({ hardState: { term: 2, vote: 2n, commit: 5 }, entries: makeEntries(6, 3, 2) });
    assert.equal(s.lastIndex(), 8);
    assert.equal(s.term(6), 2);
    await s.close();
    s = await DiskRaftStorage.open(dir, SMALL);
    assert.equal(s.lastIndex(), 8);
    assert.deepEqual(
      allEntries(s).map((e) => e.term),
      [1, 1, 1, 1, 1, 2, 2, 2],
    );
    assert.deepEqual(s.hardState, { term: 2, vote: 2n, commit: 5 });
    await s.close();
  });

  it("snapshot + compaction release WAL segments; restart recovers snapshot, later entries and hard state", async () => {
    let s = await DiskRaftStorage.open(dir, { confState: CONF, segmentSize: 8 * 1024 });
    for (let i = 1; i <= 400; i += 20) {
      await s.persist({ hardState: { term: 3, vote: 1n, commit: i + 19 }, entries: makeEntries(i, 20, 3) });
    }
    const segmentsBefore = s.walSegments().length;
    const snap = await s.createSnapshot(300, undefined, entryData(300, 5000));
    assert.deepEqual(snap.metadata, { index: 300, term: 3, confState: CONF });
    await s.compact(250); // keep 251.. in memory for slow followers
    assert.equal(s.firstIndex(), 251);
    assert.ok(s.walSegments().length < segmentsBefore, `${segmentsBefore} -> ${s.walSegments().length}`);
    await assert.rejects(s.compact(350), (e) => isWalError(e, "InvalidArgument"));
    await assert.rejects(s.createSnapshot(200, undefined, new Uint8Array(0)), (e: unknown) => isRaftError(e, "SnapshotOutOfDate"));
    await assert.rejects(s.compact(100), (e: unknown) => isRaftError(e, "Compacted"));
    await s.persist({ hardState: { term: 3, vote: 1n, commit: 410 }, entries: makeEntries(401, 10, 3) });
    await s.close();

    s = await DiskRaftStorage.open(dir, { segmentSize: 8 * 1024 });
    // Memory restarts from the snapshot: the WAL no longer needs to hold anything before it.
    assert.equal(s.snapshot().metadata.index, 300);
    assert.deepEqual(Buffer.from(s.snapshot().data), Buffer.from(entryData(300, 5000)));
    assert.equal(s.firstIndex(), 301);
    assert.equal(s.lastIndex(), 410);
    assert.equal(s.term(300), 3);
    assert.deepEqual(summary(allEntries(s)), summary(makeEntries(301, 110, 3)));
    assert.deepEqual(s.hardState, { term: 3, vote: 1n, commit: 410 });
    assert.deepEqual(s.initialState().confState, CONF);
    await s.close();
  });

  it("installs a snapshot from the leader, replacing the log, and restarts from it", async () => {
    let s = await DiskRaftStorage.open(dir, { ...SMALL, confState: CONF });
    await s.persist({ hardState: { term: 1, vote: 1n, commit: 3 }, entries: makeEntries(1, 5, 1) });
    const leaderSnap: Snapshot = {
      data: entryData(100, 300),
      metadata: { index: 100, term: 5, confState: { voters: [1n, 2n, 3n], learners: [] } },
    };
    await s.persist({ hardState: { term: 5, vote: 0n, commit: 100 }, entries: [], snapshot: leaderSnap });
    assert.equal(s.firstIndex(), 101);
    assert.equal(s.lastIndex(), 100);
    await assert.rejects(s.applySnapshot(leaderSnap), (e: unknown) => isRaftError(e, "SnapshotOutOfDate"));
    await s.persist({ hardState: { term: 5, vote: 0n, commit: 102 }, entries: makeEntries(101, 3, 5) });
    await s.close();

    s = await DiskRaftStorage.open(dir, SMALL);
    assert.deepEqual(s.snapshot().metadata, leaderSnap.metadata);
    assert.deepEqual(s.initialState().confState, leaderSnap.metadata.confState);
    assert.deepEqual(
      allEntries(s).map((e) => e.index),
      [101, 102, 103],
    );
    assert.deepEqual(s.hardState, { term: 5, vote: 0n, commit: 102 });
    await s.close();
  });

  it("falls back to an older snapshot when the newest file is broken, and ignores an orphan snapshot file", async () => {
    let s = await DiskRaftStorage.open(dir, { ...SMALL, confState: CONF });
    await s.persist({ hardState: { term: 1, vote: 1n, commit: 50 }, entries: makeEntries(1, 50) });
    await s.createSnapshot(20, undefined, entryData(20, 100));
    await s.createSnapshot(40, undefined, entryData(40, 100));
    await s.close();
    // Break the newest snapshot file; add a file whose WAL marker was never written (crash in between).
    const snapDir = join(dir, "snap");
    const newest = join(snapDir, snapshotFileName({ index: 40, term: 1 }));
    const bytes = await readFile(newest);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(newest, bytes);
    await new Snapshotter(snapDir).save({ data: new Uint8Array(0), metadata: { index: 45, term: 1, confState: CONF } });

    s = await DiskRaftStorage.open(dir, SMALL);
    assert.equal(s.snapshot().metadata.index, 20);
    assert.equal(s.firstIndex(), 21);
    assert.equal(s.lastIndex(), 50);
    assert.deepEqual(summary(allEntries(s)), summary(makeEntries(21, 30)));
    assert.ok((await readdir(snapDir)).includes(`${snapshotFileName({ index: 40, term: 1 })}.broken`));
    await s.close();
  });

  it("raises a hard state left behind by a crash between snapshot marker and hard state to the snapshot", async () => {
    let s = await DiskRaftStorage.open(dir, { ...SMALL, confState: CONF });
    await s.persist({ hardState: { term: 1, vote: 1n, commit: 2 }, entries: makeEntries(1, 3, 1) });
    await s.close();
    // What persist() of a leader snapshot leaves if the process dies after the marker reached the disk
    // but before the hard state did: snapshot file + marker, old hard state.
    const snap: Snapshot = { data: new Uint8Array([1]), metadata: { index: 60, term: 4, confState: CONF } };
    await new Snapshotter(join(dir, "snap")).save(snap);
    const { wal } = await Wal.open(join(dir, "wal"), SMALL);
    wal.saveSnapshotMarker({ index: 60, term: 4 }, { replacesLog: true });
    await wal.close();

    s = await DiskRaftStorage.open(dir, SMALL);
    assert.deepEqual(s.hardState, { term: 4, vote: 1n, commit: 60 });
    assert.equal(s.firstIndex(), 61);
    assert.equal(s.lastIndex(), 60);
    // raft accepts it.
    const node = newNode(s, 60);
    assert.equal(node.status().hardState.commit, 60);
    await s.close();
  });

  it("is locked while open, and exists() tells a restart from a new member", async () => {
    assert.equal(await DiskRaftStorage.exists(dir), false);
    const s = await DiskRaftStorage.open(dir, { ...SMALL, confState: CONF });
    assert.equal(await DiskRaftStorage.exists(dir), true);
    await assert.rejects(DiskRaftStorage.open(dir, SMALL), (e) => isWalError(e, "Locked"));
    await s.close();
  });

  it("drives a single-node RawNode through hundreds of proposals, restarts it, and it continues", async () => {
    const options = { metadata: META, confState: CONF, segmentSize: 16 * 1024 };
    let storage = await DiskRaftStorage.open(dir, options);
    let node = newNode(storage);
    node.campaign();
    let committed = await drain(node, storage);
    assert.equal(node.status().softState.raftState, StateType.Leader);

    const proposals: string[] = [];
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 10; k++) {
        const data = `put ${round}-${k}`;
        proposals.push(data);
        node.propose(new TextEncoder().encode(data));
      }
      committed.push(...(await drain(node, storage)));
      if (round === 20) {
        const applied = committed[committed.length - 1]!.index;
        await storage.createSnapshot(applied, node.status().confState, new TextEncoder().encode(`state@${applied}`));
        await storage.compact(applied - 50);
      }
    }
    const decoder = new TextDecoder();
    const normal = (es: Entry[]) => es.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => decoder.decode(e.data));
    assert.deepEqual(normal(committed), proposals);
    const lastIndex = storage.lastIndex();
    const hardState = storage.hardState;
    assert.equal(hardState.commit, lastIndex);
    const log = summary(storage.entries(storage.snapshot().metadata.index + 1, lastIndex + 1, Infinity));
    const snapIndex = storage.snapshot().metadata.index;
    await storage.close();

    storage = await DiskRaftStorage.open(dir, options);
    assert.equal(storage.lastIndex(), lastIndex);
    assert.deepEqual(storage.hardState, hardState);
    assert.equal(storage.snapshot().metadata.index, snapIndex);
    assert.equal(decoder.decode(storage.snapshot().data), `state@${snapIndex}`);
    assert.deepEqual(summary(allEntries(storage)), log);

    // Restart as etcd does: the state machine is restored from the snapshot, entries after it replay.
    node = newNode(storage, snapIndex);
    node.campaign();
    const replayed = await drain(node, storage);
    assert.equal(node.status().softState.raftState, StateType.Leader);
    assert.ok(node.status().hardState.term > hardState.term);
    assert.deepEqual(normal(replayed), proposals.slice(proposals.length - normal(replayed).length));
    assert.equal(replayed[0]!.index, snapIndex + 1);

    for (let k = 0; k < 20; k++) node.propose(new TextEncoder().encode(`after restart ${k}`));
    committed = await drain(node, storage);
    assert.deepEqual(
      normal(committed),
      Array.from({ length: 20 }, (_, k) => `after restart ${k}`),
    );
    const finalLast = storage.lastIndex();
    await storage.close();
    storage = await DiskRaftStorage.open(dir, options);
    assert.equal(storage.lastIndex(), finalLast);
    assert.equal(storage.hardState.commit, finalLast);
    await storage.close();
  });

  it("works with raft's bootstrap (membership in conf change entries) across a restart", async () => {
    let storage = await DiskRaftStorage.open(dir, SMALL);
    assert.equal(storage.isNew, true);
    let node = newNode(storage);
    node.bootstrap([1n]);
    await drain(node, storage);
    node.campaign();
    await drain(node, storage);
    node.propose(new TextEncoder().encode("x"));
    await drain(node, storage);
    assert.equal(node.status().softState.raftState, StateType.Leader);
    const last = storage.lastIndex();
    await storage.close();

    storage = await DiskRaftStorage.open(dir, SMALL);
    assert.equal(storage.isNew, false);
    assert.equal(storage.lastIndex(), last);
    assert.equal(storage.entries(1, 2, Infinity)[0]!.type, EntryType.ConfChange);
    node = newNode(storage);
    const replayed = await drain(node, storage); // replays the conf change: membership is back
    assert.equal(replayed.length, last);
    assert.deepEqual(node.status().confState.voters, [1n]);
    node.campaign();
    await drain(node, storage);
    assert.equal(node.status().softState.raftState, StateType.Leader);
    await storage.close();
  });
});

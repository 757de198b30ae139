import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStorage, type Entry, type HardState, type Snapshot } from "@etcd-ts/raft";
import { silentLogger } from "../log.js";
import type { LogEntry } from "./replicated-log.js";
import { RaftLog, type DurableRaftStorage } from "./raft-log.js";

/** Raft storage in memory whose persist can be made to fail, as a WAL whose disk is full or failing. */
class FailingStorage extends MemoryStorage implements DurableRaftStorage {
  failWith: Error | undefined;
  persisted: number[] = [];

  constructor() {
    super({ confState: { voters: [1n], learners: [] } });
  }

  async persist(update: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): Promise<void> {
    await Promise.resolve();
    if (this.failWith !== undefined) throw this.failWith;
    this.append(update.entries);
    if (update.hardState !== undefined) this.setHardState(update.hardState);
    this.persisted.push(...update.entries.map((e) => e.index));
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

test("a failed persist stops the raft loop: onFatal is told once, the Ready's entries are neither applied nor acknowledged", async () => {
  const storage = new FailingStorage();
  const fatal: unknown[] = [];
  const sent: unknown[] = [];
  const log = new RaftLog({
    id: 1n,
    storage,
    send: (messages) => sent.push(...messages),
    confChanges: { applyConfChange: () => Promise.resolve() },
    logger: silentLogger,
    tickMs: 10,
    seed: 1,
    onFatal: (error) => fatal.push(error),
  });
  const applied: LogEntry[] = [];
  log.start(0, (entries) => {
    applied.push(...entries);
    return Promise.resolve();
  });
  await until(() => log.status().isLeader, "the lone voter leads");
  log.propose(new TextEncoder().encode("a"));
  await until(() => applied.some((e) => e.data.byteLength > 0), "the first proposal is applied");
  const appliedBefore = applied.length;

  const walError = Object.assign(new Error("wal: fdatasync failed: EIO: i/o error, fdatasync"), { name: "WalError", code: "Failed" });
  storage.failWith = walError;
  log.propose(new TextEncoder().encode("b"));
  await until(() => fatal.length > 0, "onFatal is called");
  assert.deepEqual(fatal, [walError]);
  assert.equal(applied.length, appliedBefore, "nothing of the failed Ready was applied");
  assert.throws(() => log.propose(new TextEncoder().encode("c")), /server stopped/);
  await assert.rejects(log.readIndex(), /server stopped/);
  // stop() after the failure resolves (the loop's error was handled, not left to reject).
  await log.stop();
  assert.equal(fatal.length, 1);
});

test("an apply function that throws stops the loop the same way", async () => {
  const storage = new FailingStorage();
  const fatal: unknown[] = [];
  const log = new RaftLog({
    id: 1n,
    storage,
    send: () => undefined,
    confChanges: { applyConfChange: () => Promise.resolve() },
    logger: silentLogger,
    tickMs: 10,
    seed: 1,
    onFatal: (error) => fatal.push(error),
  });
  const boom = new Error("backend failed");
  log.start(0, (entries) => {
    if (entries.some((e) => e.data.byteLength > 0)) throw boom;
    return Promise.resolve();
  });
  await until(() => log.status().isLeader, "the lone voter leads");
  log.propose(new TextEncoder().encode("a"));
  await until(() => fatal.length > 0, "onFatal is called");
  assert.deepEqual(fatal, [boom]);
  await log.stop();
});

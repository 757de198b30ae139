import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStorage, MessageType, type Entry, type HardState, type Message, type Snapshot } from "@etcd-ts/raft";
import { silentLogger } from "../log.js";
import type { LogEntry } from "./replicated-log.js";
import { RaftLog, type DurableRaftStorage, type RaftLogOptions } from "./raft-log.js";

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

/** A RaftLog over `storage` with short ticks and a fixed seed; `overrides` replace any option. */
function openLog(storage: DurableRaftStorage, overrides: Partial<RaftLogOptions> = {}): RaftLog {
  return new RaftLog({
    id: 1n,
    storage,
    send: () => undefined,
    confChanges: { applyConfChange: () => Promise.resolve() },
    logger: silentLogger,
    tickMs: 10,
    seed: 1,
    ...overrides,
  });
}

/** Starts `log`, collecting the entries it applies. */
function startCollecting(log: RaftLog): LogEntry[] {
  const applied: LogEntry[] = [];
  log.start(0, (entries) => {
    applied.push(...entries);
    return Promise.resolve();
  });
  return applied;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

test("a failed persist stops the raft loop: onFatal is told once, the Ready's entries are neither applied nor acknowledged", async () => {
  const storage = new FailingStorage();
  const fatal: unknown[] = [];
  const sent: unknown[] = [];
  const log = openLog(storage, { send: (messages) => sent.push(...messages), onFatal: (error) => fatal.push(error) });
  const applied = startCollecting(log);
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
  const log = openLog(storage, { onFatal: (error) => fatal.push(error) });
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

function message(fields: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(), ...fields };
}

/** Raft storage in memory whose every persist waits until the test releases it. */
class GatedStorage extends MemoryStorage implements DurableRaftStorage {
  readonly pending: { update: { hardState?: HardState; entries: readonly Entry[] }; release: () => void }[] = [];

  constructor() {
    super({ confState: { voters: [1n, 2n, 3n], learners: [] } });
  }

  persist(update: { hardState?: HardState; entries: readonly Entry[]; snapshot?: Snapshot }): Promise<void> {
    return new Promise((resolve) => {
      this.pending.push({
        update,
        release: () => {
          this.append(update.entries);
          if (update.hardState !== undefined) this.setHardState(update.hardState);
          resolve();
        },
      });
    });
  }

  releaseAll(): void {
    for (const p of this.pending.splice(0)) p.release();
  }
}

test("a leader sends its appends while it persists them, and commits nothing before its own persist ends; a candidate persists its term before asking for votes", async () => {
  const storage = new GatedStorage();
  const sent: Message[] = [];
  const log = openLog(storage, { send: (messages) => sent.push(...messages), tickMs: 5, electionTicks: 20 });
  const applied = startCollecting(log);
  try {
    // A pre-vote changes no term; granted, the campaign's Ready changes it, and that is persisted
    // before any vote request leaves.
    await until(() => sent.some((m) => m.type === MessageType.PreVote), "the member asks for pre-votes");
    const preVoteTerm = sent.find((m) => m.type === MessageType.PreVote)!.term;
    for (const from of [2n, 3n]) log.step(message({ type: MessageType.PreVoteResp, from, to: 1n, term: preVoteTerm }));
    await until(() => storage.pending.length > 0, "the candidate persists its term");
    assert.equal(sent.filter((m) => m.type === MessageType.Vote).length, 0, "no vote request is sent before the term is persisted");
    storage.releaseAll();
    await until(() => sent.some((m) => m.type === MessageType.Vote), "vote requests are sent after the persist");
    const term = sent.filter((m) => m.type === MessageType.Vote).at(-1)!.term;
    for (const from of [2n, 3n]) log.step(message({ type: MessageType.VoteResp, from, to: 1n, term }));
    await until(() => log.status().isLeader, "the candidate wins");

    // The leader's Readies: its appends leave before their persist ends.
    for (let i = 0; i < 20 && storage.pending.length > 0; i++) {
      storage.releaseAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    // The followers take the leader's first append (its empty entry), so it replicates to them freely.
    await until(() => sent.some((m) => m.type === MessageType.App), "the leader appends its empty entry");
    for (const m of sent.filter((m) => m.type === MessageType.App)) {
      log.step(message({ type: MessageType.AppResp, from: m.to, to: 1n, term, index: m.index + m.entries.length }));
    }
    for (let i = 0; i < 20 && storage.pending.length > 0; i++) {
      storage.releaseAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    sent.length = 0;
    log.propose(new TextEncoder().encode("x"));
    await until(() => sent.some((m) => m.type === MessageType.App && m.entries.some((e) => e.data.byteLength > 0)), "the append is sent");
    const append = sent.find((m) => m.type === MessageType.App && m.entries.some((e) => e.data.byteLength > 0))!;
    const index = append.entries.at(-1)!.index;
    assert.ok(
      storage.pending.some((p) => p.update.entries.some((e) => e.index === index)),
      "the append was sent while its persist is still pending",
    );

    // Both followers acknowledge, yet the leader's own persist has not ended: nothing is applied or
    // sent on with the new commit index until it has.
    for (const from of [2n, 3n]) log.step(message({ type: MessageType.AppResp, from, to: 1n, term, index }));
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(!applied.some((e) => e.index === index), "not applied before the leader's persist ends");
    assert.ok(!sent.some((m) => m.commit >= index), "no message carries the commit index before the leader's persist ends");
    await until(() => {
      storage.releaseAll();
      return applied.some((e) => e.index === index);
    }, "applied once the leader's persist ends");
  } finally {
    storage.releaseAll();
    const stopping = log.stop();
    storage.releaseAll();
    await stopping;
  }
});

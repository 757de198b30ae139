// Fuzzing the readers of what is on disk: WAL segments (open, repair, snapshot markers) and snapshot
// files, through DiskRaftStorage.open as the server calls it. A damaged directory must be refused with a
// WalError (or a RaftError from the log it rebuilds) — never a RangeError/TypeError from deep inside,
// never a hang, never an allocation sized by a length field.
//
// Short by default; FUZZ_RUNS=<n> runs n cases per property (FUZZ_SEED=<n> replays a seed).

import assert from "node:assert/strict";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { isRaftError } from "@etcd-ts/raft";
import { DiskRaftStorage } from "./disk-raft-storage.js";
import { isWalError } from "./errors.js";
import { FRAME_HEADER_SIZE, RecordType } from "./record.js";
import { Snapshotter } from "./snapshotter.js";
import { makeEntries, tempDir } from "./testing/fixtures.js";
import { Wal } from "./wal.js";

const RUNS = process.env.FUZZ_RUNS !== undefined ? Number(process.env.FUZZ_RUNS) : 150;
/** Without FUZZ_RUNS a property stops after this long (a shared CI machine may be slow). */
const TIME_LIMIT_MS = process.env.FUZZ_RUNS !== undefined ? undefined : 4000;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;

function params(): fc.Parameters<unknown> {
  return {
    numRuns: RUNS,
    // The option, not its plugin: a run interrupted before any success fails with the option, passes with the plugin.
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    ...(TIME_LIMIT_MS !== undefined ? { interruptAfterTimeLimit: TIME_LIMIT_MS } : {}),
    ...(SEED !== undefined ? { seed: SEED } : {}),
  };
}

/** Errors a reader may answer a damaged directory with: ours, typed, with a stable name. */
function isTypedError(e: unknown): boolean {
  if (isWalError(e)) return true;
  // DiskRaftStorage rebuilds raft's MemoryStorage: its contract errors are typed too.
  return isRaftError(e);
}

function assertTyped(e: unknown): void {
  if (!isTypedError(e)) {
    throw new Error(`untyped error from a damaged directory: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  }
}

type Files = Map<string, Buffer>;

/** One frame as laid out in a segment. */
interface Frame {
  readonly start: number;
  readonly end: number;
}

function frames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let off = 0;
  while (off + FRAME_HEADER_SIZE <= buf.length) {
    const size = buf.readUInt32LE(off);
    const end = off + FRAME_HEADER_SIZE + size;
    if (size === 0 && buf[off + 4] === 0) break; // preallocated zeros
    if (end > buf.length) break;
    out.push({ start: off, end });
    off = end;
  }
  return out;
}

/**
 * Rewrites every checksum so the segments pass the framing checks again: the header CRC of each frame,
 * the chained record CRC, and each later segment header's link to the previous segment. What is left
 * for the reader to catch is what the records say.
 */
function reseal(segments: Buffer[]): void {
  let chain = 0;
  segments.forEach((buf, s) => {
    for (const f of frames(buf)) {
      const type = buf[f.start + 4];
      const payloadStart = f.start + FRAME_HEADER_SIZE;
      let seed = chain;
      if (type === RecordType.SegmentHeader && f.end - payloadStart >= 20) {
        if (s > 0 && f.start === 0) buf.writeUInt32LE(chain >>> 0, payloadStart + 16);
        seed = buf.readUInt32LE(payloadStart + 16);
      }
      const head = buf.subarray(f.start, f.start + 8);
      buf.writeUInt32LE(crc32(head), f.start + 8);
      chain = crc32(buf.subarray(payloadStart, f.end), crc32(head, seed));
      buf.writeUInt32LE(chain, f.start + 12);
    }
  });
}

/** Mutations of a raft directory's files: byte damage, structural edits of records, file-level edits. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), file: fc.nat(), at: fc.nat(), value: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), file: fc.nat(), at: fc.nat() }),
  fc.record({
    kind: fc.constant("overwrite" as const),
    file: fc.nat(),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }),
  }),
  fc.record({ kind: fc.constant("recordType" as const), file: fc.nat(), record: fc.nat(), value: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("recordLength" as const),
    file: fc.nat(),
    record: fc.nat(),
    value: fc.oneof(fc.nat(64), fc.constantFrom(0xffffffff, 0x7fffffff, 256 * 1024 * 1024, 256 * 1024 * 1024 + 1)),
  }),
  fc.record({
    kind: fc.constant("recordPayload" as const),
    file: fc.nat(),
    record: fc.nat(),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("dropRecord" as const), file: fc.nat(), record: fc.nat() }),
  fc.record({ kind: fc.constant("duplicateRecord" as const), file: fc.nat(), record: fc.nat() }),
  fc.record({ kind: fc.constant("swapRecords" as const), file: fc.nat(), record: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant("renameSegment" as const), file: fc.nat(), value: fc.oneof(fc.nat(40), fc.constant(2 ** 53)) }),
  fc.record({ kind: fc.constant("deleteFile" as const), file: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function splice(buf: Buffer, start: number, end: number, insert: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([buf.subarray(0, start), insert, buf.subarray(end)]);
}

function mutate(files: Files, mutations: readonly Mutation[], resealAfter: boolean): Files {
  const out: Files = new Map([...files].map(([name, buf]) => [name, Buffer.from(buf)]));
  for (const m of mutations) {
    const names = [...out.keys()].sort();
    if (names.length === 0) break;
    const name = names[m.file % names.length]!;
    let buf = out.get(name)!;
    const fs = frames(buf);
    const frame = "record" in m && fs.length > 0 ? fs[m.record % fs.length]! : undefined;
    switch (m.kind) {
      case "flip":
        if (buf.length > 0) buf[m.at % buf.length] = buf[m.at % buf.length]! ^ m.value;
        break;
      case "truncate":
        buf = buf.subarray(0, m.at % (buf.length + 1));
        break;
      case "overwrite":
        if (buf.length > 0) Buffer.from(m.bytes).copy(buf, m.at % buf.length);
        break;
      case "recordType":
        if (frame) buf[frame.start + 4] = m.value;
        break;
      case "recordLength":
        if (frame) buf.writeUInt32LE(m.value >>> 0, frame.start);
        break;
      case "recordPayload":
        if (frame && frame.end > frame.start + FRAME_HEADER_SIZE) {
          const len = frame.end - frame.start - FRAME_HEADER_SIZE;
          Buffer.from(m.bytes).copy(buf, frame.start + FRAME_HEADER_SIZE + (m.at % len), 0, Math.min(m.bytes.length, len - (m.at % len)));
        }
        break;
      case "dropRecord":
        if (frame) buf = splice(buf, frame.start, frame.end);
        break;
      case "duplicateRecord":
        if (frame) buf = splice(buf, frame.end, frame.end, buf.subarray(frame.start, frame.end));
        break;
      case "swapRecords": {
        const other = fs.length > 0 ? fs[m.other % fs.length]! : undefined;
        if (frame && other && other.start > frame.end) {
          buf = Buffer.concat([
            buf.subarray(0, frame.start),
            buf.subarray(other.start, other.end),
            buf.subarray(frame.end, other.start),
            buf.subarray(frame.start, frame.end),
            buf.subarray(other.end),
          ]);
        }
        break;
      }
      case "renameSegment": {
        const match = /^wal\/([0-9a-f]{16})-[0-9a-f]{16}\.wal$/.exec(name);
        if (match) {
          out.delete(name);
          out.set(`wal/${match[1]}-${m.value.toString(16).padStart(16, "0")}.wal`, buf);
          continue;
        }
        break;
      }
      case "deleteFile":
        out.delete(name);
        continue;
    }
    out.set(name, buf);
  }
  if (resealAfter) {
    const segNames = [...out.keys()].filter((n) => n.endsWith(".wal")).sort();
    const segs = segNames.map((n) => out.get(n)!);
    reseal(segs);
    // Snapshot files: recompute the body CRC so the decoder, not the checksum, meets the damage.
    for (const [name, buf] of out) {
      if (name.endsWith(".snap") && buf.length >= 20) buf.writeUInt32LE(crc32(buf.subarray(20)), 16);
    }
  }
  return out;
}

async function readTree(dir: string, prefix = ""): Promise<Files> {
  const files: Files = new Map();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) for (const [k, v] of await readTree(join(dir, entry.name), rel)) files.set(k, v);
    else if (!entry.name.endsWith(".lock")) files.set(rel, await readFile(join(dir, entry.name)));
  }
  return files;
}

async function writeTree(dir: string, files: Files): Promise<void> {
  await mkdir(join(dir, "wal"), { recursive: true });
  await mkdir(join(dir, "snap"), { recursive: true });
  for (const [name, buf] of files) await writeFile(join(dir, name), buf);
}

/** A raft directory as the server leaves it: several segments, hard states, entries, snapshots. */
async function buildRaftDir(dir: string): Promise<void> {
  const confState = { voters: [1n], learners: [] };
  const storage = await DiskRaftStorage.open(dir, {
    segmentSize: 4096,
    preallocate: false,
    confState,
    metadata: new TextEncoder().encode("fuzz"),
  });
  for (let first = 1; first <= 20; first += 5) {
    await storage.persist({ hardState: { term: 1, vote: 1n, commit: first + 4 }, entries: makeEntries(first, 5, 1, 150) });
  }
  await storage.createSnapshot(12, { voters: [1n], learners: [] }, new Uint8Array([1, 2, 3]));
  for (let first = 21; first <= 60; first += 5) {
    await storage.persist({ hardState: { term: 2, vote: 1n, commit: first + 4 }, entries: makeEntries(first, 5, 2, 150) });
  }
  await storage.close();
}

/** A raft directory of a member that has just started: one segment, the initial empty snapshot. */
async function buildFreshRaftDir(dir: string): Promise<void> {
  const storage = await DiskRaftStorage.open(dir, { preallocate: false, confState: { voters: [1n], learners: [] } });
  await storage.persist({ hardState: { term: 2, vote: 1n, commit: 3 }, entries: makeEntries(1, 3, 2, 40) });
  await storage.close();
}

describe("fuzzing the raft directory readers", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let base: Files;
  let fresh: Files;
  let n = 0;
  before(async () => {
    ({ dir: root, cleanup } = await tempDir("etcd-ts-wal-fuzz-"));
    await buildRaftDir(join(root, "base"));
    base = await readTree(join(root, "base"));
    assert.ok([...base.keys()].filter((k) => k.endsWith(".wal")).length >= 3, "several segments");
    assert.ok(
      [...base.keys()].some((k) => k.endsWith(".snap")),
      "a snapshot file",
    );
    await buildFreshRaftDir(join(root, "fresh"));
    fresh = await readTree(join(root, "fresh"));
  });
  const bases = () => fc.constantFrom(base, fresh);
  after(async () => cleanup());

  /** Outcomes of the last property: "opened", or the error's code and the start of its message. */
  const outcomes = new Map<string, number>();
  const count = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const report = (t: { diagnostic(message: string): void }) => {
    const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(
      `${total} cases: ${[...outcomes]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([k, v]) => `${v} ${k}`)
        .join("; ")}`,
    );
    outcomes.clear();
  };

  async function written(files: Files): Promise<string> {
    const dir = join(root, `case-${n++}`);
    await writeTree(dir, files);
    return dir;
  }

  /** Opens the damaged copy as the server would; returns whether it opened. */
  async function openDamaged(files: Files): Promise<boolean> {
    const dir = await written(files);
    try {
      try {
        await Wal.readSnapshotMarkers(join(dir, "wal"));
      } catch (e) {
        assertTyped(e);
      }
      try {
        const { wal } = await Wal.open(join(dir, "wal"), { preallocate: false });
        await wal.close();
      } catch (e) {
        assertTyped(e);
      }
      try {
        await new Snapshotter(join(dir, "snap")).loadNewest();
      } catch (e) {
        assertTyped(e);
      }
      try {
        const storage = await DiskRaftStorage.open(dir, { preallocate: false });
        // Whatever opened must be readable in full.
        const first = storage.firstIndex();
        const last = storage.lastIndex();
        if (last >= first) storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
        storage.initialState();
        await storage.close();
        count("opened");
        return true;
      } catch (e) {
        assertTyped(e);
        const error = e as Error & { code?: string };
        count(
          `${error.code ?? error.name}: ${error.message
            .replace(/ \(.*$/, "")
            .replace(/\d+/g, "N")
            .slice(0, 60)}`,
        );
        return false;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it("the undamaged directories open", async () => {
    assert.equal(await openDamaged(base), true);
    assert.equal(await openDamaged(fresh), true);
  });

  it("a WAL without a snapshot marker record is Corrupt", async () => {
    const segment = [...fresh.keys()].find((k) => k.endsWith(".wal"))!;
    const records = frames(fresh.get(segment)!);
    const marker = records.findIndex((f) => fresh.get(segment)![f.start + 4] === RecordType.SnapshotMarker);
    const damaged = mutate(fresh, [{ kind: "dropRecord", file: [...fresh.keys()].sort().indexOf(segment), record: marker }], true);
    await assert.rejects(
      Wal.open(join(await written(damaged), "wal"), { preallocate: false }),
      (e) => isWalError(e, "Corrupt") && /no snapshot marker/.test(e.message),
    );
  });

  it("byte damage is refused with a typed error or repaired", { timeout: 600_000 }, async (t) => {
    await fc.assert(
      fc.asyncProperty(bases(), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (files, mutations) => {
        await openDamaged(mutate(files, mutations, false));
      }),
      params(),
    );
    report(t);
  });

  it("records that pass their checksums but say nonsense are refused with a typed error", { timeout: 600_000 }, async (t) => {
    await fc.assert(
      fc.asyncProperty(bases(), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (files, mutations) => {
        await openDamaged(mutate(files, mutations, true));
      }),
      params(),
    );
    // The resealed damage reaches the record decoders, not only the checksums.
    const checksumOnly = [...outcomes.keys()].every((k) => /checksum/.test(k));
    report(t);
    assert.equal(checksumOnly, false);
  });
});

// What group commit buys on this disk: entries/s for save(1 entry) + sync() against save(N entries) +
// sync(), and for many concurrent writers each doing save(1) + sync() (the server's situation: the
// Ready loop batches whatever was proposed while the previous fsync ran).
//
// The last rows repeat two cases without preallocation, to show what zero-filled segments buy.
//
// Run: npm run bench -w @etcd-ts/wal   (or, in packages/wal: node --conditions=source --import tsx bench/group-commit.ts)
// Env: WAL_BENCH_DIR (default: a temp dir), WAL_BENCH_SECONDS per run (default 2), WAL_BENCH_REPEATS
// (default 3). The disk is shared and noisy: every case runs REPEATS times, interleaved with the other
// cases, and the run with the median entries/s is reported.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "@etcd-ts/raft";
import { Wal } from "../src/index.js";

const SECONDS = Number(process.env.WAL_BENCH_SECONDS ?? 2);
const REPEATS = Number(process.env.WAL_BENCH_REPEATS ?? 3);
const DATA = new Uint8Array(256).fill(7);

function entries(first: number, count: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ term: 1, index: first + i, type: 0, data: DATA });
  return out;
}

interface Result {
  name: string;
  entriesPerSec: number;
  syncsPerSec: number;
  syncP50Ms: number;
  syncP99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

let runs = 0;

async function sequential(root: string, batch: number, preallocate = true): Promise<Result> {
  const wal = await Wal.create(join(root, `run-${runs++}`), new Uint8Array(8), { preallocate });
  let next = 1;
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    wal.save({ term: 1, vote: 1n, commit: next - 1 }, entries(next, batch));
    next += batch;
    const t = performance.now();
    await wal.sync();
    latencies.push(performance.now() - t);
  }
  const elapsed = (performance.now() - start) / 1000;
  await wal.close();
  latencies.sort((a, b) => a - b);
  return {
    name: `save(${batch} entr${batch === 1 ? "y" : "ies"}) + sync${preallocate ? "" : ", appending segments"}`,
    entriesPerSec: (next - 1) / elapsed,
    syncsPerSec: latencies.length / elapsed,
    syncP50Ms: percentile(latencies, 0.5),
    syncP99Ms: percentile(latencies, 0.99),
  };
}

/** `writers` concurrent loops of save(1 entry) + sync(): calls that arrive during an fsync share the next. */
async function concurrent(root: string, writers: number): Promise<Result> {
  const wal = await Wal.create(join(root, `run-${runs++}`), new Uint8Array(8));
  let next = 1;
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < end) {
        wal.save(undefined, entries(next, 1));
        next += 1;
        const t = performance.now();
        await wal.sync();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const fsyncs = wal.metrics().fsyncs;
  await wal.close();
  latencies.sort((a, b) => a - b);
  return {
    name: `${writers} concurrent writers, save(1) + sync each`,
    entriesPerSec: (next - 1) / elapsed,
    syncsPerSec: fsyncs / elapsed,
    syncP50Ms: percentile(latencies, 0.5),
    syncP99Ms: percentile(latencies, 0.99),
  };
}

const root = process.env.WAL_BENCH_DIR ?? (await mkdtemp(join(tmpdir(), "wal-bench-")));
try {
  const cases: (() => Promise<Result>)[] = [
    ...[1, 10, 100, 1000].map((batch) => () => sequential(root, batch)),
    ...[10, 100].map((writers) => () => concurrent(root, writers)),
    ...[1, 100].map((batch) => () => sequential(root, batch, false)),
  ];
  const runsByCase: Result[][] = cases.map(() => []);
  for (let r = 0; r < REPEATS; r++) {
    for (let c = 0; c < cases.length; c++) {
      runsByCase[c]!.push(await cases[c]!());
      await rm(join(root, `run-${runs - 1}`), { recursive: true, force: true });
    }
  }
  const results = runsByCase.map((rs) => rs.sort((a, b) => a.entriesPerSec - b.entriesPerSec)[Math.floor(rs.length / 2)]!);
  console.log(`| case (256-byte entries; median of ${REPEATS} runs of ${SECONDS}s) | entries/s | fsyncs/s | sync p50 ms | sync p99 ms |`);
  console.log("|---|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${Math.round(r.entriesPerSec).toLocaleString("en-US")} | ${Math.round(r.syncsPerSec).toLocaleString("en-US")} | ${r.syncP50Ms.toFixed(2)} | ${r.syncP99Ms.toFixed(2)} |`,
    );
  }
} finally {
  if (!process.env.WAL_BENCH_DIR) await rm(root, { recursive: true, force: true });
}

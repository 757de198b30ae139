/**
 * A small, repeatable throughput measurement for storage engines, shared so that every engine's README
 * quotes the same workloads. Run through an engine package's `npm run bench`.
 *
 * Workloads (all values 256 bytes):
 * - put, batch of 1 / 100: sequential `update`s, each awaited (the server waits for durability before
 *   answering), with 17-byte increasing keys like etcd's revision keys; "random keys" uses 16 random bytes.
 * - get: random point reads of existing keys inside one `view`.
 * - range: a forward scan of every key in the bucket, and reverse ranges with limit 10.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "./backend.js";

export interface BenchmarkResult {
  readonly workload: string;
  readonly operations: number;
  readonly seconds: number;
  /** Operations per second; for put workloads an operation is one put, not one update. */
  readonly perSecond: number;
}

function revisionKey(i: number): Uint8Array {
  // etcd's bucket key: 8-byte main revision, '_', 8-byte sub revision.
  const key = new Uint8Array(17);
  const view = new DataView(key.buffer);
  view.setBigUint64(0, BigInt(i));
  key[8] = 0x5f;
  return key;
}

async function timed(fn: () => Promise<number> | number): Promise<{ operations: number; seconds: number }> {
  const start = process.hrtime.bigint();
  const operations = await fn();
  return { operations, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

export async function runBackendBenchmark(
  open: (dir: string) => Backend | Promise<Backend>,
  options: { readonly scale?: number } = {},
): Promise<BenchmarkResult[]> {
  const scale = options.scale ?? 1;
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-storage-bench-"));
  const backend = await open(dir);
  const results: BenchmarkResult[] = [];
  const record = (workload: string, r: { operations: number; seconds: number }) =>
    results.push({ workload, ...r, perSecond: r.operations / r.seconds });
  const value = randomBytes(256);
  try {
    await backend.update((txn) => {
      txn.createBucket("key");
      txn.createBucket("random");
    });
    let next = 0;
    record(
      "put, batch of 1 (revision keys)",
      await timed(async () => {
        const n = 2000 * scale;
        for (let i = 0; i < n; i++) await backend.update((txn) => txn.put("key", revisionKey(next++), value));
        return n;
      }),
    );
    record(
      "put, batch of 100 (revision keys)",
      await timed(async () => {
        const updates = 300 * scale;
        for (let u = 0; u < updates; u++) {
          await backend.update((txn) => {
            for (let i = 0; i < 100; i++) txn.put("key", revisionKey(next++), value);
          });
        }
        return updates * 100;
      }),
    );
    record(
      "put, batch of 100 (random keys)",
      await timed(async () => {
        const updates = 300 * scale;
        for (let u = 0; u < updates; u++) {
          await backend.update((txn) => {
            for (let i = 0; i < 100; i++) txn.put("random", randomBytes(16), value);
          });
        }
        return updates * 100;
      }),
    );
    const stored = next;
    const picks = Array.from({ length: 200_000 * scale }, () => revisionKey(Math.floor(Math.random() * stored)));
    record(
      "get (random existing keys, one view)",
      await timed(() =>
        backend.view((txn) => {
          for (const key of picks) if (txn.get("key", key) === undefined) throw new Error("missing key");
          return picks.length;
        }),
      ),
    );
    record(
      "range, full forward scan (entries)",
      await timed(() =>
        backend.view((txn) => {
          let n = 0;
          for (const _ of txn.range("key")) n++;
          return n;
        }),
      ),
    );
    record(
      "range, reverse with limit 10 (ranges)",
      await timed(() =>
        backend.view((txn) => {
          const n = 10_000 * scale;
          for (let i = 0; i < n; i++) {
            const end = revisionKey(Math.floor(Math.random() * stored));
            for (const _ of txn.range("key", { end, reverse: true, limit: 10 }));
          }
          return n;
        }),
      ),
    );
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

/** The results as a Markdown table. */
export function formatBenchmark(results: readonly BenchmarkResult[]): string {
  const lines = ["| workload | operations | seconds | per second |", "|---|---:|---:|---:|"];
  for (const r of results) {
    lines.push(`| ${r.workload} | ${r.operations} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond).toLocaleString("en-US")} |`);
  }
  return lines.join("\n");
}

// Helpers shared by the package's tests and the crash-test child. Not exported from the package.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EntryType, type Entry } from "@etcd-ts/raft";

/** Deterministic, never-zero data for entry `index` (zero runs would look like unwritten sectors). */
export function entryData(index: number, size = 256): Uint8Array {
  const data = new Uint8Array(size);
  let x = (index * 2654435761) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x >>> 24) | 1;
  }
  return data;
}

export function makeEntries(first: number, count: number, term = 1, size = 256): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ term, index: first + i, type: EntryType.Normal, data: entryData(first + i, size) });
  return out;
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(prefix = "etcd-ts-wal-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// Child process of the kill -9 test (wal-crash.test.ts): appends batches of entries to the WAL in
// argv[2] (creating it if needed, else continuing after its last index), and prints "synced <index>"
// only after sync() has resolved for the batch ending at <index>. The parent kills it with SIGKILL at
// some point; every index printed must survive.

import { Wal } from "../wal.js";
import { makeEntries } from "./fixtures.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: crash-writer <wal dir>");

let wal: Wal;
let next: number;
if (await Wal.exists(dir)) {
  const r = await Wal.open(dir, { segmentSize: 64 * 1024 });
  wal = r.wal;
  next = r.wal.lastIndex + 1;
} else {
  wal = await Wal.create(dir, new TextEncoder().encode("crash-writer"), { segmentSize: 64 * 1024 });
  next = 1;
}

for (let round = 0; ; round++) {
  // A few concurrent batches per sync, so kills land inside group commits too.
  const batches = 1 + (round % 3);
  const syncs: Promise<number>[] = [];
  for (let b = 0; b < batches; b++) {
    const count = 1 + ((round * 7 + b) % 13);
    wal.save({ term: 1, vote: 1n, commit: next - 1 }, makeEntries(next, count, 1, 100 + ((round * 31) % 900)));
    next += count;
    const last = next - 1;
    syncs.push(wal.sync().then(() => last));
  }
  for (const s of syncs) process.stdout.write(`synced ${await s}\n`);
}

// Crash safety: torn tails are repaired, corruption anywhere else is reported without touching the
// files, and a writer killed with SIGKILL loses nothing it had acknowledged.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, readdir, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, it } from "node:test";
import { isWalError } from "./errors.js";
import { entryData, makeEntries, tempDir } from "./testing/fixtures.js";
import { Wal } from "./wal.js";

const META = new TextEncoder().encode("crash");

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
}

async function dirHash(dir: string): Promise<string> {
  const h = createHash("sha256");
  for (const name of (await readdir(dir)).sort()) {
    h.update(name);
    h.update(await readFile(join(dir, name)));
  }
  return h.digest("hex");
}

async function copyWal(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of await segmentFiles(from)) await copyFile(join(from, name), join(to, name));
}

function isCorrupt(file: string, check?: (offset: number) => boolean) {
  return (e: unknown): boolean => {
    if (!isWalError(e, "Corrupt")) return false;
    assert.ok(e.file?.endsWith(file), `error names ${e.file}, expected ${file}`);
    assert.ok(e.offset !== undefined, "error names an offset");
    assert.match(e.message, /offset \d+/);
    if (check) assert.ok(check(e.offset), `offset ${e.offset}`);
    return true;
  };
}

describe("Wal crash safety", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir: root, cleanup } = await tempDir());
  });
  afterEach(async () => cleanup());

  /** A one-segment WAL with entries 1..10 synced, then entry 11 (700 bytes, spanning sectors) synced;
   * returns the segment bytes and where the last record starts. */
  async function walWithLastRecord(): Promise<{ src: string; name: string; bytes: Buffer; lastStart: number }> {
    const src = join(root, "src");
    const wal = await Wal.create(src, META, { preallocate: false });
    wal.save({ term: 1, vote: 1n, commit: 5 }, makeEntries(1, 10));
    await wal.sync();
    const name = wal.segmentNames()[0]!;
    const lastStart = (await stat(join(src, name))).size;
    wal.save(undefined, makeEntries(11, 1, 1, 700));
    await wal.close();
    return { src, name, bytes: await readFile(join(src, name)), lastStart };
  }

  it("(appending segments) recovers every earlier record when the last one is cut at any byte offset, and keeps working", async () => {
    const { name, bytes, lastStart } = await walWithLastRecord();
    assert.ok(bytes.length - lastStart > 700);
    for (let cut = lastStart; cut <= bytes.length; cut++) {
      const dir = join(root, `cut-${cut}`);
      await mkdir(dir);
      await writeFile(join(dir, name), bytes.subarray(0, cut));
      const r = await Wal.open(dir);
      const want = cut === bytes.length ? 11 : 10;
      assert.equal(r.entries.length, want, `cut at ${cut}`);
      assert.deepEqual(r.hardState, { term: 1, vote: 1n, commit: 5 });
      if (cut === lastStart || cut === bytes.length) assert.equal(r.repaired, undefined);
      else assert.deepEqual(r.repaired && [r.repaired.offset, r.repaired.droppedBytes], [lastStart, cut - lastStart]);
      assert.equal((await stat(join(dir, name))).size, want === 11 ? bytes.length : lastStart);
      if (cut % 97 === 0) {
        // The repaired log accepts new entries and reads back cleanly.
        r.wal.save(undefined, makeEntries(want + 1, 2));
        await r.wal.close();
        const again = await Wal.open(dir);
        assert.equal(again.entries.length, want + 2);
        assert.equal(again.repaired, undefined);
        await again.wal.close();
      } else {
        await r.wal.close();
      }
    }
  });

  it("treats zero-filled (never written) sectors at the tail as the end of the log or a torn write", async () => {
    const { name, bytes, lastStart } = await walWithLastRecord();
    // The file size reached the disk but the last record's data did not: zeros from lastStart.
    const zeroed = Buffer.from(bytes);
    zeroed.fill(0, lastStart);
    let dir = join(root, "zero-tail");
    await mkdir(dir);
    await writeFile(join(dir, name), zeroed);
    let r = await Wal.open(dir);
    assert.equal(r.entries.length, 10);
    // An all-zero rest is what a preallocated segment looks like: a clean end, nothing to repair.
    assert.equal(r.repaired, undefined);
    r.wal.save(undefined, makeEntries(11, 1));
    await r.wal.close();
    r = await Wal.open(dir);
    assert.equal(r.entries.length, 11);
    await r.wal.close();

    // A multi-record write in which one middle sector was lost: everything from the first record it
    // damages is dropped (none of it was acknowledged: it was all in the last, unfinished sync).
    const src = join(root, "multi");
    const wal = await Wal.create(src, META, { preallocate: false });
    wal.save(undefined, makeEntries(1, 3));
    await wal.sync();
    const synced = (await stat(join(src, wal.segmentNames()[0]!))).size;
    wal.save(undefined, makeEntries(4, 12, 1, 300));
    await wal.close();
    const multi = await readFile(join(src, wal.segmentNames()[0]!));
    const sector = Math.ceil((synced + 2000) / 512) * 512;
    multi.fill(0, sector, sector + 512);
    dir = join(root, "lost-sector");
    await mkdir(dir);
    await writeFile(join(dir, wal.segmentNames()[0]!), multi);
    r = await Wal.open(dir);
    const kept = r.entries.length;
    assert.ok(kept >= 3 && kept < 15, `kept ${kept}`);
    assert.deepEqual(
      r.entries.map((e) => e.index),
      Array.from({ length: kept }, (_, i) => i + 1),
    );
    await r.wal.close();
  });

  it("preallocated segments: a zero rest is a clean end; a last record torn at any sector boundary is cut off", async () => {
    const src = join(root, "src");
    const segmentSize = 16 * 1024;
    const wal = await Wal.create(src, META, { segmentSize });
    wal.save({ term: 1, vote: 1n, commit: 5 }, makeEntries(1, 10));
    wal.save(undefined, makeEntries(11, 1, 1, 700));
    await wal.close();
    const name = wal.segmentNames()[0]!;
    const bytes = await readFile(join(src, name));
    assert.equal(bytes.length, segmentSize);
    let lastEnd = bytes.length;
    while (bytes[lastEnd - 1] === 0) lastEnd--;
    const lastStart = lastEnd - (16 + 17 + 700);

    let r = await Wal.open(src, { segmentSize });
    assert.equal(r.entries.length, 11);
    assert.equal(r.repaired, undefined);
    await r.wal.close();

    const cuts = [lastStart];
    for (let s = Math.ceil((lastStart + 1) / 512) * 512; s < lastEnd; s += 512) cuts.push(s);
    assert.ok(cuts.length >= 2);
    for (const cut of cuts) {
      // The sectors from `cut` on never reached the disk: they still hold the preallocated zeros.
      const dir = join(root, `sector-${cut}`);
      await mkdir(dir);
      const torn = Buffer.from(bytes);
      torn.fill(0, cut, lastEnd);
      await writeFile(join(dir, name), torn);
      r = await Wal.open(dir, { segmentSize });
      assert.equal(r.entries.length, 10, `cut at ${cut}`);
      if (cut === lastStart) assert.equal(r.repaired, undefined);
      else assert.equal(r.repaired?.offset, lastStart);
      r.wal.save(undefined, makeEntries(11, 1));
      await r.wal.close();
      const again = await Wal.open(dir, { segmentSize });
      assert.equal(again.entries.length, 11);
      await again.wal.close();
    }
  });

  it("preallocated segments roll through a prepared zero-filled file, removed on close", async () => {
    const dir = join(root, "rolling");
    const segmentSize = 8 * 1024;
    const wal = await Wal.create(dir, META, { segmentSize });
    for (let i = 1; i <= 200; i += 4) {
      wal.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, 4));
      await wal.sync();
    }
    assert.ok(wal.segmentNames().length > 5);
    for (const name of wal.segmentNames().slice(0, -1)) {
      assert.ok((await stat(join(dir, name))).size >= segmentSize, name);
    }
    await wal.close();
    assert.deepEqual(
      (await readdir(dir)).filter((n) => !n.endsWith(".wal")),
      [],
    );
    const r = await Wal.open(dir, { segmentSize });
    assert.equal(r.entries.length, 200);
    assert.equal(r.repaired, undefined);
    await r.wal.close();
  });

  it("reports a flipped byte anywhere in a middle record as Corrupt with file and offset, modifying nothing", async () => {
    const src = join(root, "src");
    const wal = await Wal.create(src, META, { preallocate: false });
    wal.save(undefined, makeEntries(1, 5));
    await wal.sync();
    const name = wal.segmentNames()[0]!;
    const start = (await stat(join(src, name))).size;
    wal.save(undefined, makeEntries(6, 1, 1, 64));
    await wal.sync();
    const end = (await stat(join(src, name))).size;
    wal.save({ term: 1, vote: 1n, commit: 6 }, makeEntries(7, 5));
    await wal.close();
    const bytes = await readFile(join(src, name));
    for (let at = start; at < end; at++) {
      const dir = join(root, `flip-${at}`);
      await mkdir(dir);
      const flipped = Buffer.from(bytes);
      flipped[at] = flipped[at]! ^ 0x10;
      await writeFile(join(dir, name), flipped);
      const before = await dirHash(dir);
      await assert.rejects(
        Wal.open(dir),
        isCorrupt(name, (off) => off === start),
        `flip at ${at}`,
      );
      assert.equal(await dirHash(dir), before, "nothing modified");
    }
  });

  it("detects a dropped or reordered record (checksum chain), a missing segment and corruption in an older segment", async () => {
    const src = join(root, "src");
    const wal = await Wal.create(src, META, { segmentSize: 2048, preallocate: false });
    const offsets: number[] = [];
    for (let i = 1; i <= 40; i++) {
      wal.save(undefined, makeEntries(i, 1, 1, 200));
      await wal.sync();
      offsets.push((await stat(join(src, wal.segmentNames().at(-1)!))).size);
    }
    await wal.close();
    const names = await segmentFiles(src);
    assert.ok(names.length >= 4);

    // Drop the second record of the first segment's entries: the chain breaks at the next record.
    const first = await readFile(join(src, names[0]!));
    const recordSize = offsets[1]! - offsets[0]!;
    const a = offsets[0]!;
    let dir = join(root, "dropped");
    await copyWal(src, dir);
    await writeFile(join(dir, names[0]!), Buffer.concat([first.subarray(0, a), first.subarray(a + recordSize)]));
    await assert.rejects(Wal.open(dir), isCorrupt(names[0]!));

    // Swap two records of the same size.
    dir = join(root, "swapped");
    await copyWal(src, dir);
    const swapped = Buffer.concat([
      first.subarray(0, a),
      first.subarray(a + recordSize, a + 2 * recordSize),
      first.subarray(a, a + recordSize),
      first.subarray(a + 2 * recordSize),
    ]);
    await writeFile(join(dir, names[0]!), swapped);
    await assert.rejects(Wal.open(dir), isCorrupt(names[0]!));

    // A segment missing from the middle.
    dir = join(root, "missing");
    await copyWal(src, dir);
    await unlink(join(dir, names[1]!));
    await assert.rejects(Wal.open(dir), (e) => isWalError(e, "Corrupt"));

    // An older segment cut short is corruption, not a torn tail (it was synced before the next began).
    dir = join(root, "short-old");
    await copyWal(src, dir);
    const before = await dirHash(dir);
    await truncate(join(dir, names[1]!), (await stat(join(dir, names[1]!))).size - 3);
    const mid = await dirHash(dir);
    assert.notEqual(before, mid);
    await assert.rejects(Wal.open(dir), isCorrupt(names[1]!));
    assert.equal(await dirHash(dir), mid);
  });

  it("loses no acknowledged entry when the writer is killed with SIGKILL mid-stream", async () => {
    const dir = join(root, "killed");
    const script = fileURLToPath(new URL("./testing/crash-writer.ts", import.meta.url));
    let acknowledged = 0;
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", script, dir], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
      let buffered = "";
      let lines = 0;
      const killAfter = 150 + round * 100;
      await new Promise<void>((resolve) => {
        child.stdout.on("data", (chunk: Buffer) => {
          buffered += chunk.toString();
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            const m = /^synced (\d+)$/.exec(line);
            assert.ok(m, `unexpected output: ${line}`);
            acknowledged = Math.max(acknowledged, Number(m[1]));
            if (++lines === killAfter) {
              child.kill("SIGKILL");
              resolve();
            }
          }
        });
        child.on("exit", () => resolve());
      });
      assert.equal(await exited, "SIGKILL", "the writer was killed, not finished");

      const r = await Wal.open(dir);
      assert.ok(r.wal.lastIndex >= acknowledged, `last ${r.wal.lastIndex} < acknowledged ${acknowledged}`);
      assert.equal(r.entries[0]?.index, 1);
      for (let i = 0; i < r.entries.length; i++) {
        const e = r.entries[i]!;
        assert.equal(e.index, i + 1);
        assert.deepEqual(Buffer.from(e.data), Buffer.from(entryData(e.index, e.data.length)), `entry ${e.index}`);
      }
      await r.wal.close();
    }
    assert.ok((await segmentFiles(dir)).length > 1, "the writer rolled segments");
  });
});

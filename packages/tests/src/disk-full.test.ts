import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { PutRequestSchema, type PutResponse } from "@etcd-ts/api";
import { assertAcknowledgedPresent, call, makeClient, services } from "./grpc-client.js";
import { startEtcdTs } from "./processes.js";

/**
 * A member whose disk fills up, for each engine, on a real tmpfs (mounting one needs root; elsewhere the
 * test is skipped): the member stops by itself with exit code 1 and a message naming the data dir and
 * the engine's error, answers no put it could not make durable, and once space is freed it restarts
 * with every acknowledged put at the revision its response reported.
 */
const TMPFS_BYTES = 96 * 1024 * 1024; // the WAL preallocates a 64 MiB segment
const LEFT_FREE = 3 * 1024 * 1024;

function mountTmpfs(): { dir: string; unmount(): void } | string {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "mounting a tmpfs needs root on Linux: disk-full test skipped";
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-disk-full-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "tmpfs", dir], { encoding: "utf8" });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${(r.stderr || String(r.error)).trim()}): disk-full test skipped`;
  }
  return {
    dir,
    unmount: () => {
      // Lazily if a process still holds a file there (a failed test): never leave the mount behind.
      if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fills the file system holding `dir` with `file` until only about `leave` bytes are free. */
function writeBallast(dir: string, file: string, leave: number): void {
  const stats = statfsSync(dir);
  let remaining = stats.bavail * stats.bsize - leave;
  const chunk = Buffer.alloc(1024 * 1024, 1);
  const fd = openSync(file, "w");
  try {
    while (remaining > 0) remaining -= writeSync(fd, chunk, 0, Math.min(chunk.length, remaining));
  } finally {
    closeSync(fd);
  }
}

for (const engine of ["sqlite", "lmdb"] as const) {
  test(
    `a member whose disk fills up stops cleanly and restarts with every acknowledged put (${engine})`,
    { timeout: 120_000 },
    async (t) => {
      const fs = mountTmpfs();
      if (typeof fs === "string") {
        t.skip(fs);
        return;
      }
      // One hook, run in reverse: processes and clients end before the file system goes.
      const cleanups: (() => unknown)[] = [() => fs.unmount()];
      t.after(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
      });
      const dataDir = join(fs.dir, "member-data");
      const first = await startEtcdTs({ engine, dataDir });
      cleanups.push(() => first.kill());
      const ballast = join(fs.dir, "ballast");
      writeBallast(fs.dir, ballast, LEFT_FREE);

      const client = makeClient(services.KV, first.endpoint);
      const acknowledged = new Map<string, { value: string; revision: bigint }>();
      let refused = 0;
      let seq = 0;
      const value = "x".repeat(8 * 1024);
      // Four writers until the member stops answering (bounded: 3 MiB free takes a few hundred puts).
      const writer = async (w: number) => {
        for (let n = 0; n < 2000; n++) {
          const key = `full/${w}/${seq++}`;
          try {
            const response = await call<PutResponse>(
              client,
              "Put",
              create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(`${key}:${value}`) }),
            );
            acknowledged.set(key, { value: `${key}:${value}`, revision: response.header!.revision });
          } catch {
            refused++;
            if (first.child.exitCode !== null || refused > 50) return;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      };
      await Promise.all([0, 1, 2, 3].map((w) => writer(w)));
      client.close();
      const exitCode = first.child.exitCode ?? (await new Promise<number | null>((r) => first.child.once("exit", (code) => r(code))));
      assert.equal(exitCode, 1, `the member exits with 1 when its disk is full; stderr:\n${first.log().slice(-3000)}`);
      const log = first.log();
      // Either the commit of an apply batch failed, or (SQLite batching deferred updates into one open
      // transaction that spills to disk before it commits) a write inside the batch did.
      assert.match(
        log,
        /etcd-ts: fatal: the member stopped: its disk failed: (committing entries \d+\.\.\d+ to the backend|persisting or applying raft entries) failed: /,
      );
      assert.ok(log.includes(join(dataDir, "member", "backend")), `the message names the backend dir:\n${log.slice(-2000)}`);
      assert.match(log, engine === "sqlite" ? /SQLITE_FULL/ : /the disk is full|No space left|MDB_MAP_FULL/);
      assert.ok(
        acknowledged.size > 10,
        `only ${acknowledged.size} puts acknowledged before the disk filled up; stderr:\n${log.slice(-3000)}`,
      );
      t.diagnostic(
        `${acknowledged.size} puts acknowledged, ${refused} refused; ${log.split("\n").find((l) => l.startsWith("etcd-ts: fatal:"))}`,
      );

      // Space returns: the member starts again and has everything it acknowledged.
      rmSync(ballast);
      const second = await startEtcdTs({ engine, dataDir, port: first.port, peerPort: first.peerPort });
      cleanups.push(() => second.stop());
      const reader = makeClient(services.KV, second.endpoint);
      cleanups.push(() => reader.close());
      const all = await assertAcknowledgedPresent(reader, "full/", "full0", acknowledged, "after the restart");
      const after = await call<PutResponse>(
        reader,
        "Put",
        create(PutRequestSchema, { key: Buffer.from("after"), value: Buffer.from("x") }),
      );
      assert.equal(after.header!.revision, all.header!.revision + 1n);
    },
  );
}

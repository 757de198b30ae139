/** LMDB-specific checks of the data directory and of defragment, beyond the shared conformance suite. */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { open } from "lmdb";
import { isStorageError } from "@etcd-ts/storage";
import { openLmdbBackend } from "./lmdb-backend.js";

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "etcd-ts-lmdb-"));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function contents(dir: string, skip: string[] = []): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((n) => !skip.includes(n))
      .map((n) => [n, readFileSync(join(dir, n)).toString("base64")]),
  );
}

test(
  "a directory written by the sqlite engine is refused with a message naming both engines",
  withDir((dir) => {
    writeFileSync(join(dir, "etcd-ts-storage.json"), '{"engine":"sqlite","format":1}\n');
    writeFileSync(join(dir, "data.db"), Buffer.concat([Buffer.from("SQLite format 3\0"), Buffer.alloc(4080)]));
    const before = contents(dir);
    assert.throws(
      () => openLmdbBackend({ dir }),
      (e: unknown) =>
        isStorageError(e, "WrongEngine") && e.message === `data dir ${dir} was written by the sqlite storage engine, not lmdb`,
    );
    assert.deepEqual(contents(dir), before);
  }),
);

test(
  "an LMDB file that is not ours is refused as Corrupt, its data untouched",
  withDir(async (dir) => {
    const foreign = open({ path: join(dir, "data.mdb"), noSubdir: true });
    foreign.putSync("user", { name: "alice" });
    await foreign.close();
    writeFileSync(join(dir, "etcd-ts-storage.json"), '{"engine":"lmdb","format":1}\n');
    // LMDB rewrites its lock file's reader table on open; the data file must not change.
    const before = contents(dir, ["data.mdb-lock"]);
    assert.throws(
      () => openLmdbBackend({ dir }),
      (e: unknown) => isStorageError(e, "Corrupt") && /no etcd-ts format record/.test(e.message),
    );
    assert.deepEqual(contents(dir, ["data.mdb-lock"]), before);
  }),
);

test(
  "keys longer than LMDB's limit are rejected on put and simply absent on get",
  withDir(async (dir) => {
    const backend = openLmdbBackend({ dir });
    try {
      await backend.update((txn) => txn.createBucket("k"));
      const long = new Uint8Array(4000);
      await assert.rejects(
        backend.update((txn) => txn.put("k", long, new Uint8Array(1))),
        RangeError,
      );
      assert.equal(
        backend.view((txn) => txn.get("k", long)),
        undefined,
      );
      const atLimit = new Uint8Array(1973).fill(7);
      await backend.update((txn) => txn.put("k", atLimit, new Uint8Array([1])));
      assert.deepEqual(
        backend.view((txn) => txn.get("k", atLimit)),
        new Uint8Array([1]),
      );
    } finally {
      await backend.close();
    }
  }),
);

test(
  "defragment swaps in a smaller file, and a leftover copy from an interrupted defragment is removed at open",
  withDir(async (dir) => {
    let backend = openLmdbBackend({ dir });
    await backend.update((txn) => {
      txn.createBucket("k");
      for (let i = 0; i < 5000; i++) txn.put("k", Buffer.from(String(i).padStart(5, "0")), new Uint8Array(1000).fill(i & 0xff));
    });
    await backend.update((txn) => {
      for (let i = 0; i < 5000; i++) if (i % 20 !== 0) txn.delete("k", Buffer.from(String(i).padStart(5, "0")));
    });
    const before = backend.size();
    await backend.defragment();
    assert.ok(backend.size() < before / 2, `size ${backend.size()} not well below ${before}`);
    assert.deepEqual(readdirSync(dir).sort(), ["data.mdb", "data.mdb-lock", "etcd-ts-storage.json"]);
    await backend.close();
    writeFileSync(join(dir, "data.mdb.compact"), Buffer.alloc(4096));
    backend = openLmdbBackend({ dir });
    try {
      assert.equal(existsSync(join(dir, "data.mdb.compact")), false);
      assert.equal(
        backend.view((txn) => [...txn.range("k")].length),
        250,
      );
    } finally {
      await backend.close();
    }
  }),
);

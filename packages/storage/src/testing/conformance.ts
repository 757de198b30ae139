/**
 * The conformance suite every storage engine passes: one function that registers `node:test` tests for
 * each contract stated in `../backend.ts`. An engine's own test file calls it:
 *
 *   runBackendConformance("sqlite", (dir) => openSqliteBackend({ dir }), {
 *     opener: { module: new URL("./index.ts", import.meta.url).href, exportName: "openSqliteBackend" },
 *   });
 *
 * Each test gets a fresh, empty temporary directory (removed afterwards) and opens a new backend in it.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { StorageError, isStorageError } from "../backend.js";
import type { Backend, Entry, RangeOptions, ReadTxn } from "../backend.js";
import { compareBytes } from "../compare-bytes.js";
import { DATA_DIR_MARKER } from "../data-dir.js";
import { MAX_KEY_BYTES } from "../limits.js";
import { durabilityBucket, durabilityKey, durabilityValue } from "./conformance-data.js";

export type OpenForConformance = (dir: string) => Backend | Promise<Backend>;

export interface ConformanceOptions {
  /**
   * Whether the engine keeps data in its directory across close/reopen and process death. `false` (the
   * memory engine) skips the reopen and durability tests. Default `true`.
   */
  readonly persistent?: boolean;
  /**
   * How the durability test's child process opens the engine: `module` is a URL (a `.ts` file is fine;
   * the child runs under tsx with the `source` condition) whose export `exportName` is an `OpenBackend`.
   * Required when `persistent`.
   */
  readonly opener?: { readonly module: string; readonly exportName: string };
  /**
   * The store under test was opened with `durability: "deferred"` (and so is the durability test's
   * child): an update survives kill -9 once a `flush()` after it resolved, not before.
   */
  readonly deferred?: boolean;
}

const text = new TextEncoder();
const utf8 = new TextDecoder();

function bytes(...parts: (string | number[])[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === "string" ? text.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function hex(key: Uint8Array): string {
  return Buffer.from(key).toString("hex");
}

/** The next entry of a range iterator, undefined once it is done. */
function nextEntry(it: Iterator<Entry, unknown>): Entry | undefined {
  const r = it.next();
  return r.done === true ? undefined : r.value;
}

function keysOf(entries: Iterable<Entry>): string[] {
  return [...entries].map((e) => utf8.decode(e.key));
}

function rangeKeys(txn: ReadTxn, bucket: string, options?: RangeOptions): string[] {
  return keysOf(txn.range(bucket, options));
}

/** Fills `length` bytes with a pattern that depends on `seed`, so mixed-up values are noticed. */
function patterned(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return out;
}

function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  assert.ok(actual !== undefined, `${what}: missing`);
  assert.ok(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  assert.ok(compareBytes(actual, expected) === 0, `${what}: bytes differ`);
}

function isCode(code: StorageError["code"]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isStorageError(e, code), `expected StorageError ${code}, got ${String(e)}`);
    return true;
  };
}

function twoDigitKeys(): string[] {
  return Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
}

/** Registers the suite under `describe(name)`. */
export function runBackendConformance(name: string, open: OpenForConformance, options: ConformanceOptions = {}): void {
  const persistent = options.persistent ?? true;

  async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(tmpdir(), `etcd-ts-storage-${name}-`));
    try {
      return await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async function withBackend<T>(fn: (backend: Backend, dir: string) => Promise<T>): Promise<T> {
    return withDir(async (dir) => {
      const backend = await open(dir);
      try {
        return await fn(backend, dir);
      } finally {
        await backend.close();
      }
    });
  }

  describe(`storage conformance: ${name}`, () => {
    test("keys are ordered bytewise, including the empty key, 0x00, 0xff and prefixes", () =>
      withBackend(async (b) => {
        const expected = [
          bytes(),
          bytes([0x00]),
          bytes([0x00, 0x00]),
          bytes([0x00, 0xff]),
          bytes([0x01]),
          bytes("a"),
          bytes("a", [0x00]),
          bytes("ab"),
          bytes("abc"),
          bytes("b"),
          bytes([0x7f]),
          bytes([0x80]),
          bytes([0xfe, 0xff, 0xff]),
          bytes([0xff]),
          bytes([0xff, 0x00]),
          bytes([0xff, 0xff]),
          bytes([0xff, 0xff, 0xff]),
        ];
        // Insert in a scrambled but fixed order.
        const order = expected.map((_, i) => (i * 7) % expected.length);
        await b.update((txn) => {
          txn.createBucket("k");
          for (const i of order) txn.put("k", expected[i]!, bytes(`v${i}`));
        });
        b.view((txn) => {
          const got = [...txn.range("k")].map((e) => hex(e.key));
          assert.deepEqual(got, expected.map(hex));
          const reversed = [...txn.range("k", { reverse: true })].map((e) => hex(e.key));
          assert.deepEqual(reversed, expected.map(hex).reverse());
          expected.forEach((key, i) => assertBytes(txn.get("k", key), bytes(`v${i}`), `get ${hex(key)}`));
          // An empty start is "from the beginning"; an end of [0x00] takes only the empty key.
          assert.deepEqual(
            [...txn.range("k", { start: bytes(), end: bytes([0x00]) })].map((e) => hex(e.key)),
            [""],
          );
          assert.deepEqual(
            [...txn.range("k", { start: bytes([0xff]) })].map((e) => hex(e.key)),
            ["ff", "ff00", "ffff", "ffffff"],
          );
        });
        assert.ok(compareBytes(bytes("a"), bytes("ab")) < 0);
        assert.ok(compareBytes(bytes(), bytes([0])) < 0);
        assert.ok(compareBytes(bytes([0x80]), bytes([0x7f, 0xff])) > 0);
      }));

    test("put, get, overwrite and delete; empty values; missing keys", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", bytes("a"), bytes("1"));
          txn.put("k", bytes("b"), bytes());
          txn.put("k", bytes(), bytes("empty key"));
        });
        b.view((txn) => {
          assertBytes(txn.get("k", bytes("a")), bytes("1"), "a");
          assertBytes(txn.get("k", bytes("b")), bytes(), "b (empty value)");
          assertBytes(txn.get("k", bytes()), bytes("empty key"), "empty key");
          assert.equal(txn.get("k", bytes("c")), undefined);
          assert.equal(txn.get("k", bytes("a", [0])), undefined);
        });
        await b.update((txn) => {
          txn.put("k", bytes("a"), bytes("2"));
          txn.delete("k", bytes("b"));
          txn.delete("k", bytes("never there")); // a no-op, not an error
        });
        b.view((txn) => {
          assertBytes(txn.get("k", bytes("a")), bytes("2"), "a overwritten");
          assert.equal(txn.get("k", bytes("b")), undefined);
          assert.deepEqual(rangeKeys(txn, "k"), ["", "a"]);
        });
      }));

    test("a write transaction reads its own writes", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", bytes("x"), bytes("1"));
          txn.put("k", bytes("y"), bytes("2"));
        });
        await b.update((txn) => {
          txn.put("k", bytes("z"), bytes("3"));
          txn.delete("k", bytes("x"));
          assert.equal(txn.get("k", bytes("x")), undefined);
          assertBytes(txn.get("k", bytes("z")), bytes("3"), "z");
          assert.deepEqual(rangeKeys(txn, "k"), ["y", "z"]);
          txn.createBucket("new");
          txn.put("new", bytes("n"), bytes("4"));
          assert.deepEqual(rangeKeys(txn, "new"), ["n"]);
          assert.deepEqual(txn.buckets(), ["k", "new"]);
        });
      }));

    test("range: start inclusive, end exclusive, limit, forward and reverse", () =>
      withBackend(async (b) => {
        const all = twoDigitKeys();
        await b.update((txn) => {
          txn.createBucket("r");
          for (const k of all) txn.put("r", bytes(k), bytes(`v${k}`));
        });
        b.view((txn) => {
          const r = (o?: RangeOptions) => rangeKeys(txn, "r", o);
          assert.deepEqual(r(), all);
          assert.deepEqual(r({ reverse: true }), [...all].reverse());
          assert.deepEqual(r({ start: bytes("10"), end: bytes("15") }), ["10", "11", "12", "13", "14"]);
          assert.deepEqual(r({ start: bytes("10"), end: bytes("15"), reverse: true }), ["14", "13", "12", "11", "10"]);
          assert.deepEqual(r({ start: bytes("95") }), ["95", "96", "97", "98", "99"]);
          assert.deepEqual(r({ start: bytes("95"), reverse: true }), ["99", "98", "97", "96", "95"]);
          assert.deepEqual(r({ end: bytes("03") }), ["00", "01", "02"]);
          assert.deepEqual(r({ end: bytes("03"), reverse: true }), ["02", "01", "00"]);
          // Bounds that are not keys themselves.
          assert.deepEqual(r({ start: bytes("1"), end: bytes("2") }), all.slice(10, 20));
          assert.deepEqual(r({ start: bytes("4", [0xff]), end: bytes("51", [0]) }), ["50", "51"]);
          assert.deepEqual(r({ start: bytes("4", [0xff]), end: bytes("51", [0]), reverse: true }), ["51", "50"]);
          // Limits, in both directions, with and without bounds.
          assert.deepEqual(r({ limit: 3 }), ["00", "01", "02"]);
          assert.deepEqual(r({ limit: 3, reverse: true }), ["99", "98", "97"]);
          assert.deepEqual(r({ start: bytes("20"), end: bytes("30"), limit: 2 }), ["20", "21"]);
          assert.deepEqual(r({ start: bytes("20"), end: bytes("30"), limit: 2, reverse: true }), ["29", "28"]);
          assert.deepEqual(r({ start: bytes("98"), limit: 10 }), ["98", "99"]);
          assert.deepEqual(r({ limit: 1000 }), all);
          assert.deepEqual(r({ limit: 0 }), all, "limit 0 means no limit");
          // Empty and inverted ranges yield nothing.
          assert.deepEqual(r({ start: bytes("30"), end: bytes("30") }), []);
          assert.deepEqual(r({ start: bytes("40"), end: bytes("30") }), []);
          assert.deepEqual(r({ start: bytes("40"), end: bytes("30"), reverse: true }), []);
          assert.deepEqual(r({ start: bytes("a") }), []);
          assert.deepEqual(r({ end: bytes() }), []);
          // Values come with their keys.
          const [first] = [...txn.range("r", { start: bytes("42"), limit: 1 })];
          assertBytes(first?.value, bytes("v42"), "value of 42");
          // Iterators are lazy and independent; reads may interleave with them.
          const it = txn.range("r", { start: bytes("50") });
          assert.equal(utf8.decode(nextEntry(it)?.key ?? bytes()), "50");
          assertBytes(txn.get("r", bytes("07")), bytes("v07"), "get during iteration");
          const other = txn.range("r", { reverse: true, limit: 1 });
          assert.equal(utf8.decode(nextEntry(other)?.key ?? bytes()), "99");
          assert.equal(utf8.decode(nextEntry(it)?.key ?? bytes()), "51");
          it.return?.();
        });
      }));

    test("range walks a prefix with an end of prefix+1 (etcd's prefix range)", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("p");
          for (const k of [bytes("a"), bytes("a", [0]), bytes("a", [0xff, 0xff]), bytes("ab"), bytes("b"), bytes("`")])
            txn.put("p", k, bytes("v"));
        });
        b.view((txn) => {
          const got = [...txn.range("p", { start: bytes("a"), end: bytes("b") })].map((e) => hex(e.key));
          assert.deepEqual(got, [bytes("a"), bytes("a", [0]), bytes("ab"), bytes("a", [0xff, 0xff])].map(hex));
        });
      }));

    test("a write transaction can iterate a range and write while iterating", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("w");
          for (let i = 0; i < 1000; i++) txn.put("w", bytes(String(i).padStart(4, "0")), bytes("old"));
        });
        await b.update((txn) => {
          // Rewrites every visited key; each key is still visited once (keys are not added or removed).
          let visited = 0;
          for (const { key } of txn.range("w")) {
            txn.put("w", key, bytes("new"));
            visited++;
          }
          assert.equal(visited, 1000);
        });
        b.view((txn) => {
          for (const { value } of txn.range("w")) assertBytes(value, bytes("new"), "rewritten");
        });
      }));

    test("buckets: create is idempotent, list is sorted, delete drops contents, missing delete is a no-op", () =>
      withBackend(async (b) => {
        assert.deepEqual(
          b.view((txn) => txn.buckets()),
          [],
        );
        await b.update((txn) => {
          for (const name of ["meta", "key", "lease", "auth", "authUsers", "Key"]) txn.createBucket(name);
          txn.put("key", bytes("k"), bytes("v"));
          txn.put("lease", bytes("l"), bytes("v"));
        });
        await b.update((txn) => txn.createBucket("key"));
        b.view((txn) => {
          assert.deepEqual(txn.buckets(), ["Key", "auth", "authUsers", "key", "lease", "meta"]);
          assertBytes(txn.get("key", bytes("k")), bytes("v"), "createBucket kept existing data");
          assert.equal(txn.get("Key", bytes("k")), undefined, "bucket names are case-sensitive");
        });
        await b.update((txn) => {
          txn.deleteBucket("key");
          txn.deleteBucket("no such bucket");
        });
        b.view((txn) => {
          assert.deepEqual(txn.buckets(), ["Key", "auth", "authUsers", "lease", "meta"]);
          assert.throws(() => txn.get("key", bytes("k")), isCode("BucketNotFound"));
          assertBytes(txn.get("lease", bytes("l")), bytes("v"), "other bucket untouched");
        });
        await b.update((txn) => txn.createBucket("key"));
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "key"), [], "a recreated bucket starts empty"));
        // Delete and recreate within one transaction.
        await b.update((txn) => {
          txn.put("lease", bytes("m"), bytes("v"));
          txn.deleteBucket("lease");
          txn.createBucket("lease");
          txn.put("lease", bytes("n"), bytes("v"));
        });
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "lease"), ["n"]));
      }));

    test("reading or writing a missing bucket throws BucketNotFound", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("present");
          txn.put("present", bytes("a"), bytes("1"));
        });
        b.view((txn) => {
          assert.throws(() => txn.get("absent", bytes("a")), isCode("BucketNotFound"));
          assert.throws(() => [...txn.range("absent")], isCode("BucketNotFound"));
        });
        for (const write of [
          (txn: Parameters<Parameters<Backend["update"]>[0]>[0]) => txn.put("absent", bytes("a"), bytes("1")),
          (txn: Parameters<Parameters<Backend["update"]>[0]>[0]) => txn.delete("absent", bytes("a")),
          (txn: Parameters<Parameters<Backend["update"]>[0]>[0]) => txn.get("absent", bytes("a")),
        ]) {
          await assert.rejects(
            async () =>
              b.update((txn) => {
                txn.put("present", bytes("b"), bytes("2"));
                write(txn);
              }),
            isCode("BucketNotFound"),
          );
        }
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "present"), ["a"], "failed updates applied nothing"));
        const snap = b.snapshot();
        try {
          assert.throws(() => snap.get("absent", bytes("a")), isCode("BucketNotFound"));
        } finally {
          snap.close();
        }
      }));

    test("an update whose function throws applies nothing and rejects with that error", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", bytes("keep"), bytes("1"));
          txn.put("k", bytes("gone?"), bytes("1"));
        });
        const boom = new Error("boom");
        await assert.rejects(
          b.update((txn) => {
            txn.put("k", bytes("keep"), bytes("changed"));
            txn.delete("k", bytes("gone?"));
            txn.put("k", bytes("new"), bytes("1"));
            txn.createBucket("other");
            txn.put("other", bytes("x"), bytes("1"));
            txn.deleteBucket("k");
            throw boom;
          }),
          (e) => e === boom,
        );
        b.view((txn) => {
          assert.deepEqual(txn.buckets(), ["k"]);
          assert.deepEqual(rangeKeys(txn, "k"), ["gone?", "keep"]);
          assertBytes(txn.get("k", bytes("keep")), bytes("1"), "keep");
        });
        // The store is not left locked or half-written: the next update works.
        await b.update((txn) => txn.put("k", bytes("after"), bytes("1")));
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "k"), ["after", "gone?", "keep"]));
      }));

    test("a view that reads many rows and throws leaves the backend as it was; later updates last", () =>
      withDir(async (dir) => {
        let b = await open(dir);
        try {
          await b.update((txn) => {
            txn.createBucket("k");
            for (let i = 0; i < 300; i++) txn.put("k", bytes(String(i).padStart(3, "0")), patterned(50, i));
          });
          const boom = new Error("boom");
          assert.throws(
            () =>
              b.view((txn) => {
                for (let i = 0; i < 300; i++) assertBytes(txn.get("k", bytes(String(i).padStart(3, "0"))), patterned(50, i), `key ${i}`);
                throw boom;
              }),
            (e) => e === boom,
          );
          const sum = b.view((txn) => {
            let n = 0;
            for (let i = 0; i < 300; i += 2) n += txn.get("k", bytes(String(i).padStart(3, "0")))?.length ?? 0;
            return n;
          });
          assert.equal(sum, 150 * 50);
          await b.update((txn) => txn.put("k", bytes("after"), bytes("1")));
          const snap = b.snapshot();
          try {
            assertBytes(snap.get("k", bytes("after")), bytes("1"), "a snapshot sees the update");
          } finally {
            snap.close();
          }
          if (persistent) {
            await b.close();
            b = await open(dir);
            b.view((txn) => {
              assertBytes(txn.get("k", bytes("after")), bytes("1"), "after reopening");
              assert.equal(rangeKeys(txn, "k").length, 301);
            });
          }
        } finally {
          await b.close();
        }
      }));

    test("an update is visible as soon as update returns, before its promise settles", () =>
      withBackend(async (b) => {
        await b.update((txn) => txn.createBucket("k"));
        const pending = b.update((txn) => txn.put("k", bytes("a"), bytes("1")));
        assertBytes(
          b.view((txn) => txn.get("k", bytes("a"))),
          bytes("1"),
          "visible to view",
        );
        const snap = b.snapshot();
        try {
          assertBytes(snap.get("k", bytes("a")), bytes("1"), "visible to a snapshot");
        } finally {
          snap.close();
        }
        await pending;
      }));

    test("update inside an update rejects; the transaction object is dead after update returns", () =>
      withBackend(async (b) => {
        await b.update((txn) => txn.createBucket("k"));
        let inner: Promise<void> | undefined;
        let leaked: Parameters<Parameters<Backend["update"]>[0]>[0] | undefined;
        await b.update((txn) => {
          leaked = txn;
          inner = b.update((t) => t.put("k", bytes("inner"), bytes("1")));
          inner.catch(() => undefined);
          txn.put("k", bytes("outer"), bytes("1"));
        });
        await assert.rejects(inner!);
        assert.throws(() => leaked!.put("k", bytes("late"), bytes("1")));
        assert.throws(() => leaked!.get("k", bytes("outer")));
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "k"), ["outer"]));
      }));

    test("an update whose function is async is rejected and applies nothing", () =>
      withBackend(async (b) => {
        await b.update((txn) => txn.createBucket("k"));
        // eslint-disable-next-line @typescript-eslint/no-misused-promises -- an async function is what this refuses
        const update = b.update(async (txn) => {
          txn.put("k", bytes("before await"), bytes("1"));
          await Promise.resolve();
        });
        await assert.rejects(update, TypeError);
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "k"), []));
        await b.update((txn) => txn.put("k", bytes("later"), bytes("1")));
        b.view((txn) => assert.deepEqual(rangeKeys(txn, "k"), ["later"]));
      }));

    test("a snapshot does not see later writes, and writes proceed while it is open", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.createBucket("doomed");
          txn.put("doomed", bytes("d"), bytes("1"));
          for (let i = 0; i < 300; i++) txn.put("k", bytes(String(i).padStart(3, "0")), bytes(`v${i}`));
        });
        const snap = b.snapshot();
        try {
          // Start iterating the snapshot, then write a lot, then finish iterating.
          const it = snap.range("k");
          const firstTen: string[] = [];
          for (let i = 0; i < 10; i++) firstTen.push(utf8.decode(nextEntry(it)!.key));
          for (let round = 0; round < 20; round++) {
            await b.update((txn) => {
              for (let i = 0; i < 300; i += 2) txn.put("k", bytes(String(i).padStart(3, "0")), bytes(`round${round}`));
              txn.delete("k", bytes(String(round * 3 + 1).padStart(3, "0")));
              txn.put("k", bytes(`new${round}`), bytes("x"));
            });
          }
          await b.update((txn) => {
            txn.deleteBucket("doomed");
            txn.createBucket("born");
          });
          const rest = [...it].map((e) => utf8.decode(e.key));
          assert.deepEqual(
            [...firstTen, ...rest],
            Array.from({ length: 300 }, (_, i) => String(i).padStart(3, "0")),
          );
          for (let i = 0; i < 300; i += 37) {
            assertBytes(snap.get("k", bytes(String(i).padStart(3, "0"))), bytes(`v${i}`), `snapshot value ${i}`);
          }
          assert.deepEqual(snap.buckets(), ["doomed", "k"]);
          assertBytes(snap.get("doomed", bytes("d")), bytes("1"), "deleted bucket still in the snapshot");
          assert.deepEqual(
            [...snap.range("k", { reverse: true, limit: 2 })].map((e) => utf8.decode(e.key)),
            ["299", "298"],
          );
          // Meanwhile the live store has moved on.
          b.view((txn) => {
            assertBytes(txn.get("k", bytes("000")), bytes("round19"), "live value");
            assert.equal(txn.get("k", bytes("001")), undefined);
            assert.deepEqual(txn.buckets(), ["born", "k"]);
          });
          // A second snapshot sees the new state, independently of the first.
          const second = b.snapshot();
          try {
            assert.deepEqual(second.buckets(), ["born", "k"]);
            assertBytes(second.get("k", bytes("000")), bytes("round19"), "second snapshot");
            assertBytes(snap.get("k", bytes("000")), bytes("v0"), "first snapshot unchanged");
          } finally {
            second.close();
          }
        } finally {
          snap.close();
        }
        assert.throws(() => snap.get("k", bytes("000")), isCode("Closed"));
      }));

    test("values handed in and out are owned by the caller", () =>
      withBackend(async (b) => {
        // Buffers on purpose: Buffer#slice shares memory, so an engine copying with slice() is caught.
        const key = Buffer.from("key");
        const value = Buffer.from("original");
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", key, value);
          value.fill(0x21); // mutating the caller's array after put must not reach the store
          key.fill(0x21);
        });
        const got = b.view((txn) => txn.get("k", bytes("key")))!;
        assertBytes(got, bytes("original"), "stored copy");
        got.fill(0x3f);
        const [entry] = b.view((txn) => [...txn.range("k")]);
        assertBytes(entry?.value, bytes("original"), "after mutating a returned value");
        entry!.key.fill(0x3f);
        entry!.value.fill(0x3f);
        // A later write must not change values returned earlier.
        const before = b.view((txn) => txn.get("k", bytes("key")))!;
        await b.update((txn) => txn.put("k", bytes("key"), bytes("replaced")));
        await b.update((txn) => {
          for (let i = 0; i < 100; i++) txn.put("k", bytes(`filler${i}`), patterned(300, i));
        });
        assertBytes(before, bytes("original"), "value read before a later write");
        b.view((txn) => {
          assertBytes(txn.get("k", bytes("key")), bytes("replaced"), "store");
          assert.deepEqual(rangeKeys(txn, "k", { limit: 1 }), ["filler0"]);
        });
      }));

    test("keys and values read back are plain Uint8Arrays, whatever was passed in", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", Buffer.from("buffer"), Buffer.from("b"));
          txn.put("k", bytes("array"), bytes("a"));
        });
        const isPlain = (x: unknown) => Object.getPrototypeOf(x) === Uint8Array.prototype;
        const check = (txn: ReadTxn) => {
          for (const { key, value } of txn.range("k")) {
            assert.ok(isPlain(key) && isPlain(value), "range entry is plain");
          }
          assert.ok(isPlain(txn.get("k", bytes("buffer"))), "get is plain");
        };
        b.view(check);
        const snap = b.snapshot();
        try {
          check(snap);
        } finally {
          snap.close();
        }
      }));

    test("size and sizeInUse are sane", () =>
      withBackend(async (b) => {
        const check = (what: string) => {
          const size = b.size();
          const inUse = b.sizeInUse();
          assert.ok(Number.isSafeInteger(size) && size >= 0, `${what}: size ${size}`);
          assert.ok(Number.isSafeInteger(inUse) && inUse >= 0, `${what}: sizeInUse ${inUse}`);
          assert.ok(inUse <= size, `${what}: sizeInUse ${inUse} > size ${size}`);
          return { size, inUse };
        };
        check("empty");
        await b.update((txn) => {
          txn.createBucket("k");
          for (let i = 0; i < 1024; i++) txn.put("k", bytes(`k${i}`), patterned(1024, i));
        });
        const full = check("after 1 MiB");
        assert.ok(full.size >= 1024 * 1024, `size ${full.size} counts the 1 MiB written`);
        assert.ok(full.inUse >= 1024 * 1024, `sizeInUse ${full.inUse} counts the 1 MiB written`);
        await b.update((txn) => {
          for (let i = 0; i < 1024; i += 2) txn.delete("k", bytes(`k${i}`));
        });
        check("after deleting half");
      }));

    test("defragment keeps every key and value and does not grow the store", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          txn.createBucket("empty");
          for (let i = 0; i < 2000; i++) txn.put("k", bytes(String(i).padStart(5, "0")), patterned(1000, i));
        });
        await b.update((txn) => {
          for (let i = 0; i < 2000; i++) if (i % 10 !== 0) txn.delete("k", bytes(String(i).padStart(5, "0")));
        });
        const sizeBefore = b.size();
        await b.defragment();
        const sizeAfter = b.size();
        assert.ok(sizeAfter <= sizeBefore, `size grew from ${sizeBefore} to ${sizeAfter}`);
        assert.ok(b.sizeInUse() <= sizeAfter);
        b.view((txn) => {
          assert.deepEqual(txn.buckets(), ["empty", "k"]);
          const keys = rangeKeys(txn, "k");
          assert.equal(keys.length, 200);
          for (let i = 0; i < 2000; i += 10) {
            assertBytes(txn.get("k", bytes(String(i).padStart(5, "0"))), patterned(1000, i), `key ${i}`);
          }
        });
        // Still writable afterwards.
        await b.update((txn) => txn.put("k", bytes("after"), bytes("1")));
        assertBytes(
          b.view((txn) => txn.get("k", bytes("after"))),
          bytes("1"),
          "write after defragment",
        );
      }));

    test("defragment with a snapshot open leaves the snapshot intact", () =>
      withBackend(async (b) => {
        await b.update((txn) => {
          txn.createBucket("k");
          for (let i = 0; i < 500; i++) txn.put("k", bytes(String(i).padStart(3, "0")), patterned(500, i));
        });
        const snap = b.snapshot();
        let closed = false;
        try {
          await b.update((txn) => {
            for (let i = 0; i < 500; i += 2) txn.delete("k", bytes(String(i).padStart(3, "0")));
          });
          // An engine may finish defragmenting at once or wait for open snapshots to close (as etcd's
          // bbolt backend does); either way the snapshot keeps reading its own version meanwhile.
          const defrag = b.defragment();
          assert.equal(rangeKeys(snap, "k").length, 500);
          assertBytes(snap.get("k", bytes("000")), patterned(500, 0), "snapshot during defragment");
          snap.close();
          closed = true;
          await defrag;
        } finally {
          if (!closed) snap.close();
        }
        b.view((txn) => assert.equal(rangeKeys(txn, "k").length, 250));
      }));

    test("after close every call throws Closed; close is idempotent", () =>
      withDir(async (dir) => {
        const b = await open(dir);
        await b.update((txn) => txn.createBucket("k"));
        const snap = b.snapshot();
        await b.close();
        assert.throws(() => b.view(() => 1), isCode("Closed"));
        await assert.rejects(async () => b.update(() => undefined), isCode("Closed"));
        assert.throws(() => b.snapshot(), isCode("Closed"));
        assert.throws(() => b.size(), isCode("Closed"));
        assert.throws(() => b.sizeInUse(), isCode("Closed"));
        await assert.rejects(async () => b.defragment(), isCode("Closed"));
        assert.throws(() => snap.get("k", bytes("a")), isCode("Closed"), "snapshots die with the backend");
        snap.close(); // closing an already-dead snapshot is harmless
        await b.close();
      }));

    test("large values (1.5 MiB)", () =>
      withDir(async (dir) => {
        const big = patterned(1.5 * 1024 * 1024, 1);
        const bigger = patterned(1.5 * 1024 * 1024 + 17, 2);
        let b = await open(dir);
        try {
          await b.update((txn) => {
            txn.createBucket("k");
            txn.put("k", bytes("big"), big);
            txn.put("k", bytes("small"), bytes("s"));
          });
          await b.update((txn) => txn.put("k", bytes("bigger"), bigger));
          b.view((txn) => {
            assertBytes(txn.get("k", bytes("big")), big, "big");
            assertBytes(txn.get("k", bytes("bigger")), bigger, "bigger");
            const entries = [...txn.range("k")];
            assert.deepEqual(keysOf(entries), ["big", "bigger", "small"]);
            assertBytes(entries[1]?.value, bigger, "bigger via range");
          });
          await b.update((txn) => txn.put("k", bytes("big"), bigger));
          assertBytes(
            b.view((txn) => txn.get("k", bytes("big"))),
            bigger,
            "big overwritten",
          );
          if (persistent) {
            await b.close();
            b = await open(dir);
            assertBytes(
              b.view((txn) => txn.get("k", bytes("big"))),
              bigger,
              "big after reopen",
            );
          }
        } finally {
          await b.close();
        }
      }));

    test(`a key of MAX_KEY_BYTES (${MAX_KEY_BYTES}) bytes is stored, ranged over and deleted`, () =>
      withBackend(async (b) => {
        const longest = patterned(MAX_KEY_BYTES, 3);
        await b.update((txn) => {
          txn.createBucket("k");
          txn.put("k", longest, bytes("v"));
          txn.put("k", bytes("a"), bytes("a"));
        });
        b.view((txn) => {
          assertBytes(txn.get("k", longest), bytes("v"), "longest key");
          assert.equal([...txn.range("k")].length, 2);
        });
        await b.update((txn) => txn.delete("k", longest));
        assert.equal(
          b.view((txn) => txn.get("k", longest)),
          undefined,
        );
      }));

    test("many keys (100k in batches of 1000)", () =>
      withBackend(async (b) => {
        const key = (i: number) => bytes(String(i).padStart(6, "0"));
        await b.update((txn) => txn.createBucket("k"));
        // Insert batches in a scrambled order so that the engine cannot rely on appends.
        for (let batch = 0; batch < 100; batch++) {
          const base = ((batch * 37) % 100) * 1000;
          await b.update((txn) => {
            for (let i = base; i < base + 1000; i++) txn.put("k", key(i), bytes(`value-${i}`));
          });
        }
        b.view((txn) => {
          let count = 0;
          let previous: Uint8Array | undefined;
          for (const { key: k } of txn.range("k")) {
            if (previous !== undefined) assert.ok(compareBytes(previous, k) < 0, "ascending");
            previous = k;
            count++;
          }
          assert.equal(count, 100_000);
          for (const i of [0, 1, 999, 1000, 54321, 99_999]) assertBytes(txn.get("k", key(i)), bytes(`value-${i}`), `key ${i}`);
          assert.deepEqual(rangeKeys(txn, "k", { reverse: true, limit: 3 }), ["099999", "099998", "099997"]);
          assert.deepEqual(rangeKeys(txn, "k", { start: key(50_000), limit: 2 }), ["050000", "050001"]);
          assert.equal([...txn.range("k", { start: key(20_000), end: key(30_000), reverse: true })].length, 10_000);
        });
      }));

    if (persistent) {
      /** Every file below `dir` with a digest of its bytes: to prove a refused open changed nothing. */
      const dirState = (dir: string): Record<string, string> => {
        const out: Record<string, string> = {};
        const walk = (path: string, rel: string) => {
          for (const entry of readdirSync(path, { withFileTypes: true })) {
            const full = join(path, entry.name);
            const name = rel === "" ? entry.name : `${rel}/${entry.name}`;
            if (entry.isDirectory()) {
              out[`${name}/`] = "dir";
              walk(full, name);
            } else out[name] = createHash("sha256").update(readFileSync(full)).digest("hex");
          }
        };
        walk(dir, "");
        return out;
      };
      /** The engine name and the marker a fresh store of this engine writes. */
      const freshMarker = () =>
        withDir(async (dir) => {
          const b = await open(dir);
          const engine = b.engine;
          await b.close();
          const marker = JSON.parse(readFileSync(join(dir, DATA_DIR_MARKER), "utf8")) as { engine: unknown; format: unknown };
          return { engine, marker };
        });
      const refusesUntouched = async (dir: string, code: StorageError["code"], message?: RegExp) => {
        const before = dirState(dir);
        await assert.rejects(
          async () => {
            const b = await open(dir);
            await b.close();
          },
          (e: unknown) => {
            isCode(code)(e);
            if (message !== undefined) assert.match((e as Error).message, message);
            return true;
          },
        );
        assert.deepEqual(dirState(dir), before, "the refused directory was changed");
      };

      test("data dir: the marker file names the engine and format", async () => {
        const { engine, marker } = await freshMarker();
        assert.equal(marker.engine, engine);
        assert.equal(typeof marker.format, "number");
      });

      test("data dir: a directory with unrelated files is refused as Corrupt and left untouched", () =>
        withDir(async (dir) => {
          writeFileSync(join(dir, "notes.txt"), "not a store");
          mkdirSync(join(dir, "sub"));
          writeFileSync(join(dir, "sub", "data.db"), "nested");
          await refusesUntouched(dir, "Corrupt", /not an etcd-ts store/);
        }));

      test("data dir: another engine's directory is refused as WrongEngine and left untouched", async () => {
        const { engine } = await freshMarker();
        await withDir(async (dir) => {
          writeFileSync(join(dir, DATA_DIR_MARKER), JSON.stringify({ engine: "some-other-engine", format: 1 }));
          writeFileSync(join(dir, "data.other"), "other engine's data");
          await refusesUntouched(dir, "WrongEngine", new RegExp(`written by the some-other-engine storage engine, not ${engine}`));
        });
      });

      test("data dir: an unreadable marker or an unknown format is refused as Corrupt", async () => {
        const { engine } = await freshMarker();
        await withDir(async (dir) => {
          writeFileSync(join(dir, DATA_DIR_MARKER), "{ this is not json");
          await refusesUntouched(dir, "Corrupt");
          writeFileSync(join(dir, DATA_DIR_MARKER), JSON.stringify({ engine, format: 999 }));
          await refusesUntouched(dir, "Corrupt", /format 999/);
        });
      });

      test("data dir: a damaged database file is refused as Corrupt and left untouched", () =>
        withDir(async (dir) => {
          const b = await open(dir);
          await b.update((txn) => {
            txn.createBucket("k");
            for (let i = 0; i < 100; i++) txn.put("k", bytes(`k${i}`), patterned(100, i));
          });
          await b.close();
          // Scribble over the start of every file except the marker.
          for (const name of readdirSync(dir)) {
            if (name === DATA_DIR_MARKER) continue;
            const path = join(dir, name);
            const content = readFileSync(path);
            content.fill(0x5a, 0, Math.min(content.length, 8192));
            writeFileSync(path, content);
          }
          await refusesUntouched(dir, "Corrupt");
        }));

      test("data dir: a directory holding only the marker (creation cut short) opens as a new store", async () => {
        const { marker } = await freshMarker();
        await withDir(async (dir) => {
          writeFileSync(join(dir, DATA_DIR_MARKER), JSON.stringify(marker));
          const b = await open(dir);
          try {
            assert.deepEqual(
              b.view((txn) => txn.buckets()),
              [],
            );
            await b.update((txn) => txn.createBucket("k"));
          } finally {
            await b.close();
          }
        });
      });

      test("data dir: a path that is a file is refused with Io", () =>
        withDir(async (parent) => {
          const path = join(parent, "a-file");
          writeFileSync(path, "not a directory");
          await assert.rejects(async () => open(path), isCode("Io"));
          assert.equal(readFileSync(path, "utf8"), "not a directory");
        }));

      test("data dir: a missing directory is created", () =>
        withDir(async (parent) => {
          const dir = join(parent, "a", "b");
          const b = await open(dir);
          await b.close();
          assert.ok(readdirSync(dir).includes(DATA_DIR_MARKER));
        }));

      test("reopening after close keeps all data", () =>
        withDir(async (dir) => {
          let b = await open(dir);
          try {
            await b.update((txn) => {
              txn.createBucket("k");
              txn.createBucket("empty");
              txn.createBucket("gone");
              txn.put("gone", bytes("x"), bytes("y"));
              for (let i = 0; i < 500; i++) txn.put("k", bytes(String(i).padStart(3, "0")), patterned(200, i));
              txn.put("k", bytes(), bytes("empty key"));
              txn.put("k", bytes([0xff, 0xff]), bytes());
            });
            await b.update((txn) => {
              txn.deleteBucket("gone");
              txn.delete("k", bytes("007"));
            });
            await b.close();
            b = await open(dir);
            b.view((txn) => {
              assert.deepEqual(txn.buckets(), ["empty", "k"]);
              assert.deepEqual(rangeKeys(txn, "empty"), []);
              assert.equal(rangeKeys(txn, "k").length, 501);
              assertBytes(txn.get("k", bytes()), bytes("empty key"), "empty key");
              assertBytes(txn.get("k", bytes([0xff, 0xff])), bytes(), "empty value");
              assert.equal(txn.get("k", bytes("007")), undefined);
              for (let i = 0; i < 500; i += 13) {
                if (i !== 7) assertBytes(txn.get("k", bytes(String(i).padStart(3, "0"))), patterned(200, i), `key ${i}`);
              }
            });
            // And the reopened store takes writes.
            await b.update((txn) => txn.put("empty", bytes("now"), bytes("full")));
            await b.close();
            b = await open(dir);
            assert.deepEqual(
              b.view((txn) => rangeKeys(txn, "empty")),
              ["now"],
            );
          } finally {
            await b.close();
          }
        }));

      test(
        "a full disk fails the update with StorageError Full, commits none of it, and the store works again when space returns",
        { timeout: 120_000 },
        async (t) => {
          const fs = mountSmallFileSystem(name, 8 * 1024 * 1024);
          if (typeof fs === "string") {
            t.skip(fs);
            return;
          }
          try {
            const dir = join(fs.dir, "store");
            const value = (i: number, j: number) => patterned(16 * 1024, i * 4 + j);
            const key = (i: number, j: number) => bytes(String(i).padStart(5, "0"), "/", String(j));
            let b = await open(dir);
            let committed = 0;
            let failure: unknown;
            try {
              await b.update((txn) => txn.createBucket("fill"));
              // 64 KiB per update: the 8 MiB file system is full long before the bound.
              for (let i = 0; i < 1000 && failure === undefined; i++) {
                try {
                  await b.update((txn) => {
                    for (let j = 0; j < 4; j++) txn.put("fill", key(i, j), value(i, j));
                  });
                  // Deferred: an update is only committed to the file once a flush after it resolved.
                  if (options.deferred === true) await b.flush();
                  committed = i + 1;
                } catch (e) {
                  failure = e;
                }
              }
              assert.ok(failure !== undefined, "the file system never filled up");
              // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the engine threw, as it prints
              assert.ok(isStorageError(failure, "Full"), `expected StorageError Full, got ${String(failure)}`);
              assert.ok((failure as Error).message.includes(dir), `the message names the directory: ${(failure as Error).message}`);
              assert.ok(committed > 10, `only ${committed} updates fit`);
              // Nothing of the failed update is visible; everything before it is, and reads still work.
              // (A deferred store may refuse all use after losing its open transaction; the reopen below
              // is what counts for it.)
              if (options.deferred !== true)
                b.view((txn) => {
                  for (let j = 0; j < 4; j++)
                    assert.equal(txn.get("fill", key(committed, j)), undefined, `key ${committed}/${j} of the failed update`);
                  assert.equal(rangeKeys(txn, "fill").length, committed * 4);
                });
            } finally {
              // Closing may itself need space (SQLite checkpoints on close); what counts is the reopen below.
              await b.close().catch(() => undefined);
            }
            fs.resize(64 * 1024 * 1024);
            b = await open(dir);
            try {
              // Deferred: the failing flush may have committed its update before failing to checkpoint it.
              if (options.deferred === true && b.view((txn) => rangeKeys(txn, "fill").length) === (committed + 1) * 4) committed++;
              b.view((txn) => {
                assert.equal(rangeKeys(txn, "fill").length, committed * 4);
                for (let i = 0; i < committed; i++) {
                  for (let j = 0; j < 4; j++) assertBytes(txn.get("fill", key(i, j)), value(i, j), `key ${i}/${j}`);
                }
              });
              await b.update((txn) => {
                for (let j = 0; j < 4; j++) txn.put("fill", key(committed, j), value(committed, j));
              });
              assert.equal(
                b.view((txn) => rangeKeys(txn, "fill").length),
                (committed + 1) * 4,
              );
            } finally {
              await b.close();
            }
          } finally {
            fs.unmount();
          }
        },
      );

      test("every acknowledged update survives kill -9 of the writing process", { timeout: 120_000 }, () =>
        withDir(async (dir) => {
          const opener = options.opener;
          assert.ok(opener !== undefined, "conformance: pass options.opener to run the durability test");
          const acknowledged = await runWriterUntilKilled(dir, opener.module, opener.exportName, 200, options.deferred === true);
          assert.ok(acknowledged >= 200, `only ${acknowledged} acknowledged`);
          const b = await open(dir);
          try {
            b.view((txn) => {
              for (let i = 0; i < acknowledged; i++) {
                assertBytes(txn.get(durabilityBucket, durabilityKey(i)), durabilityValue(i), `acknowledged key ${i}`);
              }
              // Anything beyond (written but not yet acknowledged) is either absent or whole.
              for (const { key, value } of txn.range(durabilityBucket, { start: durabilityKey(acknowledged) })) {
                const i = Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(0));
                assertBytes(value, durabilityValue(i), `unacknowledged key ${i}`);
              }
            });
          } finally {
            await b.close();
          }
        }),
      );
    }
  });
}

/**
 * A tmpfs of `size` bytes mounted on a fresh temporary directory, to run a store out of space for real.
 * Mounting needs root (CAP_SYS_ADMIN); without it, returns why not (the caller skips its test).
 */
function mountSmallFileSystem(name: string, size: number): { dir: string; resize(size: number): void; unmount(): void } | string {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return "mounting a small tmpfs needs root on Linux: full-disk test skipped";
  const dir = mkdtempSync(join(tmpdir(), `etcd-ts-storage-${name}-full-`));
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  if (mount.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${(mount.stderr || String(mount.error)).trim()}): full-disk test skipped`;
  }
  return {
    dir,
    resize(bytes: number) {
      const r = spawnSync("mount", ["-o", `remount,size=${bytes}`, dir], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`cannot resize the tmpfs at ${dir}: ${r.stderr}`);
    },
    unmount() {
      // Lazily if something still holds a file there (a failed test): never leave the mount behind.
      if (spawnSync("umount", [dir]).status !== 0) spawnSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the writer child until it has acknowledged `killAfter` keys, kills it with SIGKILL while it is
 * still writing, and returns how many keys it acknowledged (all of 0..n-1, since it writes in order).
 */
function runWriterUntilKilled(dir: string, moduleUrl: string, exportName: string, killAfter: number, deferred: boolean): Promise<number> {
  const here = fileURLToPath(import.meta.url);
  const writer = join(dirname(here), here.endsWith(".ts") ? "conformance-writer.ts" : "conformance-writer.js");
  const packageDir = join(dirname(here), "..");
  return new Promise((resolve, reject) => {
    const args = ["--conditions=source", "--import", "tsx", writer, moduleUrl, exportName, dir, ...(deferred ? ["deferred"] : [])];
    const child = spawn(process.execPath, args, {
      cwd: packageDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pending = "";
    let stderr = "";
    let acknowledged = 0;
    let killed = false;
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (stderr += chunk));
    child.stdout.on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? ""; // an unterminated line is not an acknowledgement
      for (const line of lines) {
        if (line === "ready") continue;
        const n = Number(line);
        if (!Number.isInteger(n) || n !== acknowledged) {
          reject(new Error(`writer printed ${JSON.stringify(line)}, expected ${acknowledged}`));
          child.kill("SIGKILL");
          return;
        }
        acknowledged = n + 1;
      }
      if (!killed && acknowledged >= killAfter) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (killed && signal === "SIGKILL") resolve(acknowledged);
      else reject(new Error(`writer exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

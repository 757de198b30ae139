import { test } from "node:test";
import assert from "node:assert/strict";
import { checkLinearizable, describeResult, type KvOperation } from "./linearizability.js";

/** Hand-made histories: `put(client, key, value, from, to)` and `get(client, key, value, from, to)`. */
const put = (
  client: number,
  key: string,
  value: string,
  invokedAt: number,
  returnedAt: number,
  outcome: KvOperation["outcome"] = "ok",
): KvOperation => ({
  client,
  kind: "put",
  key,
  value,
  invokedAt,
  returnedAt,
  outcome,
});
const get = (
  client: number,
  key: string,
  value: string | null,
  invokedAt: number,
  returnedAt: number,
  outcome: KvOperation["outcome"] = "ok",
): KvOperation => ({
  client,
  kind: "get",
  key,
  value,
  invokedAt,
  returnedAt,
  outcome,
});

test("sequential histories: a get sees the last put, or nothing before any", () => {
  assert.equal(
    checkLinearizable([
      get(1, "a", null, 0, 1),
      put(1, "a", "x", 2, 3),
      get(1, "a", "x", 4, 5),
      put(2, "a", "y", 6, 7),
      get(1, "a", "y", 8, 9),
    ]).status,
    "ok",
  );
  assert.equal(checkLinearizable([put(1, "a", "x", 0, 1), put(1, "a", "y", 2, 3), get(2, "a", "x", 4, 5)]).status, "illegal");
  assert.equal(checkLinearizable([get(1, "a", "x", 0, 1)]).status, "illegal", "a value nobody wrote");
  assert.equal(checkLinearizable([]).status, "ok");
});

test("concurrent operations may take effect in either order", () => {
  // two overlapping puts; readers after both agree on one of them
  const h = [put(1, "a", "x", 0, 10), put(2, "a", "y", 1, 9), get(3, "a", "x", 11, 12), get(4, "a", "x", 13, 14)];
  assert.equal(checkLinearizable(h).status, "ok");
  const h2 = [put(1, "a", "x", 0, 10), put(2, "a", "y", 1, 9), get(3, "a", "y", 11, 12)];
  assert.equal(checkLinearizable(h2).status, "ok");
  // a get overlapping a put may see the old or the new value
  assert.equal(
    checkLinearizable([put(1, "a", "x", 0, 1), put(1, "a", "y", 2, 10), get(2, "a", "x", 3, 4), get(3, "a", "y", 5, 6)]).status,
    "ok",
  );
});

test("a stale read after a newer read is not linearizable (no going back in time)", () => {
  // y is written while two reads run one after the other: the first sees y, the later one x again
  const h = [put(1, "a", "x", 0, 1), put(1, "a", "y", 2, 20), get(2, "a", "y", 3, 4), get(3, "a", "x", 5, 6)];
  const r = checkLinearizable(h);
  assert.equal(r.status, "illegal");
  assert.equal(r.firstIllegal!.key, "a");
  assert.deepEqual(r.firstIllegal!.operation, h[3]);
  assert.ok(r.firstIllegal!.concurrent.includes(h[1]!), "the pending put is in the window");
  const text = describeResult(r);
  assert.match(text, /not linearizable on key "a"/);
  assert.match(text, /get\(\) → "x" .*← cannot be linearized/);
});

test("readers disagreeing on the order of two writes are not linearizable", () => {
  // both puts are concurrent, but one reader sees x then y and another y then x, all after both puts
  const h = [
    put(1, "a", "x", 0, 10),
    put(2, "a", "y", 0, 10),
    get(3, "a", "x", 11, 12),
    get(3, "a", "y", 13, 14),
    get(4, "a", "y", 11, 12),
    get(4, "a", "x", 13, 14),
  ];
  assert.equal(checkLinearizable(h).status, "illegal");
});

test("an ambiguous put may have happened, late, or never", () => {
  // timed out, never seen: fine
  assert.equal(checkLinearizable([put(1, "a", "x", 0, 1), put(2, "a", "lost", 2, 3, "ambiguous"), get(3, "a", "x", 50, 51)]).status, "ok");
  // timed out, seen much later (after the client gave up): fine, it may take effect any time after it was sent
  assert.equal(
    checkLinearizable([
      put(1, "a", "x", 0, 1),
      put(2, "a", "late", 2, 3, "ambiguous"),
      get(3, "a", "x", 50, 51),
      get(3, "a", "late", 60, 61),
    ]).status,
    "ok",
  );
  // but not before it was sent
  assert.equal(checkLinearizable([get(3, "a", "early", 0, 1), put(2, "a", "early", 2, 3, "ambiguous")]).status, "illegal");
  // and once seen, it cannot vanish again without a later write
  assert.equal(
    checkLinearizable([put(1, "a", "x", 0, 1), put(2, "a", "z", 2, 3, "ambiguous"), get(3, "a", "z", 10, 11), get(3, "a", "x", 12, 13)])
      .status,
    "illegal",
  );
  // the same put acknowledged would have had to happen before it returned
  assert.equal(checkLinearizable([put(1, "a", "x", 0, 1), put(2, "a", "z", 2, 3), get(3, "a", "x", 10, 11)]).status, "illegal");
});

test("failed operations are left out: a refused put never happened, a failed get saw nothing", () => {
  assert.equal(checkLinearizable([put(1, "a", "x", 0, 1), put(2, "a", "no", 2, 3, "failed"), get(3, "a", "x", 4, 5)]).status, "ok");
  assert.equal(checkLinearizable([put(1, "a", "x", 0, 1), get(2, "a", "garbage", 2, 3, "ambiguous"), get(3, "a", "x", 4, 5)]).status, "ok");
});

test("keys are checked independently and the first failing key is reported", () => {
  const h = [
    put(1, "a", "1", 0, 1),
    get(2, "a", "1", 2, 3),
    put(1, "b", "1", 0, 1),
    put(1, "b", "2", 2, 3),
    get(2, "b", "1", 4, 5),
    put(1, "c", "1", 0, 1),
    get(2, "c", null, 2, 3),
  ];
  const r = checkLinearizable(h);
  assert.equal(r.status, "illegal");
  assert.deepEqual(
    r.keys.map((k) => [k.key, k.status]),
    [
      ["a", "ok"],
      ["b", "illegal"],
      ["c", "illegal"],
    ],
  );
  assert.equal(r.firstIllegal!.key, "c", "c's failing get returned first");
  assert.equal(checkLinearizable([get(1, "a", "init", 0, 1)], { initialValue: () => "init" }).status, "ok");
});

/** Simulates a real register: each operation takes effect at a random instant inside its interval. */
function generatedHistory(ambiguousShare: number): KvOperation[] {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const history: KvOperation[] = [];
  const clientsFreeAt = Array.from({ length: 8 }, () => 0);
  const effects: { at: number; apply: () => void }[] = [];
  let register: string | null = null;
  let n = 0;
  for (let time = 0; time < 2000; time += 1) {
    for (let c = 0; c < clientsFreeAt.length; c++) {
      if (clientsFreeAt[c]! > time || random() < 0.5) continue;
      const duration = 1 + Math.floor(random() * 20);
      const at = time + random() * duration;
      const isPut = random() < 0.5;
      const op: { -readonly [K in keyof KvOperation]: KvOperation[K] } = {
        client: c,
        kind: isPut ? "put" : "get",
        key: "k",
        value: isPut ? `v${n++}` : null,
        invokedAt: time,
        returnedAt: time + duration,
        outcome: "ok",
      };
      if (isPut && random() < ambiguousShare) op.outcome = "ambiguous";
      history.push(op);
      effects.push({ at, apply: () => (isPut ? (register = op.value) : (op.value = register)) });
      clientsFreeAt[c] = time + duration + 1;
    }
  }
  effects.sort((a, b) => a.at - b.at).forEach((e) => e.apply());
  return history;
}

test("many concurrent clients: a generated linearizable history passes quickly, a corrupted one fails", () => {
  const history = generatedHistory(0.05);
  const started = Date.now();
  const r = checkLinearizable(history);
  assert.equal(r.status, "ok", describeResult(r));
  assert.ok(history.length > 1000, `${history.length} operations`);
  assert.ok(Date.now() - started < 5000, "checked in seconds");

  // replace one read result with a value that was overwritten long before (without ambiguous puts: each
  // one left pending doubles what must be ruled out before a verdict of illegal, as in every such checker)
  const plain = generatedHistory(0);
  assert.equal(checkLinearizable(plain).status, "ok");
  const lateGet = plain.filter((o) => o.kind === "get" && o.invokedAt > 1500 && o.value !== "v0")[0]!;
  const corrupted = plain.map((o) => (o === lateGet ? { ...o, value: "v0" } : o));
  const bad = checkLinearizable(corrupted);
  assert.equal(bad.status, "illegal");
  assert.equal(bad.firstIllegal!.operation.invokedAt, lateGet.invokedAt);
});

test("the work bound turns a search that is too large into 'unknown', not a verdict", () => {
  // many concurrent puts of distinct values and one read of an unknown value: exponential without a bound
  const h: KvOperation[] = Array.from({ length: 30 }, (_, i) => put(i, "a", `v${i}`, 0, 100));
  h.push(get(99, "a", "nobody", 0, 100));
  const r = checkLinearizable(h, { maxStepsPerKey: 10_000 });
  assert.equal(r.status, "unknown");
  assert.match(describeResult(r), /work bound/);
});

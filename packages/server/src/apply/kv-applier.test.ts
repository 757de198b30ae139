// The harness's ok() and put() answer untyped responses (whichever one the request gets), read as such here.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  InternalRaftRequestSchema,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  isRpcError,
} from "@etcd-ts/api";
import type { RangeResponse, TxnResponse } from "@etcd-ts/api";
import { KEY_BUCKET, LEASE_BUCKET } from "@etcd-ts/schema";
import {
  Harness,
  b,
  cmp,
  compaction,
  del,
  kvTuple,
  opDel,
  opPut,
  opRange,
  opTxn,
  put,
  range,
  s,
  txn,
} from "../testing/kv-applier-harness.js";

// Expected values were taken from etcd 3.4.23 with `etcdctl -w json` running the same requests.

describe("KV applier: put, range, delete (revisions as etcd)", () => {
  it("follows etcd's revisions, versions and prev_kv", () => {
    const h = new Harness();
    assert.equal(h.get("foo").header!.revision, 1n); // an empty store is at revision 1
    assert.equal(h.get("foo").count, 0n);
    assert.equal(h.put("foo", "bar").header.revision, 2n);
    const second = h.put("foo", "baz", { prevKv: true });
    assert.equal(second.header.revision, 3n);
    assert.deepEqual(kvTuple(second.prevKv), ["foo", 2, 2, 1, "bar"]);
    const d = h.ok({ case: "deleteRange", value: del({ key: b("foo"), prevKv: true }) });
    assert.equal(d.header.revision, 4n);
    assert.equal(d.deleted, 1n);
    assert.deepEqual(d.prevKvs.map(kvTuple), [["foo", 2, 3, 2, "baz"]]);
    assert.equal(h.put("foo", "x").header.revision, 5n);
    const got = h.get("foo");
    assert.equal(got.header!.revision, 5n);
    assert.deepEqual(got.kvs.map(kvTuple), [["foo", 5, 5, 1, "x"]]); // version restarts after a delete
    assert.equal(got.count, 1n);
    // Deleting nothing takes no revision.
    const none = h.ok({ case: "deleteRange", value: del({ key: b("nonexist") }) });
    assert.equal(none.header.revision, 5n);
    assert.equal(none.deleted, 0n);
    assert.equal(h.applier.currentRevision(), 5);
  });

  it("reads at past revisions; compacted and future revisions fail like etcd", () => {
    const h = new Harness();
    h.put("a", "1"); // 2
    h.put("a", "2"); // 3
    h.put("a", "3"); // 4
    assert.deepEqual(h.get("a", { revision: 2n }).kvs.map(kvTuple), [["a", 2, 2, 1, "1"]]);
    assert.equal(h.get("a", { revision: 2n }).header!.revision, 4n);
    assert.throws(
      () => h.get("a", { revision: 5n }),
      (e) => isRpcError(e, "futureRev"),
    );
    const c = h.ok({ case: "compaction", value: compaction({ revision: 3n }) });
    assert.equal(c.header.revision, 4n);
    assert.throws(
      () => h.get("a", { revision: 2n }),
      (e) => isRpcError(e, "compacted") && e.message === "etcdserver: mvcc: required revision has been compacted",
    );
    assert.deepEqual(h.get("a", { revision: 3n }).kvs.map(kvTuple), [["a", 2, 3, 2, "2"]]);
    const again = h.apply({ case: "compaction", value: compaction({ revision: 3n }) });
    assert.ok(!again.ok && isRpcError(again.error, "compacted"));
    const future = h.apply({ case: "compaction", value: compaction({ revision: 100n }) });
    assert.ok(!future.ok && isRpcError(future.error, "futureRev"));
    assert.equal(h.applier.compactRevision(), 3);
  });

  it("range options: from-key, limit + more, keys_only, count_only, sort, filters", () => {
    const h = new Harness();
    h.put("a", "1"); // 2
    h.put("c", "3"); // 3
    h.put("q", "1"); // 4
    h.put("r", "1"); // 5
    const fromKey = h.applier.range(range({ key: b("\0"), rangeEnd: b("\0"), limit: 2n, keysOnly: true }));
    assert.deepEqual(fromKey.kvs.map(kvTuple), [
      ["a", 2, 2, 1, ""],
      ["c", 3, 3, 1, ""],
    ]);
    assert.equal(fromKey.more, true);
    assert.equal(fromKey.count, 4n);
    const countOnly = h.applier.range(range({ key: b("a"), rangeEnd: b("r"), countOnly: true }));
    assert.deepEqual(countOnly.kvs, []);
    assert.equal(countOnly.count, 3n);
    assert.equal(countOnly.more, false);

    const k = new Harness();
    for (const key of ["k1", "k2", "k3"]) k.put(key, "v"); // 2, 3, 4
    k.put("k2", "w"); // 5
    k.put("k1", "a"); // 6
    k.put("k1", "b"); // 7
    const prefix = { key: b("k"), rangeEnd: b("l") };
    const byVersionDesc = k.applier.range(
      range({ ...prefix, sortTarget: RangeRequest_SortTarget.VERSION, sortOrder: RangeRequest_SortOrder.DESCEND, limit: 2n }),
    );
    assert.deepEqual(
      byVersionDesc.kvs.map((kv) => s(kv.key)),
      ["k1", "k2"],
    );
    assert.equal(byVersionDesc.more, true);
    assert.equal(byVersionDesc.count, 3n);
    // etcd's quirk: with sort_order NONE the limit applies before sorting (a target other than KEY
    // sorts ascending, but only the first limit+1 keys): etcd returns k2 here, not k3.
    const byModNone = k.applier.range(range({ ...prefix, sortTarget: RangeRequest_SortTarget.MOD, limit: 1n }));
    assert.deepEqual(
      byModNone.kvs.map((kv) => s(kv.key)),
      ["k2"],
    );
    assert.equal(byModNone.more, true);
    const byModAsc = k.applier.range(
      range({ ...prefix, sortTarget: RangeRequest_SortTarget.MOD, sortOrder: RangeRequest_SortOrder.ASCEND, limit: 1n }),
    );
    assert.deepEqual(
      byModAsc.kvs.map((kv) => s(kv.key)),
      ["k3"],
    );
    const keyDesc = k.applier.range(range({ key: b("k"), rangeEnd: b("k3"), sortOrder: RangeRequest_SortOrder.DESCEND, keysOnly: true }));
    assert.deepEqual(keyDesc.kvs.map(kvTuple), [
      ["k2", 3, 5, 2, ""],
      ["k1", 2, 7, 3, ""],
    ]);
    assert.equal(keyDesc.count, 2n);
    const byValue = k.applier.range(
      range({ ...prefix, sortTarget: RangeRequest_SortTarget.VALUE, sortOrder: RangeRequest_SortOrder.DESCEND }),
    );
    assert.deepEqual(
      byValue.kvs.map((kv) => s(kv.value)),
      ["w", "v", "b"],
    );
    // Filters prune after the range; count is the range's count before pruning (as etcd).
    const filtered = k.applier.range(range({ ...prefix, maxModRevision: 5n, minCreateRevision: 3n }));
    assert.deepEqual(
      filtered.kvs.map((kv) => s(kv.key)),
      ["k2", "k3"],
    );
    assert.equal(filtered.count, 3n);
    const minMod = k.applier.range(range({ ...prefix, minModRevision: 5n, maxCreateRevision: 3n, limit: 1n }));
    assert.deepEqual(
      minMod.kvs.map((kv) => s(kv.key)),
      ["k1"],
    );
    assert.equal(minMod.more, true);
  });
});

describe("KV applier: ranges read in steps", () => {
  it("answers every kind of Range as the one-step read does", async () => {
    const h = new Harness();
    // More keys than one step reads, written out of key order, some twice.
    const n = 12_000;
    for (let i = 0; i < n; i++) h.put(`k${String((i * 7919) % n).padStart(5, "0")}`, `v${i % 97}`);
    for (let i = 0; i < n; i += 5) h.put(`k${String(i).padStart(5, "0")}`, `w${i % 89}`);
    const prefix = { key: b("k"), rangeEnd: b("l") };
    const requests = [
      prefix,
      { ...prefix, limit: 11_000n },
      { ...prefix, sortTarget: RangeRequest_SortTarget.VALUE, sortOrder: RangeRequest_SortOrder.DESCEND, limit: 50n },
      { ...prefix, sortOrder: RangeRequest_SortOrder.DESCEND, keysOnly: true },
      { ...prefix, minModRevision: 5000n, maxCreateRevision: 9000n },
      { ...prefix, countOnly: true },
      { ...prefix, revision: 10_500n },
      { key: b("k00042") },
    ];
    for (const request of requests) {
      const stepped = h.applier.rangeInSteps(range(request));
      const expected = h.applier.range(range(request));
      const got = stepped instanceof Promise ? await stepped : stepped;
      assert.deepEqual(got.kvs.map(kvTuple), expected.kvs.map(kvTuple));
      assert.equal(got.count, expected.count);
      assert.equal(got.more, expected.more);
      assert.equal(got.header?.revision, expected.header?.revision);
    }
    assert.ok(h.applier.rangeInSteps(range(prefix)) instanceof Promise, "a range over every key is read in steps");
    assert.ok(!(h.applier.rangeInSteps(range({ ...prefix, limit: 10n })) instanceof Promise));
    assert.throws(
      () => h.applier.rangeInSteps(range({ ...prefix, revision: 100_000n })),
      (e) => e instanceof Error && e.message === "etcdserver: mvcc: required revision is a future revision",
    );
  });
});

describe("KV applier: put options and leases", () => {
  it("ignore_value and ignore_lease need the key; lease must exist", () => {
    const leases = new Set<bigint>([7n]);
    const h = new Harness({ leases: { has: (id) => leases.has(id) } });
    const missing = h.apply({ case: "put", value: put({ key: b("x"), ignoreValue: true }) });
    assert.ok(!missing.ok && isRpcError(missing.error, "keyNotFound"));
    const noLease = h.apply({ case: "put", value: put({ key: b("x"), value: b("1"), lease: 8n }) });
    assert.ok(
      !noLease.ok && isRpcError(noLease.error, "leaseNotFound") && noLease.error.message === "etcdserver: requested lease not found",
    );
    assert.equal(h.applier.currentRevision(), 1); // failed requests take no revision
    h.put("x", "1", { lease: 7n }); // 2
    h.put("x", "", { ignoreValue: true }); // 3: keeps the value, drops the lease (lease 0 given)
    assert.deepEqual(kvTuple(h.get("x").kvs[0]!), ["x", 2, 3, 2, "1"]);
    h.put("x", "1", { lease: 7n }); // 4
    const r = h.put("x", "2", { ignoreLease: true, prevKv: true }); // 5: keeps the lease
    assert.deepEqual(kvTuple(r.prevKv), ["x", 2, 4, 3, "1", 7n]);
    assert.deepEqual(kvTuple(h.get("x").kvs[0]!), ["x", 2, 5, 4, "2", 7n]);
  });

  it("the default lease lookup knows no lease", () => {
    const h = new Harness();
    const r = h.apply({ case: "put", value: put({ key: b("x"), value: b("1"), lease: 1n }) });
    assert.ok(!r.ok && isRpcError(r.error, "leaseNotFound"));
  });
});

describe("KV applier: txn", () => {
  it("runs etcd's example txn with one revision and per-op responses", () => {
    const h = new Harness();
    for (let i = 0; i < 4; i++) h.put(`pad${i}`, "x"); // revisions 2..5, so that a@6, b@7 as in the etcd run
    h.put("a", "1"); // 6
    h.put("b", "2"); // 7
    const t: TxnResponse = h.ok({
      case: "txn",
      value: txn({
        compare: [
          cmp({
            key: b("a"),
            target: Compare_CompareTarget.MOD,
            result: Compare_CompareResult.GREATER,
            targetUnion: { case: "modRevision", value: 0n },
          }),
        ],
        success: [
          opPut({ key: b("c"), value: b("3") }),
          opRange({ key: b("a"), rangeEnd: b("b") }),
          opRange({ key: b("c") }),
          opDel({ key: b("b") }),
          opRange({ key: b("b") }),
          opPut({ key: b("a"), value: b("9") }),
        ],
        failure: [opRange({ key: b("z") })],
      }),
    });
    assert.equal(t.header!.revision, 8n);
    assert.equal(t.succeeded, true);
    const [p1, r1, r2, d1, r3, p2] = t.responses.map((r) => r.response);
    assert.equal(p1!.case, "responsePut");
    assert.equal(p1!.value.header!.revision, 8n);
    assert.deepEqual((r1!.value as RangeResponse).kvs.map(kvTuple), [["a", 6, 6, 1, "1"]]);
    assert.equal(r1!.value!.header!.revision, 8n);
    assert.deepEqual((r2!.value as RangeResponse).kvs.map(kvTuple), [["c", 8, 8, 1, "3"]]);
    assert.equal(d1!.case, "responseDeleteRange");
    assert.equal((d1!.value as { deleted: bigint }).deleted, 1n);
    assert.equal((r3!.value as RangeResponse).count, 0n);
    assert.equal(p2!.value!.header!.revision, 8n);
    assert.deepEqual(h.get("a").kvs.map(kvTuple), [["a", 6, 8, 2, "9"]]);
    assert.equal(h.applier.currentRevision(), 8);
  });

  it("compares: value of a missing key fails, version of a missing key is 0, ranges need all keys to match", () => {
    const h = new Harness();
    const valueMissing: TxnResponse = h.ok({
      case: "txn",
      value: txn({
        compare: [
          cmp({
            key: b("zz"),
            target: Compare_CompareTarget.VALUE,
            result: Compare_CompareResult.EQUAL,
            targetUnion: { case: "value", value: b("") },
          }),
        ],
        success: [opPut({ key: b("q"), value: b("1") })],
        failure: [opPut({ key: b("r"), value: b("1") })],
      }),
    });
    assert.equal(valueMissing.succeeded, false);
    assert.equal(valueMissing.header!.revision, 2n);
    assert.equal(h.get("r").count, 1n);
    const versionZero: TxnResponse = h.ok({
      case: "txn",
      value: txn({
        compare: [
          cmp({
            key: b("zz"),
            target: Compare_CompareTarget.VERSION,
            result: Compare_CompareResult.EQUAL,
            targetUnion: { case: "version", value: 0n },
          }),
        ],
        success: [opRange({ key: b("q") })],
      }),
    });
    assert.equal(versionZero.succeeded, true);
    assert.equal(versionZero.header!.revision, 2n); // a txn that only reads takes no revision
    h.put("k1", "a"); // 3
    h.put("k2", "b"); // 4
    const all = (result: Compare_CompareResult, value: bigint) =>
      (
        h.ok({
          case: "txn",
          value: txn({
            compare: [
              cmp({
                key: b("k"),
                rangeEnd: b("l"),
                target: Compare_CompareTarget.CREATE,
                result,
                targetUnion: { case: "createRevision", value },
              }),
            ],
          }),
        }) as TxnResponse
      ).succeeded;
    assert.equal(all(Compare_CompareResult.GREATER, 2n), true);
    assert.equal(all(Compare_CompareResult.GREATER, 3n), false);
    assert.equal(all(Compare_CompareResult.LESS, 5n), true);
    assert.equal(all(Compare_CompareResult.NOT_EQUAL, 3n), false);
    const lease = h.ok({
      case: "txn",
      value: txn({
        compare: [
          cmp({
            key: b("k1"),
            target: Compare_CompareTarget.LEASE,
            result: Compare_CompareResult.EQUAL,
            targetUnion: { case: "lease", value: 0n },
          }),
        ],
      }),
    }) as TxnResponse;
    assert.equal(lease.succeeded, true);
  });

  it("nested txns: compares see the state before the txn, one revision, nested header revision 0", () => {
    const h = new Harness();
    h.put("a", "1"); // 2
    const t: TxnResponse = h.ok({
      case: "txn",
      value: txn({
        success: [
          opDel({ key: b("a") }),
          opTxn({
            // Evaluated before the delete above: "a" still exists.
            compare: [
              cmp({
                key: b("a"),
                target: Compare_CompareTarget.VERSION,
                result: Compare_CompareResult.EQUAL,
                targetUnion: { case: "version", value: 1n },
              }),
            ],
            success: [opPut({ key: b("n"), value: b("yes") }), opRange({ key: b("a") })],
            failure: [opPut({ key: b("n"), value: b("no") })],
          }),
        ],
      }),
    });
    assert.equal(t.header!.revision, 3n);
    const inner = t.responses[1]!.response;
    assert.equal(inner.case, "responseTxn");
    const innerTxn = inner.value;
    assert.equal(innerTxn.succeeded, true);
    assert.equal(innerTxn.header!.revision, 0n);
    assert.equal((innerTxn.responses[1]!.response.value as RangeResponse).count, 0n); // sees the delete
    assert.equal(s(h.get("n").kvs[0]!.value), "yes");
    assert.equal(h.applier.currentRevision(), 3);
  });

  it("fails a txn before writing when a chosen put's key or lease is missing, or a range revision is out of range", () => {
    const h = new Harness();
    h.put("a", "1"); // 2
    const keyMissing = h.apply({
      case: "txn",
      value: txn({ success: [opPut({ key: b("b"), value: b("1") }), opPut({ key: b("z"), ignoreValue: true })] }),
    });
    assert.ok(!keyMissing.ok && isRpcError(keyMissing.error, "keyNotFound"));
    const leaseMissing = h.apply({ case: "txn", value: txn({ success: [opPut({ key: b("b"), value: b("1"), lease: 5n })] }) });
    assert.ok(!leaseMissing.ok && isRpcError(leaseMissing.error, "leaseNotFound"));
    const future = h.apply({
      case: "txn",
      value: txn({ success: [opPut({ key: b("b"), value: b("1") }), opRange({ key: b("a"), revision: 3n })] }),
    });
    assert.ok(!future.ok && isRpcError(future.error, "futureRev"));
    // The failure branch's checks do not matter when the success branch runs.
    const other = h.ok({
      case: "txn",
      value: txn({ success: [opPut({ key: b("b"), value: b("1") })], failure: [opPut({ key: b("z"), ignoreValue: true })] }),
    });
    assert.equal(other.header.revision, 3n);
    assert.equal(h.get("b").count, 1n);
    h.ok({ case: "compaction", value: compaction({ revision: 3n }) });
    const compacted = h.apply({ case: "txn", value: txn({ success: [opRange({ key: b("a"), revision: 2n })] }) });
    assert.ok(!compacted.ok && isRpcError(compacted.error, "compacted"));
    assert.throws(
      () => h.applier.readOnlyTxn(txn({ success: [opRange({ key: b("a"), revision: 9n })] })),
      (e) => isRpcError(e, "futureRev"),
    );
  });

  it("serves read-only txns without the log", () => {
    const h = new Harness();
    h.put("a", "1");
    const t = h.applier.readOnlyTxn(
      txn({
        compare: [
          cmp({
            key: b("a"),
            target: Compare_CompareTarget.VALUE,
            result: Compare_CompareResult.EQUAL,
            targetUnion: { case: "value", value: b("1") },
          }),
        ],
        success: [opRange({ key: b("a") }), opTxn({ success: [opRange({ key: b("b") })] })],
      }),
    );
    assert.equal(t.succeeded, true);
    assert.equal(t.header!.revision, 2n);
    assert.equal((t.responses[0]!.response.value as RangeResponse).count, 1n);
    assert.equal((t.responses[1]!.response.value as TxnResponse).header!.revision, 0n);
  });
});

describe("KV applier: batches, consistent index, restart", () => {
  it("applies a batch in one transaction with a revision per write and skips entries already applied", async () => {
    const h = new Harness();
    const results = h.applyAll([
      { case: "put", value: put({ key: b("a"), value: b("1") }) },
      { case: "put", value: put({ key: b("b"), value: b("1"), ignoreValue: true }) }, // keyNotFound
      { case: "deleteRange", value: del({ key: b("a") }) },
      { case: "txn", value: txn({ success: [opPut({ key: b("c"), value: b("1") }), opPut({ key: b("d"), value: b("1") })] }) },
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? Number(r.response.header!.revision) : r.error.kind)),
      [2, "keyNotFound", 3, 4],
    );
    assert.equal(h.applier.consistentIndex(), 4);
    h.reopen();
    assert.equal(h.applier.consistentIndex(), 4);
    assert.equal(h.applier.currentRevision(), 4);
    // Replaying entries 3..5 after a restart: 3 and 4 are skipped, 5 applies.
    const entry = (index: number, key: string) => ({
      index,
      request: create(InternalRaftRequestSchema, { request: { case: "put", value: put({ key: b(key), value: b("r") }) } }),
    });
    const replay = h.applier.applyBatch([entry(3, "x"), entry(4, "y"), entry(5, "z")]);
    await replay.durable;
    assert.deepEqual(
      replay.results.map((r) => r.ok),
      [false, false, true],
    );
    assert.equal(h.get("x").count, 0n);
    assert.equal(h.get("z").kvs[0]!.modRevision, 5n);
    assert.equal(h.applier.consistentIndex(), 5);
    const nothing = h.applier.applyBatch([entry(5, "w")]);
    assert.equal(nothing.results[0]!.ok, false);
    assert.equal(h.get("w").count, 0n);
  });

  it("compaction's physical promise resolves once obsolete revisions are deleted", async () => {
    const h = new Harness();
    for (let i = 0; i < 50; i++) h.put("k", String(i)); // revisions 2..51
    const result = h.apply({ case: "compaction", value: compaction({ revision: 40n, physical: true }) });
    assert.ok(result.ok);
    await result.physical;
    const rows = h.backend.view((tx) => [...tx.range(KEY_BUCKET)].length);
    assert.equal(rows, 12); // revision 40 (kept) and 41..51
    h.reopen();
    assert.equal(h.applier.compactRevision(), 40);
    assert.equal(h.get("k").kvs[0]!.version, 50n);
  });
});

describe("KV applier: request appliers for non-KV requests", () => {
  it("hands them the batch, so their writes commit with the keyspace and the consistent index", async () => {
    const { create: createMessage } = await import("@bufbuild/protobuf");
    const { LeaseGrantRequestSchema, LeaseGrantResponseSchema, RpcError: Rpc } = await import("@etcd-ts/api");
    const h = new Harness({
      requestAppliers: [
        {
          applies: (r) => r.case === "leaseGrant",
          apply: (batch, r) => {
            if (r.case !== "leaseGrant") throw new Error("unreachable");
            if (r.value.ID === 0n) return { ok: false, error: Rpc.of("leaseNotFound") };
            batch.backend.put(LEASE_BUCKET, b(`lease-${r.value.ID}`), b(String(r.value.TTL)));
            return { ok: true, response: createMessage(LeaseGrantResponseSchema, { ID: r.value.ID, TTL: r.value.TTL }) };
          },
        },
      ],
    });
    const results = h.applyAll([
      { case: "put", value: put({ key: b("a"), value: b("1") }) },
      { case: "leaseGrant", value: createMessage(LeaseGrantRequestSchema, { ID: 5n, TTL: 60n }) },
      { case: "leaseGrant", value: createMessage(LeaseGrantRequestSchema, { ID: 0n, TTL: 60n }) },
      { case: "leaseRevoke", value: { $typeName: "etcdserverpb.LeaseRevokeRequest", ID: 5n } },
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? r.response.$typeName : (r.error.kind ?? r.error.code))),
      [
        "etcdserverpb.PutResponse",
        "etcdserverpb.LeaseGrantResponse",
        "leaseNotFound",
        12, // UNIMPLEMENTED: no applier takes it
      ],
    );
    assert.equal(s(h.backend.view((tx) => tx.get(LEASE_BUCKET, b("lease-5")))!), "60");
    assert.equal(h.applier.consistentIndex(), 4);
    assert.equal(h.applier.currentRevision(), 2);
  });
});

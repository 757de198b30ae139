import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { AlarmRequest_AlarmAction, AlarmType, InternalRaftRequestSchema, type InternalRaftRequest } from "@etcd-ts/api";
import { AlarmStore, quotaCost, screenBatchForAlarms } from "./alarm.js";
import type { ApplyResult } from "./apply/types.js";

const put = (key: string, value: string): InternalRaftRequest["request"] => ({
  case: "put",
  value: { $typeName: "etcdserverpb.PutRequest", key: Buffer.from(key), value: Buffer.from(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
});
const alarm = (action: AlarmRequest_AlarmAction): InternalRaftRequest["request"] => ({
  case: "alarm",
  value: { $typeName: "etcdserverpb.AlarmRequest", action, memberID: 5n, alarm: AlarmType.NOSPACE },
});
const entry = (index: number, request: InternalRaftRequest["request"]) => ({ index, request: create(InternalRaftRequestSchema, { ID: BigInt(index), request }) });
const ok: ApplyResult = { ok: true, response: { $typeName: "etcdserverpb.PutResponse" } as unknown as Extract<ApplyResult, { ok: true }>["response"] };

test("quota costs are etcd's: 256 + key + value per put, 64 per lease grant, 0 otherwise", () => {
  assert.equal(quotaCost(put("k", "vv")), 259);
  assert.equal(quotaCost({ case: "leaseGrant", value: { $typeName: "etcdserverpb.LeaseGrantRequest", TTL: 5n, ID: 0n } }), 64);
  assert.equal(quotaCost(alarm(AlarmRequest_AlarmAction.GET)), 0);
  const store = new AlarmStore(1000);
  assert.equal(store.available(700, put("k", "v")), true);
  assert.equal(store.available(800, put("k", "v")), false);
  assert.equal(new AlarmStore(0).quotaBytes, 2 * 1024 * 1024 * 1024);
});

test("within one batch, puts after a NOSPACE activation are refused and puts after its disarm pass", () => {
  const store = new AlarmStore(1 << 30);
  const committed = [
    entry(1, put("a", "1")),
    entry(2, alarm(AlarmRequest_AlarmAction.ACTIVATE)),
    entry(3, put("b", "2")),
    entry(4, { case: "deleteRange", value: { $typeName: "etcdserverpb.DeleteRangeRequest", key: Buffer.from("a"), rangeEnd: new Uint8Array(0), prevKv: false } }),
    entry(5, alarm(AlarmRequest_AlarmAction.DEACTIVATE)),
    entry(6, put("c", "3")),
  ];
  const screened = screenBatchForAlarms(store, 0, committed);
  assert.equal(screened.committed[2]!.request.request.case, undefined, "the capped put changes nothing");
  assert.equal(screened.committed[2]!.index, 3, "but keeps its index");
  assert.equal(screened.committed[3]!.request.request.case, "deleteRange");
  const results = screened.settle(committed.map(() => ok));
  assert.deepEqual(results.map((r) => (r.ok ? "ok" : (r.error as { kind?: string }).kind)), ["ok", "ok", "noSpace", "ok", "ok", "ok"]);
});

test("a put applied over the quota keeps its write but answers noSpace (etcd's quotaApplierV3)", () => {
  const store = new AlarmStore(100);
  const screened = screenBatchForAlarms(store, 90, [entry(1, put("a", "1"))]);
  assert.equal(screened.committed[0]!.request.request.case, "put");
  const [result] = screened.settle([ok]);
  assert.equal(result!.ok, false);
});

test("while CORRUPT is raised every KV write, compaction and lease grant/revoke is refused with etcd's error", () => {
  const store = new AlarmStore(0);
  const corrupt: InternalRaftRequest["request"] = {
    case: "alarm",
    value: { $typeName: "etcdserverpb.AlarmRequest", action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 9n, alarm: AlarmType.CORRUPT },
  };
  const committed = [entry(1, corrupt), entry(2, put("a", "1")), entry(3, alarm(AlarmRequest_AlarmAction.GET))];
  const screened = screenBatchForAlarms(store, 0, committed);
  const results = screened.settle(committed.map(() => ok));
  assert.deepEqual(results.map((r) => (r.ok ? "ok" : (r.error as { kind?: string }).kind)), ["ok", "corrupt", "ok"]);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  AlarmRequestSchema,
  AlarmRequest_AlarmAction,
  AlarmType,
  InternalRaftRequestSchema,
  RequestHeaderSchema,
  RpcError,
  type InternalRaftRequest,
} from "@etcd-ts/api";
import { openMvccStore } from "@etcd-ts/mvcc";
import { openMemoryBackend } from "@etcd-ts/storage";
import { boltSnapshotStream } from "@etcd-ts/snapshot";
import { AlarmApplier, AlarmStore, alarmRefusal, answerOverQuota, quotaCost } from "./alarm.js";
import { createKvApplier } from "./index.js";
import { silentLogger } from "../log.js";
import type { ApplyResult } from "./types.js";

const put = (key: string, value: string): InternalRaftRequest["request"] => ({
  case: "put",
  value: {
    $typeName: "etcdserverpb.PutRequest",
    key: Buffer.from(key),
    value: Buffer.from(value),
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  },
});
const alarm = (action: AlarmRequest_AlarmAction): InternalRaftRequest["request"] => ({
  case: "alarm",
  value: { $typeName: "etcdserverpb.AlarmRequest", action, memberID: 5n, alarm: AlarmType.NOSPACE },
});
const entry = (index: number, request: InternalRaftRequest["request"]) => ({
  index,
  request: create(InternalRaftRequestSchema, { ID: BigInt(index), request }),
});
const ok: ApplyResult = {
  ok: true,
  response: { $typeName: "etcdserverpb.PutResponse" } as unknown as Extract<ApplyResult, { ok: true }>["response"],
};

test("quota costs are etcd's: 256 + key + value per put, 64 per lease grant, 0 otherwise", () => {
  assert.equal(quotaCost(put("k", "vv")), 259);
  assert.equal(quotaCost({ case: "leaseGrant", value: { $typeName: "etcdserverpb.LeaseGrantRequest", TTL: 5n, ID: 0n } }), 64);
  assert.equal(quotaCost(alarm(AlarmRequest_AlarmAction.GET)), 0);
  const store = new AlarmStore(1000);
  assert.equal(store.available(700, put("k", "v")), true);
  assert.equal(store.available(800, put("k", "v")), false);
  assert.equal(new AlarmStore(0).quotaBytes, 2 * 1024 * 1024 * 1024);
});

/**
 * An applier with the alarm store on its path, as the server builds it; `authorize` lets only "root"
 * raise or clear alarms. `apply` takes batches of entries as a member's log hands them over.
 */
function alarmApplier(quotaBytes = 1 << 30) {
  const alarms = new AlarmStore(quotaBytes);
  const store = openMvccStore(openMemoryBackend());
  const applier = createKvApplier(store, {
    requestAppliers: [new AlarmApplier(alarms, silentLogger)],
    refuse: (request) => alarmRefusal(alarms, request.request),
    authorize: (request) => {
      if (request.request.case === "alarm" && request.header?.username !== "root") throw RpcError.of("permissionDenied");
    },
  });
  const apply = (...batches: ReturnType<typeof entry>[][]) => batches.flatMap((batch) => applier.applyBatch(batch).results);
  const kinds = (results: ApplyResult[]) => results.map((r) => (r.ok ? "ok" : (r.error.kind ?? r.error.message)));
  const keys = () => store.read((view) => view.range(Buffer.from([0]), Buffer.from([0])).kvs.map((kv) => Buffer.from(kv.key).toString()));
  return { alarms, apply, kinds, keys };
}

const byRoot = (e: ReturnType<typeof entry>) => ({
  ...e,
  request: { ...e.request, header: create(RequestHeaderSchema, { username: "root", authRevision: 1n }) },
});

test("within one batch, puts after a NOSPACE activation are refused and puts after its disarm pass", () => {
  const { apply, kinds, keys } = alarmApplier();
  const results = apply([
    entry(1, put("a", "1")),
    byRoot(entry(2, alarm(AlarmRequest_AlarmAction.ACTIVATE))),
    entry(3, put("b", "2")),
    entry(4, {
      case: "deleteRange",
      value: { $typeName: "etcdserverpb.DeleteRangeRequest", key: Buffer.from("a"), rangeEnd: new Uint8Array(0), prevKv: false },
    }),
    byRoot(entry(5, alarm(AlarmRequest_AlarmAction.DEACTIVATE))),
    entry(6, put("c", "3")),
  ]);
  assert.deepEqual(kinds(results), ["ok", "ok", "noSpace", "ok", "ok", "ok"]);
  assert.deepEqual(keys(), ["c"], "the capped put changed nothing");
});

test("an activation refused by auth raises nothing: the entries after it apply, however the log is cut into batches", () => {
  const oneBatch = alarmApplier();
  const twoBatches = alarmApplier();
  const activate = entry(1, alarm(AlarmRequest_AlarmAction.ACTIVATE));
  const write = entry(2, put("k", "v"));
  const results = [oneBatch.apply([activate, write]), twoBatches.apply([activate], [write])];
  for (const r of results) assert.deepEqual(oneBatch.kinds(r), ["permissionDenied", "ok"]);
  assert.deepEqual(oneBatch.keys(), ["k"]);
  assert.deepEqual(twoBatches.keys(), ["k"]);
  assert.equal(oneBatch.alarms.isActive(AlarmType.NOSPACE), false);
});

test("a put applied over the quota keeps its write but answers noSpace (etcd's quotaApplierV3)", () => {
  const store = new AlarmStore(100);
  const settle = answerOverQuota(store, 90, [entry(1, put("a", "1"))]);
  const [result] = settle([ok]);
  assert.equal(result!.ok, false);
  assert.deepEqual(answerOverQuota(new AlarmStore(1000), 0, [entry(1, put("a", "1"))])([ok]), [ok]);
});

test("while CORRUPT is raised every KV write, compaction and lease grant/revoke is refused with etcd's error", () => {
  const { apply, kinds, keys } = alarmApplier(0);
  const corrupt: InternalRaftRequest["request"] = {
    case: "alarm",
    value: { $typeName: "etcdserverpb.AlarmRequest", action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 9n, alarm: AlarmType.CORRUPT },
  };
  const results = apply([byRoot(entry(1, corrupt)), entry(2, put("a", "1")), byRoot(entry(3, alarm(AlarmRequest_AlarmAction.GET)))]);
  assert.deepEqual(kinds(results), ["ok", "corrupt", "ok"]);
  assert.deepEqual(keys(), []);
});

test("activating alarm NONE for member 0 stores nothing: its key would be empty, which a bbolt snapshot cannot hold", async () => {
  const alarms = new AlarmStore(1 << 30);
  const backend = openMemoryBackend();
  let result: ApplyResult | undefined;
  await backend.update((txn) => {
    result = alarms.apply(
      txn,
      create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.NONE }),
      silentLogger,
    );
  });
  assert.ok(result?.ok);
  assert.deepEqual(alarms.get(AlarmType.NONE), []);
  // The snapshot a follower would be sent, or a client saves, still writes.
  const chunks = backend.view((txn) => [...boltSnapshotStream(txn)]);
  assert.ok(chunks.length > 0);
});

test("Status lists an alarm of a type etcd does not name by its number, as Go prints an unknown enum", async () => {
  const alarms = new AlarmStore(1 << 30);
  const backend = openMemoryBackend();
  await backend.update((txn) => {
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- an alarm type outside the enum, on purpose
    const unknownAlarm = 7 as AlarmType;
    alarms.apply(
      txn,
      create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 9n, alarm: unknownAlarm }),
      silentLogger,
    );
  });
  assert.deepEqual(alarms.statusErrors(), ["memberID:9 alarm:7 "]);
});

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AuthRoleAddRequestSchema,
  AuthUserAddRequestSchema,
  AuthUserListRequestSchema,
  GrpcCode,
  InternalRaftRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RpcError,
  TxnRequestSchema,
  isRpcError,
  type AuthUserListResponse,
  type InternalRaftRequest,
  type TxnRequest,
} from "@etcd-ts/api";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES, openMemoryBackend, type Backend, type WriteTxn } from "@etcd-ts/storage";
import { MAX_ENTRY_DATA_BYTES } from "@etcd-ts/wal";
import type { ApplyResult } from "./types.js";
import { defaultConfig, type ServerConfig } from "../config.js";
import { EtcdServer } from "../etcd-server.js";
import { freePort, teardown } from "@etcd-ts/test-support";

async function memberConfig(t: TestContext, overrides: Partial<ServerConfig> = {}): Promise<ServerConfig> {
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-apply-failures-"));
  teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
  const peer = `http://127.0.0.1:${await freePort()}`;
  return {
    ...defaultConfig("n1"),
    dataDir,
    listenPeerUrls: [peer],
    initialAdvertisePeerUrls: [peer],
    initialCluster: new Map([["n1", [peer]]]),
    ...overrides,
  };
}

/**
 * A backend whose writes fail as an engine's own limits make them fail: a key longer than LMDB takes
 * throws LMDB's RangeError, and a value holding `poison` throws a TypeError (standing in for any bug in
 * an apply path). The memory engine outlives the member (EtcdServer.stop leaves the backend open), so a
 * restart on it is a restart on the same disk.
 */
function limitedBackend(inner: Backend, poison: string): Backend {
  const wrapper = Object.create(inner) as Backend;
  const marker = Buffer.from(poison);
  wrapper.update = (fn: (txn: WriteTxn) => void) =>
    inner.update((txn) => {
      const limited = Object.create(txn) as WriteTxn;
      limited.put = (bucket, key, value) => {
        if (key.byteLength > 1973) throw new RangeError(`key of ${key.byteLength} bytes exceeds the lmdb engine's limit of 1973 bytes`);
        if (Buffer.from(value).includes(marker)) throw new TypeError(`injected failure writing ${bucket}`);
        txn.put(bucket, key, value);
      };
      fn(limited);
    });
  return wrapper;
}

/** The server's raft log and waiters, to put an entry into the log as a member that skipped validation would. */
interface Internals {
  readonly log: { propose(data: Uint8Array): void };
  readonly waits: { register(id: bigint): Promise<ApplyResult> };
}

function proposeUnchecked(server: EtcdServer, id: bigint, request: InternalRaftRequest["request"]): Promise<ApplyResult> {
  const internals = server as unknown as Internals;
  const done = internals.waits.register(id);
  internals.log.propose(toBinary(InternalRaftRequestSchema, create(InternalRaftRequestSchema, { ID: id, request })));
  return done;
}

const put = (key: string, value = "v") => create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) });
const userAdd = (name: string): InternalRaftRequest["request"] => ({
  case: "authUserAdd",
  value: create(AuthUserAddRequestSchema, { name, options: { noPassword: true } }),
});

async function keys(server: EtcdServer): Promise<string[]> {
  const all = await server.range(create(RangeRequestSchema, { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }));
  return all.kvs.map((kv) => Buffer.from(kv.key).toString());
}

async function users(server: EtcdServer): Promise<string[]> {
  const list = await server.proposeRequest<AuthUserListResponse>({ case: "authUserList", value: create(AuthUserListRequestSchema) });
  return list.users;
}

test("whatever one entry carries fits every engine as a value: only keys need checks of their own", () => {
  assert.ok(MAX_ENTRY_DATA_BYTES < MAX_VALUE_BYTES, `${MAX_ENTRY_DATA_BYTES} < ${MAX_VALUE_BYTES}`);
});

test("user and role names longer than every engine stores are refused before they are proposed", { timeout: 60_000 }, async (t) => {
  const server = await EtcdServer.start({ config: await memberConfig(t), backend: openMemoryBackend() });
  teardown(t)(() => server.stop());
  await server.ready();
  const indexBefore = server.status().raftIndex;
  const tooLong = "u".repeat(MAX_KEY_BYTES + 1);
  await assert.rejects(server.proposeRequest(userAdd(tooLong)), (e: unknown) => {
    assert.ok(isRpcError(e));
    assert.equal(e.code, GrpcCode.INVALID_ARGUMENT);
    assert.equal(e.message, `etcdserver: user name is too long (${MAX_KEY_BYTES + 1} bytes; at most ${MAX_KEY_BYTES})`);
    return true;
  });
  // Counted in UTF-8 bytes, as the key is stored.
  await assert.rejects(server.proposeRequest(userAdd("é".repeat(1000))), /user name is too long \(2000 bytes/);
  await assert.rejects(
    server.proposeRequest({ case: "authRoleAdd", value: create(AuthRoleAddRequestSchema, { name: "r".repeat(2000) }) }),
    /etcdserver: role name is too long \(2000 bytes; at most 1973\)/,
  );
  assert.equal(server.status().raftIndex, indexBefore, "nothing reached the log");
  await server.proposeRequest(userAdd("u".repeat(MAX_KEY_BYTES)));
  await server.proposeRequest({ case: "authRoleAdd", value: create(AuthRoleAddRequestSchema, { name: "r".repeat(MAX_KEY_BYTES) }) });
  assert.deepEqual(await users(server), ["u".repeat(MAX_KEY_BYTES)]);
});

test(
  "a user name too long for LMDB that is already in the log is refused at apply alike; the member restarts and serves",
  { timeout: 60_000 },
  async (t) => {
    const config = await memberConfig(t);
    const backend = limitedBackend(openMemoryBackend(), "\u0000never\u0000");
    const first = await EtcdServer.start({ config, backend });
    teardown(t)(() => first.stop());
    await first.ready();
    const result = await proposeUnchecked(first, 7001n, userAdd("x".repeat(2000)));
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.error.message, /user name is too long \(2000 bytes/);
    await first.put(put("after"));
    await first.stop();

    const second = await EtcdServer.start({ config, backend });
    teardown(t)(() => second.stop());
    await second.ready();
    await second.put(put("restarted"));
    assert.deepEqual(await keys(second), ["after", "restarted"]);
    assert.deepEqual(await users(second), []);
  },
);

test(
  "an entry whose apply throws after writing is skipped on every member: its proposer gets the error, the rest of its batch applies, and the member restarts and serves",
  { timeout: 60_000 },
  async (t) => {
    const config = await memberConfig(t);
    const backend = limitedBackend(openMemoryBackend(), "poison");
    const first = await EtcdServer.start({ config, backend });
    teardown(t)(() => first.stop());
    await first.ready();
    await first.put(put("a0"));
    const watchEnded = new Promise<void>((resolve) => first.onStateReplaced(resolve));
    // The txn writes `partial` and then fails writing `poison`, with puts proposed around it (likely the
    // same apply batch).
    const poisonTxn = create(TxnRequestSchema, {
      success: [{ request: { case: "requestPut", value: put("partial") } }, { request: { case: "requestPut", value: put("poison") } }],
    });
    const [a1, txn, a2] = await Promise.allSettled([first.put(put("a1")), first.txn(poisonTxn), first.put(put("a2"))]);
    assert.equal(a1.status, "fulfilled");
    assert.equal(a2.status, "fulfilled");
    assert.equal(txn.status, "rejected");
    const error = txn.reason as RpcError;
    assert.equal(error.code, GrpcCode.INTERNAL);
    assert.match(error.message, /^etcdserver: the request failed to apply and was skipped: injected failure writing key$/);
    await watchEnded; // the state was reloaded from the backend
    assert.deepEqual(await keys(first), ["a0", "a1", "a2"]);
    const revision = first.state.store.currentRevision();
    assert.equal(revision, 4, "the skipped txn took no revision");
    await first.put(put("a3"));
    await first.stop();

    // The same backend (which would fail the txn again): the entry is behind the consistent index.
    const second = await EtcdServer.start({ config, backend });
    teardown(t)(() => second.stop());
    await second.ready();
    assert.deepEqual(await keys(second), ["a0", "a1", "a2", "a3"]);
    await second.put(put("a4"));
    assert.equal(second.state.store.currentRevision(), 6);
  },
);

test("three members skip the same failing entry and stay identical", { timeout: 120_000 }, async (t) => {
  const names = ["a", "b", "c"];
  const peers = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
  const initialCluster = new Map(names.map((n, i) => [n, [peers[i]!]]));
  const servers = await Promise.all(
    names.map(async (name, i) => {
      const dataDir = mkdtempSync(join(tmpdir(), `etcd-ts-apply-failures-${name}-`));
      teardown(t)(() => rmSync(dataDir, { recursive: true, force: true }));
      const config: ServerConfig = {
        ...defaultConfig(name),
        dataDir,
        listenPeerUrls: [peers[i]!],
        initialAdvertisePeerUrls: [peers[i]!],
        initialCluster,
      };
      const server = await EtcdServer.start({ config, backend: limitedBackend(openMemoryBackend(), "poison") });
      teardown(t)(() => server.stop());
      return server;
    }),
  );
  await Promise.all(servers.map((s) => s.ready()));
  const leader = servers.find((s) => s.isLeader()) ?? servers[0]!;
  const poisonTxn = create(TxnRequestSchema, {
    success: [{ request: { case: "requestPut", value: put("partial") } }, { request: { case: "requestPut", value: put("poison") } }],
  });
  const outcomes = await Promise.allSettled([
    leader.put(put("x1")),
    servers[1]!.txn(poisonTxn),
    servers[2]!.put(put("x2")),
    leader.txn(poisonTxn),
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ["fulfilled", "rejected", "fulfilled", "rejected"],
  );
  // Every member applies the same entries (a linearizable read waits for them) and ends identical.
  for (const s of servers) assert.deepEqual(await keys(s), ["x1", "x2"]);
  for (const s of servers) await s.put(put(`after-${s.config.name}`));
  const hashes = await Promise.all(
    servers.map(async (s) => {
      assert.equal((await keys(s)).length, 5);
      return (await s.hashKV(0)).hash;
    }),
  );
  assert.equal(new Set(hashes).size, 1, `equal HashKV on every member: ${hashes.join(", ")}`);
});

test("a committed entry that does not decode changes nothing and the member goes on", { timeout: 60_000 }, async (t) => {
  const config = await memberConfig(t);
  const backend = openMemoryBackend();
  const first = await EtcdServer.start({ config, backend });
  teardown(t)(() => first.stop());
  await first.ready();
  // A txn nested far deeper than any member proposes (written without recursion: protobuf-es' encoder
  // would overflow the stack), and plain garbage.
  (first as unknown as Internals).log.propose(internalRaftRequestBytes(deepTxnBytes(5000)));
  (first as unknown as Internals).log.propose(Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
  await first.put(put("k"));
  await first.stop();
  const second = await EtcdServer.start({ config, backend });
  teardown(t)(() => second.stop());
  await second.ready();
  await second.put(put("k2"));
  assert.deepEqual(await keys(second), ["k", "k2"]);
});

// ---- txn nesting ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function lengthDelimited(field: number, body: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

/** A TxnRequest `levels` deep (each level's success holds the next), the innermost putting "k"; linear time. */
function deepTxnBytes(levels: number): Buffer {
  const core = lengthDelimited(2, lengthDelimited(2, lengthDelimited(1, Buffer.from("k"))));
  const headers: Buffer[] = [];
  let length = core.length;
  for (let i = 1; i < levels; i++) {
    const op = Buffer.concat([varint((4 << 3) | 2), varint(length)]);
    length += op.length;
    const txn = Buffer.concat([varint((2 << 3) | 2), varint(length)]);
    length += txn.length;
    headers.push(op, txn);
  }
  return Buffer.concat([...headers.reverse(), core]);
}

/** InternalRaftRequest { ID: 1, txn: … } (field 1: ID, field 7: txn). */
function internalRaftRequestBytes(txn: Buffer): Uint8Array {
  return Buffer.concat([Buffer.from([0x08, 0x01]), lengthDelimited(7, txn)]);
}

function nestedTxn(levels: number, key: string): TxnRequest {
  let txn = create(TxnRequestSchema, { success: [{ request: { case: "requestPut", value: put(key) } }] });
  for (let i = 1; i < levels; i++) txn = create(TxnRequestSchema, { success: [{ request: { case: "requestTxn", value: txn } }] });
  return txn;
}

test("txns nest as deep as etcd's op budget allows (129 levels by default, at most 256), and apply", { timeout: 60_000 }, async (t) => {
  const backend = openMemoryBackend();
  const server = await EtcdServer.start({ config: await memberConfig(t, { maxTxnOps: 100_000 }), backend });
  teardown(t)(() => server.stop());
  await server.ready();
  const response = await server.txn(nestedTxn(256, "deep"));
  let level = response;
  for (let i = 1; i < 256; i++) {
    const op = level.responses[0]!.response;
    assert.equal(op.case, "responseTxn");
    level = op.value;
  }
  assert.equal(level.responses[0]!.response.case, "responsePut");
  assert.deepEqual(await keys(server), ["deep"]);
  await assert.rejects(server.txn(nestedTxn(257, "deeper")), /etcdserver: too many operations in txn request/);
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { TxnRequestSchema, type TxnRequest } from "@etcd-ts/api";
import { Client, credentials } from "@grpc/grpc-js";
import { etcdctl, tempDir } from "@etcd-ts/test-support";
import { startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * What may enter the raft log, against the built server and, where etcd has the same check, a real etcd
 * 3.4: txn nesting (etcd's op budget), names longer than every engine stores, and the operations that
 * broke with auth on (health probes, alarms).
 */

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * A TxnRequest `levels` deep as bytes, for depths protobuf-es' encoder cannot reach (it recurses): only
 * headers precede the innermost txn, so they are written from the inside out. The innermost puts "k"
 * or is empty.
 */
function nestedTxnBytes(levels: number, emptyInner: boolean): Buffer {
  const field = (no: number, body: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(body.length), body]);
  const core = emptyInner ? Buffer.alloc(0) : field(2, field(2, field(1, Buffer.from("k"))));
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

/** The same txn built with @bufbuild/protobuf, for depths its encoder handles. */
function nestedTxn(levels: number, emptyInner: boolean): TxnRequest {
  let txn = emptyInner
    ? create(TxnRequestSchema)
    : create(TxnRequestSchema, { success: [{ request: { case: "requestPut", value: { key: Buffer.from("k") } } }] });
  for (let i = 1; i < levels; i++) txn = create(TxnRequestSchema, { success: [{ request: { case: "requestTxn", value: txn } }] });
  return txn;
}

/** Sends raw TxnRequest bytes to KV.Txn; "ok" or "<code> <details>". */
function sendTxn(client: Client, bytes: Buffer): Promise<string> {
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      "/etcdserverpb.KV/Txn",
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      (error) => resolve(error ? `${error.code} ${error.details}` : "ok"),
    ),
  );
}

test(
  "nested txns: etcd-ts answers every depth as etcd 3.4 does (accepted up to its op budget, tooManyOps beyond, however deep)",
  { timeout: 120_000 },
  async (t) => {
    const etcd = await startRealEtcd();
    t.after(() => etcd.stop());
    const ours = await startEtcdTs();
    t.after(() => ours.stop());
    const cases: [number, boolean][] = [
      [48, false],
      [49, false],
      [50, false],
      [127, false],
      [128, false],
      [129, false],
      [129, true],
      [130, true],
      [300, false],
      [50_000, false],
    ];
    const answers = async (server: ServerProcess) => {
      const client = new Client(server.endpoint, credentials.createInsecure());
      try {
        const out: string[] = [];
        for (const [levels, empty] of cases) {
          // protobuf-es builds what it can encode; deeper ones are written by hand (the same bytes).
          const bytes = levels <= 300 ? Buffer.from(toBinary(TxnRequestSchema, nestedTxn(levels, empty))) : nestedTxnBytes(levels, empty);
          if (levels <= 300) assert.ok(bytes.equals(nestedTxnBytes(levels, empty)), "hand-written bytes match protobuf-es'");
          out.push(`${levels}${empty ? " empty" : ""}: ${await sendTxn(client, bytes)}`);
        }
        return out;
      } finally {
        client.close();
      }
    };
    const expected = await answers(etcd);
    assert.deepEqual(expected.slice(0, 3), ["48: ok", "49: ok", "50: ok"]);
    assert.equal(expected.at(-1), "50000: 3 etcdserver: too many operations in txn request");
    assert.deepEqual(await answers(ours), expected);
    // The accepted ones were applied: each put "k" once more.
    assert.match(etcdctl(ours.endpoint, ["get", "k", "-w", "json"]).stdout, /"version":5/);
  },
);

for (const engine of ["lmdb", "sqlite"] as const) {
  test(
    `${engine}: a user or role name longer than every engine stores is refused before the log; the member restarts and snapshots`,
    { timeout: 90_000 },
    async (t) => {
      const dataDir = join(tempDir("log-limits"), "member");
      let server = await startEtcdTs({ engine, dataDir });
      t.after(() => server.stop());
      const e = server.endpoint;
      const long = "u".repeat(2000);
      const refused = etcdctl(e, ["user", "add", `${long}:pw`]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /etcdserver: user name is too long \(2000 bytes; at most 1973\)/);
      assert.match(
        etcdctl(e, ["role", "add", "r".repeat(40_000)]).stderr,
        /etcdserver: role name is too long \(40000 bytes; at most 1973\)/,
      );
      assert.equal(etcdctl(e, ["user", "add", `${"u".repeat(1973)}:pw`]).code, 0);
      assert.equal(etcdctl(e, ["put", "k".repeat(40_000), "v"]).code, 0, "a long KV key is a value in the backend, as in etcd");
      await server.stop();
      server = await startEtcdTs({ engine, dataDir, port: server.port, peerPort: server.peerPort });
      assert.equal(etcdctl(e, ["put", "after", "restart"]).code, 0);
      assert.equal(etcdctl(e, ["user", "list"]).stdout, `${"u".repeat(1973)}\n`);
      const file = join(tempDir("log-limits-snap"), "snap.db");
      const saved = etcdctl(e, ["snapshot", "save", file]);
      assert.equal(saved.code, 0, saved.stderr);
    },
  );
}

test(
  "with auth on, /health is true and alarms are listed by any user, as etcd 3.4; NOSPACE is raised from the quota",
  { timeout: 120_000 },
  async (t) => {
    const quota = ["--quota-backend-bytes", String(256 * 1024)];
    const etcd = await startRealEtcd({ extraArgs: quota });
    t.after(() => etcd.stop());
    const ours = await startEtcdTs({ extraArgs: quota });
    t.after(() => ours.stop());
    const observe = async (server: ServerProcess) => {
      const e = server.endpoint;
      for (const args of [
        ["user", "add", "root:rootpw"],
        ["user", "add", "bob:bobpw"],
        ["role", "add", "r1"],
        ["user", "grant-role", "bob", "r1"],
        ["role", "grant-permission", "r1", "readwrite", "big/", "--prefix"],
        ["user", "grant-role", "root", "root"],
        ["auth", "enable"],
      ]) {
        const r = etcdctl(e, args);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      }
      const healthWithAuth = await (await fetch(`http://${e}/health`)).text();
      let refused = "";
      for (let i = 0; i < 100 && refused === ""; i++) {
        const r = etcdctl(e, ["--user", "bob:bobpw", "put", `big/${i % 4}`], "v".repeat(60 * 1024));
        if (r.code !== 0) refused = r.stderr.trim().split("\n").at(-1)!;
      }
      // Raised through the log: wait (bounded) until listed.
      let listed = "";
      for (let i = 0; i < 50 && listed === ""; i++) {
        listed = etcdctl(e, ["--user", "bob:bobpw", "alarm", "list"]).stdout.replace(/memberID:\d+/g, "memberID:M");
        if (listed === "") await new Promise((r) => setTimeout(r, 100));
      }
      const status = etcdctl(e, ["--user", "root:rootpw", "endpoint", "status", "-w", "json"]).stdout;
      const healthWithAlarm = await (await fetch(`http://${e}/health`)).text();
      const disarmed = etcdctl(e, ["--user", "root:rootpw", "alarm", "disarm"]).code;
      const afterDisarm = etcdctl(e, ["--user", "root:rootpw", "alarm", "list"]).stdout;
      return {
        healthWithAuth,
        refused,
        listed,
        statusHasAlarm: /"errors":\["memberID:\d+ alarm:NOSPACE "\]/.test(status),
        healthWithAlarm,
        disarmed,
        afterDisarm,
      };
    };
    const expected = await observe(etcd);
    assert.equal(expected.healthWithAuth, '{"health":"true"}');
    assert.equal(expected.listed, "memberID:M alarm:NOSPACE \n");
    assert.deepEqual(await observe(ours), expected);
  },
);

/**
 * End to end against the real etcd 3.4: two fresh single-member etcds driven in lockstep — the reference
 * answered by etcd's own gateway on its client port, the target by this gateway dialing the other etcd's
 * gRPC port. Every answer (status, content type, body) must be equal after normalising only what differs
 * between two clusters: cluster/member IDs, ports, lease IDs, auth tokens, database sizes, snapshot bytes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { rmSync } from "node:fs";
import { credentials } from "@grpc/grpc-js";
import type { AddressInfo } from "node:net";
import { createGateway, type Gateway } from "./gateway.js";
import { haveEtcd, startEtcd, type EtcdOptions, type EtcdProcess } from "@etcd-ts/test-support";
import { makeCertificates, type TestCertificates } from "./testing/certificates.js";
import { send, websocketSession, type HttpAnswer } from "./testing/http-client.js";

const skip = haveEtcd() ? false : "etcd 3.4 is not installed";

/** Every etcd here is a single member named `conf`, as the conformance harness starts them. */
const conf = (options: EtcdOptions = {}): Promise<EtcdProcess> =>
  startEtcd({ name: "conf", initialClusterToken: "conf", logLevel: "error", ...options });

interface Side {
  readonly name: "reference" | "target";
  readonly etcd: EtcdProcess;
  /** Where this side's JSON gateway answers. */
  readonly url: string;
  readonly clusterId: string;
  readonly memberId: string;
  readonly leases: Map<string, string>;
  readonly tokens: Map<string, string>;
  /** Per-side values a later step needs (a lease ID, a token), as the harness's shell variables. */
  readonly vars: Map<string, string>;
}

interface Pair {
  readonly reference: Side;
  readonly target: Side;
  close(): Promise<void>;
}

async function startPair(gatewayOptions: { cors?: string[] } = {}): Promise<Pair & { gateway: Gateway }> {
  const [referenceEtcd, targetEtcd] = await Promise.all([conf(), conf()]);
  const gateway = createGateway({ target: targetEtcd.endpoint, ...gatewayOptions });
  const server: Server = createServer(gateway.handle); // unbound on purpose: the methods are bound
  server.on("upgrade", gateway.handleUpgrade);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const side = async (name: Side["name"], etcd: EtcdProcess, url: string): Promise<Side> => {
    const status = await send({ url: etcd.clientUrl, method: "POST", path: "/v3/maintenance/status", body: "{}" });
    const header = JSON.parse(status.body) as { header: { cluster_id: string; member_id: string } };
    return {
      name,
      etcd,
      url,
      clusterId: header.header.cluster_id,
      memberId: header.header.member_id,
      leases: new Map(),
      tokens: new Map(),
      vars: new Map(),
    };
  };
  const reference = await side("reference", referenceEtcd, referenceEtcd.clientUrl);
  const target = await side("target", targetEtcd, `http://127.0.0.1:${port}`);
  return {
    reference,
    target,
    gateway,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      gateway.close();
      await Promise.all([referenceEtcd.stop(), targetEtcd.stop()]);
    },
  };
}

/** Replaces what legitimately differs between the two clusters; everything else is compared byte for byte. */
function normalize(side: Side, text: string): string {
  let out = text
    .replaceAll(side.clusterId, "<CLUSTER_ID>")
    .replaceAll(side.memberId, "<MEMBER_ID>")
    .replaceAll(`127.0.0.1:${side.etcd.port}`, "<CLIENT_URL>")
    .replaceAll(`127.0.0.1:${side.etcd.peerPort}`, "<PEER_URL>");
  out = out.replace(/"(ID|lease)":"?(\d+)"?/g, (whole, key: string, id: string) => {
    if (id === "0" || id.length < 6) return whole; // a client-chosen or absent ID is compared as is
    if (!side.leases.has(id)) side.leases.set(id, `<LEASE#${side.leases.size + 1}>`);
    return `"${key}":"${side.leases.get(id)}"`;
  });
  out = out.replace(/"token":"([^"]+)"/g, (_whole, token: string) => {
    if (!side.tokens.has(token)) side.tokens.set(token, `<TOKEN#${side.tokens.size + 1}>`);
    return `"token":"${side.tokens.get(token)}"`;
  });
  out = out.replace(/"(dbSize|dbSizeInUse)":"\d+"/g, '"$1":"<SIZE>"');
  out = out.replace(/"blob":"[^"]*"/g, '"blob":"<BYTES>"').replace(/"remaining_bytes":"\d+"/g, '"remaining_bytes":"<N>"');
  return out;
}

interface Step {
  readonly method?: string;
  readonly path: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly cutAfterMs?: number;
}

type Transcript = { status: number; contentType: string | undefined; body: string };

function transcript(side: Side, answer: HttpAnswer): Transcript {
  return { status: answer.status, contentType: answer.headers["content-type"], body: normalize(side, answer.body) };
}

/** Sends the same request (built per side) to both and asserts equal answers; returns the target's. */
async function same(pair: Pair, build: Step | ((side: Side) => Step)): Promise<Transcript> {
  const stepOf = (side: Side): Step => (typeof build === "function" ? build(side) : build);
  const call = (side: Side): Promise<HttpAnswer> => {
    const step = stepOf(side);
    return send({ url: side.url, method: step.method ?? "POST", ...step });
  };
  const [reference, target] = await Promise.all([call(pair.reference), call(pair.target)]);
  const expected = transcript(pair.reference, reference);
  const actual = transcript(pair.target, target);
  const step = stepOf(pair.target);
  assert.deepEqual(actual, expected, `${step.method ?? "POST"} ${step.path} ${step.body ?? ""}`);
  return actual;
}

/** Runs `steps` on each side in turn order-preserving but without comparing (setup). */
async function onBoth(pair: Pair, build: (side: Side) => Step): Promise<void> {
  await Promise.all([pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", ...build(side) })));
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

function capture(side: Side, answer: string, name: string, pattern: RegExp): void {
  const match = pattern.exec(answer);
  if (match?.[1] !== undefined) side.vars.set(name, match[1]);
}

/** Same as `same`, then remembers a value of each side's raw answer (e.g. a lease ID) as `name`. */
async function sameAndCapture(pair: Pair, step: Step | ((side: Side) => Step), name: string, pattern: RegExp): Promise<void> {
  const stepOf = (side: Side): Step => (typeof step === "function" ? step(side) : step);
  const answers = await Promise.all([pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", ...stepOf(side) })));
  capture(pair.reference, answers[0]!.body, name, pattern);
  capture(pair.target, answers[1]!.body, name, pattern);
  assert.deepEqual(transcript(pair.target, answers[1]!), transcript(pair.reference, answers[0]!));
}

const ID = /"ID":"(\d+)"/;

describe("gateway against etcd 3.4's own gateway", { skip }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair();
  });
  after(async () => {
    await pair?.close();
  });

  test("kv put and range with every option", async () => {
    for (const k of ["c", "a", "b"]) await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64(`r/${k}`)}","value":"${b64(`v${k}`)}"}` });
    await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("r/a")}","value":"${b64("v2")}","prev_kv":true}` });
    const K = b64("r/");
    const E = b64("r0");
    for (const extra of [
      "",
      ',"limit":2',
      ',"sort_order":"DESCEND","sort_target":"MOD"',
      ',"sort_order":2,"sort_target":4',
      ',"sortOrder":"ASCEND","sortTarget":"VALUE"',
      ',"keys_only":true',
      ',"count_only":true',
      ',"revision":3',
      ',"revision":"4","serializable":true',
      ',"min_mod_revision":4,"keys_only":true',
      ',"max_mod_revision":3,"keys_only":true',
      ',"min_create_revision":3,"keys_only":true',
      ',"max_create_revision":2,"keys_only":true',
      ',"rangeEnd":"AA==","limit":"1","keysOnly":true',
    ]) {
      await same(pair, { path: "/v3/kv/range", body: `{"key":"${K}","range_end":"${E}"${extra}}` });
    }
    await same(pair, { path: "/v3/kv/range", body: `{"key":[114,47,97]}` });
  });

  test("kv deleterange with range_end and prev_kv", async () => {
    for (const k of ["a", "b", "c"]) await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64(`d/${k}`)}","value":"${b64(k)}"}` });
    await same(pair, { path: "/v3/kv/deleterange", body: `{"key":"${b64("d/a")}"}` });
    await same(pair, { path: "/v3/kv/deleterange", body: `{"key":"${b64("d/a")}"}` });
    await same(pair, { path: "/v3/kv/deleterange", body: `{"key":"${b64("d/")}","range_end":"${b64("d0")}","prev_kv":true}` });
  });

  test("kv txn with compares, success and failure ops", async () => {
    const A = b64("t/a");
    const B = b64("t/b");
    await same(pair, { path: "/v3/kv/put", body: `{"key":"${A}","value":"${b64("1")}"}` });
    await same(pair, {
      path: "/v3/kv/txn",
      body: `{"compare":[{"key":"${A}","result":"EQUAL","target":"VALUE","value":"${b64("1")}"}],"success":[{"request_put":{"key":"${B}","value":"${b64("yes")}"}},{"request_range":{"key":"${A}"}}],"failure":[{"request_put":{"key":"${B}","value":"${b64("no")}"}}]}`,
    });
    await same(pair, {
      path: "/v3/kv/txn",
      body: `{"compare":[{"key":"${A}","result":"GREATER","target":"VERSION","version":5}],"success":[{"request_delete_range":{"key":"${A}"}}],"failure":[{"request_delete_range":{"key":"${B}","prev_kv":true}}]}`,
    });
    await same(pair, {
      path: "/v3/kv/txn",
      body: `{"compare":[{"key":"${A}","result":"LESS","target":"MOD","mod_revision":"100"},{"key":"${A}","target":"CREATE","result":"NOT_EQUAL","create_revision":0}],"success":[{"request_range":{"key":"${A}","keys_only":true}},{"request_txn":{"success":[{"request_range":{"key":"${A}"}}]}}]}`,
    });
    await same(pair, { path: "/v3/kv/txn", body: "{}" });
    await same(pair, { path: "/v3/kv/txn", body: `{"success":[{"requestPut":null}]}` });
  });

  test("kv txn nested deep: answered in full up to etcd's op budget, too many operations past it", async () => {
    const nested = (levels: number, inner = "{}"): string =>
      `${'{"success":[{"request_txn":'.repeat(levels - 1)}${inner}${"}]}".repeat(levels - 1)}`;
    const range = `{"success":[{"request_range":{"key":"${b64("t/a")}"}}]}`;
    // 60 and 128 levels answer 200 (a range at level 128 is within the budget of --max-txn-ops 128); the answers nest deeper than protobuf-es' default decode limit.
    for (const levels of [60, 128]) assert.equal((await same(pair, { path: "/v3/kv/txn", body: nested(levels, range) })).status, 200);
    // Past the budget etcd answers 400 tooManyOps; the deeper ones are past what protobuf-es can encode.
    for (const levels of [130, 600, 1000, 2000, 3000]) {
      const answer = await same(pair, { path: "/v3/kv/txn", body: nested(levels) });
      assert.equal(
        answer.body,
        `{"error":"etcdserver: too many operations in txn request","message":"etcdserver: too many operations in txn request","code":3}`,
      );
    }
  });

  test("JSON typing: int64 as string or number, enums by name or number, Go's error texts", async () => {
    const a = b64("j/a");
    for (const body of [
      `{"key":"${a}","limit":"1"}`,
      `{"key":"${a}","limit":1.5}`,
      `{"key":"${a}","limit":"x"}`,
      `{"key":"${a}","limit":""}`,
      `{"key":"${a}","limit":true}`,
      `{"key":"${a}","limit":99999999999999999999}`,
      `{"key":"${a}","sort_order":"NOPE"}`,
      `{"key":"${a}","sort_order":"2"}`,
      `{"key":"${a}","sort_order":1.5}`,
      `{"key":"${a}","keys_only":"true"}`,
      `{"key":"${a}","keys_only":null}`,
      `{"key":"YQ"}`,
      `{"key":"YQ=x"}`,
      `{"key":7}`,
      `{"key":[256]}`,
      `{"key":"${a}","unknown_field":1}`,
      `[]`,
      `"x"`,
      `null`,
      ``,
      `{"key":"${a}"} trailing garbage`,
      `{"key":"${a}",}`,
      `{"key":tru}`,
      `{"key":"${a}"`,
      `{"key":"\\u00zz"}`,
    ]) {
      await same(pair, { path: "/v3/kv/range", body });
    }
  });

  test("errors: bad JSON, empty key, future revision, lease not found, wrong method, unknown path", async () => {
    await same(pair, { path: "/v3/kv/put", body: "{not json" });
    await same(pair, { path: "/v3/kv/put", body: `{"key":"!!notbase64"}` });
    await same(pair, { path: "/v3/kv/put", body: `{"value":"dg=="}` });
    await same(pair, { path: "/v3/kv/range", body: "{}" });
    await same(pair, { path: "/v3/kv/range", body: `{"key":"${b64("e/a")}","revision":999999}` });
    await same(pair, { method: "GET", path: "/v3/kv/range" });
    await same(pair, { method: "PUT", path: "/v3/kv/put", body: `{"key":"${b64("e/a")}","value":"dg=="}` });
    await same(pair, { method: "DELETE", path: "/v3/watch" });
    await same(pair, { path: "/v3/kv/nosuch", body: "{}" });
    await same(pair, { path: "/v3/kv/range:verb", body: "{}" });
    await same(pair, { path: "/v3/kv/range/", body: "{}" });
    await same(pair, { path: "/v3/lease/revoke", body: `{"ID":"1"}` });
    await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("e/a")}","value":"dg==","lease":"99"}` });
    await same(pair, { path: "/v3/kv/range", body: "{}", headers: { "grpc-timeout": "bogus" } });
    await same(pair, {
      path: "/v3/kv/range",
      body: `{"key":"${b64("e/a")}"}`,
      headers: { "content-type": "application/x-www-form-urlencoded", "x-http-method-override": "GET" },
    });
  });

  test("plain HTTP: redirects, 404 outside /v3, OPTIONS, /v3beta rewrite, /v3alpha not served", async () => {
    await same(pair, { method: "GET", path: "/v3" });
    await same(pair, { method: "POST", path: "/v3" });
    await same(pair, { method: "POST", path: "/v3//kv/range", body: "{}" });
    await same(pair, { method: "POST", path: "/v3/kv/../kv/range?x=1", body: "{}" });
    await same(pair, { method: "GET", path: "/v3/does/not/exist" });
    await same(pair, { method: "GET", path: "/nothing-here" });
    await same(pair, { method: "OPTIONS", path: "/v3/kv/range" });
    await same(pair, { method: "POST", path: "/v3beta/kv/put", body: `{"key":"${b64("b/a")}","value":"${b64("beta")}"}` });
    await same(pair, { method: "POST", path: "/v3beta/kv/range", body: `{"key":"${b64("b/a")}"}` });
    await same(pair, { method: "POST", path: "/v3beta/maintenance/status", body: "{}" });
    await same(pair, { method: "POST", path: "/v3alpha/kv/put", body: `{"key":"${b64("b/b")}","value":"${b64("alpha")}"}` });
  });

  test("CORS headers as etcd's default --cors='*' writes them", async () => {
    const headers = async (url: string): Promise<string> => {
      const answer = await send({ url, method: "OPTIONS", path: "/v3/kv/range", headers: { origin: "http://example.com" } });
      return ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"]
        .map((h) => `${h}: ${String(answer.headers[h])}`)
        .join("\n");
    };
    assert.equal(await headers(pair.target.url), await headers(pair.reference.url));
  });

  test("cluster member list, maintenance status/hash/alarm/defragment", async () => {
    await same(pair, { path: "/v3/cluster/member/list", body: "{}" });
    await same(pair, { path: "/v3/cluster/member/list", body: "" });
    await same(pair, { path: "/v3/maintenance/status", body: "{}" });
    await same(pair, { path: "/v3/maintenance/alarm", body: `{"action":"GET"}` });
    await same(pair, { path: "/v3/maintenance/defragment", body: "{}" });
    await same(pair, { path: "/v3/cluster/member/remove", body: `{"ID":"1"}` });
    await same(pair, { path: "/v3/cluster/member/promote", body: `{"ID":"1"}` });
    await same(pair, { path: "/v3/maintenance/transfer-leadership", body: `{"targetID":"1"}` });
  });

  test("lease grant / timetolive / revoke, the /v3/kv/lease aliases and client-chosen IDs", async () => {
    await sameAndCapture(pair, { path: "/v3/lease/grant", body: `{"TTL":60}` }, "lease", ID);
    const id = (side: Side): string => side.vars.get("lease")!;
    await same(pair, (s) => ({ path: "/v3/kv/put", body: `{"key":"${b64("l/a")}","value":"${b64("v")}","lease":"${id(s)}"}` }));
    await same(pair, (s) => ({ path: "/v3/lease/timetolive", body: `{"ID":"${id(s)}","keys":true}` }));
    await same(pair, (s) => ({ path: "/v3/kv/lease/timetolive", body: `{"ID":${id(s)}}` }));
    await same(pair, (s) => ({ path: "/v3/lease/revoke", body: `{"ID":"${id(s)}"}` }));
    await same(pair, (s) => ({ path: "/v3/kv/lease/revoke", body: `{"ID":"${id(s)}"}` }));
    await same(pair, (s) => ({ path: "/v3/lease/timetolive", body: `{"ID":"${id(s)}"}` }));
    await same(pair, { path: "/v3/kv/range", body: `{"key":"${b64("l/a")}"}` });
    await same(pair, { path: "/v3/lease/grant", body: `{"TTL":30,"ID":"4242424242"}` });
    await same(pair, { path: "/v3/lease/grant", body: `{"TTL":30,"ID":4242424242}` });
    await same(pair, { path: "/v3/lease/timetolive", body: `{"ID":"4242424242"}` });
    await same(pair, { path: "/v3/lease/revoke", body: `{"ID":"4242424242"}` });
  });

  test("lease keepalive stream", async () => {
    await sameAndCapture(pair, { path: "/v3/lease/grant", body: `{"TTL":60}` }, "ka", ID);
    await same(pair, (s) => ({
      path: "/v3/lease/keepalive",
      body: `{"ID":"${s.vars.get("ka")}"}\n{"ID":"${s.vars.get("ka")}"}`,
      cutAfterMs: 1500,
    }));
    await same(pair, { path: "/v3/lease/keepalive", body: `{"ID":"123"}`, cutAfterMs: 1500 });
    await same(pair, { path: "/v3/lease/keepalive", body: `{"ID":"x"}`, cutAfterMs: 1500 });
    await same(pair, (s) => ({ path: "/v3/lease/revoke", body: `{"ID":"${s.vars.get("ka")}"}` }));
  });

  test("watch stream: historical replay, prev_kv, several requests in one body, bad requests", async () => {
    const put = (k: string, v: string) => same(pair, { path: "/v3/kv/put", body: `{"key":"${b64(k)}","value":"${b64(v)}"}` });
    const { body } = await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("w/a")}","value":"${b64("1")}"}` });
    const start = Number(/"revision":"(\d+)"/.exec(body)![1]);
    await put("w/a", "2");
    await same(pair, { path: "/v3/kv/deleterange", body: `{"key":"${b64("w/a")}"}` });
    const cut = 1500;
    await same(pair, { path: "/v3/watch", body: `{"create_request":{"key":"${b64("w/a")}","start_revision":${start}}}`, cutAfterMs: cut });
    await same(pair, {
      path: "/v3/watch",
      body: `{"create_request":{"key":"${b64("w/")}","range_end":"${b64("w0")}","start_revision":"${start + 1}","prev_kv":true}}`,
      cutAfterMs: cut,
    });
    // The replayed events come from etcd's 100 ms sync loop, the duplicate-ID refusal at once: their order
    // is etcd's own race, so these two lines are compared as a set.
    const lines = async (): Promise<string[][]> => {
      const body = `{"create_request":{"key":"${b64("w/a")}","start_revision":${start},"watch_id":7}}\n{"create_request":{"key":"${b64("w/a")}","watch_id":7}}`;
      const answers = await Promise.all(
        [pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", path: "/v3/watch", body, cutAfterMs: cut })),
      );
      return [pair.reference, pair.target].map((side, i) => transcript(side, answers[i]!).body.split("\n").sort());
    };
    const [referenceLines, targetLines] = await lines();
    assert.deepEqual(targetLines, referenceLines);
    await same(pair, { path: "/v3/watch", body: `{"bogus_request":{}}`, cutAfterMs: 800 });
    await same(pair, { path: "/v3/watch", body: `{bad`, cutAfterMs: 800 });
    await same(pair, { path: "/v3/watch", body: `{"create_request":{"key":"${b64("w/a")}","filters":["NOPE"]}}`, cutAfterMs: 800 });
    await same(pair, { path: "/v3/watch", body: "", cutAfterMs: 800 });
    await same(pair, {
      path: "/v3beta/watch",
      body: `{"create_request":{"key":"${b64("w/a")}","start_revision":${start}}} {bad`,
      cutAfterMs: cut,
    });
  });

  test("watch stream: progress and cancel requests", async () => {
    const { body } = await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("p/a")}","value":"${b64("1")}"}` });
    const rev = Number(/"revision":"(\d+)"/.exec(body)![1]);
    const key = b64("p/a");
    // Created, then the progress notification: each side answers the first before the next arrives.
    await same(pair, {
      path: "/v3/watch",
      body: `{"create_request":{"key":"${key}","start_revision":${rev + 1}}}\n{"progress_request":{}}\n{"cancel_request":{"watch_id":0}}`,
      cutAfterMs: 1500,
    });
  });

  test("watch stream: live events with the NODELETE filter", async () => {
    const watch = (side: Side) =>
      send({
        url: side.url,
        method: "POST",
        path: "/v3/watch",
        body: `{"create_request":{"key":"${b64("lv/")}","range_end":"${b64("lv0")}","filters":["NODELETE"]}}`,
        cutAfterMs: 2500,
      });
    const streams = Promise.all([watch(pair.reference), watch(pair.target)]);
    await new Promise((r) => setTimeout(r, 500));
    await onBoth(pair, () => ({ path: "/v3/kv/put", body: `{"key":"${b64("lv/a")}","value":"${b64("1")}"}` }));
    await onBoth(pair, () => ({ path: "/v3/kv/deleterange", body: `{"key":"${b64("lv/a")}"}` }));
    await onBoth(pair, () => ({ path: "/v3/kv/put", body: `{"key":"${b64("lv/b")}","value":"${b64("<&>")}"}` }));
    const [reference, target] = await streams;
    assert.match(target.body, /"created":true/);
    assert.deepEqual(transcript(pair.target, target), transcript(pair.reference, reference));
  });

  test("websocket mode: watch and unary calls over a websocket, refused handshakes", async () => {
    const { body } = await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("ws/a")}","value":"${b64("1")}"}` });
    const rev = Number(/"revision":"(\d+)"/.exec(body)![1]);
    const session = async (path: string, messages: string[], cut: number, headers?: Record<string, string>) => {
      const [reference, target] = await Promise.all(
        [pair.reference, pair.target].map((side) => websocketSession(side.url, path, messages, cut, headers)),
      );
      const view = (side: Side, s: Awaited<ReturnType<typeof websocketSession>>) => ({
        statusLine: s.statusLine,
        messages: s.messages.map((m) => normalize(side, m)),
        refusal: s.refusal?.split("\r\n\r\n")[1],
      });
      assert.deepEqual(view(pair.target, target!), view(pair.reference, reference!), `${path} ${messages.join(" ")}`);
      return target!;
    };
    const watched = await session(
      "/v3/watch",
      [`{"create_request":{"key":"${b64("ws/a")}","start_revision":${rev}}}`, `{"progress_request":{}}`],
      1200,
    );
    assert.equal(watched.messages.length, 3);
    await session("/v3beta/watch", [`{"create_request":{"key":"${b64("ws/a")}","start_revision":${rev}}}`], 1000);
    await session("/v3/kv/range", [`{"key":"${b64("ws/a")}"}`], 2000);
    await session("/v3/kv/range", [`{"key":`, `}`], 2000);
    await session("/v3/kv/range", [`{bad`], 2000);
    await session("/v3/kv/range", [], 2000, { "Sec-WebSocket-Version": "12" });
    await session("/v3/kv/range", [], 2000, { "X-Test-Method": "POST" });
  });

  test("v3lock and v3election routes", async () => {
    await sameAndCapture(pair, { path: "/v3/lease/grant", body: `{"TTL":60}` }, "owner", ID);
    const lease = (s: Side) => s.vars.get("owner")!;
    // Lock and leader keys are `<name>/<lease ID in hex>`: compared with the lease ID normalised.
    const keyOf = (s: Side, name: string) => b64(`${name}/${BigInt(lease(s)).toString(16)}`);
    const sameKeys = async (build: (side: Side) => Step): Promise<void> => {
      const answers = await Promise.all(
        [pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", ...build(side) })),
      );
      const view = (side: Side, a: HttpAnswer) => {
        const t = transcript(side, a);
        return { ...t, body: t.body.replaceAll(keyOf(side, "lk"), "<LOCK_KEY>").replaceAll(keyOf(side, "el"), "<LEADER_KEY>") };
      };
      assert.deepEqual(view(pair.target, answers[1]!), view(pair.reference, answers[0]!), build(pair.target).path);
    };
    await sameKeys((s) => ({ path: "/v3/lock/lock", body: `{"name":"${b64("lk")}","lease":"${lease(s)}"}` }));
    await sameKeys((s) => ({ path: "/v3/lock/unlock", body: `{"key":"${keyOf(s, "lk")}"}` }));
    await sameKeys((s) => ({
      path: "/v3/election/campaign",
      body: `{"name":"${b64("el")}","lease":"${lease(s)}","value":"${b64("v1")}"}`,
    }));
    await sameKeys(() => ({ path: "/v3/election/leader", body: `{"name":"${b64("el")}"}` }));
    const leader = (s: Side) => `{"name":"${b64("el")}","key":"${keyOf(s, "el")}","lease":"${lease(s)}","rev":"0"}`;
    await sameKeys((s) => ({ path: "/v3/election/proclaim", body: `{"leader":${leader(s)},"value":"${b64("v2")}"}` }));
    await sameKeys(() => ({ path: "/v3/election/observe", body: `{"name":"${b64("el")}"}`, cutAfterMs: 1000 }));
    await sameKeys((s) => ({ path: "/v3/election/resign", body: `{"leader":${leader(s)}}` }));
    await sameKeys(() => ({ path: "/v3/election/leader", body: `{"name":"${b64("el")}"}` }));
    await sameKeys((s) => ({ path: "/v3/lease/revoke", body: `{"ID":"${lease(s)}"}` }));
  });

  test("maintenance snapshot stream", async () => {
    await same(pair, { path: "/v3/maintenance/snapshot", body: "{}", cutAfterMs: 5000 });
  });

  test("compaction, then reads below it", async () => {
    const { body } = await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("c/a")}","value":"${b64("1")}"}` });
    const rev = Number(/"revision":"(\d+)"/.exec(body)![1]);
    await same(pair, { path: "/v3/kv/compaction", body: `{"revision":"${rev}","physical":true}` });
    await same(pair, { path: "/v3/kv/compaction", body: `{"revision":"${rev}"}` });
    await same(pair, { path: "/v3/kv/range", body: `{"key":"${b64("c/a")}","revision":"${rev - 1}"}` });
    await same(pair, { path: "/v3/watch", body: `{"create_request":{"key":"${b64("c/a")}","start_revision":1}}`, cutAfterMs: 1000 });
  });
});

describe("gateway auth against etcd 3.4's own gateway", { skip }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair();
  });
  after(async () => {
    await pair?.close();
  });

  test("admin calls without auth enabled", async () => {
    const k = b64("a/k");
    for (const [path, body] of [
      ["/v3/auth/user/add", `{"name":"u","password":"p"}`],
      ["/v3/auth/user/add", `{"name":"u","password":"p"}`],
      ["/v3/auth/user/add", `{"name":"np","options":{"no_password":true}}`],
      ["/v3/auth/user/add", `{"name":"<odd&name>","password":"p"}`],
      ["/v3/auth/role/add", `{"name":"r"}`],
      ["/v3/auth/role/grant", `{"name":"r","perm":{"permType":"READ","key":"${k}"}}`],
      ["/v3/auth/user/grant", `{"user":"u","role":"r"}`],
      ["/v3/auth/user/list", "{}"],
      ["/v3/auth/role/list", "{}"],
      ["/v3/auth/user/get", `{"name":"u"}`],
      ["/v3/auth/role/get", `{"role":"r"}`],
      ["/v3/auth/user/changepw", `{"name":"u","password":"p2"}`],
      ["/v3/auth/role/revoke", `{"role":"r","key":"${k}"}`],
      ["/v3/auth/user/revoke", `{"name":"u","role":"r"}`],
      ["/v3/auth/user/delete", `{"name":"u"}`],
      ["/v3/auth/user/delete", `{"name":"<odd&name>"}`],
      ["/v3/auth/role/delete", `{"role":"r"}`],
      ["/v3/auth/user/get", `{"name":"u"}`],
      ["/v3/auth/enable", "{}"],
    ] as const) {
      await same(pair, { path, body });
    }
  });

  test("enable, authenticate, use the token through Authorization, disable", async () => {
    const prefix = b64("f/");
    for (const [path, body] of [
      ["/v3/auth/user/add", `{"name":"root","password":"rootpw"}`],
      ["/v3/auth/role/add", `{"name":"root"}`],
      ["/v3/auth/user/grant", `{"user":"root","role":"root"}`],
      ["/v3/auth/user/add", `{"name":"fu","password":"upw"}`],
      ["/v3/auth/role/add", `{"name":"fr"}`],
      ["/v3/auth/role/grant", `{"name":"fr","perm":{"permType":"READWRITE","key":"${prefix}","range_end":"${b64("f0")}"}}`],
      ["/v3/auth/user/grant", `{"user":"fu","role":"fr"}`],
      ["/v3/auth/enable", "{}"],
      ["/v3/kv/range", `{"key":"${b64("f/a")}"}`],
      ["/v3/auth/authenticate", `{"name":"fu","password":"wrong"}`],
    ] as const) {
      await same(pair, { path, body });
    }
    const TOKEN = /"token":"([^"]+)"/;
    await sameAndCapture(pair, { path: "/v3/auth/authenticate", body: `{"name":"fu","password":"upw"}` }, "token", TOKEN);
    const as = (s: Side) => ({ authorization: s.vars.get("token")! });
    await same(pair, (s) => ({ path: "/v3/kv/put", body: `{"key":"${b64("f/a")}","value":"${b64("v")}"}`, headers: as(s) }));
    await same(pair, (s) => ({ path: "/v3/kv/range", body: `{"key":"${b64("f/a")}"}`, headers: as(s) }));
    await same(pair, (s) => ({ path: "/v3/kv/range", body: `{"key":"${b64("other")}"}`, headers: as(s) }));
    await same(pair, { path: "/v3/kv/range", body: `{"key":"${b64("f/a")}"}`, headers: { authorization: "bogus-token" } });
    await same(pair, { path: "/v3/watch", body: `{"create_request":{"key":"${b64("f/a")}"}}`, cutAfterMs: 800 });
    await same(pair, { path: "/v3/maintenance/snapshot", body: "{}", cutAfterMs: 2000 });
    await sameAndCapture(pair, { path: "/v3/auth/authenticate", body: `{"name":"root","password":"rootpw"}` }, "root", TOKEN);
    const asRoot = (s: Side) => ({ authorization: s.vars.get("root")! });
    await same(pair, (s) => ({ path: "/v3/auth/user/list", body: "{}", headers: asRoot(s) }));
    await same(pair, (s) => ({ path: "/v3/auth/role/get", body: `{"role":"fr"}`, headers: asRoot(s) }));
    await same(pair, (s) => ({ path: "/v3/auth/user/get", body: `{"name":"fu"}`, headers: asRoot(s) }));
    await same(pair, (s) => ({ path: "/v3/auth/disable", body: "{}", headers: asRoot(s) }));
    await same(pair, { path: "/v3/kv/range", body: `{"key":"${b64("f/a")}"}` });
  });
});

describe("gateway lease list against etcd 3.4's own gateway", { skip }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair();
  });
  after(async () => {
    await pair?.close();
  });

  test("/v3/lease/leases and /v3/kv/lease/leases", async () => {
    await same(pair, { path: "/v3/lease/leases", body: "{}" });
    await same(pair, { path: "/v3/lease/grant", body: `{"TTL":100}` });
    await same(pair, { path: "/v3/lease/grant", body: `{"TTL":200}` });
    // The order of etcd's lease list comes from a Go map: compare the status and the number of leases.
    const list = async (path: string): Promise<void> => {
      const answers = await Promise.all(
        [pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", path, body: "{}" })),
      );
      const shape = (a: HttpAnswer) => [a.status, a.headers["content-type"], (a.body.match(/"ID":"\d+"/g) ?? []).length];
      assert.deepEqual(shape(answers[1]!), shape(answers[0]!));
    };
    await list("/v3/lease/leases");
    await list("/v3/kv/lease/leases");
  });
});

describe("gateway CORS option", { skip }, () => {
  const allowed = "http://allowed.example:8080";
  let etcd: EtcdProcess;
  let gateway: Gateway;
  let server: Server;
  let url: string;
  before(async () => {
    etcd = await conf({ extraArgs: ["--cors", allowed, "--host-whitelist", "127.0.0.1,allowed.example"] });
    gateway = createGateway({ target: etcd.endpoint, cors: [allowed], hostWhitelist: ["127.0.0.1", "allowed.example"] });
    server = createServer((req, res) => gateway.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    server?.close();
    gateway?.close();
    await etcd?.stop();
  });

  test("only a listed origin gets Access-Control-Allow-Origin, and it is echoed", async () => {
    const view = (a: HttpAnswer) => [
      a.status,
      a.headers["access-control-allow-origin"],
      a.headers["access-control-allow-methods"],
      a.headers["access-control-allow-headers"],
    ];
    for (const origin of [allowed, "http://other.example"]) {
      for (const method of ["OPTIONS", "POST"]) {
        const call = { method, path: "/v3/kv/range", body: method === "POST" ? `{"key":"YQ=="}` : undefined, headers: { origin } };
        const reference = await send({ url: etcd.clientUrl, ...call });
        const target = await send({ url, ...call });
        assert.deepEqual(view(target), view(reference), `${method} from ${origin}`);
        assert.equal(target.body, reference.body); // one etcd behind both gateways
      }
    }
  });

  test("with a fallback, paths outside /v3/ go to it, behind the same access control", async () => {
    const fronted = createGateway({
      target: etcd.endpoint,
      cors: [allowed],
      hostWhitelist: ["127.0.0.1"],
      fallback: (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("member");
      },
    });
    const frontServer = createServer(fronted.handle);
    await new Promise<void>((resolve) => frontServer.listen(0, "127.0.0.1", resolve));
    const frontUrl = `http://127.0.0.1:${(frontServer.address() as AddressInfo).port}`;
    try {
      const health = await send({ url: frontUrl, method: "GET", path: "/health", headers: { origin: allowed } });
      assert.deepEqual([health.status, health.body, health.headers["access-control-allow-origin"]], [200, "member", allowed]);
      const preflight = await send({ url: frontUrl, method: "OPTIONS", path: "/health" });
      assert.deepEqual([preflight.status, preflight.body], [200, ""]);
      const rebinding = await send({ url: frontUrl, method: "GET", path: "/health", headers: { host: "evil.example" } });
      assert.equal(rebinding.status, 421);
      const unclean = await send({ url: frontUrl, method: "GET", path: "/x/../health" });
      assert.deepEqual([unclean.status, unclean.headers.location], [301, "/health"]);
    } finally {
      frontServer.closeAllConnections();
      frontServer.close();
      fronted.close();
    }
  });

  test("serveV3alpha also serves /v3alpha/ (etcd 3.4 answers it 404)", async () => {
    const alpha = createGateway({ target: etcd.endpoint, serveV3alpha: true });
    const alphaServer = createServer(alpha.handle);
    await new Promise<void>((resolve) => alphaServer.listen(0, "127.0.0.1", resolve));
    const alphaUrl = `http://127.0.0.1:${(alphaServer.address() as AddressInfo).port}`;
    try {
      const call = { method: "POST", path: "/v3alpha/kv/range", body: `{"key":"YQ=="}` };
      const viaAlpha = await send({ url: alphaUrl, ...call });
      const viaV3 = await send({ url: alphaUrl, ...call, path: "/v3/kv/range" });
      assert.deepEqual([viaAlpha.status, viaAlpha.body], [viaV3.status, viaV3.body]);
      const reference = await send({ url: etcd.clientUrl, ...call });
      assert.deepEqual([reference.status, reference.body], [404, "404 page not found\n"]);
    } finally {
      alphaServer.closeAllConnections();
      alphaServer.close();
      alpha.close();
    }
  });

  test("a Host outside --host-whitelist is refused (421) on plain HTTP", async () => {
    for (const host of ["evil.example:2379", "allowed.example:1", "[::1]:2379"]) {
      const call = { method: "POST", path: "/v3/kv/range", body: `{"key":"YQ=="}`, headers: { host } };
      const reference = await send({ url: etcd.clientUrl, ...call });
      const target = await send({ url, ...call });
      assert.deepEqual(
        [target.status, target.headers["content-type"], target.body],
        [reference.status, reference.headers["content-type"], reference.body],
        host,
      );
    }
  });
});

describe("gateway cluster membership and alarms against etcd 3.4's own gateway", { skip }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair();
  });
  after(async () => {
    await pair?.close();
  });

  /** `"members"` come sorted by random member IDs: compare them as a set (each member still byte for byte). */
  const sameMembers = async (step: Step | ((side: Side) => Step)): Promise<void> => {
    const stepOf = (side: Side): Step => (typeof step === "function" ? step(side) : step);
    const answers = await Promise.all(
      [pair.reference, pair.target].map((side) => send({ url: side.url, method: "POST", ...stepOf(side) })),
    );
    const sortMembers = (t: Transcript): Transcript => ({
      ...t,
      body: t.body.replace(
        /"members":\[(.*)\]/,
        (_m, list: string) =>
          `"members":[${list
            .split(/,(?=\{"ID")/)
            .sort()
            .join(",")}]`,
      ),
    });
    assert.deepEqual(sortMembers(transcript(pair.target, answers[1]!)), sortMembers(transcript(pair.reference, answers[0]!)));
  };

  test("member add (learner) / update / promote / remove, alarms", async () => {
    // A learner at an address nothing listens on (never promoted, so quorum stays with the one member).
    const added = await Promise.all(
      [pair.reference, pair.target].map((side) =>
        send({
          url: side.url,
          method: "POST",
          path: "/v3/cluster/member/add",
          body: `{"peerURLs":["http://127.0.0.2:7"],"isLearner":true}`,
        }),
      ),
    );
    const MEMBER = /"member":\{"ID":"(\d+)"/;
    capture(pair.reference, added[0]!.body, "learner", MEMBER);
    capture(pair.target, added[1]!.body, "learner", MEMBER);
    const withoutMembers = (side: Side, a: HttpAnswer) => ({
      ...transcript(side, a),
      body: transcript(side, a).body.replace(/"members":\[.*\]/, ""),
    });
    assert.deepEqual(withoutMembers(pair.target, added[1]!), withoutMembers(pair.reference, added[0]!));
    await sameMembers({ path: "/v3/cluster/member/list", body: "{}" });
    await same(pair, (s) => ({ path: "/v3/cluster/member/promote", body: `{"ID":"${s.vars.get("learner")}"}` }));
    await sameMembers((s) => ({
      path: "/v3/cluster/member/update",
      body: `{"ID":"${s.vars.get("learner")}","peerURLs":["http://127.0.0.2:1"]}`,
    }));
    await same(pair, { path: "/v3/cluster/member/add", body: `{"peerURLs":["not a url"]}` });
    await sameMembers((s) => ({ path: "/v3/cluster/member/remove", body: `{"ID":"${s.vars.get("learner")}"}` }));
    await sameMembers((s) => ({ path: "/v3/cluster/member/remove", body: `{"ID":"${s.vars.get("learner")}"}` }));
    await sameMembers({ path: "/v3/cluster/member/list", body: "{}" });
    await same(pair, { path: "/v3/maintenance/alarm", body: `{"action":"ACTIVATE","memberID":"1","alarm":"NOSPACE"}` });
    await same(pair, { path: "/v3/maintenance/alarm", body: `{"action":"GET"}` });
    await same(pair, { path: "/v3/kv/put", body: `{"key":"${b64("x")}","value":"${b64("y")}"}` });
    await same(pair, { path: "/v3/maintenance/alarm", body: `{"action":"DEACTIVATE","memberID":"1","alarm":"NOSPACE"}` });
    // Not `{"action":1}` (ACTIVATE without an alarm type): etcd 3.4.23 panics on it.
    await same(pair, { path: "/v3/maintenance/alarm", body: `{"action":"BOGUS"}` });
  });
});

describe("gateway over TLS with --client-cert-auth against etcd 3.4's own gateway", { skip }, () => {
  let certs: TestCertificates;
  let etcd: EtcdProcess;
  let gateway: Gateway;
  let server: ReturnType<typeof createHttpsServer>;
  let url: string;
  let authEnabled = false;
  before(async () => {
    certs = makeCertificates();
    etcd = await conf({
      extraArgs: [
        "--cert-file",
        certs.server.certFile,
        "--key-file",
        certs.server.keyFile,
        "--trusted-ca-file",
        certs.caFile,
        "--client-cert-auth",
      ],
      tls: { cacert: certs.caFile, cert: certs.server.certFile, key: certs.server.keyFile },
    });
    // As etcd dials itself: its own certificate, the server name not checked.
    gateway = createGateway({
      target: etcd.endpoint,
      credentials: credentials.createSsl(Buffer.from(certs.ca), Buffer.from(certs.server.key), Buffer.from(certs.server.cert), {
        checkServerIdentity: () => undefined,
      }),
      clientCertAuth: true,
      isAuthEnabled: () => authEnabled,
    });
    server = createHttpsServer(
      { ca: certs.ca, cert: certs.server.cert, key: certs.server.key, requestCert: true, rejectUnauthorized: true },
      (req, res) => gateway.handle(req, res),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    server?.close();
    gateway?.close();
    await etcd?.stop();
    if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
  });

  test("a CommonName client certificate is refused once auth is on; requests go through the TLS connection", async () => {
    const anonymous = { ca: certs.ca, ...certs.anonymous };
    const root = { ca: certs.ca, ...certs.root };
    const both = async (path: string, body: string, tls: typeof anonymous, note: string): Promise<void> => {
      const reference = await send({ url: etcd.clientUrl, method: "POST", path, body, tls });
      const target = await send({ url, method: "POST", path, body, tls });
      const view = (a: HttpAnswer) => ({
        status: a.status,
        type: a.headers["content-type"],
        body: a.body.replace(/"(cluster_id|member_id)":"\d+"/g, ""),
      });
      assert.deepEqual(view(target), view(reference), note);
    };
    // One etcd behind both gateways: writes go once, through etcd's own gateway; reads are compared.
    for (const [path, body] of [
      ["/v3/auth/user/add", `{"name":"root","password":"pw"}`],
      ["/v3/auth/role/add", `{"name":"root"}`],
      ["/v3/auth/user/grant", `{"user":"root","role":"root"}`],
      ["/v3/kv/put", `{"key":"YQ==","value":"dg=="}`],
    ] as const) {
      assert.equal((await send({ url: etcd.clientUrl, method: "POST", path, body, tls: anonymous })).status, 200, path);
    }
    await both("/v3/auth/user/get", `{"name":"root"}`, anonymous, "through the TLS connection");
    await both("/v3/kv/range", `{"key":"YQ=="}`, root, "CN before auth");
    await send({ url: etcd.clientUrl, method: "POST", path: "/v3/auth/enable", body: "{}", tls: anonymous });
    authEnabled = true;
    await both("/v3/kv/range", `{"key":"YQ=="}`, root, "CN with auth on");
    await both("/v3/kv/range", `{"key":"YQ=="}`, anonymous, "no CN with auth on");
    await both("/nothing-here", "", root, "CN outside /v3/");
  });
});

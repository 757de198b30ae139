import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startEtcdTs, startRealEtcd, type ServerProcess } from "./processes.js";

/**
 * The JSON gateway of the built binary at its limits, side by side with etcd 3.4 (both with
 * --max-request-bytes 4096, so the gRPC limit is 4096 + 512 KiB = 528384): deep JSON answers as etcd's
 * does and leaves the process serving; an oversized body gets etcd's status and code (429,
 * ResourceExhausted), refused by etcd-ts while it is read rather than after.
 */
describe("gateway limits of the binary against etcd 3.4", () => {
  let ours: ServerProcess;
  let theirs: ServerProcess;
  before(async () => {
    [ours, theirs] = await Promise.all([
      startEtcdTs({ extraArgs: ["--max-request-bytes", "4096"] }),
      startRealEtcd({ extraArgs: ["--max-request-bytes", "4096"] }),
    ]);
  });
  after(async () => {
    await Promise.all([ours?.stop(), theirs?.stop()]);
  });

  const post = async (
    server: ServerProcess,
    path: string,
    body: string,
  ): Promise<{ status: number; body: string; connection: string | null }> => {
    const response = await fetch(`http://${server.endpoint}${path}`, { method: "POST", body, signal: AbortSignal.timeout(60_000) });
    return { status: response.status, body: await response.text(), connection: response.headers.get("connection") };
  };

  test("deep nesting: 6000 deep is ignored (200), 10000 deep is Go's depth error (400), the member keeps serving", async () => {
    const deep = (n: number): string => `{"key":"YQ==","zz":${"[".repeat(n)}${"]".repeat(n)}}`;
    for (const n of [6000, 10000]) {
      const [a, b] = await Promise.all([post(ours, "/v3/kv/range", deep(n)), post(theirs, "/v3/kv/range", deep(n))]);
      assert.equal(a.status, b.status, `${n}: ${a.body.slice(0, 200)}`);
      if (a.status !== 200) assert.equal(a.body, b.body);
    }
    const put = await post(ours, "/v3/kv/put", '{"key":"YQ==","value":"Yg=="}');
    assert.equal(put.status, 200);
    assert.equal(ours.child.exitCode, null);
  });

  test("a body too large for the member: 429 ResourceExhausted as etcd, refused while read, connection closed", async () => {
    const body = `{"key":"YQ==","value":"${Buffer.alloc(3 * 1024 * 1024, 0x61).toString("base64")}"}`;
    const [a, b] = await Promise.all([post(ours, "/v3/kv/put", body), post(theirs, "/v3/kv/put", body)]);
    assert.equal(a.status, 429, a.body);
    assert.equal(b.status, 429, b.body);
    const code = (text: string): unknown => (JSON.parse(text) as { code: unknown }).code;
    assert.equal(code(a.body), code(b.body));
    assert.match(b.body, /"grpc: received message larger than max \(\d+ vs\. 528384\)"/);
    assert.match(a.body, /"gateway: received message larger than max \(over \d+ bytes of JSON vs\. 528384\)"/);
    assert.equal(a.connection, "close");
    // Between --max-request-bytes and the gRPC limit the member itself answers, with etcd's error.
    const small = `{"key":"YQ==","value":"${Buffer.alloc(8 * 1024, 0x61).toString("base64")}"}`;
    const [c, d] = await Promise.all([post(ours, "/v3/kv/put", small), post(theirs, "/v3/kv/put", small)]);
    assert.equal(c.status, d.status);
    assert.equal(c.body, d.body);
    assert.equal((await post(ours, "/v3/kv/range", '{"key":"YQ=="}')).status, 200);
  });

  test("bodies of 64 KiB or more (decoded by the gateway's decode thread) answer as etcd", async () => {
    const bytes = (n: number, last = ""): string => `[${Array.from({ length: n }, (_, i) => i % 256).join(",")}${last}]`;
    const ops = `[${Array.from({ length: 3000 }, () => '{"requestRange":{"key":"YQ=="}}').join(",")},{"requestRange":{"key":"YQ==","sort_order":"NOPE"}}]`;
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["/v3/kv/range", `{"key":"YQ==",${" ".repeat(100_000)}"limit":"1"}`],
      ["/v3/kv/put", `{"key":"YQ==","value":${bytes(30_000)}}`],
      ["/v3/kv/put", `{"key":"YQ==","value":${bytes(30_000, ",300")}}`],
      ["/v3/kv/put", `{"key":"${"QUJD".repeat(30_000)}!"}`],
      ["/v3/kv/txn", `{"success":${ops}}`],
    ];
    for (const [path, body] of cases) {
      const [a, b] = await Promise.all([post(ours, path, body), post(theirs, path, body)]);
      assert.equal(a.status, b.status, `${path}: ${a.body.slice(0, 200)}`);
      if (a.status !== 200) assert.equal(a.body, b.body);
    }
  });

  test("/metrics shows what the gateway holds: a watch open through it is one call and one stream, and none once it leaves", async () => {
    const scrape = async (): Promise<string> =>
      (await fetch(`http://${ours.endpoint}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const value = (text: string, name: string): number => {
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      assert.ok(line !== undefined, `${name} missing from /metrics`);
      return Number(line.slice(name.length + 1));
    };
    const waitFor = async (what: string, ok: (text: string) => boolean): Promise<string> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const text = await scrape();
        if (ok(text)) return text;
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const idle = await scrape();
    for (const name of ["etcd_ts_gateway_calls", "etcd_ts_gateway_streams", "etcd_ts_gateway_buffered_bytes"]) {
      assert.match(idle, new RegExp(`^# HELP ${name} .+\\n# TYPE ${name} gauge$`, "m"));
      assert.equal(value(idle, name), 0, name);
    }
    // etcd's watch stays open after the request body ends.
    const watching = new AbortController();
    const watch = await fetch(`http://${ours.endpoint}/v3/watch`, {
      method: "POST",
      body: '{"create_request":{"key":"YQ=="}}',
      signal: watching.signal,
    });
    assert.equal(watch.status, 200);
    await waitFor(
      "a watch call and stream",
      (text) => value(text, "etcd_ts_gateway_calls") === 1 && value(text, "etcd_ts_gateway_streams") === 1,
    );
    watching.abort();
    await waitFor("the watch to end", (text) => value(text, "etcd_ts_gateway_calls") === 0 && value(text, "etcd_ts_gateway_streams") === 0);
  });
});

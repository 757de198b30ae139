import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { makeTestCertificates, type TestCertificates } from "./certificates.js";
import { etcdctlTlsArgs, type EtcdctlTls } from "@etcd-ts/test-support";
import { curlTls, etcdctlTls, launchTlsMember, tlsMemberSpecs, waitTlsHealthy, type TlsMember } from "./tls-members.js";

/**
 * TLS end to end with certificates made at test time: etcdctl 3.4 and curl over https against the
 * client port (gRPC and the JSON gateway on one TLS port), --client-cert-auth refusing clients without
 * a trusted certificate, --auto-tls, clear start errors, and a 3-member cluster on https peer URLs.
 */

const base64 = (s: string) => Buffer.from(s).toString("base64");

let certs: TestCertificates;
before(() => {
  certs = makeTestCertificates();
});

/** Watches `key` with etcdctl until `count` events arrived (or 15 s passed); resolves with its output. */
function watchEvents(endpoint: string, flags: EtcdctlTls, key: string, ready: () => void): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn("etcdctl", ["--endpoints", endpoint, ...etcdctlTlsArgs(flags), "watch", key], {
      env: { ...process.env, ETCDCTL_API: "3" },
    });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (c: string) => {
      out += c;
      if (out.includes("PUT\n") && out.trim().split("\n").length >= 3) child.kill("SIGTERM");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(out);
    });
    // etcdctl has no "watching" signal: give it a moment to open the stream.
    setTimeout(ready, 1000);
  });
}

describe("client TLS with --client-cert-auth", () => {
  let member: TlsMember;
  let flags: EtcdctlTls;
  before(async () => {
    const specs = await tlsMemberSpecs(1, { client: "https", peer: "http" });
    flags = { cacert: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    member = launchTlsMember(specs, "t1", [
      "--cert-file",
      certs.serverCert,
      "--key-file",
      certs.serverKey,
      "--trusted-ca-file",
      certs.ca,
      "--client-cert-auth",
    ]);
    await waitTlsHealthy(member, flags);
  });
  after(() => member?.stop());

  test("etcdctl put, get and watch over https with a client certificate", async () => {
    let r = etcdctlTls(member.clientUrl, flags, ["put", "foo", "bar"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "OK\n");
    r = etcdctlTls(member.clientUrl, flags, ["get", "foo"]);
    assert.equal(r.stdout, "foo\nbar\n");
    const output = await watchEvents(member.clientUrl, flags, "watched", () => {
      etcdctlTls(member.clientUrl, flags, ["put", "watched", "v1"]);
    });
    assert.equal(output, "PUT\nwatched\nv1\n");
  });

  test("a client without a certificate, or with one from another CA, is refused", () => {
    const noCert = etcdctlTls(member.clientUrl, { cacert: certs.ca }, ["get", "foo", "--command-timeout=2s"]);
    assert.notEqual(noCert.code, 0);
    const stranger = etcdctlTls(member.clientUrl, { cacert: certs.ca, cert: certs.strangerCert, key: certs.strangerKey }, [
      "get",
      "foo",
      "--command-timeout=2s",
    ]);
    assert.notEqual(stranger.code, 0);
    const curl = curlTls(`${member.clientUrl}/health`, { cacert: certs.ca });
    assert.notEqual(curl.code, 0, "curl without a client certificate must fail the handshake");
  });

  test("the JSON gateway and the HTTP routes answer over https", () => {
    let r = curlTls(`${member.clientUrl}/v3/kv/put`, flags, [
      "-X",
      "POST",
      "-d",
      JSON.stringify({ key: base64("gw"), value: base64("yes") }),
    ]);
    assert.equal(r.status, 200, r.body);
    r = curlTls(`${member.clientUrl}/v3/kv/range`, flags, ["-X", "POST", "-d", JSON.stringify({ key: base64("gw") })]);
    assert.equal(r.status, 200, r.body);
    const range = JSON.parse(r.body) as { kvs: { key: string; value: string }[] };
    assert.equal(Buffer.from(range.kvs[0]!.value, "base64").toString(), "yes");
    r = curlTls(`${member.clientUrl}/v3alpha/kv/range`, flags, ["-X", "POST", "-d", JSON.stringify({ key: base64("foo") })]);
    assert.equal(r.status, 200, r.body);
    r = curlTls(`${member.clientUrl}/health`, flags);
    assert.deepEqual({ status: r.status, body: JSON.parse(r.body) as unknown }, { status: 200, body: { health: "true" } });
    r = curlTls(`${member.clientUrl}/metrics`, flags, ["--http2"]);
    assert.match(r.body, /^etcd_server_has_leader 1$/m);
    r = curlTls(`${member.clientUrl}/version`, flags);
    assert.equal(r.status, 200);
  });

  test("plain http on the TLS port gets no answer", () => {
    const r = curlTls(member.clientUrl.replace("https://", "http://") + "/health", {});
    assert.notEqual(r.status, 200);
  });
});

describe("--auto-tls", () => {
  test("generates a self-signed certificate under <data-dir>/fixtures/client and serves with it", async (t) => {
    const specs = await tlsMemberSpecs(1, { client: "https", peer: "http" });
    const member = launchTlsMember(specs, "t1", ["--auto-tls"]);
    t.after(() => member.stop());
    const flags: EtcdctlTls = { insecureSkipVerify: true };
    await waitTlsHealthy(member, flags);
    assert.ok(existsSync(join(specs[0]!.dataDir, "fixtures", "client", "cert.pem")));
    assert.ok(existsSync(join(specs[0]!.dataDir, "fixtures", "client", "key.pem")));
    assert.equal(etcdctlTls(member.clientUrl, flags, ["put", "auto", "tls"]).stdout, "OK\n");
    assert.equal(etcdctlTls(member.clientUrl, flags, ["get", "auto", "--print-value-only"]).stdout, "tls\n");
    // The gateway dials its member over TLS too.
    const r = curlTls(`${member.clientUrl}/v3/kv/range`, flags, ["-X", "POST", "-d", JSON.stringify({ key: base64("auto") })]);
    assert.equal(r.status, 200, r.body);
  });
});

describe("start errors", () => {
  test("a missing certificate file is named in the error", async (t) => {
    const specs = await tlsMemberSpecs(1, { client: "https", peer: "http" });
    const member = launchTlsMember(specs, "t1", ["--cert-file", "/nonexistent/server.pem", "--key-file", certs.serverKey]);
    t.after(() => member.stop());
    assert.equal(await member.exited, 1);
    assert.match(member.log(), /cannot read --cert-file "\/nonexistent\/server.pem": no such file or directory/);
  });

  test("an https client URL without a certificate says which flags are needed", async (t) => {
    const specs = await tlsMemberSpecs(1, { client: "https", peer: "http" });
    const member = launchTlsMember(specs, "t1", []);
    t.after(() => member.stop());
    assert.equal(await member.exited, 1);
    assert.match(
      member.log(),
      /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:\d+ with HTTPS scheme/,
    );
  });

  test("a key that does not belong to the certificate is refused", async (t) => {
    const specs = await tlsMemberSpecs(1, { client: "https", peer: "http" });
    const member = launchTlsMember(specs, "t1", ["--cert-file", certs.serverCert, "--key-file", certs.clientKey]);
    t.after(() => member.stop());
    assert.equal(await member.exited, 1);
    assert.match(member.log(), /are not a usable key pair/);
  });

  test("https peer URLs without a peer certificate say which flags are needed", async (t) => {
    const specs = await tlsMemberSpecs(1, { client: "http", peer: "https" });
    const member = launchTlsMember(specs, "t1", []);
    t.after(() => member.stop());
    assert.equal(await member.exited, 1);
    assert.match(member.log(), /--peer-cert-file, --peer-key-file\) must be provided for peer url https:/);
  });
});

describe("a 3-member cluster on https peer URLs", () => {
  const members: TlsMember[] = [];
  let flags: EtcdctlTls;
  let specs: Awaited<ReturnType<typeof tlsMemberSpecs>>;
  let tlsArgs: string[];
  before(async () => {
    // A fourth spec for the member added later; the cluster starts with the first three.
    specs = await tlsMemberSpecs(4, { client: "https", peer: "https" });
    flags = { cacert: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    tlsArgs = [
      "--cert-file",
      certs.serverCert,
      "--key-file",
      certs.serverKey,
      "--trusted-ca-file",
      certs.ca,
      "--client-cert-auth",
      "--peer-cert-file",
      certs.serverCert,
      "--peer-key-file",
      certs.serverKey,
      "--peer-trusted-ca-file",
      certs.ca,
      "--peer-client-cert-auth",
    ];
    const initial = specs.slice(0, 3);
    for (const spec of initial) members.push(launchTlsMember(initial, spec.name, tlsArgs));
    await Promise.all(members.map((m) => waitTlsHealthy(m, flags)));
  });
  after(() => Promise.all(members.map((m) => m.stop())));

  test("forms, lists its https peer URLs and replicates writes", () => {
    const list = etcdctlTls(members[0]!.clientUrl, flags, ["member", "list"]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split("\n");
    assert.equal(lines.length, 3);
    for (const line of lines) assert.match(line, /, started, t\d, https:\/\/127\.0\.0\.1:\d+, https:\/\/127\.0\.0\.1:\d+, false$/);
    assert.equal(etcdctlTls(members[0]!.clientUrl, flags, ["put", "replicated", "over-tls"]).stdout, "OK\n");
    // A linearizable read on each other member sees the write (it went through raft over the TLS streams).
    for (const member of members.slice(1)) {
      assert.equal(etcdctlTls(member.clientUrl, flags, ["get", "replicated", "--print-value-only"]).stdout, "over-tls\n");
    }
    const status = etcdctlTls(members.map((m) => m.clientUrl).join(","), flags, ["endpoint", "status", "-w", "json"]);
    const leaders = new Set((JSON.parse(status.stdout) as { Status: { leader: number } }[]).map((s) => s.Status.leader));
    assert.equal(leaders.size, 1, "every member follows the same leader");
  });

  test("lease keep-alives on followers are forwarded to the leader over the TLS peer port", () => {
    const grant = etcdctlTls(members[0]!.clientUrl, flags, ["lease", "grant", "60"]);
    assert.equal(grant.code, 0, grant.stderr);
    const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1]!;
    // At least two of the three are followers, which forward to the leader.
    for (const member of members) {
      const r = etcdctlTls(member.clientUrl, flags, ["lease", "keep-alive", "--once", id]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`lease ${id} keepalived with TTL\\(\\d+\\)`));
      assert.match(
        etcdctlTls(member.clientUrl, flags, ["lease", "timetolive", id]).stdout,
        new RegExp(`lease ${id} granted with TTL\\(60s\\)`),
      );
    }
  });

  test("a member added later joins over https (the cluster fetched from a peer over TLS) and catches up", async () => {
    const fourth = specs[3]!;
    // etcd refuses a member add until every peer's stream has been up a few seconds ("unhealthy cluster").
    const deadline = Date.now() + 15_000;
    let add = etcdctlTls(members[0]!.clientUrl, flags, ["member", "add", fourth.name, `--peer-urls=https://127.0.0.1:${fourth.peerPort}`]);
    while (add.code !== 0 && /unhealthy cluster/.test(add.stderr) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      add = etcdctlTls(members[0]!.clientUrl, flags, ["member", "add", fourth.name, `--peer-urls=https://127.0.0.1:${fourth.peerPort}`]);
    }
    assert.equal(add.code, 0, add.stderr);
    const joined = launchTlsMember(specs, fourth.name, [...tlsArgs, "--initial-cluster-state", "existing"]);
    members.push(joined);
    await waitTlsHealthy(joined, flags);
    assert.equal(etcdctlTls(joined.clientUrl, flags, ["get", "replicated", "--print-value-only"]).stdout, "over-tls\n");
    assert.equal(etcdctlTls(joined.clientUrl, flags, ["member", "list"]).stdout.trim().split("\n").length, 4);
  });

  test("a peer without a certificate from the cluster's CA is refused on the peer port", () => {
    const peerUrl = `https://127.0.0.1:${members[0]!.spec.peerPort}/members`;
    assert.notEqual(curlTls(peerUrl, { cacert: certs.ca }).code, 0);
    assert.notEqual(curlTls(peerUrl, { cacert: certs.ca, cert: certs.strangerCert, key: certs.strangerKey }).code, 0);
    const r = curlTls(peerUrl, { cacert: certs.ca, cert: certs.serverCert, key: certs.serverKey });
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as unknown[]).length, members.length);
  });
});

describe("a 3-member cluster with --peer-auto-tls", () => {
  const members: TlsMember[] = [];
  before(async () => {
    const specs = await tlsMemberSpecs(3, { client: "http", peer: "https" });
    for (const spec of specs) members.push(launchTlsMember(specs, spec.name, ["--peer-auto-tls"]));
    await Promise.all(members.map((m) => waitTlsHealthy(m, {})));
  });
  after(() => Promise.all(members.map((m) => m.stop())));

  test("peers dial each other over TLS with self-signed certificates and replicate", () => {
    for (const member of members) assert.ok(existsSync(join(member.spec.dataDir, "fixtures", "peer", "cert.pem")));
    assert.equal(etcdctlTls(members[2]!.clientUrl, {}, ["put", "auto-peer", "yes"]).stdout, "OK\n");
    assert.equal(etcdctlTls(members[0]!.clientUrl, {}, ["get", "auto-peer", "--print-value-only"]).stdout, "yes\n");
    // The peer port speaks only TLS.
    assert.notEqual(curlTls(`http://127.0.0.1:${members[0]!.spec.peerPort}/members`, {}).status, 200);
    assert.equal(curlTls(`https://127.0.0.1:${members[0]!.spec.peerPort}/members`, { insecureSkipVerify: true }).status, 200);
  });
});

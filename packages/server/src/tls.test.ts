import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "./config.js";
import {
  configurePeerTls,
  dialTlsOptions,
  generateSelfSignedCertificate,
  hostsOf,
  isTlsConfigError,
  peerListenTls,
  peerRequest,
  prepareMemberTls,
  resolveAutoTls,
  serverTlsOptions,
} from "./tls.js";

const scratch = () => mkdtempSync(join(tmpdir(), "etcd-ts-tls-unit-"));

test("a self-signed certificate is generated once under <data-dir>/fixtures/<role> and reused", () => {
  const dataDir = scratch();
  const info = resolveAutoTls({ autoTls: true }, "client", dataDir, ["127.0.0.1", "localhost"]);
  assert.equal(info?.certFile, join(dataDir, "fixtures", "client", "cert.pem"));
  assert.equal(info?.keyFile, join(dataDir, "fixtures", "client", "key.pem"));
  const first = readFileSync(info.certFile, "utf8");
  assert.match(first, /BEGIN CERTIFICATE/);
  assert.equal(statSync(join(dataDir, "fixtures", "client")).mode & 0o777, 0o700);
  const again = resolveAutoTls({ autoTls: true }, "client", dataDir, ["127.0.0.1"]);
  assert.equal(readFileSync(again!.certFile!, "utf8"), first, "an existing certificate is reused, as etcd's SelfCert");
  // Given files win over auto TLS.
  assert.deepEqual(resolveAutoTls({ autoTls: true, certFile: "/c", keyFile: "/k" }, "peer", dataDir, []), {
    autoTls: true,
    certFile: "/c",
    keyFile: "/k",
  });
  assert.equal(existsSync(join(dataDir, "fixtures", "peer")), false);
});

test("server options: the key pair is checked, client certificates required only with client-cert-auth", () => {
  const { certFile, keyFile } = generateSelfSignedCertificate(scratch(), ["127.0.0.1"]);
  const plain = serverTlsOptions({ certFile, keyFile }, "client");
  assert.equal(plain.requestCert, false);
  const strict = serverTlsOptions({ certFile, keyFile, trustedCaFile: certFile, clientCertAuth: true }, "peer");
  assert.equal(strict.requestCert, true);
  assert.equal(strict.rejectUnauthorized, true);
  assert.throws(
    () => serverTlsOptions({ certFile, keyFile, clientCertAuth: true }, "peer"),
    /--peer-client-cert-auth needs --peer-trusted-ca-file/,
  );
});

test("errors name the flag and the file", () => {
  const { certFile, keyFile } = generateSelfSignedCertificate(scratch(), ["127.0.0.1"]);
  const other = generateSelfSignedCertificate(scratch(), ["127.0.0.1"]);
  const check = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (error: unknown) => isTlsConfigError(error) && pattern.test((error as Error).message));
  check(
    () => serverTlsOptions({ certFile: "/missing.pem", keyFile }, "client"),
    /cannot read --cert-file "\/missing.pem": no such file or directory/,
  );
  check(() => serverTlsOptions({ certFile, keyFile: "/missing-key.pem" }, "peer"), /cannot read --peer-key-file "\/missing-key.pem"/);
  check(() => serverTlsOptions({ certFile, keyFile, trustedCaFile: "/ca.pem" }, "client"), /cannot read --trusted-ca-file/);
  check(() => serverTlsOptions({ certFile }, "client"), /--key-file is missing/);
  check(() => serverTlsOptions({ certFile, keyFile: other.keyFile }, "client"), /are not a usable key pair/);
});

test("prepareMemberTls refuses https URLs without certificates, as etcd", () => {
  const base = { ...defaultConfig("x"), dataDir: scratch() };
  assert.throws(
    () => prepareMemberTls({ ...base, listenClientUrls: ["https://127.0.0.1:1"] }),
    /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127.0.0.1:1 with HTTPS scheme/,
  );
  assert.throws(
    () => prepareMemberTls({ ...base, listenClientUrls: ["http://127.0.0.1:1"], listenPeerUrls: ["https://127.0.0.1:2"] }),
    /\(--peer-cert-file, --peer-key-file\) must be provided for peer url https:\/\/127.0.0.1:2/,
  );
  const auto = prepareMemberTls({
    ...base,
    listenClientUrls: ["https://127.0.0.1:1"],
    clientTls: { autoTls: true },
    listenPeerUrls: ["http://127.0.0.1:2"],
  });
  assert.ok(auto.clientListen?.cert !== undefined);
  configurePeerTls(undefined);
});

test("hosts for an auto certificate come from the URLs; wildcards mean loopback", () => {
  assert.deepEqual(hostsOf(["https://0.0.0.0:2379", "https://node1.example:2379", "https://[::1]:1"]), [
    "127.0.0.1",
    "localhost",
    "node1.example",
    "::1",
  ]);
});

test("peer requests go over https with the peer certificate when the URL is https", async (t) => {
  const { certFile, keyFile } = generateSelfSignedCertificate(scratch(), ["127.0.0.1"]);
  const info = { certFile, keyFile, trustedCaFile: certFile, clientCertAuth: true };
  configurePeerTls({ listen: serverTlsOptions(info, "peer"), dial: dialTlsOptions(info, "peer") });
  t.after(() => configurePeerTls(undefined));
  const listen = peerListenTls("https://127.0.0.1:0");
  assert.ok(listen !== undefined);
  assert.equal(peerListenTls("http://127.0.0.1:0"), undefined);
  const server = createHttpsServer(listen, (req, res) => {
    const socket = req.socket as import("node:tls").TLSSocket;
    res.end(socket.getPeerCertificate().subject?.O ?? "none");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const body = await new Promise<string>((resolve, reject) => {
    const req = peerRequest(`https://127.0.0.1:${port}/x`, { method: "GET" }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve(text));
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(body, "etcd", "the server saw our peer certificate");
});

test("without peer TLS settings an https peer URL has no listener options", () => {
  configurePeerTls(undefined);
  assert.throws(() => peerListenTls("https://127.0.0.1:1"), /--peer-cert-file, --peer-key-file/);
});

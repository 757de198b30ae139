import { test } from "node:test";
import assert from "node:assert/strict";
import { isFlagError, parseCommandLine } from "./flags.js";

test("etcd's defaults", () => {
  const { config, storageEngine } = parseCommandLine([], {});
  assert.equal(config.name, "default");
  assert.equal(config.dataDir, "default.etcd");
  assert.deepEqual(config.listenClientUrls, ["http://localhost:2379"]);
  assert.deepEqual([...config.initialCluster], [["default", ["http://localhost:2380"]]]);
  assert.equal(config.initialClusterToken, "etcd-cluster");
  assert.equal(config.maxRequestBytes, 1572864);
  assert.equal(config.maxTxnOps, 128);
  assert.equal(storageEngine, "sqlite");
});

test("--flag value, -flag=value, and the data dir follows the name", () => {
  const { config, storageEngine } = parseCommandLine(
    ["--name", "n1", "-listen-client-urls=http://127.0.0.1:1,http://127.0.0.1:2", "--max-txn-ops", "5", "--storage-engine=lmdb"],
    {},
  );
  assert.equal(config.name, "n1");
  assert.equal(config.dataDir, "n1.etcd");
  assert.deepEqual(config.listenClientUrls, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
  assert.equal(config.maxTxnOps, 5);
  assert.equal(storageEngine, "lmdb");
  assert.deepEqual([...config.initialCluster], [["n1", ["http://localhost:2380"]]]);
});

test("--max-concurrent-streams: a bounded default (etcd's is math.MaxUint32), a uint32 when given", () => {
  assert.equal(parseCommandLine([], {}).config.maxConcurrentStreams, 4096);
  assert.equal(parseCommandLine(["--max-concurrent-streams", "4294967295"], {}).config.maxConcurrentStreams, 4294967295);
  assert.equal(parseCommandLine([], { ETCD_MAX_CONCURRENT_STREAMS: "10" }).config.maxConcurrentStreams, 10);
  assert.throws(() => parseCommandLine(["--max-concurrent-streams", "0"], {}), /invalid value "0" for flag -max-concurrent-streams/);
  assert.throws(() => parseCommandLine(["--max-concurrent-streams", "4294967296"], {}), /-max-concurrent-streams/);
});

test("ETCD_* variables, shadowed by flags", () => {
  const parsed = parseCommandLine(["--name", "flag"], { ETCD_NAME: "env", ETCD_DATA_DIR: "/d", ETCD_BOGUS: "1", PATH: "/bin" });
  assert.equal(parsed.config.name, "flag");
  assert.equal(parsed.config.dataDir, "/d");
  assert.ok(parsed.warnings.some((w) => w.includes("ETCD_NAME")));
  assert.ok(parsed.warnings.some((w) => w.includes("ETCD_BOGUS")));
});

test("bad command lines fail as Go's flag package reports them", () => {
  assert.throws(
    () => parseCommandLine(["--nope"], {}),
    (e) => isFlagError(e) && e.message === "flag provided but not defined: -nope",
  );
  assert.throws(() => parseCommandLine(["--name"], {}), /flag needs an argument: -name/);
  assert.throws(() => parseCommandLine(["stray"], {}), /'stray' is not a valid flag/);
  assert.throws(() => parseCommandLine(["--max-txn-ops", "x"], {}), /invalid value "x" for flag -max-txn-ops/);
  assert.throws(() => parseCommandLine(["--storage-engine", "bolt"], {}), /-storage-engine/);
  assert.throws(() => parseCommandLine(["--initial-cluster-state", "old"], {}), /initial-cluster-state/);
});

test("TLS flags map to the client and peer TlsInfo, and are absent when not given", () => {
  const parsed = parseCommandLine(
    ["--cert-file", "/c.pem", "--key-file=/k.pem", "--trusted-ca-file", "/ca.pem", "--client-cert-auth", "--peer-auto-tls"],
    { ETCD_PEER_CLIENT_CERT_AUTH: "true" },
  );
  assert.deepEqual(parsed.config.clientTls, {
    certFile: "/c.pem",
    keyFile: "/k.pem",
    trustedCaFile: "/ca.pem",
    clientCertAuth: true,
    autoTls: false,
  });
  assert.deepEqual(parsed.config.peerTls, {
    certFile: undefined,
    keyFile: undefined,
    trustedCaFile: undefined,
    clientCertAuth: true,
    autoTls: true,
  });
  const plain = parseCommandLine([], {});
  assert.equal(plain.config.clientTls, undefined);
  assert.equal(plain.config.peerTls, undefined);
});

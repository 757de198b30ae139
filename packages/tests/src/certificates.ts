import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@etcd-ts/test-support";

/**
 * Certificates made at test time with `openssl`: a CA, a server certificate for 127.0.0.1/localhost
 * (usable as a client certificate too, as etcd's members use theirs both ways), a client certificate,
 * and a second CA with a client certificate the first CA does not trust.
 */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Signed by a CA the members do not trust. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

function openssl(args: readonly string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  openssl([
    "req",
    "-x509",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { cert, key };
}

function makeLeaf(dir: string, name: string, commonName: string, ca: { cert: string; key: string }): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ].join("\n") + "\n",
  );
  openssl([
    "req",
    "-new",
    "-nodes",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    `/CN=${commonName}`,
  ]);
  openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  return { cert, key };
}

export function makeTestCertificates(): TestCertificates {
  const dir = tempDir("certs");
  const ca = makeCa(dir, "ca");
  const server = makeLeaf(dir, "server", "etcd-ts-server", ca);
  const client = makeLeaf(dir, "client", "etcd-ts-client", ca);
  const otherCa = makeCa(dir, "other-ca");
  const stranger = makeLeaf(dir, "stranger", "stranger", otherCa);
  return {
    dir,
    ca: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    strangerCert: stranger.cert,
    strangerKey: stranger.key,
  };
}

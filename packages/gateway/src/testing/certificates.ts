import { readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { tempDir } from "@etcd-ts/test-support";

export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly caFile: string;
  /** Server certificate for 127.0.0.1 (also usable as a client certificate). */
  readonly server: { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string };
  /** Client certificate with CommonName `root`. */
  readonly root: { readonly cert: string; readonly key: string };
  /** Client certificate without a CommonName. */
  readonly anonymous: { readonly cert: string; readonly key: string };
}

/** A throwaway CA and certificates made with openssl at test time. */
export function makeCertificates(): TestCertificates {
  const dir = tempDir("gateway-tls");
  const run = (...args: string[]): void => {
    const result = spawnSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    if (result.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr.toString()}`);
  };
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt");
  const issue = (name: string, subject: string, extensions: string): void => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-out",
      `${name}.crt`,
      "-extfile",
      `${name}.ext`,
    );
  };
  issue("server", "/O=etcd-ts", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  issue("root", "/CN=root", "extendedKeyUsage=clientAuth\n");
  issue("anonymous", "/O=nobody", "extendedKeyUsage=clientAuth\n");
  const read = (file: string): string => readFileSync(join(dir, file), "utf8");
  return {
    dir,
    ca: read("ca.crt"),
    caFile: join(dir, "ca.crt"),
    server: { cert: read("server.crt"), key: read("server.key"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") },
    root: { cert: read("root.crt"), key: read("root.key") },
    anonymous: { cert: read("anonymous.crt"), key: read("anonymous.key") },
  };
}

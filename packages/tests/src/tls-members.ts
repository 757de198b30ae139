import { spawnSync } from "node:child_process";
import { join } from "node:path";
import {
  etcdctl,
  etcdctlTlsArgs,
  freePort,
  spawnMember,
  tempDir,
  waitHealthy,
  type CommandResult,
  type EtcdctlTls,
  type MemberProcess,
} from "@etcd-ts/test-support";
import { SERVER_MAIN } from "./processes.js";

/**
 * etcd-ts members with TLS flags, for the TLS end-to-end tests: like `processes.ts`, but they are
 * probed over https with the test certificates (`etcdctl endpoint health` with --cacert/--cert/--key).
 */

export interface TlsMemberSpec {
  readonly name: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly clientScheme: "http" | "https";
  readonly peerScheme: "http" | "https";
}

export interface TlsMember extends MemberProcess {
  readonly spec: TlsMemberSpec;
  /** Resolves with the exit code once the process exits. */
  readonly exited: Promise<number | null>;
}

export async function tlsMemberSpecs(n: number, schemes: { client: "http" | "https"; peer: "http" | "https" }): Promise<TlsMemberSpec[]> {
  const base = tempDir("tls");
  const specs: TlsMemberSpec[] = [];
  for (let i = 1; i <= n; i++) {
    specs.push({
      name: `t${i}`,
      port: await freePort(),
      peerPort: await freePort(),
      dataDir: join(base, `t${i}`),
      clientScheme: schemes.client,
      peerScheme: schemes.peer,
    });
  }
  return specs;
}

/** Launches one member of `specs` (not waiting for it); `extraArgs` carry the TLS flags. */
export function launchTlsMember(specs: readonly TlsMemberSpec[], name: string, extraArgs: readonly string[]): TlsMember {
  const spec = specs.find((s) => s.name === name)!;
  const clientUrl = `${spec.clientScheme}://127.0.0.1:${spec.port}`;
  const peerUrl = `${spec.peerScheme}://127.0.0.1:${spec.peerPort}`;
  const args = [
    SERVER_MAIN,
    "--name",
    spec.name,
    "--data-dir",
    spec.dataDir,
    "--listen-client-urls",
    clientUrl,
    "--advertise-client-urls",
    clientUrl,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    specs.map((s) => `${s.name}=${s.peerScheme}://127.0.0.1:${s.peerPort}`).join(","),
    "--initial-cluster-token",
    "tls-e2e",
    "--initial-cluster-state",
    "new",
    "--log-level",
    "warn",
    ...extraArgs,
  ];
  const member = spawnMember(process.execPath, args, {
    port: spec.port,
    peerPort: spec.peerPort,
    dataDir: spec.dataDir,
    clientScheme: spec.clientScheme,
  });
  const exited = new Promise<number | null>((resolve) => member.child.once("exit", (code) => resolve(code)));
  return { ...member, spec, exited };
}

/** The real etcdctl 3.4 against `endpoint` (a full URL), with TLS flags. */
export function etcdctlTls(endpoint: string, flags: EtcdctlTls, args: readonly string[]): CommandResult {
  return etcdctl(endpoint, [...etcdctlTlsArgs(flags), ...args]);
}

/** Waits until `etcdctl endpoint health` passes over TLS (20 s at most). */
export function waitTlsHealthy(member: TlsMember, flags: EtcdctlTls): Promise<void> {
  return waitHealthy(member, member.spec.name, { tls: flags });
}

/** curl over https (the JSON gateway and the HTTP routes); returns the body and the status code. */
export function curlTls(url: string, flags: EtcdctlTls, extra: readonly string[] = []): { body: string; status: number; code: number } {
  const r = spawnSync(
    "curl",
    [
      "-s",
      "-w",
      "\n%{http_code}",
      "--max-time",
      "10",
      ...(flags.cacert !== undefined ? ["--cacert", flags.cacert] : []),
      ...(flags.cert !== undefined ? ["--cert", flags.cert] : []),
      ...(flags.key !== undefined ? ["--key", flags.key] : []),
      ...(flags.insecureSkipVerify === true ? ["-k"] : []),
      ...extra,
      url,
    ],
    { encoding: "utf8", timeout: 20_000 },
  );
  // null when etcdctl could not be started, whatever the type says.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  const out = r.stdout ?? "";
  const cut = out.lastIndexOf("\n");
  return { body: out.slice(0, cut), status: Number(out.slice(cut + 1)), code: r.status ?? -1 };
}

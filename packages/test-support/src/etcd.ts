import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { EtcdctlTls } from "./etcdctl.js";
import { spawnMember, waitHealthy, type MemberProcess } from "./member-process.js";
import { freePort } from "./ports.js";
import { removeDir, tempDir } from "./temp-dir.js";

/** The real etcd 3.4 and etcdctl are on the PATH (tests against them skip otherwise). */
export function haveEtcd(): boolean {
  const etcd = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return (
    etcd.status === 0 && /etcd Version: 3\.4\./.test(etcd.stdout) && spawnSync("etcdctl", ["version"], { stdio: "ignore" }).status === 0
  );
}

export interface EtcdOptions {
  /** Member name (default `default`, etcd's own). */
  readonly name?: string;
  /** Default: a fresh temp dir, removed when the process is stopped or killed. */
  readonly dataDir?: string;
  /** Client and peer ports (default: free ones). */
  readonly port?: number;
  readonly peerPort?: number;
  /** Default `etcd-cluster`, etcd's own. */
  readonly initialClusterToken?: string;
  /** `--log-level` (default: etcd's, info). */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
  /**
   * An https client listener: the certificate flags go in `extraArgs` (--cert-file, --key-file, …); these
   * are what the readiness probe presents and trusts.
   */
  readonly tls?: EtcdctlTls;
  readonly extraArgs?: readonly string[];
  /** How long it may take to serve (default 30 s). */
  readonly readyTimeoutMs?: number;
}

export interface EtcdProcess extends MemberProcess {
  readonly name: string;
  readonly peerUrl: string;
}

/**
 * Starts a single-member etcd 3.4 on 127.0.0.1 and waits until `etcdctl endpoint health` passes. A data dir
 * that already holds a member (from `etcdctl snapshot restore`) is started as it is; `name` and the ports
 * must then be the ones it was restored with.
 */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdProcess> {
  const name = options.name ?? "default";
  const port = options.port ?? (await freePort());
  const peerPort = options.peerPort ?? (await freePort());
  const ownDataDir = options.dataDir === undefined ? tempDir("etcd") : undefined;
  const dataDir = options.dataDir ?? join(ownDataDir!, "member-data");
  const client = `${options.tls === undefined ? "http" : "https"}://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--name",
    name,
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peerUrl,
    "--initial-advertise-peer-urls",
    peerUrl,
    "--initial-cluster",
    `${name}=${peerUrl}`,
    "--initial-cluster-token",
    options.initialClusterToken ?? "etcd-cluster",
    "--initial-cluster-state",
    "new",
    ...(options.logLevel === undefined ? [] : ["--log-level", options.logLevel]),
    ...(options.extraArgs ?? []),
  ];
  const member = spawnMember("etcd", args, {
    port,
    peerPort,
    dataDir,
    clientScheme: options.tls === undefined ? "http" : "https",
    ...(ownDataDir === undefined ? {} : { afterExit: () => removeDir(ownDataDir) }),
  });
  await waitHealthy(member, `etcd ${name}`, {
    timeoutMs: options.readyTimeoutMs ?? 30_000,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  return { ...member, name, peerUrl };
}

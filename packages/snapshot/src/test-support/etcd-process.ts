/**
 * Drives the real etcd 3.4 binaries for the interop tests: etcdctl runs, and an etcd member on ports of
 * its own on 127.0.0.1 that is always stopped.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";

/** Ports the tests must never take: etcd's defaults and a range other suites use. */
function isReserved(port: number): boolean {
  return port === 2379 || port === 2380 || (port >= 24790 && port <= 24899);
}

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const port = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(port));
      });
    });
    if (!isReserved(port)) return port;
  }
}

export function haveEtcd(): boolean {
  return spawnSync("etcd", ["--version"]).status === 0 && spawnSync("etcdctl", ["version"]).status === 0;
}

export interface EtcdctlOptions {
  readonly endpoint?: string;
  readonly input?: Uint8Array | string;
}

/** Runs etcdctl (API v3); returns stdout, throws with stderr when it fails. */
export function etcdctl(args: readonly string[], options: EtcdctlOptions = {}): string {
  const fullArgs = options.endpoint === undefined ? [...args] : ["--endpoints", options.endpoint, ...args];
  const result = spawnSync("etcdctl", fullArgs, {
    env: { ...process.env, ETCDCTL_API: "3" },
    input: options.input,
    maxBuffer: 256 * 1024 * 1024,
    timeout: 60_000,
  });
  if (result.status !== 0) {
    throw new Error(`etcdctl ${args.join(" ")} failed (${result.status}): ${result.stderr.toString()}${result.error?.message ?? ""}`);
  }
  return result.stdout.toString();
}

/** Like `etcdctl` but returns the failure instead of throwing. */
export function etcdctlResult(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync("etcdctl", args, { env: { ...process.env, ETCDCTL_API: "3" }, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

export interface MemberPorts {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export async function memberPorts(name: string): Promise<MemberPorts> {
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  return { name, clientPort, peerPort };
}

export function peerUrlOf(ports: MemberPorts): string {
  return `http://127.0.0.1:${ports.peerPort}`;
}

/** Starts a single-member etcd on `dataDir` and waits until it answers. */
export async function startEtcd(dataDir: string, ports: MemberPorts): Promise<EtcdMember> {
  const clientUrl = `http://127.0.0.1:${ports.clientPort}`;
  const peerUrl = peerUrlOf(ports);
  const child: ChildProcess = spawn(
    "etcd",
    [
      "--name", ports.name,
      "--data-dir", dataDir,
      "--listen-client-urls", clientUrl,
      "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", peerUrl,
      "--initial-advertise-peer-urls", peerUrl,
      "--initial-cluster", `${ports.name}=${peerUrl}`,
      "--initial-cluster-token", "etcd-ts-snapshot-test",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const member: EtcdMember = {
    name: ports.name,
    clientUrl,
    peerUrl,
    log: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`etcd exited early (${child.exitCode}):\n${output}`);
    const health = spawnSync("etcdctl", ["--endpoints", clientUrl, "--command-timeout=2s", "endpoint", "health"], {
      env: { ...process.env, ETCDCTL_API: "3" },
      timeout: 5_000,
    });
    if (health.status === 0) return member;
    if (Date.now() > deadline) {
      await member.stop();
      throw new Error(`etcd did not become healthy:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

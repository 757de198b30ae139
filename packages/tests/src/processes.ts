import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Starting and stopping real server processes for end-to-end tests: the built etcd-ts binary and, for
 * comparison, the real etcd 3.4 from Debian. Everything listens on 127.0.0.1 on ports the OS hands out;
 * every process is killed when the test ends (callers use `t.after(() => server.stop())`).
 */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SERVER_MAIN = join(REPO_ROOT, "apps/server/dist/main.js");

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `etcd-ts-${prefix}-`));
}

export interface ServerProcess {
  readonly endpoint: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  log(): string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  readonly name?: string;
  readonly dataDir?: string;
  readonly port?: number;
  readonly peerPort?: number;
  readonly engine?: "sqlite" | "lmdb";
  readonly extraArgs?: readonly string[];
  readonly token?: string;
}

function memberArgs(name: string, dataDir: string, port: number, peerPort: number, token: string): string[] {
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    "--name", name,
    "--data-dir", dataDir,
    "--listen-client-urls", client,
    "--advertise-client-urls", client,
    "--listen-peer-urls", peer,
    "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `${name}=${peer}`,
    "--initial-cluster-token", token,
    "--initial-cluster-state", "new",
  ];
}

async function launch(command: string, args: string[], meta: { port: number; peerPort: number; dataDir: string }, waitHealthy = true): Promise<ServerProcess> {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const waitExit = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  const server: ServerProcess = {
    endpoint: `127.0.0.1:${meta.port}`,
    port: meta.port,
    peerPort: meta.peerPort,
    dataDir: meta.dataDir,
    child,
    log: () => stderr,
    stop: () => waitExit("SIGTERM"),
    kill: () => waitExit("SIGKILL"),
  };
  if (!waitHealthy) return server;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${command} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${stderr.slice(-3000)}`);
    }
    const r = etcdctl(server.endpoint, ["endpoint", "health", "--command-timeout=1s"]);
    if (r.code === 0) return server;
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(`${command} did not become healthy in 20 s:\n${stderr.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts the built etcd-ts server (`apps/server/dist/main.js`). */
export async function startEtcdTs(options: StartOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const peerPort = options.peerPort ?? (await freePort());
  const dataDir = options.dataDir ?? join(tempDir("data"), "member-data");
  const args = [
    SERVER_MAIN,
    ...memberArgs(options.name ?? "e2e", dataDir, port, peerPort, options.token ?? "e2e"),
    "--storage-engine", options.engine ?? "sqlite",
    "--log-level", "warn",
    ...(options.extraArgs ?? []),
  ];
  return launch(process.execPath, args, { port, peerPort, dataDir });
}

export interface ClusterMemberSpec {
  readonly name: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /**
   * The peer port the member advertises (and the others dial), when it differs from the one it listens
   * on: a TCP proxy in between lets a test cut the member off (cluster-faults.test.ts).
   */
  readonly advertisedPeerPort?: number;
}

/** The specs of an n-member cluster on fresh ports and data dirs. */
export async function clusterSpecs(n: number): Promise<ClusterMemberSpec[]> {
  const base = tempDir("cluster");
  const specs: ClusterMemberSpec[] = [];
  for (let i = 1; i <= n; i++) specs.push({ name: `n${i}`, port: await freePort(), peerPort: await freePort(), dataDir: join(base, `n${i}`) });
  return specs;
}

/** Starts (or restarts) one member of the cluster described by `specs`. */
export async function startClusterMember(
  specs: readonly ClusterMemberSpec[],
  name: string,
  options: { engine?: "sqlite" | "lmdb"; state?: "new" | "existing"; waitHealthy?: boolean; extraArgs?: readonly string[] } = {},
): Promise<ServerProcess> {
  const spec = specs.find((s) => s.name === name)!;
  const client = `http://127.0.0.1:${spec.port}`;
  const peer = `http://127.0.0.1:${spec.peerPort}`;
  const advertisedPeer = `http://127.0.0.1:${spec.advertisedPeerPort ?? spec.peerPort}`;
  const args = [
    SERVER_MAIN,
    "--name", spec.name,
    "--data-dir", spec.dataDir,
    "--listen-client-urls", client,
    "--advertise-client-urls", client,
    "--listen-peer-urls", peer,
    "--initial-advertise-peer-urls", advertisedPeer,
    "--initial-cluster", specs.map((s) => `${s.name}=http://127.0.0.1:${s.advertisedPeerPort ?? s.peerPort}`).join(","),
    "--initial-cluster-token", "e2e-cluster",
    "--initial-cluster-state", options.state ?? "new",
    "--storage-engine", options.engine ?? "sqlite",
    "--log-level", "warn",
    ...(options.extraArgs ?? []),
  ];
  return launch(process.execPath, args, { port: spec.port, peerPort: spec.peerPort, dataDir: spec.dataDir }, options.waitHealthy ?? true);
}

/** Starts the real etcd 3.4 from Debian's etcd-server package, for side-by-side comparisons. */
export async function startRealEtcd(options: StartOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const peerPort = options.peerPort ?? (await freePort());
  const dataDir = options.dataDir ?? join(tempDir("ref"), "member-data");
  const args = [...memberArgs(options.name ?? "e2e", dataDir, port, peerPort, options.token ?? "e2e"), ...(options.extraArgs ?? [])];
  return launch("etcd", args, { port, peerPort, dataDir });
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Runs the real etcdctl 3.4 (v3 API) against one endpoint. */
export function etcdctl(endpoint: string, args: readonly string[], input?: string): CommandResult {
  const r = spawnSync("etcdctl", ["--endpoints", endpoint, ...args], {
    input,
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
    timeout: 30_000,
  });
  return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", code: r.status ?? -1 };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

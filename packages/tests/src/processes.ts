import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, spawnMember, startEtcd, tempDir, waitHealthy, type MemberProcess } from "@etcd-ts/test-support";

/**
 * Starting and stopping real server processes for end-to-end tests: the built etcd-ts binary and, for
 * comparison, the real etcd 3.4 from Debian. Everything listens on 127.0.0.1 on ports the OS hands out;
 * every process is killed when the test ends (callers use `t.after(() => server.stop())`).
 */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SERVER_MAIN = join(REPO_ROOT, "apps/server/dist/main.js");

/** A built etcd-ts member (or a real etcd) running as a process of its own. */
export type ServerProcess = MemberProcess;

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
    "--name",
    name,
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    `${name}=${peer}`,
    "--initial-cluster-token",
    token,
    "--initial-cluster-state",
    "new",
  ];
}

async function launch(
  args: string[],
  meta: { port: number; peerPort: number; dataDir: string },
  waitUntilHealthy = true,
): Promise<ServerProcess> {
  const server = spawnMember(process.execPath, args, meta);
  if (waitUntilHealthy) await waitHealthy(server, "etcd-ts");
  return server;
}

/** Starts the built etcd-ts server (`apps/server/dist/main.js`). */
export async function startEtcdTs(options: StartOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const peerPort = options.peerPort ?? (await freePort());
  const dataDir = options.dataDir ?? join(tempDir("data"), "member-data");
  const args = [
    SERVER_MAIN,
    ...memberArgs(options.name ?? "e2e", dataDir, port, peerPort, options.token ?? "e2e"),
    "--storage-engine",
    options.engine ?? "sqlite",
    "--log-level",
    "warn",
    ...(options.extraArgs ?? []),
  ];
  return launch(args, { port, peerPort, dataDir });
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
  for (let i = 1; i <= n; i++)
    specs.push({ name: `n${i}`, port: await freePort(), peerPort: await freePort(), dataDir: join(base, `n${i}`) });
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
    "--name",
    spec.name,
    "--data-dir",
    spec.dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    advertisedPeer,
    "--initial-cluster",
    specs.map((s) => `${s.name}=http://127.0.0.1:${s.advertisedPeerPort ?? s.peerPort}`).join(","),
    "--initial-cluster-token",
    "e2e-cluster",
    "--initial-cluster-state",
    options.state ?? "new",
    "--storage-engine",
    options.engine ?? "sqlite",
    "--log-level",
    "warn",
    ...(options.extraArgs ?? []),
  ];
  return launch(args, { port: spec.port, peerPort: spec.peerPort, dataDir: spec.dataDir }, options.waitHealthy ?? true);
}

/**
 * Starts the real etcd 3.4 from Debian's etcd-server package, for side-by-side comparisons: named and
 * tokened like `startEtcdTs`'s member, so what they print about themselves compares.
 */
export function startRealEtcd(options: StartOptions = {}): Promise<ServerProcess> {
  return startEtcd({
    name: options.name ?? "e2e",
    initialClusterToken: options.token ?? "e2e",
    dataDir: options.dataDir,
    port: options.port,
    peerPort: options.peerPort,
    extraArgs: options.extraArgs,
    readyTimeoutMs: 20_000,
  });
}

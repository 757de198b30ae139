/**
 * Starting the two servers the benchmarks compare, one at a time: the real etcd 3.4 and the built
 * etcd-ts, each on fresh 127.0.0.1 ports and a fresh data dir, stopped and removed afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface BenchServer {
  readonly label: string;
  readonly endpoint: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => r(port));
    });
  });
}

async function start(label: string, command: string, extra: string[]): Promise<BenchServer> {
  const port = await freePort();
  const peer = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-bench-"));
  const c = `http://127.0.0.1:${port}`;
  const p = `http://127.0.0.1:${peer}`;
  const child: ChildProcess = spawn(
    command,
    [
      ...extra,
      "--name",
      "bench",
      "--data-dir",
      join(dataDir, "d"),
      "--listen-client-urls",
      c,
      "--advertise-client-urls",
      c,
      "--listen-peer-urls",
      p,
      "--initial-advertise-peer-urls",
      p,
      "--initial-cluster",
      `bench=${p}`,
      "--log-level",
      "error",
    ],
    { stdio: "ignore" },
  );
  const endpoint = `127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (spawnSync("etcdctl", ["--endpoints", endpoint, "endpoint", "health", "--command-timeout=1s"], { stdio: "ignore" }).status === 0)
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    label,
    endpoint,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function startRealEtcd(): Promise<BenchServer> {
  return start("etcd 3.4", "etcd", []);
}

export function startEtcdTs(engine: string): Promise<BenchServer> {
  const mainJs = join(ROOT, "apps/server/dist/main.js");
  if (!existsSync(mainJs)) throw new Error("build first: npm run build");
  return start(`etcd-ts (${engine})`, process.execPath, [mainJs, "--storage-engine", engine]);
}

/** Replaces (or appends) the block between `<!-- NAME:start -->` and `<!-- NAME:end -->` in docs/performance.md. */
export function writePerformanceSection(name: string, heading: string, body: string): void {
  const doc = join(ROOT, "docs/performance.md");
  const START = `<!-- ${name}:start -->`;
  const END = `<!-- ${name}:end -->`;
  let text = existsSync(doc) ? readFileSync(doc, "utf8") : "# Performance\n";
  const block = `${START}\n${body}\n${END}`;
  if (text.includes(START) && text.includes(END)) {
    text = text.slice(0, text.indexOf(START)) + block + text.slice(text.indexOf(END) + END.length);
  } else {
    text = text.trimEnd() + `\n\n## ${heading}\n\n${block}\n`;
  }
  writeFileSync(doc, text);
}

/** One member of a benchmark cluster: killed with SIGKILL and restarted on the same ports and data dir. */
export interface BenchMember {
  readonly name: string;
  readonly endpoint: string;
  /** SIGKILL, resolved when the process has exited. */
  kill(): Promise<void>;
  /** Starts the member again (same flags, same data dir); resolves once it is spawned, not healthy. */
  restart(): void;
}

export interface BenchCluster {
  readonly label: string;
  readonly members: readonly BenchMember[];
  stop(): Promise<void>;
}

/**
 * Starts a `size`-member cluster of `command` on 127.0.0.1 (fresh ports and data dirs, etcd's default
 * heartbeat and election timeouts) and waits until every member answers `endpoint health`.
 */
async function startCluster(label: string, command: string, extra: string[], size: number): Promise<BenchCluster> {
  const dataRoot = mkdtempSync(join(tmpdir(), "etcd-bench-cluster-"));
  const specs: { name: string; client: string; peer: string; dataDir: string }[] = [];
  for (let i = 1; i <= size; i++) {
    specs.push({
      name: `m${i}`,
      client: `http://127.0.0.1:${await freePort()}`,
      peer: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(dataRoot, `m${i}`),
    });
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peer}`).join(",");
  const members = specs.map((spec) => {
    let child: ChildProcess | undefined;
    const spawnMember = () => {
      child = spawn(
        command,
        [
          ...extra,
          "--name",
          spec.name,
          "--data-dir",
          spec.dataDir,
          "--listen-client-urls",
          spec.client,
          "--advertise-client-urls",
          spec.client,
          "--listen-peer-urls",
          spec.peer,
          "--initial-advertise-peer-urls",
          spec.peer,
          "--initial-cluster",
          initialCluster,
          "--initial-cluster-token",
          "bench-cluster",
          "--initial-cluster-state",
          "new",
          "--log-level",
          "error",
        ],
        { stdio: "ignore" },
      );
    };
    const exit = async (signal: NodeJS.Signals) => {
      const c = child;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill(signal);
      await exited;
    };
    spawnMember();
    return {
      name: spec.name,
      endpoint: spec.client.replace("http://", ""),
      kill: () => exit("SIGKILL"),
      restart: spawnMember,
      stop: () => exit("SIGTERM"),
    };
  });
  await waitClusterHealthy(members.map((m) => m.endpoint));
  return {
    label,
    members,
    stop: async () => {
      await Promise.all(members.map((m) => m.stop()));
      rmSync(dataRoot, { recursive: true, force: true });
    },
  };
}

/** Waits (up to 30 s) until every endpoint answers `etcdctl endpoint health`. */
export async function waitClusterHealthy(endpoints: readonly string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const healthy = endpoints.every(
      (e) => spawnSync("etcdctl", ["--endpoints", e, "endpoint", "health", "--command-timeout=1s"], { stdio: "ignore" }).status === 0,
    );
    if (healthy) return;
    if (Date.now() > deadline) throw new Error(`cluster not healthy in 30 s: ${endpoints.join(", ")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function startRealEtcdCluster(size = 3): Promise<BenchCluster> {
  return startCluster(`etcd 3.4 ×${size}`, "etcd", [], size);
}

export function startEtcdTsCluster(engine: string, size = 3): Promise<BenchCluster> {
  const mainJs = join(ROOT, "apps/server/dist/main.js");
  if (!existsSync(mainJs)) throw new Error("build first: npm run build");
  return startCluster(`etcd-ts (${engine}) ×${size}`, process.execPath, [mainJs, "--storage-engine", engine], size);
}

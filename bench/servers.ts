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
  const child: ChildProcess = spawn(command, [
    ...extra,
    "--name", "bench", "--data-dir", join(dataDir, "d"),
    "--listen-client-urls", c, "--advertise-client-urls", c,
    "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
    "--initial-cluster", `bench=${p}`, "--log-level", "error",
  ], { stdio: "ignore" });
  const endpoint = `127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (spawnSync("etcdctl", ["--endpoints", endpoint, "endpoint", "health", "--command-timeout=1s"], { stdio: "ignore" }).status === 0) break;
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

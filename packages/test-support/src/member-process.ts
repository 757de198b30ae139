import { spawn, type ChildProcess } from "node:child_process";
import { etcdctlAsync, etcdctlTlsArgs, type EtcdctlTls } from "./etcdctl.js";
import { sleep } from "./wait.js";

/**
 * A member process under test — the real etcd or a built etcd-ts — listening on 127.0.0.1. Callers stop
 * it when the test ends (`t.after(() => member.kill())`), whatever the outcome.
 */
export interface MemberProcess {
  /** host:port of the client listener. */
  readonly endpoint: string;
  /** The client URL (`http://` or `https://`). */
  readonly clientUrl: string;
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stderr so far (its last 500 KB–1 MB once it has written more). */
  log(): string;
  /** SIGTERM, then waits for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

export interface SpawnedMember {
  readonly port: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** Default http. */
  readonly clientScheme?: "http" | "https";
  /** Called once the process has exited after stop() or kill() (removing a data dir made for it). */
  readonly afterExit?: () => void;
}

/** Starts `command args` (stderr kept, stdout dropped) without waiting for it to serve. */
export function spawnMember(command: string, args: readonly string[], meta: SpawnedMember): MemberProcess {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waitExit = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    meta.afterExit?.();
  };
  return {
    endpoint: `127.0.0.1:${meta.port}`,
    clientUrl: `${meta.clientScheme ?? "http"}://127.0.0.1:${meta.port}`,
    port: meta.port,
    peerPort: meta.peerPort,
    dataDir: meta.dataDir,
    child,
    log: () => stderr,
    stop: () => waitExit("SIGTERM"),
    kill: () => waitExit("SIGKILL"),
  };
}

export interface HealthOptions {
  /** Default 20 s. */
  readonly timeoutMs?: number;
  /** For an https client URL: what etcdctl presents and trusts. */
  readonly tls?: EtcdctlTls;
}

/**
 * Waits until `etcdctl endpoint health` passes on the member's client URL; kills it and throws (with the
 * end of its log) if it exits first or is not healthy in time.
 */
export async function waitHealthy(member: MemberProcess, name: string, options: HealthOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  const tlsArgs = options.tls === undefined ? [] : etcdctlTlsArgs(options.tls);
  for (;;) {
    const { child } = member;
    if (child.exitCode !== null || child.signalCode !== null) {
      await member.kill();
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${member.log().slice(-3000)}`);
    }
    const r = await etcdctlAsync(member.clientUrl, [...tlsArgs, "endpoint", "health", "--command-timeout=1s"]);
    if (r.code === 0) return;
    if (Date.now() > deadline) {
      await member.kill();
      throw new Error(`${name} did not become healthy in ${timeoutMs / 1000} s:\n${member.log().slice(-3000)}`);
    }
    await sleep(100);
  }
}

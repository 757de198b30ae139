import { execFile, spawnSync } from "node:child_process";

/**
 * The real etcdctl 3.4 (API v3). Runs are synchronous where a test reads their answer at once; the async
 * form is for tests whose clients, proxies or timers live in this process and must not stall while
 * etcdctl waits (long enough to cost a cluster its leader).
 */

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The exit status; -1 when the process was killed (timeout) or did not start. */
  readonly code: number;
}

/** The certificates etcdctl presents and trusts on an https endpoint. */
export interface EtcdctlTls {
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly insecureSkipVerify?: boolean;
}

export function etcdctlTlsArgs(tls: EtcdctlTls): string[] {
  return [
    ...(tls.cacert !== undefined ? ["--cacert", tls.cacert] : []),
    ...(tls.cert !== undefined ? ["--cert", tls.cert] : []),
    ...(tls.key !== undefined ? ["--key", tls.key] : []),
    // etcdctl 3.4 dials without TLS when given no certificate files unless --insecure-transport=false.
    ...(tls.insecureSkipVerify === true ? ["--insecure-skip-tls-verify", "--insecure-transport=false"] : []),
  ];
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, ETCDCTL_API: "3" });

/** Big enough for `get --prefix -w json` of a large store (values are base64 in it). */
const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;
const TIMEOUT_MS = 60_000;

function commandLine(endpoint: string | undefined, args: readonly string[]): string[] {
  // Commands on local files (snapshot status/restore) take no endpoint.
  return endpoint === undefined ? [...args] : ["--endpoints", endpoint, ...args];
}

/** Runs etcdctl against `endpoint` (host:port or a URL; `undefined` for commands on local files). */
export function etcdctl(endpoint: string | undefined, args: readonly string[], input?: string | Uint8Array): CommandResult {
  // stdout and stderr are null when etcdctl could not be started at all.
  const r: { stdout: string | null; stderr: string | null; status: number | null } = spawnSync("etcdctl", commandLine(endpoint, args), {
    input,
    encoding: "utf8",
    env: env(),
    maxBuffer: MAX_OUTPUT_BYTES,
    timeout: TIMEOUT_MS,
  });
  return { stdout: r.stdout ?? "", stderr: r.stderr ?? "", code: r.status ?? -1 };
}

/** Like `etcdctl`, but returns stdout and throws with stderr when etcdctl fails. */
export function etcdctlOutput(endpoint: string | undefined, args: readonly string[], input?: string | Uint8Array): string {
  const r = etcdctl(endpoint, args, input);
  if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** etcdctl without blocking the event loop. */
export function etcdctlAsync(endpoint: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      "etcdctl",
      commandLine(endpoint, args),
      { env: env(), maxBuffer: MAX_OUTPUT_BYTES, timeout: TIMEOUT_MS },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

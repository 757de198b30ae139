import { etcdctlAsync, type CommandResult } from "./etcdctl.js";
import { sleep } from "./wait.js";

/**
 * What a test asks of a member or a cluster through etcdctl (so it works alike on etcd and etcd-ts):
 * health, status, leadership, whether the members agree. Async, so polling them does not stall the
 * clients, proxies and timers a test runs in this process.
 */

/** `extraArgs`: e.g. `--user root:…` with auth on. */
export async function healthy(endpoint: string, extraArgs: readonly string[] = []): Promise<boolean> {
  return (await etcdctlAsync(endpoint, ["endpoint", "health", "--command-timeout=2s", ...extraArgs])).code === 0;
}

/** `GET /health` answers `"health":"true"` (within 2 s). */
export async function httpHealthy(endpoint: string): Promise<boolean> {
  try {
    const r = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(2000) });
    return ((await r.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

/** `endpoint status -w json` as etcdctl prints it. */
export async function endpointStatus(endpoint: string): Promise<string> {
  return (await etcdctlAsync(endpoint, ["endpoint", "status", "-w", "json", "--command-timeout=2s"])).stdout;
}

/** The member's ID in hex, as `member list` and `member remove` write it. */
export async function memberIdHex(endpoint: string): Promise<string> {
  return BigInt(/"member_id":(\d+)/.exec(await endpointStatus(endpoint))![1]!).toString(16);
}

export async function isLeader(endpoint: string): Promise<boolean> {
  const out = await endpointStatus(endpoint);
  const leader = /"leader":(\d+)/.exec(out)?.[1];
  return leader !== undefined && leader === /"member_id":(\d+)/.exec(out)?.[1];
}

export async function sameRevision(endpoints: readonly string[]): Promise<boolean> {
  const revs = await Promise.all(endpoints.map(async (e) => /"revision":(\d+)/.exec(await endpointStatus(e))?.[1]));
  return revs[0] !== undefined && revs.every((r) => r === revs[0]);
}

/** `extraArgs`: e.g. `--user root:…` with auth on (HashKV is for root only). */
export async function sameHashKV(endpoints: readonly string[], extraArgs: readonly string[] = []): Promise<boolean> {
  const hashes = await Promise.all(
    endpoints.map(
      async (e) => /"hash":(\d+)/.exec((await etcdctlAsync(e, ["endpoint", "hashkv", "-w", "json", ...extraArgs])).stdout)?.[1],
    ),
  );
  return hashes[0] !== undefined && hashes.every((h) => h === hashes[0]);
}

/**
 * Runs a membership command again while the cluster refuses it for a moment (strict reconfiguration: a
 * member's peer streams not up for long enough yet), for at most 20 s.
 */
export async function retryWhileUnhealthy(run: () => CommandResult | Promise<CommandResult>): Promise<CommandResult> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await run();
    if (r.code === 0 || !/unhealthy cluster|not enough started/.test(r.stderr) || Date.now() > deadline) return r;
    await sleep(500);
  }
}

import type { IncomingMessage, ServerResponse } from "node:http";
import { RpcError } from "@etcd-ts/api";
import { peerRequest } from "../tls.js";

/**
 * Lease keep-alives and time-to-live questions are answered by the leader (only it runs lease clocks);
 * a follower forwards them over the peer port, as etcd does with its `/leases` peer endpoints.
 * Bodies are small JSON documents; IDs travel as decimal strings (they are 64-bit).
 */
export const LEASE_RENEW_PATH = "/leases/renew";
export const LEASE_TTL_PATH = "/leases/ttl";

export interface LeaseAnswers {
  /** TTL after renewal; 0 when the lease does not exist. Throws RpcError notLeader when not the leader. */
  renew(id: bigint): Promise<number>;
  timeToLive(id: bigint, keys: boolean): Promise<{ ttl: number; grantedTTL: number; keys: string[] }>;
}

/** Serves the leader side on the peer listener. Returns false for paths it does not serve. */
export function handleLeaseForwarding(answers: LeaseAnswers, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "").split("?")[0];
  if ((path !== LEASE_RENEW_PATH && path !== LEASE_TTL_PATH) || req.method !== "POST") return false;
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c: string) => (body += c));
  req.on("end", () => {
    void (async () => {
      try {
        const parsed = JSON.parse(body) as { id: string; keys?: boolean };
        const id = BigInt(parsed.id);
        const answer = path === LEASE_RENEW_PATH ? { ttl: await answers.renew(id) } : await answers.timeToLive(id, parsed.keys === true);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
      } catch (error) {
        const status = error instanceof RpcError && error.kind === "notLeader" ? 421 : 500;
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      }
    })();
  });
  return true;
}

/** Asks the leader at one of `peerUrls`. Throws RpcError (notLeader / leaderChanged) when it cannot. */
export async function forwardToLeader<T>(peerUrls: readonly string[], path: string, body: unknown, timeoutMs: number): Promise<T> {
  let lastError: unknown = RpcError.of("noLeader");
  for (const base of peerUrls) {
    try {
      return await new Promise<T>((resolve, reject) => {
        const req = peerRequest(new URL(path, base), { method: "POST", timeout: timeoutMs, headers: { "content-type": "application/json" } }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            if (res.statusCode === 200) resolve(JSON.parse(text) as T);
            else if (res.statusCode === 421) reject(RpcError.of("leaderChanged"));
            else reject(new Error(text));
          });
        });
        req.on("timeout", () => req.destroy(RpcError.of("timeout")));
        req.on("error", reject);
        req.end(JSON.stringify(body, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
      });
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

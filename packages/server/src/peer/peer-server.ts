import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { ETCD_API_VERSION, ETCD_CLUSTER_VERSION } from "../config.js";
import { parseListenUrl } from "../grpc/client-listener.js";
import type { Member } from "../membership/membership.js";
import { memberJson, type PeerMemberJson } from "./peer-network.js";
import { CLUSTER_ID_HEADER, RAFT_STREAM_PATH } from "./transport.js";
import { peerListenTls, peerRequest } from "../tls.js";

/**
 * The peer listener (`--listen-peer-urls`): raft streams from other members, the small HTTP API a
 * member uses to join an existing cluster (`GET /members`) or to check a peer (`GET /version`), and the
 * other peer routes `HttpPeerNetwork` serves (snapshot uploads, peer requests).
 */
export interface PeerHandlers {
  readonly clusterId: () => bigint;
  readonly members: () => readonly Member[];
  readonly raftStream: (req: IncomingMessage, res: ServerResponse) => void;
  /** Other peer routes (snapshot uploads, peer requests). Returns false when it does not serve the path. */
  readonly other?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export class PeerServer {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(private readonly handlers: PeerHandlers) {}

  async listen(urls: readonly string[]): Promise<void> {
    for (const url of urls) {
      const { host, port } = parseListenUrl(url);
      // https peer URLs serve with the peer certificate (and ask peers for theirs with --peer-client-cert-auth).
      const tls = peerListenTls(url);
      const server =
        tls === undefined ? createServer((req, res) => this.route(req, res)) : createHttpsServer(tls, (req, res) => this.route(req, res));
      server.keepAliveTimeout = 0;
      server.requestTimeout = 0;
      server.headersTimeout = 60_000;
      server.on("connection", (socket: Socket) => {
        socket.setNoDelay(true);
        this.sockets.add(socket);
        socket.once("close", () => this.sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host, port }, () => {
          server.off("error", reject);
          resolve();
        });
      });
      this.servers.push(server);
    }
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path === RAFT_STREAM_PATH && req.method === "POST") {
      this.handlers.raftStream(req, res);
      return;
    }
    if (path === "/members" && req.method === "GET") {
      const body: PeerMemberJson[] = this.handlers.members().map(memberJson);
      res.writeHead(200, { "content-type": "application/json", [CLUSTER_ID_HEADER]: this.handlers.clusterId().toString(16) });
      res.end(JSON.stringify(body));
      return;
    }
    if (path === "/version" && req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ etcdserver: ETCD_API_VERSION, etcdcluster: ETCD_CLUSTER_VERSION }));
      return;
    }
    if (this.handlers.other?.(req, res)) return;
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("404 page not found\n");
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * Asks the peers of an existing cluster who is in it (for `--initial-cluster-state existing`): the first
 * peer that answers gives the cluster ID and the member list.
 */
export async function fetchClusterFromPeers(
  peerUrls: readonly string[],
  timeoutMs = 5000,
): Promise<{ clusterId: bigint; members: PeerMemberJson[] }> {
  const errors: string[] = [];
  for (const base of peerUrls) {
    try {
      return await new Promise((resolve, reject) => {
        const req = peerRequest(new URL("/members", base), { method: "GET", timeout: timeoutMs, agent: false }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => {
            const cid = res.headers[CLUSTER_ID_HEADER];
            if (res.statusCode !== 200 || typeof cid !== "string") {
              reject(new Error(`${base}: status ${res.statusCode}`));
              return;
            }
            try {
              resolve({ clusterId: BigInt(`0x${cid}`), members: JSON.parse(body) as PeerMemberJson[] });
            } catch (error) {
              reject(error);
            }
          });
        });
        req.on("timeout", () => req.destroy(new Error(`${base}: timeout`)));
        req.on("error", reject);
        req.end();
      });
    } catch (error) {
      errors.push(String(error instanceof Error ? error.message : error));
    }
  }
  throw new Error(`could not retrieve cluster information from the given URLs (${errors.join("; ")})`);
}

import type { IncomingMessage, ServerResponse } from "node:http";
import { RpcError, isRpcError, type RpcErrorKind } from "@etcd-ts/api";
import type { Message } from "@etcd-ts/raft";
import { peerRequest } from "../tls.js";
import {
  noUrlSeenByAsker,
  timeoutSeenByAsker,
  type PeerAnswerOf,
  type PeerNetwork,
  type PeerNetworkFactory,
  type PeerNetworkHost,
  type PeerNetworkOptions,
  type PeerRequestHandler,
  type PeerRequestKind,
  type PeerRequestOf,
  type SnapshotBody,
  PeerRequestHandlers,
} from "./peer-network.js";
import { PeerServer, fetchClusterFromPeers } from "./peer-server.js";
import { handleSnapshotUpload, postSnapshot } from "./snapshot-transfer.js";
import { PeerTransport } from "./transport.js";

/**
 * The peer network over the peer URLs, as etcd's members talk: raft streams (`PeerTransport`), the peer
 * listener (`PeerServer`), databases by `POST /raft/snapshot`, and each peer request on its own path
 * with a small JSON body (64-bit IDs as decimal strings).
 */
export const httpPeerNetwork: PeerNetworkFactory = {
  open: (host, options) => new HttpPeerNetwork(host, options),
  fetchCluster: (peerUrls) => fetchClusterFromPeers(peerUrls),
};

/** Lease keep-alives and time-to-live questions a follower forwards to the leader (etcd's `/leases` endpoints). */
export const LEASE_RENEW_PATH = "/leases/renew";
export const LEASE_TTL_PATH = "/leases/ttl";
/** A follower asks the leader to promote a learner (etcd's `/members/promote/:id`). */
export const PROMOTE_PATH = "/members/promote";
/** The leader asks each member's HashKV (etcd's `/members/hashkv`). */
export const PEER_HASHKV_PATH = "/members/hashkv";

/** An answer on the peer listener: status, content type, body. */
interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

const json = (status: number, value: unknown): HttpAnswer => ({ status, contentType: "application/json", body: JSON.stringify(value) });
const text = (status: number, error: unknown): HttpAnswer => ({
  status,
  contentType: "text/plain",
  body: error instanceof Error ? error.message : String(error),
});
const isNotLeader = (error: unknown): boolean => isRpcError(error, "notLeader");

/** How one kind of peer request travels over HTTP. */
interface HttpPeerRoute<K extends PeerRequestKind> {
  readonly path: string;
  /** The request as the leader side reads it from the JSON body. */
  parse(body: unknown): PeerRequestOf<K>;
  /** The leader side's answer to a success and to a failure. */
  answer(answer: PeerAnswerOf<K>): HttpAnswer;
  failure(error: unknown): HttpAnswer;
  /** The asker's view of a 200 answer's JSON (a refused promotion arrives as 200 with its error). */
  read(body: unknown): PeerAnswerOf<K>;
  /** Dialled without the shared keep-alive agent. */
  readonly ownConnection: boolean;
}

const leaseRoute = <K extends "leaseRenew" | "leaseTimeToLive">(
  path: string,
  parse: (body: { id: string; keys?: boolean }) => PeerRequestOf<K>,
): HttpPeerRoute<K> => ({
  path,
  parse: (body) => parse(body as { id: string; keys?: boolean }),
  answer: (answer) => json(200, answer),
  failure: (error) => text(isNotLeader(error) ? 421 : 500, error),
  read: (body) => body as PeerAnswerOf<K>,
  ownConnection: false,
});

const ROUTES: { readonly [K in PeerRequestKind]: HttpPeerRoute<K> } = {
  leaseRenew: leaseRoute<"leaseRenew">(LEASE_RENEW_PATH, (body) => ({ id: BigInt(body.id) })),
  leaseTimeToLive: leaseRoute<"leaseTimeToLive">(LEASE_TTL_PATH, (body) => ({ id: BigInt(body.id), keys: body.keys === true })),
  promote: {
    path: PROMOTE_PATH,
    parse: (body) => ({ id: BigInt((body as { id: string }).id) }),
    answer: () => json(200, {}),
    // etcd's errors travel in the answer; the asker throws them as they were.
    failure: (error) => (isNotLeader(error) ? json(421, {}) : isRpcError(error) ? json(200, { error: error.kind }) : json(500, {})),
    read: (body) => {
      const error = (body as { error?: string }).error;
      if (error !== undefined) throw RpcError.of(error as RpcErrorKind);
      return {};
    },
    ownConnection: false,
  },
  hashKV: {
    path: PEER_HASHKV_PATH,
    parse: (body) => ({ revision: (body as { revision: number }).revision }),
    answer: (answer) => json(200, answer),
    // A revision compacted away there or still in the future: nothing to compare.
    failure: (error) => text(400, error),
    read: (body) => body as PeerAnswerOf<"hashKV">,
    ownConnection: true,
  },
};

const routeByPath = new Map<string, PeerRequestKind>(Object.entries(ROUTES).map(([kind, route]) => [route.path, kind as PeerRequestKind]));

function bodyJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

export class HttpPeerNetwork implements PeerNetwork {
  private readonly transport: PeerTransport;
  private readonly server: PeerServer;
  private readonly handlers = new PeerRequestHandlers();

  constructor(
    private readonly host: PeerNetworkHost,
    private readonly options: PeerNetworkOptions,
  ) {
    this.transport = new PeerTransport(options.localId, options.clusterId, host, options.logger, options.maxMessageBytes);
    this.server = new PeerServer({
      clusterId: () => host.clusterId(),
      members: () => host.members(),
      raftStream: (req, res) => this.transport.handleStream(req, res),
      other: (req, res) =>
        handleSnapshotUpload(
          {
            clusterId: () => host.clusterId(),
            receive: (message, chunks) => host.receiveSnapshot(message, chunks),
            logger: options.logger,
          },
          req,
          res,
        ) || this.serveRequest(req, res),
    });
  }

  listen(urls: readonly string[]): Promise<void> {
    return this.server.listen(urls);
  }

  send(messages: readonly Message[]): void {
    this.transport.send(messages);
  }

  addPeer(id: bigint, urls: readonly string[]): void {
    this.transport.addPeer(id, urls);
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    this.transport.updatePeer(id, urls);
  }

  removePeer(id: bigint): void {
    this.transport.removePeer(id);
  }

  peerIds(): bigint[] {
    return this.transport.peerIds();
  }

  activeSince(id: bigint): number {
    return this.transport.activeSince(id);
  }

  sendSnapshot(urls: readonly string[], message: Message, body: SnapshotBody): Promise<void> {
    return postSnapshot({ urls, clusterId: this.options.clusterId, localId: this.options.localId, message, body });
  }

  handle<K extends PeerRequestKind>(kind: K, handler: PeerRequestHandler<K>): void {
    this.handlers.set(kind, handler);
  }

  async request<K extends PeerRequestKind>(
    urls: readonly string[],
    kind: K,
    request: PeerRequestOf<K>,
    timeoutMs: number,
  ): Promise<PeerAnswerOf<K>> {
    const route = ROUTES[kind] as HttpPeerRoute<K>;
    let lastError: unknown = noUrlSeenByAsker(kind);
    for (const base of urls) {
      let body: unknown;
      try {
        body = await new Promise<unknown>((resolve, reject) => {
          const options = {
            method: "POST",
            timeout: timeoutMs,
            headers: { "content-type": "application/json" },
            ...(route.ownConnection ? { agent: false as const } : {}),
          };
          const req = peerRequest(new URL(route.path, base), options, (res) => {
            let answer = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (answer += c));
            res.on("end", () => {
              if (res.statusCode === 200) resolve(JSON.parse(answer));
              else if (res.statusCode === 421) reject(RpcError.of("leaderChanged"));
              else reject(new Error(answer));
            });
          });
          req.on("timeout", () => req.destroy(timeoutSeenByAsker(kind)));
          req.on("error", reject);
          req.end(bodyJson(request));
        });
      } catch (error) {
        lastError = error;
        continue;
      }
      return route.read(body);
    }
    throw lastError;
  }

  async stop(): Promise<void> {
    this.transport.stop();
    await this.server.close();
  }

  /** A peer request on its path: read the JSON body, ask the handler, answer as the route says. */
  private serveRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const kind = routeByPath.get((req.url ?? "").split("?")[0]!);
    const handler = kind === undefined ? undefined : this.handlers.get(kind);
    if (kind === undefined || handler === undefined || req.method !== "POST") return false;
    const route = ROUTES[kind] as HttpPeerRoute<PeerRequestKind>;
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      void (async () => {
        let answer: HttpAnswer;
        try {
          answer = route.answer(await handler(route.parse(JSON.parse(body))));
        } catch (error) {
          answer = route.failure(error);
        }
        res.writeHead(answer.status, { "content-type": answer.contentType });
        res.end(answer.body);
      })();
    });
    return true;
  }
}

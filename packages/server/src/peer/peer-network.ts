import { RpcError, isRpcError } from "@etcd-ts/api";
import type { Message } from "@etcd-ts/raft";
import type { Logger } from "../log.js";
import type { Member } from "../membership/membership.js";

/**
 * What a member needs of the network between members (etcd's rafthttp plus the few peer requests its
 * server makes): raft messages to its peers, the peers it talks to, databases shipped to a follower, and
 * small requests one member asks of another. The member registers what it answers; it never sees how
 * the bytes travel. `HttpPeerNetwork` (the peer URLs over HTTP/1.1) is the one a member uses unless it is
 * given another; tests run members in one process over `SimulatedNetwork`.
 */

/** The JSON shape of a member on the peer API (what `GET /members` returns). */
export interface PeerMemberJson {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** A member's HashKV as another member asks it (the leader's corruption check). */
export interface PeerHashKV {
  readonly memberId: string;
  /** The member's current revision when it answered. */
  readonly revision: number;
  readonly compactRevision: number;
  readonly hash: number;
}

/** The requests one member asks of another, by kind: what is asked and what comes back. */
export interface PeerRequests {
  /** A follower forwards a lease keep-alive to the leader: the TTL after renewal, 0 for an unknown lease. */
  leaseRenew: { request: { id: bigint }; answer: { ttl: number } };
  /** A follower forwards LeaseTimeToLive to the leader (keys base64); TTL −1 for an unknown lease. */
  leaseTimeToLive: { request: { id: bigint; keys: boolean }; answer: { ttl: number; grantedTTL: number; keys: string[] } };
  /** A follower forwards a learner's promotion to the leader, which alone knows whether it caught up. */
  promote: { request: { id: bigint }; answer: Record<string, never> };
  /** The leader's corruption check asks a member's HashKV at a revision. */
  hashKV: { request: { revision: number }; answer: PeerHashKV };
}

export type PeerRequestKind = keyof PeerRequests;
export type PeerRequestOf<K extends PeerRequestKind> = PeerRequests[K]["request"];
export type PeerAnswerOf<K extends PeerRequestKind> = PeerRequests[K]["answer"];

/**
 * Answers one kind of request. A handler that throws `RpcError` notLeader tells the asker to find the
 * leader again: the asker gets `leaderChanged`. A promotion refused with an `RpcError` reaches its asker
 * as that error; any other failure reaches the asker as an `Error` with its message.
 */
export type PeerRequestHandler<K extends PeerRequestKind> = (request: PeerRequestOf<K>) => Promise<PeerAnswerOf<K>>;

/**
 * The handlers a member registered, by request kind: what every `PeerNetwork` keeps to answer its peers.
 * The map holds them under the union of kinds; `set` and `get` keep each kind paired with its own types.
 */
export class PeerRequestHandlers {
  private readonly byKind = new Map<PeerRequestKind, PeerRequestHandler<PeerRequestKind>>();

  set<K extends PeerRequestKind>(kind: K, handler: PeerRequestHandler<K>): void {
    this.byKind.set(kind, handler as unknown as PeerRequestHandler<PeerRequestKind>);
  }

  get(kind: PeerRequestKind): PeerRequestHandler<PeerRequestKind> | undefined {
    return this.byKind.get(kind);
  }
}

/** What the asker sees when the member it asked failed, whatever carried the request. */
export function failureSeenByAsker(kind: PeerRequestKind, error: unknown): Error {
  if (isRpcError(error, "notLeader")) return RpcError.of("leaderChanged");
  if (kind === "promote" && isRpcError(error)) return error;
  return new Error(error instanceof Error ? error.message : String(error));
}

/** What the asker sees when no member answered in time. */
export function timeoutSeenByAsker(kind: PeerRequestKind): Error {
  return kind === "hashKV" ? new Error("timeout") : RpcError.of("timeout");
}

/** What the asker sees when it had no URL to ask (a request to the leader: there is none). */
export function noUrlSeenByAsker(kind: PeerRequestKind): Error {
  return kind === "hashKV" ? new Error("no peer URL") : RpcError.of("noLeader");
}

/** The bytes of a database shipped to a follower: the bbolt file with its SHA-256 appended. */
export interface SnapshotBody {
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/** What a member is to its peers: the network calls these as messages and requests arrive. */
export interface PeerNetworkHost {
  clusterId(): bigint;
  /** The members, as a joining member asks for them. */
  members(): readonly Member[];
  /** A raft message from a peer, checked to come from a member and to be addressed to this one. */
  onMessage(message: Message): void;
  /** A peer could not be reached (raft then probes it instead of pipelining). */
  onUnreachable(peerId: bigint): void;
  /** Whether `peerId` was removed from the cluster (it is told so, and stops). */
  isRemoved(peerId: bigint): boolean;
  /** Whether `peerId` is a member now: messages from anyone else are not stepped into raft. */
  isMember(peerId: bigint): boolean;
  /** A peer refused this member because it was removed from the cluster. */
  onRemovedFromCluster(): void;
  /**
   * A database from the leader (its raft MsgSnap and the bytes): resolves once it is durable and raft
   * was told; a rejection tells the sender the transfer failed.
   */
  receiveSnapshot(message: Message, chunks: AsyncIterable<Uint8Array>): Promise<void>;
}

/** One member's end of the peer network. */
export interface PeerNetwork {
  /** Starts answering peers at `urls` (the member's --listen-peer-urls). */
  listen(urls: readonly string[]): Promise<void>;
  /** Sends raft messages (not MsgSnap: databases go through `sendSnapshot`); loss is tolerated. */
  send(messages: readonly Message[]): void;
  addPeer(id: bigint, urls: readonly string[]): void;
  updatePeer(id: bigint, urls: readonly string[]): void;
  removePeer(id: bigint): void;
  /** The peers this member talks to. */
  peerIds(): bigint[];
  /** When the connection to `id` came up (ms since the epoch); 0 while it is down or unknown. */
  activeSince(id: bigint): number;
  /** Ships a database to the member at `urls`; resolves once it accepted it. */
  sendSnapshot(urls: readonly string[], message: Message, body: SnapshotBody): Promise<void>;
  /** Answers requests of `kind` from other members with `handler`. */
  handle<K extends PeerRequestKind>(kind: K, handler: PeerRequestHandler<K>): void;
  /** Asks the member at one of `urls` (the first that answers); rejects as `failureSeenByAsker` says. */
  request<K extends PeerRequestKind>(
    urls: readonly string[],
    kind: K,
    request: PeerRequestOf<K>,
    timeoutMs: number,
  ): Promise<PeerAnswerOf<K>>;
  /** Closes every connection and stops answering. */
  stop(): Promise<void>;
}

export interface PeerNetworkOptions {
  readonly localId: bigint;
  readonly clusterId: bigint;
  /** The largest raft message a peer may send (see `maxRaftFrameBytes`). */
  readonly maxMessageBytes: number;
  readonly logger: Logger;
}

/** Makes a member's end of a peer network, and asks peers who is in a cluster before there is a member. */
export interface PeerNetworkFactory {
  open(host: PeerNetworkHost, options: PeerNetworkOptions): PeerNetwork;
  /**
   * Asks the peers of an existing cluster who is in it (for `--initial-cluster-state existing`): the
   * first peer that answers gives the cluster ID and the member list.
   */
  fetchCluster(peerUrls: readonly string[]): Promise<{ clusterId: bigint; members: PeerMemberJson[] }>;
}

/** A member as the peer API lists it. */
export function memberJson(m: Member): PeerMemberJson {
  return { id: m.id.toString(16), name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner };
}

// Test support: a peer network between members of one process, in memory, with the faults a real one
// has — a member isolated, a link cut one way or both, messages dropped (by link, by type, at a rate),
// delays — in the spirit of raft's own testing/network.ts. Messages go through raft's codec, as on the
// wire; each link delivers in order. Drops and delays come from a seeded generator.

import { isRpcError } from "@etcd-ts/api";
import { MessageType, decodeMessage, encodeMessage, type Message } from "@etcd-ts/raft";
import {
  failureSeenByAsker,
  memberJson,
  noUrlSeenByAsker,
  timeoutSeenByAsker,
  type PeerAnswerOf,
  type PeerMemberJson,
  type PeerNetwork,
  type PeerNetworkFactory,
  type PeerNetworkHost,
  type PeerNetworkOptions,
  type PeerRequestHandler,
  type PeerRequestKind,
  type PeerRequestOf,
  type SnapshotBody,
  PeerRequestHandlers,
} from "../peer/peer-network.js";

export interface SimulatedNetworkOptions {
  /** Seed of the generator behind drops and delays. */
  readonly seed?: number;
  /** Each delivery waits between `min` and `max` ms (0 by default: the next turn of the event loop). */
  readonly delayMs?: { readonly min: number; readonly max: number };
}

/** What went over the network, for assertions. */
export interface SimulatedNetworkStats {
  delivered: number;
  dropped: number;
  /** Messages delivered by type. */
  readonly byType: Map<MessageType, number>;
  snapshots: number;
  requests: number;
}

const linkKey = (from: bigint, to: bigint): string => `${from.toString(16)}>${to.toString(16)}`;

/** A small seeded generator (mulberry32): the same seed gives the same drops and delays. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The network of one in-process cluster: every member's end is opened from it. */
export class SimulatedNetwork implements PeerNetworkFactory {
  private readonly byUrl = new Map<string, SimulatedPeerNetwork>();
  private readonly ends = new Set<SimulatedPeerNetwork>();
  private readonly cuts = new Set<string>();
  private readonly linkRates = new Map<string, number>();
  private readonly typeRates = new Map<MessageType, number>();
  private readonly linkDelays = new Map<string, number>();
  /** When each link last came up (a heal, or the first time it was used). */
  private readonly upSince = new Map<string, number>();
  /** When the last message on each link is due, so a link never reorders. */
  private readonly lastDue = new Map<string, number>();
  private readonly rand: () => number;
  private delay: { min: number; max: number };
  readonly stats: SimulatedNetworkStats = { delivered: 0, dropped: 0, byType: new Map(), snapshots: 0, requests: 0 };

  constructor(options: SimulatedNetworkOptions = {}) {
    this.rand = seeded(options.seed ?? 1);
    this.delay = { ...(options.delayMs ?? { min: 0, max: 0 }) };
  }

  open(host: PeerNetworkHost, options: PeerNetworkOptions): PeerNetwork {
    const end = new SimulatedPeerNetwork(this, host, options);
    this.ends.add(end);
    return end;
  }

  fetchCluster(peerUrls: readonly string[]): Promise<{ clusterId: bigint; members: PeerMemberJson[] }> {
    for (const url of peerUrls) {
      const end = this.byUrl.get(url);
      if (end !== undefined) return Promise.resolve({ clusterId: end.host.clusterId(), members: end.host.members().map(memberJson) });
    }
    return Promise.reject(
      new Error(`could not retrieve cluster information from the given URLs (${peerUrls.join(", ")}: nobody listens there)`),
    );
  }

  /** Cuts every link of member `id`, both ways. */
  isolate(id: bigint): void {
    for (const end of this.ends) {
      if (end.localId !== id) this.cut(id, end.localId);
    }
  }

  /** Cuts the link between `a` and `b`, both ways (or only from `a` to `b` with `oneWay`). */
  cut(a: bigint, b: bigint, oneWay = false): void {
    this.cuts.add(linkKey(a, b));
    if (!oneWay) this.cuts.add(linkKey(b, a));
  }

  /** Drops messages from `from` to `to` with probability `rate` (0 stops dropping). */
  drop(from: bigint, to: bigint, rate: number): void {
    this.linkRates.set(linkKey(from, to), rate);
  }

  /** Drops raft messages of `type` on every link with probability `rate` (0 stops dropping). */
  dropType(type: MessageType, rate: number): void {
    this.typeRates.set(type, rate);
  }

  /** Every delivery waits between `min` and `max` ms. */
  setDelay(min: number, max = min): void {
    this.delay = { min, max };
  }

  /** Deliveries from `from` to `to` wait `ms` more (0 ends it); the link stays in order. */
  delayLink(from: bigint, to: bigint, ms: number): void {
    this.linkDelays.set(linkKey(from, to), ms);
  }

  /** Restores every cut link and stops every drop; links that were cut come up now. */
  heal(): void {
    const now = Date.now();
    for (const key of this.cuts) this.upSince.set(key, now);
    this.cuts.clear();
    this.linkRates.clear();
    this.typeRates.clear();
    this.linkDelays.clear();
  }

  /** @internal The listening end at one of `urls`. */
  endAt(urls: readonly string[]): SimulatedPeerNetwork | undefined {
    for (const url of urls) {
      const end = this.byUrl.get(url);
      if (end !== undefined) return end;
    }
    return undefined;
  }

  /** @internal */
  register(url: string, end: SimulatedPeerNetwork): void {
    if (this.byUrl.has(url)) throw new Error(`${url} is already listened on`);
    this.byUrl.set(url, end);
  }

  /** @internal */
  unregister(end: SimulatedPeerNetwork): void {
    for (const [url, e] of this.byUrl) if (e === end) this.byUrl.delete(url);
    this.ends.delete(end);
  }

  /** @internal Whether `from` reaches `to` now. */
  connected(from: bigint, to: bigint): boolean {
    return !this.cuts.has(linkKey(from, to));
  }

  /** @internal When the link from `from` to `to` came up; the first ask (a peer added) marks it up now. */
  linkUpSince(from: bigint, to: bigint): number {
    const key = linkKey(from, to);
    let since = this.upSince.get(key);
    if (since === undefined) {
      since = Date.now();
      this.upSince.set(key, since);
    }
    return since;
  }

  /** @internal Whether a raft message is lost on the way (drops by link and by type). */
  lost(message: Message): boolean {
    const rates = [this.linkRates.get(linkKey(message.from, message.to)) ?? 0, this.typeRates.get(message.type) ?? 0];
    return rates.some((rate) => rate > 0 && this.rand() < rate);
  }

  /** @internal Runs `deliver` after the link's delay, in order with the link's earlier deliveries. */
  schedule(from: bigint, to: bigint, deliver: () => void): void {
    const { min, max } = this.delay;
    const key = linkKey(from, to);
    const wait = min + (max > min ? this.rand() * (max - min) : 0) + (this.linkDelays.get(key) ?? 0);
    const due = Math.max(Date.now() + wait, this.lastDue.get(key) ?? 0);
    this.lastDue.set(key, due);
    const timer = setTimeout(deliver, Math.max(0, due - Date.now()));
    timer.unref();
  }
}

/** One member's end of a `SimulatedNetwork`. */
class SimulatedPeerNetwork implements PeerNetwork {
  private readonly peers = new Map<bigint, readonly string[]>();
  private readonly handlers = new PeerRequestHandlers();
  private listening = false;
  private stopped = false;
  readonly localId: bigint;

  constructor(
    private readonly network: SimulatedNetwork,
    readonly host: PeerNetworkHost,
    private readonly options: PeerNetworkOptions,
  ) {
    this.localId = options.localId;
  }

  listen(urls: readonly string[]): Promise<void> {
    for (const url of urls) this.network.register(url, this);
    this.listening = true;
    return Promise.resolve();
  }

  send(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      const urls = this.peers.get(message.to);
      if (urls === undefined) continue;
      const target = this.network.endAt(urls);
      if (target === undefined || !this.network.connected(this.localId, target.localId)) {
        // A stream that cannot be dialled: raft hears it, as from the HTTP transport.
        this.network.stats.dropped++;
        queueMicrotask(() => this.stopped || this.host.onUnreachable(message.to));
        continue;
      }
      if (this.network.lost(message)) {
        this.network.stats.dropped++;
        continue;
      }
      const bytes = encodeMessage(message);
      this.network.schedule(this.localId, target.localId, () => target.receive(bytes, this));
    }
  }

  /** A raft message arriving, checked as the HTTP transport checks a stream's frames. */
  private receive(bytes: Uint8Array, sender: SimulatedPeerNetwork): void {
    if (this.stopped || !this.listening || bytes.byteLength > this.options.maxMessageBytes) return;
    const message = decodeMessage(bytes);
    if (message.to !== this.localId || message.type === MessageType.Snap) return;
    if (this.host.isRemoved(message.from)) {
      // The HTTP transport answers a removed member's stream with 410 Gone; the member then stops.
      if (!sender.stopped) sender.host.onRemovedFromCluster();
      return;
    }
    if (!this.host.isMember(message.from)) return;
    this.network.stats.delivered++;
    this.network.stats.byType.set(message.type, (this.network.stats.byType.get(message.type) ?? 0) + 1);
    this.host.onMessage(message);
  }

  addPeer(id: bigint, urls: readonly string[]): void {
    if (id === this.localId || this.peers.has(id)) return;
    this.peers.set(id, [...urls]);
    this.network.linkUpSince(this.localId, id);
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    if (id === this.localId) return;
    if (!this.peers.has(id)) this.network.linkUpSince(this.localId, id);
    this.peers.set(id, [...urls]);
  }

  removePeer(id: bigint): void {
    this.peers.delete(id);
  }

  peerIds(): bigint[] {
    return [...this.peers.keys()];
  }

  activeSince(id: bigint): number {
    const urls = this.peers.get(id);
    const target = urls === undefined || this.stopped ? undefined : this.network.endAt(urls);
    if (
      target === undefined ||
      !this.network.connected(this.localId, target.localId) ||
      !this.network.connected(target.localId, this.localId)
    )
      return 0;
    return this.network.linkUpSince(this.localId, target.localId);
  }

  async sendSnapshot(urls: readonly string[], message: Message, body: SnapshotBody): Promise<void> {
    const target = this.reachable(urls);
    const chunks: Uint8Array[] = [];
    for await (const chunk of body.chunks) chunks.push(Uint8Array.from(chunk));
    if (target.host.clusterId() !== this.options.clusterId) throw new Error("cluster ID mismatch");
    this.network.stats.snapshots++;
    const arrived = decodeMessage(encodeMessage(message));
    await new Promise<void>((resolve) => this.network.schedule(this.localId, target.localId, resolve));
    if (target.stopped) throw new Error("the member stopped");
    await target.host.receiveSnapshot(arrived, asyncChunks(chunks));
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
    let lastError: unknown = noUrlSeenByAsker(kind);
    for (const url of urls) {
      let target: SimulatedPeerNetwork;
      try {
        target = this.reachable([url]);
      } catch (error) {
        lastError = error;
        continue;
      }
      const handler = target.handlers.get(kind);
      if (handler === undefined) {
        lastError = new Error("404 page not found");
        continue;
      }
      this.network.stats.requests++;
      let timer: NodeJS.Timeout | undefined;
      try {
        const asked = structuredClone(request);
        const answer = new Promise<PeerAnswerOf<K>>((resolve, reject) => {
          this.network.schedule(this.localId, target.localId, () => {
            handler(asked).then(
              (a) => resolve(structuredClone(a) as PeerAnswerOf<K>),
              (error: unknown) => reject(failureSeenByAsker(kind, error)),
            );
          });
        });
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timeoutSeenByAsker(kind)), timeoutMs);
        });
        return await Promise.race([answer, timeout]);
      } catch (error) {
        lastError = error;
        // As over HTTP, a refused promotion is the answer, not a reason to ask another URL.
        if (kind === "promote" && isRpcError(error) && error.kind !== "leaderChanged" && error.kind !== "timeout") throw error;
      } finally {
        clearTimeout(timer);
      }
    }
    throw lastError;
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.network.unregister(this);
    return Promise.resolve();
  }

  /** The listening end at `urls` this member reaches now; throws as a refused connection would. */
  private reachable(urls: readonly string[]): SimulatedPeerNetwork {
    const target = this.network.endAt(urls);
    if (this.stopped || target === undefined) throw new Error(`connect ECONNREFUSED ${urls.join(",")}`);
    if (!this.network.connected(this.localId, target.localId) || !this.network.connected(target.localId, this.localId)) {
      throw new Error(`connect ETIMEDOUT ${urls.join(",")}: the link is cut`);
    }
    return target;
  }
}

/** The chunks of a shipped database as the receiving member reads them. */
function asyncChunks(chunks: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      let next = 0;
      return {
        next: () =>
          Promise.resolve(
            next < chunks.length ? { done: false as const, value: chunks[next++]! } : { done: true as const, value: undefined },
          ),
      };
    },
  };
}

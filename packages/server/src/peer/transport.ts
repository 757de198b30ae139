import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
import { MessageType, decodeMessage, encodeMessageFrames, type Message } from "@etcd-ts/raft";
import type { Logger } from "../log.js";
import { peerRequest } from "../tls.js";

/**
 * Raft messages between members over HTTP/1.1 on the peer URLs. Each member keeps one long-lived POST
 * per peer (`/raft/stream`) whose chunked body is a sequence of frames — 4-byte big-endian length, then
 * an encoded raft message — so messages are batched by the socket and arrive in order. Raft tolerates
 * loss, so a peer that cannot keep up (its socket buffer over a bound) has messages dropped and is
 * reported unreachable rather than growing memory; a broken stream is re-dialled with back-off.
 */

export interface TransportEvents {
  /** A message from a peer, to be stepped into raft. */
  onMessage(message: Message): void;
  /** A peer could not be reached (raft then probes it instead of pipelining). */
  onUnreachable(peerId: bigint): void;
  /** Whether `peerId` was removed from the cluster (its streams are refused with 410 Gone, as etcd's). */
  isRemoved?(peerId: bigint): boolean;
  /** Whether `peerId` is a member now: messages from anyone else are not stepped into raft. */
  isMember?(peerId: bigint): boolean;
  /** A peer refused our stream because this member was removed from the cluster. */
  onRemovedFromCluster?(): void;
}

/** etcd's rafthttp answers a removed member's stream with 410 Gone; the member then stops. */
const STATUS_GONE = 410;

/** Frames beyond this many buffered bytes to one peer are dropped (raft will resend what matters). */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/**
 * The largest raft message frame a stream accepts: raft batches appends up to 1 MiB, but one entry
 * alone can be a whole client request (`--max-request-bytes`) with its envelope. A length prefix above
 * this drops the stream before anything is buffered for it.
 */
export function maxRaftFrameBytes(maxRequestBytes: number): number {
  return Math.max(64 * 1024 * 1024, 2 * maxRequestBytes + 1024 * 1024);
}

/**
 * Splits a stream into length-prefixed frames (4-byte big-endian length, then the body). Chunks are
 * kept as they arrive and joined once per frame, so a large frame costs one copy, not one per chunk;
 * a length above `maxFrameBytes` fails at once, before its bytes are waited for.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes received but not yet returned as a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds bytes; returns the frames they complete. Throws when a frame announces more than the limit. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    while (this.buffered >= 4) {
      const length = this.peek(4).readUInt32BE(0);
      if (length > this.maxFrameBytes) {
        throw new Error(`a raft frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`);
      }
      if (this.buffered < 4 + length) break;
      frames.push(this.take(4 + length).subarray(4));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    return first.length >= n ? first : Buffer.concat(this.chunks, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.concat(this.chunks, n);
      let left = n;
      while (left > 0) {
        const head = this.chunks[0]!;
        if (head.length <= left) {
          left -= head.length;
          this.chunks.shift();
        } else {
          this.chunks[0] = head.subarray(left);
          left = 0;
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}
const RECONNECT_DELAY_MS = 100;

export const CLUSTER_ID_HEADER = "x-etcd-cluster-id";
export const FROM_HEADER = "x-raft-from";
export const RAFT_STREAM_PATH = "/raft/stream";

class PeerStream {
  private request: ClientRequest | undefined;
  private connecting = false;
  private closed = false;
  private urlIndex = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** When the current stream came up (ms since the epoch); 0 while there is none (etcd's ActiveSince). */
  activeSince = 0;

  constructor(
    readonly peerId: bigint,
    private urls: readonly string[],
    private readonly localId: bigint,
    private readonly clusterId: bigint,
    private readonly events: TransportEvents,
    private readonly logger: Logger,
  ) {}

  /** Dials now rather than on the first message, so the stream is up (and ActiveSince known) early, as etcd's are. */
  dial(): void {
    if (this.request === undefined) this.connect();
  }

  setUrls(urls: readonly string[]): void {
    if (urls.length === this.urls.length && urls.every((u, i) => u === this.urls[i])) return;
    this.urls = urls;
    this.request?.destroy();
  }

  /** Writes whole frames (one or more); dropped when the stream is down or backed up. */
  send(frames: Buffer): void {
    if (this.closed) return;
    if (this.request === undefined) {
      this.connect();
      // Messages while dialling are dropped: raft resends heartbeats/appends as needed.
      this.events.onUnreachable(this.peerId);
      return;
    }
    const socket = this.request.socket;
    if (socket !== null && socket.writableLength > MAX_BUFFERED_BYTES) {
      this.events.onUnreachable(this.peerId);
      return;
    }
    this.request.write(frames);
  }

  private connect(): void {
    if (this.connecting || this.closed || this.urls.length === 0) return;
    this.connecting = true;
    const url = new URL(RAFT_STREAM_PATH, this.urls[this.urlIndex++ % this.urls.length]);
    // https peer URLs are dialled with the peer certificate.
    const req = peerRequest(url, {
      method: "POST",
      headers: {
        "content-type": "application/octet-stream",
        "transfer-encoding": "chunked",
        [CLUSTER_ID_HEADER]: this.clusterId.toString(16),
        [FROM_HEADER]: this.localId.toString(16),
      },
      agent: false,
    });
    req.setNoDelay(true);
    req.once("socket", (socket) => {
      socket.once("connect", () => {
        this.connecting = false;
        this.request = req;
        this.activeSince = Date.now();
        // Send the headers now so the peer starts reading the stream.
        req.flushHeaders();
      });
    });
    req.once("response", (res: IncomingMessage) => {
      // The peer only answers when it refuses or ends the stream.
      if (res.statusCode === STATUS_GONE) {
        this.events.onRemovedFromCluster?.();
      } else if (res.statusCode !== 200) {
        this.logger.warn("peer refused the raft stream", { peer: this.peerId, status: res.statusCode });
      }
      res.resume();
      req.destroy();
    });
    req.once("error", () => undefined);
    req.once("close", () => {
      if (this.request === req) {
        this.request = undefined;
        this.activeSince = 0;
      }
      this.connecting = false;
      if (!this.closed) {
        this.events.onUnreachable(this.peerId);
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.connect(), RECONNECT_DELAY_MS);
      }
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.request?.destroy();
    this.request = undefined;
  }
}

export class PeerTransport {
  private readonly peers = new Map<bigint, PeerStream>();
  private readonly inbound = new Set<IncomingMessage>();

  constructor(
    private readonly localId: bigint,
    private readonly clusterId: bigint,
    private readonly events: TransportEvents,
    private readonly logger: Logger,
    private readonly maxFrameBytes = maxRaftFrameBytes(0),
  ) {}

  addPeer(id: bigint, urls: readonly string[]): void {
    if (id === this.localId || this.peers.has(id)) return;
    const stream = new PeerStream(id, urls, this.localId, this.clusterId, this.events, this.logger);
    this.peers.set(id, stream);
    stream.dial();
  }

  /** The peers this transport talks to. */
  peerIds(): bigint[] {
    return [...this.peers.keys()];
  }

  /** When the stream to `id` came up (ms since the epoch); 0 while it is down or unknown. */
  activeSince(id: bigint): number {
    return this.peers.get(id)?.activeSince ?? 0;
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    const peer = this.peers.get(id);
    if (peer === undefined) this.addPeer(id, urls);
    else peer.setUrls(urls);
  }

  removePeer(id: bigint): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  /** Sends each peer its messages of one Ready as one write (one HTTP chunk, one syscall), in order. */
  send(messages: readonly Message[]): void {
    const messagesByPeer = new Map<PeerStream, Message[]>();
    for (const message of messages) {
      const peer = this.peers.get(message.to);
      if (peer === undefined) continue;
      const forPeer = messagesByPeer.get(peer);
      if (forPeer === undefined) messagesByPeer.set(peer, [message]);
      else forPeer.push(message);
    }
    for (const [peer, forPeer] of messagesByPeer) {
      const frames = encodeMessageFrames(forPeer);
      peer.send(Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength));
    }
  }

  /** Serves `POST /raft/stream` on the peer listener: reads frames until the peer closes. */
  handleStream(req: IncomingMessage, res: ServerResponse): void {
    const cluster = req.headers[CLUSTER_ID_HEADER];
    if (cluster !== this.clusterId.toString(16)) {
      res.writeHead(412, { "content-type": "text/plain" });
      res.end(`cluster ID mismatch: local ${this.clusterId.toString(16)}, remote ${String(cluster)}\n`);
      return;
    }
    const from = req.headers[FROM_HEADER];
    if (typeof from === "string" && /^[0-9a-f]+$/.test(from) && this.events.isRemoved?.(BigInt(`0x${from}`)) === true) {
      res.writeHead(STATUS_GONE, { "content-type": "text/plain" });
      res.end("the member has been permanently removed from the cluster\n");
      req.resume();
      return;
    }
    this.inbound.add(req);
    const headerFrom = typeof from === "string" && /^[0-9a-f]{1,16}$/.test(from) ? BigInt(`0x${from}`) : undefined;
    const reader = new FrameReader(this.maxFrameBytes);
    req.on("data", (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (error) {
        this.logger.warn("dropping a raft stream with an oversized frame", { error: String(error) });
        req.destroy();
        return;
      }
      for (const body of bodies) {
        let message: Message;
        try {
          message = decodeMessage(body);
        } catch (error) {
          this.logger.warn("dropping a malformed raft frame; closing the stream", { error: String(error) });
          req.destroy();
          return;
        }
        const invalid = this.checkMessage(message, headerFrom);
        if (invalid !== undefined) {
          this.logger.warn("dropping a raft stream that carried an invalid message", {
            reason: invalid,
            type: message.type,
            from: message.from,
          });
          req.destroy();
          return;
        }
        if (this.events.isRemoved?.(message.from) === true) {
          // A member removed while its stream was up: tell it, as etcd does, so it stops.
          if (!res.headersSent) {
            res.writeHead(STATUS_GONE, { "content-type": "text/plain" });
            res.end("the member has been permanently removed from the cluster\n");
          }
          req.destroy();
          return;
        }
        this.events.onMessage(message);
      }
    });
    const done = () => {
      this.inbound.delete(req);
      if (!res.headersSent) {
        res.writeHead(200);
        res.end();
      }
    };
    req.once("end", done);
    req.once("close", done);
  }

  /**
   * Why a decoded message must not reach raft, or undefined. Raft trusts its peers as etcd's does, and
   * what it accepts from one it persists (a MsgApp's entries become the log); these checks keep a damaged
   * or forged frame from a stream to the kind of message this member's peers send: addressed to it, from
   * the member the stream says it is from and that is a member now (etcd refuses streams from unknown
   * senders), indexes and terms exact integers, a MsgApp's entries contiguous after its index, and no
   * snapshot (snapshots come through POST /raft/snapshot).
   */
  private checkMessage(message: Message, headerFrom: bigint | undefined): string | undefined {
    if (message.to !== this.localId) return `addressed to ${message.to.toString(16)}`;
    if (message.from === 0n || message.from === this.localId) return `from ${message.from.toString(16)}`;
    if (headerFrom !== undefined && message.from !== headerFrom) return "sender differs from the stream's";
    if (this.events.isMember !== undefined && !this.events.isMember(message.from)) return "sender is not a member";
    if (message.type === MessageType.Snap || message.snapshot !== undefined) return "a snapshot on the stream";
    const numbers = [message.term, message.logTerm, message.index, message.commit, message.rejectHint];
    if (!numbers.every((n) => Number.isSafeInteger(n))) return "a term or index out of range";
    for (const [i, entry] of message.entries.entries()) {
      if (!Number.isSafeInteger(entry.term) || !Number.isSafeInteger(entry.index)) return "an entry's term or index out of range";
      if (message.type === MessageType.App) {
        if (entry.index !== message.index + 1 + i) return "entries not contiguous after the message's index";
        if (entry.term > message.term || entry.term < (i === 0 ? message.logTerm : message.entries[i - 1]!.term))
          return "entry terms out of order";
      }
    }
    return undefined;
  }

  stop(): void {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    for (const req of this.inbound) req.destroy();
    this.inbound.clear();
  }
}

import type { IncomingMessage, ServerResponse } from "node:http";
import { create } from "@bufbuild/protobuf";
import { AlarmRequestSchema, AlarmRequest_AlarmAction, AlarmType, type InternalRaftRequest, type ResponseHeader } from "@etcd-ts/api";
import type { Logger } from "./log.js";
import type { Member } from "./membership/membership.js";
import { peerRequest } from "./tls.js";

/** Peer route a leader asks each member's HashKV on (etcd's `/members/hashkv`). */
export const PEER_HASHKV_PATH = "/members/hashkv";

export interface PeerHashKV {
  readonly memberId: string;
  /** The member's current revision when it answered. */
  readonly revision: number;
  readonly compactRevision: number;
  readonly hash: number;
}

export interface CorruptionCheckHost {
  readonly memberId: bigint;
  isLeader(): boolean;
  members(): readonly Member[];
  /** HashKV of the local store at `revision` (0: current), with the current and compact revisions. */
  localHashKV(revision: number): { hash: number; currentRevision: number; compactRevision: number };
  proposeRequest<T extends { header?: ResponseHeader }>(request: InternalRaftRequest["request"]): Promise<T>;
}

/**
 * etcd's periodic corruption check (`--experimental-corrupt-check-time`): the leader compares its
 * HashKV with every member's at the leader's revision and raises a CORRUPT alarm (through the log, so
 * every member stops applying writes) for a member whose history differs — a revision or compact
 * revision ahead of the leader's, or the same compact revision with another hash — and for itself
 * if its own hash changed under an unchanged revision.
 */
export class CorruptionChecker {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly host: CorruptionCheckHost,
    private readonly logger: Logger,
    private readonly timeoutMs = 5000,
  ) {}

  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => void this.check().catch((error: unknown) => this.logger.warn("corruption check failed", { error: String(error) })), intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One round (leader only); resolves with the member IDs found corrupt. */
  async check(): Promise<bigint[]> {
    if (this.running || !this.host.isLeader()) return [];
    this.running = true;
    try {
      const local = this.host.localHashKV(0);
      const peers = await Promise.all(
        this.host
          .members()
          .filter((m) => m.id !== this.host.memberId)
          .map((m) => fetchPeerHashKV(m.peerUrls, local.currentRevision, this.timeoutMs).catch(() => undefined)),
      );
      const again = this.host.localHashKV(0);
      const corrupt = new Set<bigint>();
      if (again.hash !== local.hash && again.currentRevision === local.currentRevision && again.compactRevision === local.compactRevision) {
        corrupt.add(this.host.memberId);
      }
      for (const peer of peers) {
        if (peer === undefined) continue;
        const id = BigInt(`0x${peer.memberId}`);
        if (peer.revision > again.currentRevision) corrupt.add(id);
        if (peer.compactRevision > again.compactRevision) corrupt.add(id);
        if (peer.compactRevision === local.compactRevision && peer.hash !== local.hash) corrupt.add(id);
      }
      for (const id of corrupt) {
        this.logger.error("found data inconsistency with peers; raising the CORRUPT alarm", { member: id.toString(16), revision: local.currentRevision });
        await this.host.proposeRequest({
          case: "alarm",
          value: create(AlarmRequestSchema, { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: id, alarm: AlarmType.CORRUPT }),
        });
      }
      return [...corrupt];
    } finally {
      this.running = false;
    }
  }

  /** Serves `POST /members/hashkv` (`{ revision }`) on the peer listener; false for other requests. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "").split("?")[0];
    if (path !== PEER_HASHKV_PATH || req.method !== "POST") return false;
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      try {
        const { revision } = JSON.parse(body) as { revision: number };
        const { hash, currentRevision, compactRevision } = this.host.localHashKV(revision);
        const answer: PeerHashKV = { memberId: this.host.memberId.toString(16), revision: currentRevision, compactRevision, hash };
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(answer));
      } catch (error) {
        // A revision compacted away here or still in the future: nothing to compare.
        res.writeHead(400, { "content-type": "text/plain" });
        res.end(error instanceof Error ? error.message : String(error));
      }
    });
    return true;
  }
}

async function fetchPeerHashKV(urls: readonly string[], revision: number, timeoutMs: number): Promise<PeerHashKV> {
  let lastError: unknown = new Error("no peer URL");
  for (const base of urls) {
    try {
      return await new Promise<PeerHashKV>((resolve, reject) => {
        const req = peerRequest(new URL(PEER_HASHKV_PATH, base), { method: "POST", timeout: timeoutMs, headers: { "content-type": "application/json" }, agent: false }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text) as PeerHashKV) : reject(new Error(text))));
        });
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end(JSON.stringify({ revision }));
      });
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

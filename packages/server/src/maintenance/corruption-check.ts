import { create } from "@bufbuild/protobuf";
import { AlarmRequestSchema, AlarmRequest_AlarmAction, AlarmType, type InternalRaftRequest, type ResponseHeader } from "@etcd-ts/api";
import type { Logger } from "../log.js";
import type { Member } from "../membership/membership.js";
import type { PeerHashKV } from "../peer/peer-network.js";

export interface CorruptionCheckHost {
  readonly memberId: bigint;
  isLeader(): boolean;
  members(): readonly Member[];
  /** HashKV of the local store at `revision` (0: current), with the current and compact revisions. */
  localHashKV(revision: number): { hash: number; currentRevision: number; compactRevision: number };
  proposeRequest<T extends { header?: ResponseHeader }>(request: InternalRaftRequest["request"]): Promise<T>;
  /** Asks the member at one of `urls` for its HashKV at `revision` (over the peer network). */
  peerHashKV(urls: readonly string[], revision: number, timeoutMs: number): Promise<PeerHashKV>;
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
    this.timer = setInterval(
      () => void this.check().catch((error: unknown) => this.logger.warn("corruption check failed", { error: String(error) })),
      intervalMs,
    );
    this.timer.unref();
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
          .map((m) => this.host.peerHashKV(m.peerUrls, local.currentRevision, this.timeoutMs).catch(() => undefined)),
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
        this.logger.error("found data inconsistency with peers; raising the CORRUPT alarm", {
          member: id.toString(16),
          revision: local.currentRevision,
        });
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

  /**
   * Answers a peer's HashKV question (etcd's `/members/hashkv`). A revision compacted away here or still
   * in the future throws: there is nothing to compare.
   */
  answerHashKV(revision: number): PeerHashKV {
    const { hash, currentRevision, compactRevision } = this.host.localHashKV(revision);
    return { memberId: this.host.memberId.toString(16), revision: currentRevision, compactRevision, hash };
  }
}

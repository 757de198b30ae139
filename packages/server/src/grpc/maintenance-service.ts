import { create } from "@bufbuild/protobuf";
import {
  AlarmResponseSchema,
  GrpcCode,
  MoveLeaderResponseSchema,
  RpcError,
  SnapshotResponseSchema,
  type AlarmRequest,
  type AlarmResponse,
  type InternalRaftRequest,
  type MoveLeaderRequest,
  type MoveLeaderResponse,
  type ResponseHeader,
  type SnapshotRequest,
  type SnapshotResponse,
} from "@etcd-ts/api";
import { maintenanceSnapshotResponses } from "@etcd-ts/snapshot";
import type { AuthInfo } from "@etcd-ts/auth";
import type { Backend } from "@etcd-ts/storage";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { clusterStateSnapshot } from "../maintenance/backend-snapshot.js";
import type { Logger } from "../log.js";
import type { Membership } from "../membership/membership.js";
import { toServiceError } from "../errors.js";

/** What the Maintenance service needs of a member (EtcdServer provides it). */
export interface MaintenanceHost {
  readonly backend: Backend;
  readonly membership: Membership;
  readonly memberId: bigint;
  proposeRequest<T extends { header?: ResponseHeader }>(request: InternalRaftRequest["request"], caller?: AuthInfo): Promise<T>;
  isLeader(): boolean;
  leaderId(): bigint;
  transferLeadership(to: bigint): void;
}

/** etcd's `ErrTimeoutLeaderTransfer`. */
const LEADER_TRANSFER_TIMEOUT_MESSAGE = "etcdserver: request timed out, leader transfer took too long";

/**
 * etcd's Maintenance RPCs beyond Status/Hash/HashKV/Defragment: Alarm (through the log, as etcd 3.4
 * does for every action), Snapshot (the whole backend as etcd's bbolt snapshot file, streamed) and
 * MoveLeader.
 */
export class MaintenanceService {
  constructor(
    private readonly host: MaintenanceHost,
    private readonly logger: Logger,
    private readonly requestTimeoutMs = 7000,
    private readonly tickMs = 100,
  ) {}

  /**
   * etcd answers Alarm with the applied response as is: no header. With auth on, the entry is checked as
   * the caller's when it applies (listing: anyone; raising or clearing: root).
   */
  async alarm(request: AlarmRequest, caller?: AuthInfo): Promise<AlarmResponse> {
    const response = await this.host.proposeRequest<AlarmResponse>({ case: "alarm", value: request }, caller);
    return create(AlarmResponseSchema, { alarms: response.alarms });
  }

  /**
   * etcd's MoveLeader: only on the leader, only to a voting member; waits until raft reports the
   * transferee as leader (a transfer to itself is done at once).
   */
  async moveLeader(request: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    if (!this.host.isLeader() || this.host.leaderId() !== this.host.memberId) throw RpcError.of("notLeader");
    const target = this.host.membership.get(request.targetID);
    if (target === undefined || target.isLearner) throw RpcError.of("badLeaderTransferee");
    const deadline = Date.now() + this.requestTimeoutMs;
    this.host.transferLeadership(request.targetID);
    while (this.host.leaderId() !== request.targetID) {
      if (Date.now() >= deadline) throw new RpcError(GrpcCode.UNAVAILABLE, LEADER_TRANSFER_TIMEOUT_MESSAGE);
      await new Promise((r) => setTimeout(r, this.tickMs));
    }
    this.logger.info("leadership transferred", { to: request.targetID.toString(16) });
    return create(MoveLeaderResponseSchema, {});
  }

  /**
   * Streams a consistent copy of the whole backend in etcd's snapshot format (bbolt pages, then the
   * SHA-256), honouring the client's flow control; the backend snapshot is closed on end, error or
   * cancellation.
   */
  snapshot(call: ServerWritableStream<SnapshotRequest, SnapshotResponse>): void {
    const view = clusterStateSnapshot(this.host.backend.snapshot());
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      view.close();
    };
    let cancelled = false;
    call.on("cancelled", () => {
      cancelled = true;
      close();
    });
    void (async () => {
      try {
        // `cancelled` is set by the call's 'cancelled' event, while this loop awaits.
        for await (const chunk of maintenanceSnapshotResponses(view)) {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (cancelled) return;
          const message = create(SnapshotResponseSchema, { remainingBytes: BigInt(chunk.remainingBytes), blob: chunk.blob });
          if (!call.write(message)) await new Promise<void>((resolve) => call.once("drain", () => resolve()));
        }
        close();
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!cancelled) call.end();
      } catch (error) {
        close();
        // grpc-js turns an 'error' event into the call's status (destroy would skip sending it).
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (!cancelled) call.emit("error", toServiceError(error, this.logger));
      }
    })();
  }
}

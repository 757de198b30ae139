import { create } from "@bufbuild/protobuf";
import {
  LeaseKeepAliveResponseSchema,
  LeaseLeasesResponseSchema,
  LeaseStatusSchema,
  LeaseTimeToLiveResponseSchema,
  RpcError,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
} from "@etcd-ts/api";
import { MAX_LEASE_TTL, cryptoRandomSource } from "@etcd-ts/lease";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { AuthInfo } from "@etcd-ts/auth";
import type { EtcdServer } from "../etcd-server.js";
import type { Logger } from "../log.js";
import { toServiceError } from "../errors.js";
import { GrpcStreamStats } from "./stream-stats.js";

/** etcd's Lease service over the server: grants and revokes through the log, renewals on the leader. */
export class LeaseService {
  constructor(
    private readonly etcd: EtcdServer,
    private readonly logger: Logger,
    private readonly stats = new GrpcStreamStats(),
  ) {}

  async grant(request: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    // etcd refuses a too-large TTL before proposing; the applier checks it again.
    if (request.TTL > BigInt(MAX_LEASE_TTL)) throw RpcError.of("leaseTTLTooLarge");
    const ID = request.ID !== 0n ? request.ID : this.etcd.lessor.newLeaseId(cryptoRandomSource);
    return this.etcd.proposeRequest<LeaseGrantResponse>({ case: "leaseGrant", value: { ...request, ID } });
  }

  async revoke(request: LeaseRevokeRequest, caller?: AuthInfo): Promise<LeaseRevokeResponse> {
    return this.etcd.proposeRequest<LeaseRevokeResponse>({ case: "leaseRevoke", value: request }, caller);
  }

  async timeToLive(request: LeaseTimeToLiveRequest, caller?: AuthInfo) {
    const answer = await this.etcd.leaseTimeToLive(request.ID, request.keys);
    // Who may see a lease's keys: write permission on every one of them.
    if (request.keys)
      this.etcd.checkAuth(() =>
        this.etcd.auth.checkLeaseTimeToLive(
          caller,
          answer.keys.map((k) => Buffer.from(k, "base64")),
        ),
      );
    return create(LeaseTimeToLiveResponseSchema, {
      header: this.etcd.header(),
      ID: request.ID,
      TTL: BigInt(answer.ttl),
      grantedTTL: BigInt(answer.grantedTTL),
      keys: answer.keys.map((k) => Buffer.from(k, "base64")),
    });
  }

  leases() {
    return create(LeaseLeasesResponseSchema, {
      header: this.etcd.header(),
      leases: this.etcd.lessor.leases().map((ID) => create(LeaseStatusSchema, { ID })),
    });
  }

  /**
   * LeaseKeepAlive: each request renews its lease and gets the new TTL (0 for an unknown lease).
   * Renewals run one at a time in request order; a client that sends faster than it is answered (or
   * reads its answers slower) has its stream paused once `MAX_PENDING_KEEPALIVES` requests wait, so a
   * stream holds a bounded number of requests and answers.
   */
  keepAlive(call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>): void {
    const stats = this.stats;
    let closed = false;
    let chain: Promise<void> = Promise.resolve();
    let pending = 0;
    let paused = false;
    stats.keepAliveStreams++;
    call.on("data", (request: LeaseKeepAliveRequest) => {
      pending++;
      stats.keepAlivesPending++;
      if (!paused && pending >= MAX_PENDING_KEEPALIVES) {
        paused = true;
        call.pause();
      }
      // Answer in request order, one renewal at a time per stream.
      chain = chain.then(async () => {
        try {
          if (closed) return;
          const ttl = await this.etcd.leaseRenew(request.ID);
          // The stream may have closed while the renewal waited.
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
          if (closed) return;
          if (!call.write(create(LeaseKeepAliveResponseSchema, { header: this.etcd.header(), ID: request.ID, TTL: BigInt(ttl) })))
            await drainedOrClosed(call);
        } catch (error) {
          if (closed) return;
          closed = true;
          call.emit("error", toServiceError(error, this.logger));
        } finally {
          pending--;
          stats.keepAlivesPending--;
          if (paused && pending <= MAX_PENDING_KEEPALIVES / 2) {
            paused = false;
            call.resume();
          }
        }
      });
    });
    const end = () => {
      if (closed) return;
      closed = true;
      void chain.then(() => call.end());
    };
    let counted = true;
    const uncount = () => {
      if (counted) stats.keepAliveStreams--;
      counted = false;
    };
    call.on("end", end);
    call.on("cancelled", () => (closed = true));
    call.on("error", () => (closed = true));
    call.on("close", () => {
      closed = true;
      uncount();
    });
  }
}

/** Keep-alive requests one stream may have waiting (read, not yet answered) before it stops reading. */
export const MAX_PENDING_KEEPALIVES = 128;

/** Resolves when the call can take more writes, or is closed. */
function drainedOrClosed(call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("close", done);
      resolve();
    };
    call.once("drain", done);
    call.once("close", done);
  });
}

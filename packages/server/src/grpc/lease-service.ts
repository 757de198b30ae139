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
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
} from "@etcd-ts/api";
import { MAX_LEASE_TTL, cryptoRandomSource } from "@etcd-ts/lease";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { AuthInfo } from "@etcd-ts/auth";
import type { EtcdServer } from "../etcd-server.js";
import type { Logger } from "../log.js";
import { toServiceError } from "./status.js";

/** etcd's Lease service over the server: grants and revokes through the log, renewals on the leader. */
export class LeaseService {
  constructor(
    private readonly etcd: EtcdServer,
    private readonly logger: Logger,
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
    // Who may see a lease's keys: write permission on every one of them (issue 6).
    if (request.keys) this.etcd.checkAuth(() => this.etcd.auth.checkLeaseTimeToLive(caller, answer.keys.map((k) => Buffer.from(k, "base64"))));
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

  /** LeaseKeepAlive: each request renews its lease and gets the new TTL (0 for an unknown lease). */
  keepAlive(call: ServerDuplexStream<LeaseKeepAliveRequest, unknown>): void {
    let closed = false;
    let chain: Promise<void> = Promise.resolve();
    call.on("data", (request: LeaseKeepAliveRequest) => {
      // Answer in request order, one renewal at a time per stream.
      chain = chain.then(async () => {
        if (closed) return;
        try {
          const ttl = await this.etcd.leaseRenew(request.ID);
          if (!closed) call.write(create(LeaseKeepAliveResponseSchema, { header: this.etcd.header(), ID: request.ID, TTL: BigInt(ttl) }));
        } catch (error) {
          if (closed) return;
          closed = true;
          call.emit("error", toServiceError(error, this.logger));
        }
      });
    });
    const end = () => {
      if (closed) return;
      closed = true;
      void chain.then(() => call.end());
    };
    call.on("end", end);
    call.on("cancelled", () => (closed = true));
    call.on("error", () => (closed = true));
  }
}

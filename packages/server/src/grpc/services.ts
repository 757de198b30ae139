import { create } from "@bufbuild/protobuf";
import {
  Cluster,
  Lease,
  Watch,
  DefragmentResponseSchema,
  KV,
  Maintenance,
  grpcServiceDefinition,
  type CompactionRequest,
  type HashKVRequest,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  type TxnRequest,
} from "@etcd-ts/api";
import type { Server, ServerDuplexStream, ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, WatchRequest } from "@etcd-ts/api";
import type { MemberAddRequest, MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest } from "@etcd-ts/api";
import { ClusterService } from "./cluster-service.js";
import { LeaseService } from "./lease-service.js";
import { serveWatch } from "./watch-service.js";
import type { EtcdServer } from "../etcd-server.js";
import type { Logger } from "../log.js";
import { toServiceError } from "./status.js";

type UnaryHandler<Req> = (request: Req) => unknown;

/**
 * Wraps an async handler for grpc-js, which does not catch rejected promises: every outcome becomes
 * exactly one callback, errors through the status table.
 */
function unary<Req>(logger: Logger, handler: UnaryHandler<Req>) {
  return (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>): void => {
    let result: unknown;
    try {
      result = handler(call.request);
    } catch (error) {
      callback(toServiceError(error, logger));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error, logger)),
      );
    } else {
      callback(null, result);
    }
  };
}

/** Registers the services this member serves on its client listener. */
export function addEtcdServices(grpcServer: Server, etcd: EtcdServer, logger: Logger): void {
  const kv: UntypedServiceImplementation = {
    Range: unary<RangeRequest>(logger, (r) => etcd.range(r)),
    Put: unary<PutRequest>(logger, (r) => etcd.put(r)),
    DeleteRange: unary<DeleteRangeRequest>(logger, (r) => etcd.deleteRange(r)),
    Txn: unary<TxnRequest>(logger, (r) => etcd.txn(r)),
    Compact: unary<CompactionRequest>(logger, (r) => etcd.compact(r)),
  };
  grpcServer.addService(grpcServiceDefinition(KV), kv);

  const maintenance: UntypedServiceImplementation = {
    Status: unary(logger, () => etcd.status()),
    HashKV: unary<HashKVRequest>(logger, (r) => etcd.hashKV(Number(r.revision))),
    Hash: unary(logger, () => etcd.hash()),
    Defragment: unary(logger, async () => {
      await etcd.defragment();
      return create(DefragmentResponseSchema, { header: etcd.header() });
    }),
  };
  grpcServer.addService(grpcServiceDefinition(Maintenance), maintenance);

  const watch: UntypedServiceImplementation = {
    Watch: (call: ServerDuplexStream<WatchRequest, unknown>) => serveWatch(call, etcd, etcd.watchable),
  };
  grpcServer.addService(grpcServiceDefinition(Watch), watch);

  const leases = new LeaseService(etcd, logger);
  const lease: UntypedServiceImplementation = {
    LeaseGrant: unary<LeaseGrantRequest>(logger, (r) => leases.grant(r)),
    LeaseRevoke: unary<LeaseRevokeRequest>(logger, (r) => leases.revoke(r)),
    LeaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, unknown>) => leases.keepAlive(call),
    LeaseTimeToLive: unary<LeaseTimeToLiveRequest>(logger, (r) => leases.timeToLive(r)),
    LeaseLeases: unary(logger, () => leases.leases()),
  };
  grpcServer.addService(grpcServiceDefinition(Lease), lease);

  const members = new ClusterService(etcd, logger);
  const cluster: UntypedServiceImplementation = {
    MemberAdd: unary<MemberAddRequest>(logger, (r) => members.memberAdd(r)),
    MemberRemove: unary<MemberRemoveRequest>(logger, (r) => members.memberRemove(r)),
    MemberUpdate: unary<MemberUpdateRequest>(logger, (r) => members.memberUpdate(r)),
    MemberList: unary(logger, () => members.memberList()),
    MemberPromote: unary<MemberPromoteRequest>(logger, (r) => members.memberPromote(r)),
  };
  grpcServer.addService(grpcServiceDefinition(Cluster), cluster);
}

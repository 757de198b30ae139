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
  type AuthenticateRequest,
  type AuthUserAddRequest,
  type AuthUserChangePasswordRequest,
} from "@etcd-ts/api";
import type { Metadata, Server, ServiceDefinition, ServerDuplexStream, ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Auth } from "@etcd-ts/api";
import type { AuthInfo } from "@etcd-ts/auth";
import { AuthService } from "./auth-service.js";
import type { LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, WatchRequest } from "@etcd-ts/api";
import type { MemberAddRequest, MemberPromoteRequest, MemberRemoveRequest, MemberUpdateRequest } from "@etcd-ts/api";
import { ClusterService } from "./cluster-service.js";
import { MaintenanceService } from "./maintenance-service.js";
import { GrpcCode } from "@etcd-ts/api";
import type { AlarmRequest, MoveLeaderRequest } from "@etcd-ts/api";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { LeaseService } from "./lease-service.js";
import { serveWatch } from "./watch-service.js";
import { GrpcStreamStats } from "./stream-stats.js";
import type { CancellableCall, EtcdServer } from "../etcd-server.js";
import type { Logger } from "../log.js";
import { toServiceError } from "../errors.js";
import { decodeTxnRequest } from "../apply/index.js";

type UnaryHandler<Req> = (request: Req, call: ServerUnaryCall<Req, unknown>) => unknown;

/** The caller's token: gRPC metadata `token` (the JSON gateway puts the Authorization header there). */
function tokenOf(call: { metadata: Metadata }): string | undefined {
  const value = call.metadata.get("token")[0];
  return value === undefined ? undefined : String(value);
}

/**
 * Wraps an async handler for grpc-js, which does not catch rejected promises: every outcome becomes
 * exactly one callback, errors through the status table.
 */
function unary<Req>(logger: Logger, handler: UnaryHandler<Req>) {
  return (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>): void => {
    let result: unknown;
    try {
      result = handler(call.request, call);
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

/** etcd's KV service; a Txn nested deeper than any valid one decodes to a txn answered tooManyOps. */
function kvServiceDefinition(): ServiceDefinition {
  const definition = grpcServiceDefinition(KV);
  return { ...definition, Txn: { ...definition.Txn!, requestDeserialize: (bytes: Buffer) => decodeTxnRequest(bytes) } };
}

/** Registers the services this member serves on its client listener. */
export function addEtcdServices(grpcServer: Server, etcd: EtcdServer, logger: Logger, stats = new GrpcStreamStats()): void {
  const caller = (call: { metadata: Metadata } & CancellableCall): Promise<AuthInfo | undefined> => etcd.callerAuth(tokenOf(call), call);
  /** A handler for a root-only RPC. */
  const admin = <Req>(handler: UnaryHandler<Req>): UnaryHandler<Req> => async (r, call) => {
    etcd.checkAdmin(await caller(call));
    return handler(r, call);
  };
  const kv: UntypedServiceImplementation = {
    Range: unary<RangeRequest>(logger, async (r, call) => etcd.range(r, await caller(call))),
    Put: unary<PutRequest>(logger, async (r, call) => etcd.put(r, await caller(call))),
    DeleteRange: unary<DeleteRangeRequest>(logger, async (r, call) => etcd.deleteRange(r, await caller(call))),
    Txn: unary<TxnRequest>(logger, async (r, call) => etcd.txn(r, await caller(call))),
    Compact: unary<CompactionRequest>(logger, async (r, call) => etcd.compact(r, await caller(call))),
  };
  grpcServer.addService(kvServiceDefinition(), kv);

  const maintenanceRpcs = new MaintenanceService(etcd, logger);
  const maintenance: UntypedServiceImplementation = {
    Alarm: unary<AlarmRequest>(logger, async (r, call) => maintenanceRpcs.alarm(r, await caller(call))),
    MoveLeader: unary<MoveLeaderRequest>(logger, (r) => maintenanceRpcs.moveLeader(r)),
    // Root only, as etcd's authMaintenanceServer.
    Snapshot: (call: ServerWritableStream<unknown, unknown>) => {
      caller(call).then(
        (c) => {
          etcd.checkAdmin(c);
          maintenanceRpcs.snapshot(call);
        },
        (error: unknown) => call.emit("error", toServiceError(error, logger)),
      ).catch((error: unknown) => call.emit("error", toServiceError(error, logger)));
    },
    Status: unary(logger, () => etcd.status()),
    HashKV: unary<HashKVRequest>(logger, async (r, call) => etcd.hashKV(Number(r.revision), await caller(call))),
    Hash: unary(logger, admin(() => etcd.hash())),
    Defragment: unary(logger, admin(async () => {
      await etcd.defragment();
      return create(DefragmentResponseSchema, { header: etcd.header() });
    })),
  };
  grpcServer.addService(grpcServiceDefinition(Maintenance), maintenance);

  const watch: UntypedServiceImplementation = {
    Watch: (call: ServerDuplexStream<WatchRequest, unknown>) => {
      // The state behind `watchable` is replaced when a snapshot from the leader is installed: end the
      // stream with an error clients retry on (they resume from their last revision).
      const unsubscribe = etcd.onStateReplaced(() =>
        call.emit("error", { code: GrpcCode.UNAVAILABLE, details: "etcdserver: the member installed a snapshot from the leader" }),
      );
      call.once("close", unsubscribe);
      serveWatch(call, etcd, etcd.state.watchable, { token: tokenOf(call), stats });
    },
  };
  grpcServer.addService(grpcServiceDefinition(Watch), watch);

  const auth = new AuthService(etcd);
  const proposeAuth = (kind: string) => unary(logger, async (r: { $typeName: string }, call) =>
    auth.propose({ case: kind, value: r } as never, await caller(call)));
  grpcServer.addService(grpcServiceDefinition(Auth), {
    AuthEnable: proposeAuth("authEnable"),
    AuthDisable: proposeAuth("authDisable"),
    Authenticate: unary<AuthenticateRequest>(logger, (r, call) => auth.authenticate(r, call.getPeer())),
    UserAdd: unary<AuthUserAddRequest>(logger, async (r, call) => auth.userAdd(r, await caller(call))),
    UserGet: proposeAuth("authUserGet"),
    UserList: proposeAuth("authUserList"),
    UserDelete: proposeAuth("authUserDelete"),
    UserChangePassword: unary<AuthUserChangePasswordRequest>(logger, async (r, call) => auth.userChangePassword(r, await caller(call))),
    UserGrantRole: proposeAuth("authUserGrantRole"),
    UserRevokeRole: proposeAuth("authUserRevokeRole"),
    RoleAdd: proposeAuth("authRoleAdd"),
    RoleGet: proposeAuth("authRoleGet"),
    RoleList: proposeAuth("authRoleList"),
    RoleDelete: proposeAuth("authRoleDelete"),
    RoleGrantPermission: proposeAuth("authRoleGrantPermission"),
    RoleRevokePermission: proposeAuth("authRoleRevokePermission"),
  });

  const leases = new LeaseService(etcd, logger, stats);
  const lease: UntypedServiceImplementation = {
    LeaseGrant: unary<LeaseGrantRequest>(logger, (r) => leases.grant(r)),
    LeaseRevoke: unary<LeaseRevokeRequest>(logger, async (r, call) => leases.revoke(r, await caller(call))),
    LeaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, unknown>) => leases.keepAlive(call),
    LeaseTimeToLive: unary<LeaseTimeToLiveRequest>(logger, async (r, call) => leases.timeToLive(r, await caller(call))),
    LeaseLeases: unary(logger, () => leases.leases()),
  };
  grpcServer.addService(grpcServiceDefinition(Lease), lease);

  const members = new ClusterService(etcd, logger);
  const cluster: UntypedServiceImplementation = {
    MemberAdd: unary<MemberAddRequest>(logger, admin((r) => members.memberAdd(r))),
    MemberRemove: unary<MemberRemoveRequest>(logger, admin((r) => members.memberRemove(r))),
    MemberUpdate: unary<MemberUpdateRequest>(logger, admin((r) => members.memberUpdate(r))),
    MemberList: unary(logger, admin(() => members.memberList())),
    MemberPromote: unary<MemberPromoteRequest>(logger, admin((r) => members.memberPromote(r))),
  };
  grpcServer.addService(grpcServiceDefinition(Cluster), cluster);
}

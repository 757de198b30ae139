import { create } from "@bufbuild/protobuf";
import {
  Auth,
  Cluster,
  DefragmentResponseSchema,
  GrpcCode,
  KV,
  Lease,
  Maintenance,
  Watch,
  grpcServiceDefinition,
  type GrpcServiceDefinition,
  type GrpcServiceHandlers,
  type GrpcServiceRegistrar,
  type InternalRaftRequest,
  type ResponseHeader,
} from "@etcd-ts/api";
import type { Metadata, ServerUnaryCall, handleUnaryCall } from "@grpc/grpc-js";
import type { AuthInfo } from "@etcd-ts/auth";
import { AuthService } from "./auth-service.js";
import { ClusterService } from "./cluster-service.js";
import { MaintenanceService } from "./maintenance-service.js";
import { LeaseService } from "./lease-service.js";
import { serveWatch } from "./watch-service.js";
import { GrpcStreamStats } from "./stream-stats.js";
import type { CancellableCall, EtcdServer } from "../etcd-server.js";
import type { Logger } from "../log.js";
import { toServiceError } from "../errors.js";
import { decodeTxnRequest } from "../apply/index.js";
import { encodeRangeResponse, encodeRangeResponseInSteps } from "./range-response-encoding.js";

type UnaryHandler<Req, Res> = (request: Req, call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>;

/** The caller's token: gRPC metadata `token` (the JSON gateway puts the Authorization header there). */
function tokenOf(call: { metadata: Metadata }): string | undefined {
  const value = call.metadata.get("token")[0];
  return value === undefined ? undefined : String(value);
}

/**
 * Wraps an async handler for grpc-js, which does not catch rejected promises: every outcome becomes
 * exactly one callback, errors through the status table.
 */
function unary<Req, Res>(logger: Logger, handler: UnaryHandler<Req, Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let result: Res | Promise<Res>;
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

/**
 * etcd's KV service; a Txn nested deeper than any valid one decodes to a txn answered tooManyOps, and
 * Range responses are written by a hand-written encoder.
 */
function kvServiceDefinition(): GrpcServiceDefinition<typeof KV> {
  const definition = grpcServiceDefinition(KV);
  return {
    ...definition,
    Range: { ...definition.Range, responseSerialize: encodeRangeResponse },
    Txn: { ...definition.Txn, requestDeserialize: (bytes: Buffer) => decodeTxnRequest(bytes) },
  };
}

/** The handlers of every service this member serves, by service. */
export interface EtcdServiceHandlers {
  kv: GrpcServiceHandlers<typeof KV>;
  maintenance: GrpcServiceHandlers<typeof Maintenance>;
  watch: GrpcServiceHandlers<typeof Watch>;
  auth: GrpcServiceHandlers<typeof Auth>;
  lease: GrpcServiceHandlers<typeof Lease>;
  cluster: GrpcServiceHandlers<typeof Cluster>;
}

/** Builds the handlers of the services this member serves on its client listener. */
export function etcdServiceHandlers(etcd: EtcdServer, logger: Logger, stats = new GrpcStreamStats()): EtcdServiceHandlers {
  const caller = (call: { metadata: Metadata } & CancellableCall): Promise<AuthInfo | undefined> => etcd.callerAuth(tokenOf(call), call);
  /** A handler for a root-only RPC. */
  const admin =
    <Req, Res>(handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> =>
    async (r, call) => {
      etcd.checkAdmin(await caller(call));
      return handler(r, call);
    };
  const kv: GrpcServiceHandlers<typeof KV> = {
    Range: unary(logger, async (r, call) => {
      const response = await etcd.range(r, await caller(call));
      await encodeRangeResponseInSteps(response);
      return response;
    }),
    Put: unary(logger, async (r, call) => etcd.put(r, await caller(call))),
    DeleteRange: unary(logger, async (r, call) => etcd.deleteRange(r, await caller(call))),
    Txn: unary(logger, async (r, call) => etcd.txn(r, await caller(call))),
    Compact: unary(logger, async (r, call) => etcd.compact(r, await caller(call))),
  };

  const maintenanceRpcs = new MaintenanceService(etcd, logger);
  const maintenance: GrpcServiceHandlers<typeof Maintenance> = {
    Alarm: unary(logger, async (r, call) => maintenanceRpcs.alarm(r, await caller(call))),
    MoveLeader: unary(logger, (r) => maintenanceRpcs.moveLeader(r)),
    // Root only, as etcd's authMaintenanceServer.
    Snapshot: (call) => {
      caller(call)
        .then(
          (c) => {
            etcd.checkAdmin(c);
            maintenanceRpcs.snapshot(call);
          },
          (error: unknown) => call.emit("error", toServiceError(error, logger)),
        )
        .catch((error: unknown) => call.emit("error", toServiceError(error, logger)));
    },
    Status: unary(logger, () => etcd.status()),
    HashKV: unary(logger, async (r, call) => etcd.hashKV(Number(r.revision), await caller(call))),
    Hash: unary(
      logger,
      admin(() => etcd.hash()),
    ),
    Defragment: unary(
      logger,
      admin(async () => {
        await etcd.defragment();
        return create(DefragmentResponseSchema, { header: etcd.header() });
      }),
    ),
  };

  const watch: GrpcServiceHandlers<typeof Watch> = {
    Watch: (call) => {
      // The state behind `watchable` is replaced when a snapshot from the leader is installed: end the
      // stream with an error clients retry on (they resume from their last revision).
      const unsubscribe = etcd.onStateReplaced(() =>
        call.emit("error", { code: GrpcCode.UNAVAILABLE, details: "etcdserver: the member installed a snapshot from the leader" }),
      );
      call.once("close", unsubscribe);
      serveWatch(call, etcd, etcd.state.watchable, { token: tokenOf(call), stats });
    },
  };

  const authRpcs = new AuthService(etcd);
  /** An auth RPC that is only proposed: checked and answered when its entry applies. */
  const proposed = <Req, Res extends { header?: ResponseHeader }>(entry: (request: Req) => InternalRaftRequest["request"]) =>
    unary<Req, Res>(logger, async (r, call) => authRpcs.propose<Res>(entry(r), await caller(call)));
  const auth: GrpcServiceHandlers<typeof Auth> = {
    AuthEnable: proposed((value) => ({ case: "authEnable", value })),
    AuthDisable: proposed((value) => ({ case: "authDisable", value })),
    Authenticate: unary(logger, (r, call) => authRpcs.authenticate(r, call.getPeer())),
    UserAdd: unary(logger, async (r, call) => authRpcs.userAdd(r, await caller(call))),
    UserGet: proposed((value) => ({ case: "authUserGet", value })),
    UserList: proposed((value) => ({ case: "authUserList", value })),
    UserDelete: proposed((value) => ({ case: "authUserDelete", value })),
    UserChangePassword: unary(logger, async (r, call) => authRpcs.userChangePassword(r, await caller(call))),
    UserGrantRole: proposed((value) => ({ case: "authUserGrantRole", value })),
    UserRevokeRole: proposed((value) => ({ case: "authUserRevokeRole", value })),
    RoleAdd: proposed((value) => ({ case: "authRoleAdd", value })),
    RoleGet: proposed((value) => ({ case: "authRoleGet", value })),
    RoleList: proposed((value) => ({ case: "authRoleList", value })),
    RoleDelete: proposed((value) => ({ case: "authRoleDelete", value })),
    RoleGrantPermission: proposed((value) => ({ case: "authRoleGrantPermission", value })),
    RoleRevokePermission: proposed((value) => ({ case: "authRoleRevokePermission", value })),
  };

  const leases = new LeaseService(etcd, logger, stats);
  const lease: GrpcServiceHandlers<typeof Lease> = {
    LeaseGrant: unary(logger, (r) => leases.grant(r)),
    LeaseRevoke: unary(logger, async (r, call) => leases.revoke(r, await caller(call))),
    LeaseKeepAlive: (call) => leases.keepAlive(call),
    LeaseTimeToLive: unary(logger, async (r, call) => leases.timeToLive(r, await caller(call))),
    LeaseLeases: unary(logger, () => leases.leases()),
  };

  const members = new ClusterService(etcd, logger);
  const cluster: GrpcServiceHandlers<typeof Cluster> = {
    MemberAdd: unary(
      logger,
      admin((r) => members.memberAdd(r)),
    ),
    MemberRemove: unary(
      logger,
      admin((r) => members.memberRemove(r)),
    ),
    MemberUpdate: unary(
      logger,
      admin((r) => members.memberUpdate(r)),
    ),
    MemberList: unary(
      logger,
      admin(() => members.memberList()),
    ),
    MemberPromote: unary(
      logger,
      admin((r) => members.memberPromote(r)),
    ),
  };
  return { kv, maintenance, watch, auth, lease, cluster };
}

/** Registers the services this member serves on its client listener. */
export function addEtcdServices(services: GrpcServiceRegistrar, etcd: EtcdServer, logger: Logger, stats = new GrpcStreamStats()): void {
  const handlers = etcdServiceHandlers(etcd, logger, stats);
  services.addService(kvServiceDefinition(), handlers.kv);
  services.addService(grpcServiceDefinition(Maintenance), handlers.maintenance);
  services.addService(grpcServiceDefinition(Watch), handlers.watch);
  services.addService(grpcServiceDefinition(Auth), handlers.auth);
  services.addService(grpcServiceDefinition(Lease), handlers.lease);
  services.addService(grpcServiceDefinition(Cluster), handlers.cluster);
}

/**
 * @etcd-ts/api — etcd's v3 wire contract: the generated protobuf messages and services of
 * etcdserverpb, mvccpb and authpb, etcd's error table, and grpc-js service definitions and handler types
 * built from the descriptors.
 */
export * from "./gen/etcd/api/etcdserverpb/rpc_pb.js";
export * from "./gen/etcd/api/mvccpb/kv_pb.js";
export * from "./gen/etcd/api/authpb/auth_pb.js";
export * from "./gen/etcd/api/etcdserverpb/raft_internal_pb.js";
export { GrpcCode, RpcError, isRpcError, rpcErrorFromStatus, rpcErrors } from "./rpctypes.js";
export type { RpcErrorKind } from "./rpctypes.js";
export { decorateGrpcHandlers, grpcServiceDefinition } from "./grpc.js";
export type {
  AnsweredCall,
  GrpcHandler,
  GrpcHandlerDecorator,
  GrpcMethodInfo,
  GrpcServiceDefinition,
  GrpcServiceHandlers,
  GrpcServiceRegistrar,
  StreamedCall,
} from "./grpc.js";

/**
 * @etcd-ts/server — an etcd member: the MVCC state machine behind a replicated log, served over gRPC
 * (and HTTP/1.1 on the same port) with etcd's services, messages and errors.
 */
export { startMember } from "./member.js";
export type { GaugeSource, RunningMember, StartMemberOptions } from "./member.js";
export { EtcdServer } from "./etcd-server.js";
export type { EtcdServerOptions, ServerObserver } from "./etcd-server.js";
export type { ApplyCommitted, LogEntry, LogStatus, PeerProgress, ReplicatedLog } from "./consensus/replicated-log.js";
export type { ConfChangeApplier, DurableRaftStorage, RaftLogOptions } from "./consensus/raft-log.js";
export type {
  PeerNetwork,
  PeerNetworkFactory,
  PeerNetworkHost,
  PeerNetworkOptions,
  PeerRequestHandler,
  PeerRequestKind,
  PeerRequests,
  SnapshotBody,
} from "./peer/peer-network.js";
export {
  defaultConfig,
  parseInitialCluster,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_QUOTA_BACKEND_BYTES,
  GRPC_OVERHEAD_BYTES,
  ETCD_API_VERSION,
  ETCD_CLUSTER_VERSION,
} from "./config.js";
export type { ServerConfig } from "./config.js";
export { computeClusterId, computeMemberId, formatId } from "./membership/identity.js";
export { createLogger, silentLogger } from "./log.js";
export type { Logger } from "./log.js";
export type { Http1Handler } from "./grpc/client-listener.js";
export { gatewayDialCredentials, generateSelfSignedCertificate, isTlsConfigError, TlsConfigError } from "./tls.js";
export type { TlsInfo } from "./tls.js";

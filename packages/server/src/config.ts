import type { TlsInfo } from "./tls.js";

/**
 * What a member is told at start, with etcd's flag names in mind (the app maps flags and ETCD_* variables
 * onto this). Defaults are etcd 3.4's.
 */
export interface ServerConfig {
  /** Human-readable name of this member (`--name`). */
  readonly name: string;
  /** Where this member keeps its data (`--data-dir`). */
  readonly dataDir: string;
  /** URLs to serve clients on (`--listen-client-urls`). */
  readonly listenClientUrls: readonly string[];
  /** Client URLs this member advertises to the cluster (`--advertise-client-urls`). */
  readonly advertiseClientUrls: readonly string[];
  /** URLs to serve peers on (`--listen-peer-urls`). */
  readonly listenPeerUrls: readonly string[];
  /** This member's peer URLs as the cluster knows them (`--initial-advertise-peer-urls`). */
  readonly initialAdvertisePeerUrls: readonly string[];
  /** name → peer URLs of every initial member (`--initial-cluster`). */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterToken: string;
  readonly initialClusterState: "new" | "existing";
  /** Largest client request accepted (`--max-request-bytes`). */
  readonly maxRequestBytes: number;
  /** Most operations in one Txn (`--max-txn-ops`). */
  readonly maxTxnOps: number;
  /** gRPC streams one client connection may have open at once (`--max-concurrent-streams`; default
   * DEFAULT_MAX_CONCURRENT_STREAMS, where etcd's is unlimited). */
  readonly maxConcurrentStreams?: number;
  /** Backend size that raises the NOSPACE alarm (`--quota-backend-bytes`; 0 = etcd's default 2 GiB). */
  readonly quotaBackendBytes: number;
  /** Applied entries between raft snapshots (`--snapshot-count`, etcd's default 100000). */
  readonly snapshotCount?: number;
  /** Milliseconds between the leader's corruption checks (`--experimental-corrupt-check-time`; 0: off). */
  readonly corruptCheckTimeMs?: number;
  readonly logLevel: "debug" | "info" | "warn" | "error" | "panic" | "fatal";
  /** Token type and options (`--auth-token`: `simple`, or `jwt,pub-key=…,priv-key=…,sign-method=…`). */
  readonly authToken: string;
  /** bcrypt cost for passwords (`--bcrypt-cost`). */
  readonly bcryptCost: number;
  /** Seconds a simple token lives without use (`--auth-token-ttl`). */
  readonly authTokenTtl: number;
  /** TLS of the client URLs (`--cert-file`, `--key-file`, `--trusted-ca-file`, `--client-cert-auth`, `--auto-tls`). */
  readonly clientTls?: TlsInfo;
  /** TLS of the peer URLs, listening and dialling (the `--peer-*` flags). */
  readonly peerTls?: TlsInfo;
}

export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
export const DEFAULT_MAX_TXN_OPS = 128;
/**
 * etcd 3.4 defaults `--max-concurrent-streams` to math.MaxUint32 (no limit). Ours bounds what one
 * connection can hold open (each watch or keep-alive stream keeps bounded queues) while staying far
 * above what a client multiplexes on one connection.
 */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 4096;
export const DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024 * 1024 * 1024;
/** gRPC lets a message this much larger than --max-request-bytes through, so the server, not the
 * transport, reports an oversize request with etcd's own error (etcd allows the same overhead). */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** The etcd release whose API and behaviour etcd-ts reproduces; reported by Status and /version. */
export const ETCD_API_VERSION = "3.4.23";
/** The cluster version etcd 3.4 members agree on. */
export const ETCD_CLUSTER_VERSION = "3.4.0";

export function defaultConfig(name = "default"): ServerConfig {
  return {
    name,
    dataDir: `${name}.etcd`,
    listenClientUrls: ["http://localhost:2379"],
    advertiseClientUrls: ["http://localhost:2379"],
    listenPeerUrls: ["http://localhost:2380"],
    initialAdvertisePeerUrls: ["http://localhost:2380"],
    initialCluster: new Map([[name, ["http://localhost:2380"]]]),
    initialClusterToken: "etcd-cluster",
    initialClusterState: "new",
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
    maxTxnOps: DEFAULT_MAX_TXN_OPS,
    quotaBackendBytes: 0,
    logLevel: "info",
    authToken: "simple",
    bcryptCost: 10,
    authTokenTtl: 300,
  };
}

/** Parses etcd's `--initial-cluster` syntax: `n1=http://a:2380,n1=http://b:2380,n2=http://c:2380`. */
export function parseInitialCluster(text: string): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  for (const part of text.split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw new Error(`invalid value "${text}" for flag -initial-cluster: missing = in ${trimmed}`);
    const name = trimmed.slice(0, eq);
    const url = trimmed.slice(eq + 1);
    const urls = cluster.get(name) ?? [];
    urls.push(url);
    cluster.set(name, urls);
  }
  return cluster;
}

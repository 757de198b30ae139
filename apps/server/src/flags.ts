import {
  defaultConfig,
  parseInitialCluster,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  type ServerConfig,
  type TlsInfo,
} from "@etcd-ts/server";

/**
 * etcd's command line: the same flag names, `-flag`/`--flag`, `=value` or a separate value, and every flag
 * also readable from the environment as `ETCD_<FLAG_NAME>` (dashes to underscores); a flag on the command
 * line wins over its variable. Errors read as Go's flag package writes them, since scripts grep for them.
 */

type FlagKind = "string" | "int" | "bool";

interface FlagSpec {
  readonly kind: FlagKind;
  readonly usage: string;
}

export const STORAGE_ENGINES = ["sqlite", "lmdb"] as const;
export type StorageEngineName = (typeof STORAGE_ENGINES)[number];

const FLAGS: Record<string, FlagSpec> = {
  name: { kind: "string", usage: "Human-readable name for this member." },
  "data-dir": { kind: "string", usage: "Path to the data directory." },
  "listen-client-urls": { kind: "string", usage: "List of URLs to listen on for client traffic." },
  "advertise-client-urls": { kind: "string", usage: "List of this member's client URLs to advertise to the public." },
  "listen-peer-urls": { kind: "string", usage: "List of URLs to listen on for peer traffic." },
  "initial-advertise-peer-urls": { kind: "string", usage: "List of this member's peer URLs to advertise to the rest of the cluster." },
  "initial-cluster": { kind: "string", usage: "Initial cluster configuration for bootstrapping." },
  "initial-cluster-token": { kind: "string", usage: "Initial cluster token for the etcd cluster during bootstrap." },
  "initial-cluster-state": { kind: "string", usage: "Initial cluster state ('new' or 'existing')." },
  "max-request-bytes": { kind: "int", usage: "Maximum client request size in bytes the server will accept." },
  "max-txn-ops": { kind: "int", usage: "Maximum number of operations permitted in a transaction." },
  "max-concurrent-streams": {
    kind: "int",
    usage: `Maximum concurrent streams that each client can open at a time (default ${DEFAULT_MAX_CONCURRENT_STREAMS}; etcd's is unlimited).`,
  },
  "quota-backend-bytes": { kind: "int", usage: "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)." },
  "snapshot-count": { kind: "int", usage: "Number of committed transactions to trigger a snapshot to disk." },
  "experimental-corrupt-check-time": { kind: "string", usage: "Duration of time between cluster corruption check passes." },
  "log-level": { kind: "string", usage: "Configures log level. Only supports debug, info, warn, error, panic, or fatal." },
  "storage-engine": { kind: "string", usage: "Storage engine of the backend: sqlite (default) or lmdb." },
  "initial-snapshot": {
    kind: "string",
    usage: "Start a new member from this etcd snapshot file (etcdctl snapshot save), e.g. one taken from etcd.",
  },
  "auth-token": { kind: "string", usage: "Specify auth token type and its options ('simple' or 'jwt')." },
  "bcrypt-cost": { kind: "int", usage: "Specify bcrypt algorithm cost factor for auth password hashing." },
  "auth-token-ttl": { kind: "int", usage: "The lifetime in seconds of the auth token." },
  "cert-file": { kind: "string", usage: "Path to the client server TLS cert file." },
  "key-file": { kind: "string", usage: "Path to the client server TLS key file." },
  "trusted-ca-file": { kind: "string", usage: "Path to the client server TLS trusted CA cert file." },
  "client-cert-auth": { kind: "bool", usage: "Enable client cert authentication." },
  "auto-tls": { kind: "bool", usage: "Client TLS using generated certificates." },
  "peer-cert-file": { kind: "string", usage: "Path to the peer server TLS cert file." },
  "peer-key-file": { kind: "string", usage: "Path to the peer server TLS key file." },
  "peer-trusted-ca-file": { kind: "string", usage: "Path to the peer server TLS trusted CA file." },
  "peer-client-cert-auth": { kind: "bool", usage: "Enable peer client cert authentication." },
  "peer-auto-tls": { kind: "bool", usage: "Peer TLS using generated certificates." },
  cors: {
    kind: "string",
    usage: "Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).",
  },
  version: { kind: "bool", usage: "Print the version and exit." },
  help: { kind: "bool", usage: "Show this help." },
};

export class FlagError extends Error {
  override readonly name = "FlagError";
}

export function isFlagError(error: unknown): error is FlagError {
  return error instanceof Error && error.name === "FlagError";
}

export interface ParsedCommandLine {
  readonly config: ServerConfig;
  readonly storageEngine: StorageEngineName;
  readonly showVersion: boolean;
  readonly showHelp: boolean;
  /** `--initial-snapshot`: an etcd snapshot file a new member starts from. */
  readonly initialSnapshot: string | undefined;
  /** Origins the JSON gateway allows (`--cors`); empty allows every origin, as etcd. */
  readonly cors: string[];
  /** Notes for the log: environment variables shadowed by flags, unknown ETCD_* variables. */
  readonly warnings: string[];
}

export function usage(): string {
  const lines = ["Usage:", "", "  etcd-ts [flags]", "", "Flags:"];
  for (const [name, spec] of Object.entries(FLAGS)) {
    lines.push(`  --${name}${spec.kind === "bool" ? "" : " " + spec.kind}`, `      ${spec.usage}`);
  }
  return lines.join("\n") + "\n";
}

/** Parses argv (without node and script) and the environment into a member configuration. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      throw new FlagError(`'${arg}' is not a valid flag`);
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = FLAGS[name];
    if (spec === undefined) {
      if (name === "h") {
        given.set("help", "true");
        continue;
      }
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === "bool") value = "true";
    else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    given.set(name, value);
  }

  const warnings: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("ETCD_") || value === undefined) continue;
    const name = key.slice(5).toLowerCase().replace(/_/g, "-");
    if (FLAGS[name] === undefined) {
      warnings.push(`unrecognized environment variable ${key}=${value}`);
      continue;
    }
    if (given.has(name)) {
      warnings.push(`flag --${name} shadows environment variable ${key}`);
      continue;
    }
    given.set(name, value);
  }

  const str = (name: string): string | undefined => given.get(name);
  const int = (name: string, fallback: number): number => {
    const raw = given.get(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw.trim())) throw new FlagError(`invalid value "${raw}" for flag -${name}: parse error`);
    return Number(raw);
  };
  const bool = (name: string): boolean => {
    const raw = given.get(name);
    if (raw === undefined) return false;
    if (["1", "t", "T", "true", "TRUE", "True"].includes(raw)) return true;
    if (["0", "f", "F", "false", "FALSE", "False"].includes(raw)) return false;
    throw new FlagError(`invalid boolean value "${raw}" for -${name}: parse error`);
  };
  const list = (name: string, fallback: readonly string[]): string[] => {
    const raw = given.get(name);
    if (raw === undefined) return [...fallback];
    return raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  };

  const name = str("name") ?? "default";
  const defaults = defaultConfig(name);
  const initialAdvertisePeerUrls = list("initial-advertise-peer-urls", defaults.initialAdvertisePeerUrls);
  // etcd's default --initial-cluster is this member alone at its advertised peer URLs.
  const initialClusterText = str("initial-cluster") ?? initialAdvertisePeerUrls.map((u) => `${name}=${u}`).join(",");
  const state = str("initial-cluster-state") ?? "new";
  if (state !== "new" && state !== "existing") {
    throw new FlagError(`invalid value "${state}" for flag -initial-cluster-state: valid values are "new", "existing"`);
  }
  const logLevel = str("log-level") ?? "info";
  if (!["debug", "info", "warn", "error", "panic", "fatal"].includes(logLevel)) {
    throw new FlagError(`unknown level "${logLevel}" for flag -log-level`);
  }
  const engine = str("storage-engine") ?? "sqlite";
  if (!(STORAGE_ENGINES as readonly string[]).includes(engine)) {
    throw new FlagError(
      `invalid value "${engine}" for flag -storage-engine: valid values are ${STORAGE_ENGINES.map((e) => `"${e}"`).join(", ")}`,
    );
  }
  const maxRequestBytes = int("max-request-bytes", DEFAULT_MAX_REQUEST_BYTES);
  const maxTxnOps = int("max-txn-ops", DEFAULT_MAX_TXN_OPS);
  if (maxRequestBytes <= 0) throw new FlagError(`invalid value "${maxRequestBytes}" for flag -max-request-bytes: must be positive`);
  if (maxTxnOps <= 0) throw new FlagError(`invalid value "${maxTxnOps}" for flag -max-txn-ops: must be positive`);
  // An HTTP/2 setting, a uint32 as in etcd.
  const maxConcurrentStreams = int("max-concurrent-streams", DEFAULT_MAX_CONCURRENT_STREAMS);
  if (maxConcurrentStreams <= 0 || maxConcurrentStreams > 0xffffffff) {
    throw new FlagError(`invalid value "${maxConcurrentStreams}" for flag -max-concurrent-streams: must be between 1 and 4294967295`);
  }
  let initialCluster: Map<string, string[]>;
  try {
    initialCluster = parseInitialCluster(initialClusterText);
  } catch (error) {
    throw new FlagError((error as Error).message);
  }

  const config: ServerConfig = {
    name,
    dataDir: str("data-dir") ?? defaults.dataDir,
    listenClientUrls: list("listen-client-urls", defaults.listenClientUrls),
    advertiseClientUrls: list("advertise-client-urls", defaults.advertiseClientUrls),
    listenPeerUrls: list("listen-peer-urls", defaults.listenPeerUrls),
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterToken: str("initial-cluster-token") ?? defaults.initialClusterToken,
    initialClusterState: state,
    maxRequestBytes,
    maxTxnOps,
    maxConcurrentStreams,
    quotaBackendBytes: int("quota-backend-bytes", 0),
    snapshotCount: int("snapshot-count", 100_000),
    corruptCheckTimeMs: parseGoDuration("experimental-corrupt-check-time", str("experimental-corrupt-check-time") ?? "0s"),
    logLevel: logLevel as ServerConfig["logLevel"],
    authToken: str("auth-token") ?? "simple",
    bcryptCost: int("bcrypt-cost", 10),
    authTokenTtl: int("auth-token-ttl", 300),
    ...tlsInfo("client", str, bool),
    ...tlsInfo("peer", str, bool),
  };
  return {
    config,
    storageEngine: engine as StorageEngineName,
    showVersion: bool("version"),
    showHelp: bool("help"),
    initialSnapshot: str("initial-snapshot"),
    cors: list("cors", []),
    warnings,
  };
}

/** `--cert-file` & co. (or `--peer-*`) as a TlsInfo; absent when none of them was given. */
function tlsInfo(
  role: "client" | "peer",
  str: (name: string) => string | undefined,
  bool: (name: string) => boolean,
): { clientTls?: TlsInfo } | { peerTls?: TlsInfo } {
  const prefix = role === "peer" ? "peer-" : "";
  const info: TlsInfo = {
    certFile: str(`${prefix}cert-file`),
    keyFile: str(`${prefix}key-file`),
    trustedCaFile: str(`${prefix}trusted-ca-file`),
    clientCertAuth: bool(`${prefix}client-cert-auth`),
    autoTls: bool(`${prefix}auto-tls`),
  };
  const given =
    info.certFile !== undefined || info.keyFile !== undefined || info.trustedCaFile !== undefined || info.clientCertAuth || info.autoTls;
  if (!given) return {};
  return role === "peer" ? { peerTls: info } : { clientTls: info };
}

/** Go's `time.ParseDuration` for the units etcd's duration flags use ("1m30s", "500ms", "0"); milliseconds. */
export function parseGoDuration(flag: string, text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (text === "0") return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text)
    throw new FlagError(`invalid value "${text}" for flag -${flag}: time: invalid duration "${text}"`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

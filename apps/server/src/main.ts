import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { MEMBERSHIP_BUCKETS, META_BUCKET, writeConsistentIndex } from "@etcd-ts/schema";
import { isStorageError, type Backend } from "@etcd-ts/storage";
import { openLmdbBackend } from "@etcd-ts/storage-lmdb";
import { openSqliteBackend } from "@etcd-ts/storage-sqlite";
import { createGateway } from "@etcd-ts/gateway";
import { restoreBoltSnapshot } from "@etcd-ts/snapshot";
import {
  createLogger,
  gatewayDialCredentials,
  startMember,
  ETCD_API_VERSION,
  GRPC_OVERHEAD_BYTES,
  type RunningMember,
} from "@etcd-ts/server";
import { isFlagError, parseCommandLine, usage, type StorageEngineName } from "./flags.js";
import { gatewayGauges } from "./gateway-gauges.js";

/** The etcd-ts release; the etcd API it implements is ETCD_API_VERSION. */
const VERSION = "0.1.0";

/**
 * The `etcd-ts` binary: parses etcd's flags, opens the chosen storage engine in the data dir and runs one
 * member until SIGTERM/SIGINT. Exit codes: 0 after a clean stop, 1 when the member cannot start, 2 for a
 * bad command line (as Go's flag package).
 */
async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2), process.env);
  } catch (error) {
    if (isFlagError(error)) {
      process.stderr.write(`etcd-ts: ${error.message}\n${usage()}`);
      return 2;
    }
    throw error;
  }
  if (parsed.showHelp) {
    process.stdout.write(usage());
    return 0;
  }
  if (parsed.showVersion) {
    process.stdout.write(
      `etcd-ts Version: ${VERSION}\netcd API Version: ${ETCD_API_VERSION}\nNode Version: ${process.version}\nGo OS/Arch: ${process.platform}/${process.arch}\n`,
    );
    return 0;
  }
  const { config, storageEngine } = parsed;
  const logger = createLogger(config.logLevel);
  for (const warning of parsed.warnings) logger.warn(warning);

  let backend: Backend;
  try {
    const fresh = !existsSync(join(config.dataDir, "member", "raft"));
    backend = openBackend(config.dataDir, storageEngine);
    if (parsed.initialSnapshot !== undefined) {
      if (!fresh) throw new Error(`--initial-snapshot needs a new data dir; ${config.dataDir} already holds a member`);
      const restored = await seedFromSnapshot(backend, parsed.initialSnapshot);
      logger.info("seeded the new member from an etcd snapshot", { file: parsed.initialSnapshot, ...restored });
    }
  } catch (error) {
    logger.error("cannot open the data dir", { "data-dir": config.dataDir, error: describe(error) });
    process.stderr.write(`etcd-ts: cannot open data dir ${config.dataDir}: ${describe(error)}\n`);
    return 1;
  }

  // The JSON gateway on the client port dials this member's own gRPC endpoint, as etcd's does.
  let member: RunningMember;
  let gateway: ReturnType<typeof createGateway>;
  try {
    // Over TLS when the client URL is https, with the member's own certificate (etcd dials itself so).
    gateway = createGateway({
      target: gatewayTarget(config.listenClientUrls[0] ?? "http://127.0.0.1:2379"),
      cors: parsed.cors,
      serveV3alpha: true,
      credentials: gatewayDialCredentials(config),
      clientCertAuth: config.clientTls?.clientCertAuth === true,
      // The member's gRPC receive limit: a JSON body that cannot fit it is refused while it is read.
      maxRequestBytes: config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
      // Read once the member runs (the gateway answers nothing before that).
      isAuthEnabled: () => (member as RunningMember | undefined)?.server.auth.enabled ?? false,
    });
  } catch (error) {
    logger.error("cannot start the member", { error: describe(error) });
    process.stderr.write(`etcd-ts: ${describe(error)}\n`);
    await backend.close().catch(() => undefined);
    return 1;
  }
  try {
    member = await startMember({
      config,
      backend,
      logger,
      http1Handler: (req, res) => gateway.handle(req, res),
      gauges: gatewayGauges(gateway),
    });
  } catch (error) {
    logger.error("cannot start the member", { error: describe(error) });
    process.stderr.write(`etcd-ts: ${describe(error)}\n`);
    await backend.close().catch(() => undefined);
    return 1;
  }
  logger.info("ready to serve client requests", {
    name: config.name,
    "storage-engine": storageEngine,
    "data-dir": config.dataDir,
    "member-id": member.server.memberId,
    "cluster-id": member.server.clusterId,
  });

  return await new Promise<number>((resolve) => {
    const shutdown = (signal: string, exitCode = 0) => {
      logger.info("received signal; shutting down", { signal });
      gateway.close();
      member.stop().then(
        () => resolve(exitCode),
        (error: unknown) => {
          logger.error("error while shutting down", { error: describe(error) });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
    // etcd exits once it applied its own removal from the cluster (the server logged why).
    void member.server.removedFromCluster.then(() => shutdown("removed from the cluster"));
    // A disk that fails under the member (WAL or backend: full, EIO) stops it, as etcd stops; exit 1
    // with the reason (the file or data dir, the errno or engine code) on stderr.
    void member.server.stoppedByFailure.then((failure) => {
      process.stderr.write(`etcd-ts: fatal: the member stopped: ${failure.message}\n`);
      shutdown("fatal failure", 1);
    });
  });
}

/**
 * Opens `<data-dir>/member/backend` with the chosen engine. A data dir written by etcd itself (bbolt
 * under member/snap, a WAL under member/wal) is refused rather than silently shadowed by a new store.
 */
function openBackend(dataDir: string, engine: StorageEngineName): Backend {
  const memberDir = join(dataDir, "member");
  const backendDir = join(memberDir, "backend");
  if (!existsSync(backendDir) && (existsSync(join(memberDir, "snap", "db")) || existsSync(join(memberDir, "wal")))) {
    throw new Error(
      `${dataDir} holds a data dir written by etcd (bbolt/WAL), which etcd-ts cannot open in place; take an etcdctl snapshot from etcd and restore it instead`,
    );
  }
  if (existsSync(dataDir)) {
    const strays = readdirSync(dataDir).filter((name) => name !== "member");
    if (strays.length > 0 && !existsSync(memberDir)) {
      throw new Error(`${dataDir} is not empty and holds no etcd-ts member (found: ${strays.slice(0, 5).join(", ")})`);
    }
  }
  mkdirSync(backendDir, { recursive: true, mode: 0o700 });
  // The raft WAL makes every committed entry durable before it is applied, and a restart replays the
  // entries after the backend's consistent index; so the backend need not fsync each commit, only before
  // the WAL is truncated behind a raft snapshot (the server flushes it then).
  return engine === "lmdb"
    ? openLmdbBackend({ dir: backendDir, durability: "deferred" })
    : openSqliteBackend({ dir: backendDir, durability: "deferred" });
}

/** host:port of the first client URL, with a wildcard or `localhost` host replaced by IPv4 loopback. */
function gatewayTarget(url: string): string {
  const parsed = new URL(url);
  let host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "" || host === "0.0.0.0" || host === "::" || host === "localhost") host = "127.0.0.1";
  return `${host.includes(":") ? `[${host}]` : host}:${parsed.port}`;
}

/**
 * `--initial-snapshot FILE`: a new member starts from an etcd snapshot (`etcdctl snapshot save`, from
 * etcd or etcd-ts) instead of an empty store — the migration path from etcd. As `etcdctl snapshot
 * restore` does, the snapshot's keys, leases, auth and alarms are kept, its membership is dropped (the
 * new cluster's comes from --initial-cluster) and the consistent index starts over with the new log.
 */
async function seedFromSnapshot(backend: Backend, file: string): Promise<{ keys: number; buckets: number }> {
  const { keys, buckets } = await restoreBoltSnapshot(file, backend);
  await backend.update((txn) => {
    for (const bucket of MEMBERSHIP_BUCKETS) txn.deleteBucket(bucket);
    txn.createBucket(META_BUCKET);
    writeConsistentIndex(txn, 0);
  });
  // No raft log holds the seeded keys: they must be on disk before the member starts.
  await backend.flush();
  return { keys, buckets };
}

function describe(error: unknown): string {
  if (isStorageError(error)) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`etcd-ts: fatal: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

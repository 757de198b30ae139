import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { decorateGrpcHandlers, type GrpcHandlerDecorator, type GrpcMethodInfo, type GrpcServiceRegistrar } from "@etcd-ts/api";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { Backend, ReadTxn, Snapshot, WriteTxn } from "@etcd-ts/storage";
import type { DiskRaftStorage } from "@etcd-ts/wal";
import { ETCD_API_VERSION } from "../config.js";
import { goCodeName } from "../errors.js";
import type { EtcdServer } from "../etcd-server.js";
import type { GrpcStreamStats } from "../grpc/stream-stats.js";
import { exponentialBuckets, MetricsRegistry, type Counter, type CounterSeries, type Gauge, type Histogram } from "./metrics-registry.js";

/** etcd's buckets for WAL fsync and backend commit latency: 1 ms doubling to ~8 s. */
const DISK_BUCKETS = exponentialBuckets(0.001, 2, 14);

/**
 * The metrics a member serves on `/metrics`, with etcd 3.4's names, types and help texts. Most gauges
 * are read from the server when scraped (leader, raft indexes, backend sizes, keys); counters and
 * histograms are fed by hooks: the gRPC handlers (`instrumentGrpcServices`), the backend's write
 * transactions (`instrumentBackend`), the WAL's fsyncs and the server's proposals and leadership
 * changes (`attachServer`).
 */
export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly leaderChanges: Counter;
  readonly proposalsFailed: Counter;
  readonly walFsync: Histogram;
  readonly backendCommit: Histogram;
  readonly grpcStarted: Counter;
  readonly grpcHandled: Counter;
  private readonly serverId: Gauge;
  private pendingProposals = 0;
  private server: EtcdServer | undefined;
  private streams: GrpcStreamStats | undefined;
  private openStreams = 0;
  private detachWal: (() => void) | undefined;
  private detachServer: (() => void) | undefined;

  constructor() {
    const r = this.registry;
    const server = () => this.server;
    r.gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", () =>
      (server()?.leaderId() ?? 0n) !== 0n ? 1 : 0,
    );
    r.gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", () => (server()?.isLeader() ? 1 : 0));
    r.gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", () =>
      server()?.membership.local.isLearner ? 1 : 0,
    );
    this.leaderChanges = r.counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.");
    this.leaderChanges.touch();
    // etcd reports the raft commit and applied indexes as these two "totals" (gauges, as in etcd).
    r.gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", () =>
      Number(server()?.status().raftIndex ?? 0n),
    );
    r.gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", () =>
      Number(server()?.status().raftAppliedIndex ?? 0n),
    );
    r.gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.", () => this.pendingProposals);
    this.proposalsFailed = r.counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.");
    // etcd-ts only: the two bounded waiter sets (a full one answers "too many requests").
    r.gauge(
      "etcd_ts_server_proposal_waiters",
      "Proposals waiting for their apply result (bounded).",
      () => server()?.pendingWaiters().proposals ?? 0,
    );
    r.gauge(
      "etcd_ts_server_applied_index_waiters",
      "Calls waiting for the applied index to reach theirs: linearizable reads, simple tokens (bounded).",
      () => server()?.pendingWaiters().appliedIndex ?? 0,
    );
    this.proposalsFailed.touch();
    this.serverId = r.gauge("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.");
    const version = r.gauge("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.");
    version.set(1, { server_version: ETCD_API_VERSION });
    r.gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", () => {
      const quota = server()?.alarms.quotaBytes;
      return quota === undefined || quota === Infinity ? 0 : quota;
    });
    r.gauge(
      "etcd_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      () => server()?.backend.size() ?? 0,
    );
    r.gauge(
      "etcd_debugging_mvcc_db_total_size_in_bytes",
      "Total size of the underlying database physically allocated in bytes.",
      () => server()?.backend.size() ?? 0,
    );
    r.gauge(
      "etcd_mvcc_db_total_size_in_use_in_bytes",
      "Total size of the underlying database logically in use in bytes.",
      () => server()?.backend.sizeInUse() ?? 0,
    );
    r.gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", () => server()?.state.store.indexedKeys() ?? 0);
    this.walFsync = r.histogram("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.", DISK_BUCKETS);
    this.backendCommit = r.histogram(
      "etcd_disk_backend_commit_duration_seconds",
      "The latency distributions of commit called by backend.",
      DISK_BUCKETS,
    );
    r.gauge(
      "etcd_disk_wal_write_bytes_total",
      "Total number of bytes written in WAL.",
      () => this.walStorage()?.walMetrics().bytesWritten ?? 0,
    );
    this.grpcStarted = r.counter("grpc_server_started_total", "Total number of RPCs started on the server.");
    this.grpcHandled = r.counter(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
    );
    // The gRPC side's bounded queues (etcd's two debugging gauges, then etcd-ts' own).
    r.gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", () => this.streams?.watchStreamCount ?? 0);
    r.gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", () => this.streams?.watchers() ?? 0);
    r.gauge(
      "etcd_ts_grpc_server_open_streams",
      "gRPC streams open, all methods (each connection opens at most --max-concurrent-streams).",
      () => this.openStreams,
    );
    r.gauge(
      "etcd_ts_watch_stream_queued_responses",
      "Watch responses queued for clients over all watch streams (bounded per stream).",
      () => this.streams?.watchQueuedResponses() ?? 0,
    );
    r.counterFunc(
      "etcd_ts_watch_creates_refused_total",
      "Watch creates refused because their stream held its maximum number of watchers.",
      () => this.streams?.watchCreatesRefused ?? 0,
    );
    r.gauge("etcd_ts_lease_keepalive_streams", "LeaseKeepAlive streams open.", () => this.streams?.keepAliveStreams ?? 0);
    r.gauge(
      "etcd_ts_lease_keepalive_pending",
      "Keep-alive requests read and not yet answered, over all streams (bounded per stream).",
      () => this.streams?.keepAlivesPending ?? 0,
    );
    // The process basics client_golang's process collector reports (those Node can tell).
    const startTime = Math.floor(performance.timeOrigin / 1000);
    r.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", () => startTime);
    r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", () => process.memoryUsage.rss());
    r.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", () => virtualMemoryBytes());
    r.counterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    });
    r.gauge(
      "nodejs_heap_used_bytes",
      "Bytes of the V8 heap in use (the closest thing to go_memstats_heap_inuse_bytes).",
      () => process.memoryUsage().heapUsed,
    );
    r.gauge("nodejs_active_handles", "Active libuv handles (what go_goroutines hints at for a Go process).", () => activeHandles());
  }

  /**
   * Starts reading `server`: its gauges, its WAL's fsyncs, and (through its observer hook) its proposals
   * and leadership changes.
   */
  attachServer(server: EtcdServer): void {
    this.server = server;
    this.serverId.set(1, { server_id: server.memberId.toString(16) });
    const storage = this.walStorage();
    this.detachWal = storage?.onWalFsync((millis) => this.walFsync.observe(millis / 1000));
    this.detachServer = server.observe({
      proposalStarted: () => this.pendingProposals++,
      proposalFinished: (ok) => {
        this.pendingProposals--;
        if (!ok) this.proposalsFailed.inc();
      },
      // etcd counts a change whenever a (new) leader becomes known, not when it is lost.
      leaderChanged: (_isLeader, leader) => {
        if (leader !== 0n) this.leaderChanges.inc();
      },
    });
    // A member that already knows its leader when attached (a single member elects itself at once).
    if (server.leaderId() !== 0n && this.leaderChanges.get() === 0) this.leaderChanges.inc();
  }

  /** Reads the gRPC streams' counts (watchers, queued responses, keep-alives) when scraped. */
  attachStreamStats(stats: GrpcStreamStats): void {
    this.streams = stats;
  }

  detach(): void {
    this.detachWal?.();
    this.detachServer?.();
    this.server = undefined;
  }

  /** The text for `GET /metrics`. */
  render(): string {
    return this.registry.render();
  }

  private walStorage(): DiskRaftStorage | undefined {
    const storage = (this.server as unknown as { storage?: DiskRaftStorage } | undefined)?.storage;
    return typeof storage?.walMetrics === "function" ? storage : undefined;
  }

  /**
   * Where to register services so every method counts `grpc_server_started_total` and
   * `grpc_server_handled_total` with grpc-prometheus' labels (pre-initialised at registration).
   */
  instrumentGrpcServices(services: GrpcServiceRegistrar): GrpcServiceRegistrar {
    return {
      addService: (definition, handlers) => services.addService(definition, decorateGrpcHandlers(definition, handlers, this.callCounter())),
    };
  }

  private callCounter(): GrpcHandlerDecorator {
    const started = this.grpcStarted;
    const handled = this.grpcHandled;
    const codeName = (code: unknown) => goCodeName(typeof code === "number" ? code : GrpcStatus.UNKNOWN);
    // Each method's series are resolved once, at registration: a call only adds to them.
    const seriesOf = (method: GrpcMethodInfo) => {
      const [, grpcService = "", grpcMethod = ""] = /^\/([^/]+)\/([^/]+)$/.exec(method.path) ?? [];
      const grpcType = method.requestStream
        ? method.responseStream
          ? "bidi_stream"
          : "client_stream"
        : method.responseStream
          ? "server_stream"
          : "unary";
      const labels = { grpc_method: grpcMethod, grpc_service: grpcService, grpc_type: grpcType };
      const handledByCode = new Map<string, CounterSeries>();
      const handledOf = (code: string): CounterSeries => {
        let series = handledByCode.get(code);
        if (series === undefined) {
          series = handled.seriesOf({ ...labels, grpc_code: code });
          handledByCode.set(code, series);
        }
        return series;
      };
      const handledOk = handledOf("OK");
      return { started: started.seriesOf(labels), handledOk, handled: handledOf };
    };
    return {
      answered: (handler, method) => {
        const series = seriesOf(method);
        return (call, callback) => {
          series.started.inc();
          handler(call, (error, value, trailer, flags) => {
            (error ? series.handled(codeName(error.code)) : series.handledOk).inc();
            callback(error, value, trailer, flags);
          });
        };
      },
      // Streams end in one of three ways: the handler ends them (status OK, or the status of an error it
      // emitted), the client cancels, or they are destroyed with an error. The first of these counts.
      streamed: (handler, method) => {
        const series = seriesOf(method);
        return (call) => {
          series.started.inc();
          this.openStreams++;
          let counted = false;
          const count = (code: string) => {
            if (counted) return;
            counted = true;
            this.openStreams--;
            series.handled(code).inc();
          };
          call.once("cancelled", () => count("Canceled"));
          call.once("error", (error: { code?: number } | undefined) => count(codeName(error?.code)));
          call.once("finish", () => count(codeName(pendingStatusCode(call) ?? GrpcStatus.OK)));
          call.once("close", () => count("OK"));
          handler(call);
        };
      },
    };
  }
}

/** The status grpc-js will send when a server stream finishes (kept on the call, not in its types). */
function pendingStatusCode(call: object): unknown {
  if (!("pendingStatus" in call)) return undefined;
  const status = call.pendingStatus;
  return typeof status === "object" && status !== null && "code" in status ? status.code : undefined;
}

/**
 * Wraps a backend so each write transaction's commit (begin to durable) is observed in `commit`, as
 * etcd's `etcd_disk_backend_commit_duration_seconds` times bbolt's commit.
 */
export function instrumentBackend(backend: Backend, commit: Histogram): Backend {
  return new TimedBackend(backend, commit);
}

/**
 * A plain delegate rather than a Proxy: the server calls the backend on every request (a view per read,
 * the size per write), and a Proxy's trap with a fresh bound method per call costs more than the call.
 */
class TimedBackend implements Backend {
  readonly engine: string;

  constructor(
    private readonly backend: Backend,
    private readonly commit: Histogram,
  ) {
    this.engine = backend.engine;
  }

  view<T>(fn: (txn: ReadTxn) => T): T {
    return this.backend.view(fn);
  }

  // Not an async function: an engine that throws from update itself (one that has failed for good) is
  // heard by the caller at once, as it would be without the metrics.
  update(fn: (txn: WriteTxn) => void): Promise<void> {
    const start = performance.now();
    return this.backend.update(fn).finally(() => this.commit.observe((performance.now() - start) / 1000));
  }

  snapshot(): Snapshot {
    return this.backend.snapshot();
  }

  size(): number {
    return this.backend.size();
  }

  sizeInUse(): number {
    return this.backend.sizeInUse();
  }

  flush(): Promise<void> {
    return this.backend.flush();
  }

  defragment(): Promise<void> {
    return this.backend.defragment();
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function virtualMemoryBytes(): number {
  try {
    // /proc/self/stat field 23 is vsize in bytes (Linux only; 0 elsewhere, as client_golang omits it).
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[20] ?? 0);
  } catch {
    return 0;
  }
}

function activeHandles(): number {
  return process.getActiveResourcesInfo().length;
}

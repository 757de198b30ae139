import type { IncomingMessage, ServerResponse } from "node:http";
import type { Backend } from "@etcd-ts/storage";
import {
  DEFAULT_MAX_CONCURRENT_STREAMS,
  ETCD_API_VERSION,
  ETCD_CLUSTER_VERSION,
  GRPC_OVERHEAD_BYTES,
  type ServerConfig,
} from "./config.js";
import { EtcdServer } from "./etcd-server.js";
import { ClientListener, parseListenUrl, type Http1Handler } from "./grpc/client-listener.js";
import { GrpcServer } from "./grpc/transport/grpc-server.js";
import { addEtcdServices } from "./grpc/services.js";
import { GrpcStreamStats } from "./grpc/stream-stats.js";
import { withLearnerGate } from "./grpc/learner-gate.js";
import { createLogger, type Logger } from "./log.js";
import { instrumentBackend, ServerMetrics } from "./metrics/metrics.js";
import { activeAlarms, handleMonitoringRoute } from "./metrics/probes.js";
import { prepareMemberTls } from "./tls.js";

export interface StartMemberOptions {
  readonly config: ServerConfig;
  readonly backend: Backend;
  readonly logger?: Logger;
  /** Extra HTTP/1.1 routes on the client port (the JSON gateway plugs in here). Called for paths the member does not serve itself. */
  readonly http1Handler?: Http1Handler;
  /** Gauges served on `/metrics` besides the member's own, read when scraped (the JSON gateway's bounds). */
  readonly gauges?: readonly GaugeSource[];
}

/** A gauge kept outside the member, read at scrape time. `name` must not be one the member serves. */
export interface GaugeSource {
  readonly name: string;
  readonly help: string;
  read(): number;
}

/** A running member: the server plus its client listeners. */
export interface RunningMember {
  readonly server: EtcdServer;
  /** Bound client ports, in the order of `--listen-client-urls`. */
  readonly clientPorts: readonly number[];
  stop(): Promise<void>;
}

/**
 * Starts a member as the `etcd-ts` binary does: opens the server on the backend, serves gRPC (and
 * HTTP/1.1 `/health`, `/version`) on every client URL. `stop()` closes listeners, then the server and the
 * backend.
 */
export async function startMember(options: StartMemberOptions): Promise<RunningMember> {
  const logger = options.logger ?? createLogger(options.config.logLevel);
  const tls = prepareMemberTls(options.config);
  const metrics = new ServerMetrics();
  // Before the server starts: a name taken twice throws with nothing to undo.
  for (const gauge of options.gauges ?? []) metrics.registry.gauge(gauge.name, gauge.help, () => gauge.read());
  const server = await EtcdServer.start({
    config: options.config,
    backend: instrumentBackend(options.backend, metrics.backendCommit),
    logger,
  });
  metrics.attachServer(server);
  const grpcServer = new GrpcServer({
    maxReceiveMessageLength: options.config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    // Per connection (an HTTP/2 setting); a client past it has its new streams refused.
    maxConcurrentStreams: options.config.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
  });
  const streamStats = new GrpcStreamStats();
  metrics.attachStreamStats(streamStats);
  // A learner serves only Status and serializable reads, as etcd 3.4's interceptors allow.
  addEtcdServices(
    withLearnerGate(metrics.instrumentGrpcServices(grpcServer), () => server.membership.local.isLearner, logger),
    server,
    logger,
    streamStats,
  );
  await server.ready();
  const http1 = http1Routes(server, options.http1Handler, metrics);
  const listeners: ClientListener[] = [];
  try {
    for (const url of options.config.listenClientUrls) {
      const { host, port, secure } = parseListenUrl(url);
      const listener = new ClientListener(grpcServer, http1, secure ? tls.clientListen : undefined);
      await listener.listen(host, port);
      listeners.push(listener);
      logger.info(secure ? "serving client traffic securely" : "serving client traffic insecurely", {
        address: `${host}:${listener.port}`,
      });
    }
  } catch (error) {
    await Promise.all(listeners.map((l) => l.close()));
    grpcServer.close();
    await server.stop();
    await options.backend.close();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    server,
    clientPorts: listeners.map((l) => l.port),
    stop: () =>
      (stopping ??= (async () => {
        await Promise.all(listeners.map((l) => l.close()));
        grpcServer.close();
        await server.stop();
        metrics.detach();
        await options.backend.close();
      })()),
  };
}

function http1Routes(server: EtcdServer, next: Http1Handler | undefined, metrics?: ServerMetrics): Http1Handler {
  return (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? "/").split("?")[0];
    if (handleMonitoringRoute(server, metrics, request, response)) return;
    if (path === "/version") {
      sendJson(response, 200, { etcdserver: ETCD_API_VERSION, etcdcluster: ETCD_CLUSTER_VERSION });
      return;
    }
    if (path === "/health") {
      if (request.method !== "GET") {
        // As Go's http.Error: etcd's health handler answers GET only.
        response.writeHead(405, { allow: "GET", "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" });
        response.end("Method Not Allowed\n");
        return;
      }
      // Healthy when a linearizable read goes through (a leader exists and the member applies). etcd
      // sets no content type here, so Go sniffs text/plain.
      const answer = (status: number, health: string) => {
        const body = JSON.stringify({ health });
        if (status === 200) {
          response.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
          response.end(body);
          return;
        }
        // etcd answers an unhealthy member with Go's http.Error: nosniff, and a newline after the body.
        response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" });
        response.end(`${body}\n`);
      };
      // etcd: a raised alarm or no known leader makes the member unhealthy at once, before it tries a read.
      if (activeAlarms(server).length > 0 || server.leaderId() === 0n) {
        answer(503, "false");
        return;
      }
      server.probeRead(false).then(
        () => answer(200, "true"),
        () => answer(503, "false"),
      );
      return;
    }
    if (next !== undefined) {
      next(request, response);
      return;
    }
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    response.end("404 page not found\n");
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

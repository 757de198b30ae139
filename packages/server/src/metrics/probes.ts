import type { IncomingMessage, ServerResponse } from "node:http";
import { AlarmType } from "@etcd-ts/api";
import type { EtcdServer } from "../etcd-server.js";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics-registry.js";
import type { ServerMetrics } from "./metrics.js";

/**
 * The monitoring routes of the client port besides /health and /version: `/metrics` (Prometheus text),
 * and `/livez` and `/readyz` as etcd 3.5 defines them (3.4 has neither): `ok` with 200, or a list of the
 * failed checks with 503. `?verbose` lists every check, as etcd's.
 */

/** The active alarms' names (etcd's /health is false while any alarm is raised). */
export function activeAlarms(server: EtcdServer): string[] {
  // An alarm type outside the enum has no name in its reverse mapping: it is printed as its number.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  return server.alarms.get(AlarmType.NONE).map((a) => AlarmType[a.alarm] ?? String(a.alarm));
}

interface Check {
  readonly name: string;
  /** undefined when it passes, else why it failed. */
  readonly run: () => Promise<string | undefined>;
}

function livezChecks(server: EtcdServer): Check[] {
  // etcd 3.5's livez: the server's apply loop answers a serializable read.
  return [{ name: "serializable_read", run: async () => readFails(server, true) }];
}

function readyzChecks(server: EtcdServer): Check[] {
  return [
    {
      name: "data_corruption",
      run: async () => (activeAlarms(server).includes("CORRUPT") ? "data corruption alarm is active" : undefined),
    },
    { name: "serializable_read", run: async () => readFails(server, true) },
    { name: "linearizable_read", run: async () => readFails(server, false) },
  ];
}

/** How long a probe's read may take (etcd gives its health reads a few seconds, then reports failure). */
const PROBE_READ_TIMEOUT_MS = 3000;

async function readFails(server: EtcdServer, serializable: boolean): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("context deadline exceeded")), PROBE_READ_TIMEOUT_MS);
  });
  try {
    // The member's own read: with auth on, no client's permissions apply to it.
    await Promise.race([timeout, server.probeRead(serializable)]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

async function answerChecks(request: IncomingMessage, response: ServerResponse, probe: string, checks: Check[]): Promise<void> {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams;
  const excluded = new Set(query.getAll("exclude"));
  const verbose = query.has("verbose");
  const lines: string[] = [];
  let failed = false;
  for (const check of checks) {
    if (excluded.has(check.name)) {
      lines.push(`[+]${check.name} excluded: ok`);
      continue;
    }
    const reason = await check.run();
    if (reason === undefined) lines.push(`[+]${check.name} ok`);
    else {
      failed = true;
      lines.push(`[-]${check.name} failed: ${reason}`);
    }
  }
  response.writeHead(failed ? 503 : 200, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" });
  if (failed) response.end(`${lines.join("\n")}\n${probe} check failed\n`);
  else if (verbose) response.end(`${lines.join("\n")}\n${probe} check passed\n`);
  else response.end("ok");
}

/** Serves /metrics, /livez and /readyz; returns false for other paths. */
export function handleMonitoringRoute(
  server: EtcdServer,
  metrics: ServerMetrics | undefined,
  request: IncomingMessage,
  response: ServerResponse,
): boolean {
  const path = (request.url ?? "/").split("?")[0];
  if (path === "/metrics" && metrics !== undefined) {
    response.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE });
    response.end(metrics.render());
    return true;
  }
  if (path === "/livez" || path === "/readyz") {
    const checks = path === "/livez" ? livezChecks(server) : readyzChecks(server);
    answerChecks(request, response, path.slice(1), checks).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
    return true;
  }
  return false;
}
